//! Issue 13 on the AWS emulator: `lockbox init` on SSM Parameter Store and on Secrets Manager
//! (chosen by the config file), killed with SIGKILL at every crash point (the test-only hook
//! `LOCKBOX_TEST_CRASH_AT=k`), leaves a node the next `lockbox init` repairs, saying what it
//! repaired, after which `lockbox output` works. The local-disk run is in `init_crash.rs`.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;

use lockbox_testkit::cli::{aws_command, json, ok_json, output_of_init, stderr};
use lockbox_testkit::{emulator, tag};

const CRASH_AT: &str = "LOCKBOX_TEST_CRASH_AT";

fn lockbox(args: &[&str], crash_at: Option<usize>) -> Output {
    let mut cmd = aws_command(env!("CARGO_BIN_EXE_lockbox"), args);
    cmd.env_remove(CRASH_AT);
    if let Some(k) = crash_at {
        cmd.env(CRASH_AT, k.to_string());
    }
    cmd.output().unwrap()
}

/// A config for a new node on `kind` (`aws-ssm`, `aws-secretsmanager`) under a fresh path.
fn config(dir: &Path, kind: &str, path_key: &str, endpoint: &str, k: usize) -> String {
    let cfg = dir.join(format!("config-{k}.json"));
    let c = cfg.to_str().unwrap().to_owned();
    let extra = format!(
        "region=us-east-1,{path_key}=/lockbox-it/crash-{}-{k}/",
        tag()
    );
    let o = lockbox(
        &[
            "generate",
            "--type",
            kind,
            "--name",
            "node1",
            "--dir",
            &c,
            "--extra",
            &extra,
            "--server-url",
            endpoint,
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    c
}

fn crash_at_every_point(kind: &str, path_key: &str, endpoint: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let mut repaired_runs = 0;
    for k in 1.. {
        assert!(k <= 32, "init never ran to the end");
        let c = config(tmp.path(), kind, path_key, endpoint, k);
        let killed = lockbox(&["init", "--config", &c, "--json"], Some(k));
        if killed.status.success() {
            // Points: the intent record, three keys, the record's removal.
            assert_eq!(k - 1, 5, "{kind}: crash points");
            break;
        }
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{kind} k={k}: {}",
            stderr(&killed)
        );
        let listed = ok_json(&lockbox(&["list", "--config", &c, "--json"], None));
        let listed = listed.to_string();
        let had_intent = listed.contains("lockbox-init-intent");
        let again = lockbox(&["init", "--config", &c, "--json"], None);
        if !had_intent {
            // Killed after the record was removed: the node is whole and is not replaced.
            assert_eq!(again.status.code(), Some(1), "{kind} k={k}");
            assert!(
                stderr(&again).contains("already exist"),
                "{}",
                stderr(&again)
            );
            let output = ok_json(&lockbox(&["output", "--config", &c, "--json"], None));
            assert!(output["ibft_validator"].is_string(), "{kind} k={k}");
            continue;
        }
        repaired_runs += 1;
        let mut init = ok_json(&again);
        let repaired = init
            .as_object_mut()
            .unwrap()
            .remove("repaired")
            .unwrap_or_else(|| panic!("{kind} k={k}: no repaired field"));
        // Killed after the record and k-1 keys.
        assert_eq!(
            repaired["removed"].as_array().unwrap().len(),
            k - 1,
            "{kind} k={k}: {repaired}"
        );
        assert_eq!(repaired["kept"], json("[]"));
        assert!(
            stderr(&again).contains("an interrupted init was rolled back"),
            "{kind} k={k}: {}",
            stderr(&again)
        );
        let output = ok_json(&lockbox(&["output", "--config", &c, "--json"], None));
        assert_eq!(output, output_of_init(&init), "{kind} k={k}");
        let listed = ok_json(&lockbox(&["list", "--config", &c, "--json"], None)).to_string();
        assert!(
            !listed.contains("lockbox-init-intent"),
            "{kind} k={k}: {listed}"
        );
    }
    assert_eq!(repaired_runs, 4, "{kind}");
}

#[test]
fn it_init_recovers_after_kill_9_at_every_point_on_ssm() {
    let Some(endpoint) = emulator("it_init_recovers_after_kill_9_at_every_point_on_ssm") else {
        return;
    };
    crash_at_every_point("aws-ssm", "ssm-parameter-path", &endpoint);
}

#[test]
fn it_init_recovers_after_kill_9_at_every_point_on_secrets_manager() {
    let Some(endpoint) =
        emulator("it_init_recovers_after_kill_9_at_every_point_on_secrets_manager")
    else {
        return;
    };
    crash_at_every_point("aws-secretsmanager", "secrets-manager-path", &endpoint);
}
