//! Issue 13: `lockbox init` killed with SIGKILL at every point (the test-only hook
//! `LOCKBOX_TEST_CRASH_AT=k` kills the process at its k-th crash point) leaves a node the next
//! `lockbox init` repairs, saying what it repaired, after which `lockbox output` works; a
//! killed `put` leaves a temporary file the next write in that directory removes.
//!
//! The same run on the AWS emulator is in `it_init_crash.rs`.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output};

use lockbox_testkit::cli::{json, ok_json, output_of_init, stderr};

const CRASH_AT: &str = "LOCKBOX_TEST_CRASH_AT";

fn lockbox(args: &[&str], crash_at: Option<usize>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockbox"));
    cmd.args(args).env_remove("RUST_LOG").env_remove(CRASH_AT);
    if let Some(k) = crash_at {
        cmd.env(CRASH_AT, k.to_string());
    }
    cmd.output().unwrap()
}

/// Every `.lockbox-tmp-*` file under `dir`.
fn temp_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(temp_files(&p));
        } else if e.file_name().to_string_lossy().starts_with(".lockbox-tmp-") {
            out.push(p);
        }
    }
    out
}

#[test]
fn init_recovers_after_kill_9_at_every_point_on_local_disk() {
    let mut repaired_runs = 0;
    let mut points = 0;
    for k in 1.. {
        assert!(k <= 64, "init never ran to the end");
        let tmp = tempfile::tempdir().unwrap();
        let node = tmp.path().join("node");
        let d = node.to_str().unwrap();
        let killed = lockbox(&["init", "--data-dir", d, "--json"], Some(k));
        if killed.status.success() {
            points = k - 1;
            break;
        }
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "k={k}: killed by SIGKILL; stderr: {}",
            stderr(&killed)
        );
        let had_intent = node.join("secrets/lockbox-init-intent").exists();
        let keys_written = [
            "consensus/validator.key",
            "consensus/validator-bls.key",
            "libp2p/libp2p.key",
        ]
        .iter()
        .filter(|f| node.join(f).exists())
        .count();

        if had_intent {
            // The half node says how to repair it.
            let o = lockbox(&["output", "--data-dir", d], None);
            if keys_written < 3 {
                assert_eq!(o.status.code(), Some(1), "k={k}");
                assert!(
                    stderr(&o).contains("run `lockbox init` again"),
                    "k={k}: {}",
                    stderr(&o)
                );
            }
        }

        let again = lockbox(&["init", "--data-dir", d, "--json"], None);
        if !had_intent && keys_written == 3 {
            // Killed after the run was complete (before it printed): nothing to repair, the
            // node is whole, and a new init refuses to replace it.
            assert_eq!(again.status.code(), Some(1), "k={k}");
            assert!(
                stderr(&again).contains("already exist"),
                "k={k}: {}",
                stderr(&again)
            );
            let output = ok_json(&lockbox(&["output", "--data-dir", d, "--json"], None));
            assert!(output["address"].is_string(), "k={k}");
            continue;
        }
        let mut init = ok_json(&again);
        let repaired = init.as_object_mut().unwrap().remove("repaired");
        let notes = stderr(&again);
        if had_intent {
            repaired_runs += 1;
            let repaired = repaired.unwrap_or_else(|| panic!("k={k}: no repaired field"));
            assert_eq!(
                repaired["removed"].as_array().unwrap().len(),
                keys_written,
                "k={k}: {repaired}"
            );
            assert_eq!(repaired["kept"], json("[]"), "k={k}");
            let line = notes
                .lines()
                .find(|l| l.contains("repaired"))
                .unwrap_or_else(|| panic!("k={k}: no note: {notes}"));
            assert_eq!(
                json(line)["note"].as_str().unwrap(),
                format!("repaired: {}", repaired["message"].as_str().unwrap()),
                "k={k}"
            );
            assert!(
                line.contains("an interrupted init was rolled back"),
                "k={k}: {line}"
            );
        } else {
            assert!(repaired.is_none(), "k={k}: nothing to repair");
            assert!(!notes.contains("repaired"), "k={k}: {notes}");
        }
        let output = ok_json(&lockbox(&["output", "--data-dir", d, "--json"], None));
        assert_eq!(output, output_of_init(&init), "k={k}");
        assert_eq!(temp_files(&node), Vec::<std::path::PathBuf>::new(), "k={k}");
        assert!(!node.join("secrets/lockbox-init-intent").exists(), "k={k}");
    }
    // Directories, the intent record, three keys, each temp file and rename: many points, and
    // most of them inside the run the record covers.
    assert!(points >= 12, "only {points} crash points");
    assert!(repaired_runs >= 8, "only {repaired_runs} repaired runs");
}

#[test]
fn a_killed_puts_temp_file_is_removed_by_the_next_write() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let value = tmp.path().join("value");
    std::fs::write(&value, "a secret value").unwrap();
    let v = value.to_str().unwrap();
    lockbox(
        &["put", "--data-dir", d, "app/first", "--from-file", v],
        None,
    );
    // `app/` exists: the crash points of this put are the temp file and the rename.
    let killed = lockbox(
        &["put", "--data-dir", d, "app/x", "--from-file", v],
        Some(1),
    );
    assert_eq!(killed.status.signal(), Some(9), "{}", stderr(&killed));
    assert!(
        stderr(&killed).contains("wrote a temporary file"),
        "{}",
        stderr(&killed)
    );
    let left = temp_files(tmp.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(std::fs::read(&left[0]).unwrap(), b"a secret value");

    let o = lockbox(&["put", "--data-dir", d, "app/y", "--from-file", v], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(temp_files(tmp.path()), Vec::<std::path::PathBuf>::new());
    assert!(!tmp.path().join("secrets/app/x").exists());
}
