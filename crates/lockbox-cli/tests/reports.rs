//! The one output path: `--json` for every command, and what clap generates (completions, man
//! page). Runs the built binary; needs no emulator.

use std::process::{Command, Output, Stdio};

use lockbox_testkit::cli::{stderr, workspace_root};

use serde_json::Value;

const ACCOUNT: &str = "123456789012";

fn lockbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lockbox"))
        .args(args)
        .current_dir(workspace_root())
        .env_remove("RUST_LOG")
        .env_remove("AWS_ACCOUNT_ID")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .output()
        .expect("run lockbox")
}

fn stdout(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    String::from_utf8(o.stdout.clone()).unwrap()
}

const POLICY: [&str; 5] = [
    "policy",
    "--config",
    "fixtures/policies/inputs/configs/aws-secretsmanager.json",
    "--account",
    ACCOUNT,
];

#[test]
fn policy_json_is_the_policy_document_on_one_line() {
    let text = lockbox(&POLICY);
    let pretty = stdout(&text);
    let json = lockbox(&[&["--json"][..], &POLICY].concat());
    let line = stdout(&json);
    assert_eq!(line.lines().count(), 1, "{line}");
    let doc: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(doc, serde_json::from_str::<Value>(&pretty).unwrap());
    assert_eq!(doc["Version"], "2012-10-17");
    // Key order is kept: the compact form is the pretty one without its whitespace.
    let squeezed: String = pretty.split_whitespace().collect();
    assert_eq!(line.trim_end(), squeezed);
}

#[test]
fn policy_notes_are_json_lines_on_stderr_with_json() {
    let o = lockbox(&[&["--json"][..], &POLICY].concat());
    stdout(&o);
    let err = stderr(&o);
    assert!(!err.is_empty());
    for line in err.lines() {
        let note: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(
            note["note"].as_str().unwrap().starts_with("left out "),
            "{note}"
        );
    }
}

#[test]
fn policy_errors_are_json_with_json() {
    let o = lockbox(&[
        "--json",
        "policy",
        "--manifest",
        "/nonexistent",
        "--account",
        ACCOUNT,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err: Value = serde_json::from_str(stderr(&o).trim()).unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("/nonexistent"),
        "{err}"
    );
}

/// `sync` takes its region from aws-config's chain, so a region in the AWS profile counts:
/// with one there, sync gets past the region and fails only on the (unreachable) endpoint,
/// having drawn no progress line (stderr is not a terminal).
#[test]
fn sync_takes_the_region_from_the_aws_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("manifest.json");
    std::fs::write(&manifest, r#"{"cloudSecrets": [{"arn": "name-only"}]}"#).unwrap();
    let config = tmp.path().join("aws-config");
    let credentials = tmp.path().join("aws-credentials");
    std::fs::write(&credentials, "").unwrap();
    let store = tmp.path().join("store");
    let run = |profile_region: Option<&str>| {
        std::fs::write(
            &config,
            profile_region.map_or(String::new(), |r| format!("[default]\nregion = {r}\n")),
        )
        .unwrap();
        Command::new(env!("CARGO_BIN_EXE_lockbox"))
            .args(["--json", "sync", "--manifest"])
            .arg(&manifest)
            .arg("--store")
            .arg(&store)
            .args(["--endpoint-url", "http://127.0.0.1:1"])
            .env_remove("RUST_LOG")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let error = |o: &Output| -> String {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
        // stderr is a pipe here, so no progress line: only the error.
        assert_eq!(stderr(o).lines().count(), 1, "{}", stderr(o));
        let v: Value = serde_json::from_str(stderr(o).trim()).unwrap();
        v["error"].as_str().unwrap().to_owned()
    };
    let without = error(&run(None));
    assert!(without.contains("no AWS region"), "{without}");
    let with = error(&run(Some("eu-west-1")));
    assert!(!with.contains("no AWS region"), "{with}");
    assert!(!store.join("secrets.sealed").exists());
}

const SUBCOMMANDS: [&str; 19] = [
    "generate",
    "init",
    "output",
    "get",
    "put",
    "delete",
    "list",
    "policy",
    "sync",
    "read",
    "lookup",
    "exec",
    "env",
    "export",
    "import",
    "history",
    "serve",
    "completions",
    "man",
];

/// Runs `shell` (if installed) on `script` to check it parses; `None` when the shell is absent.
fn shell_parses(shell: &str, flag: &str, script: &str) -> Option<bool> {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), script).unwrap();
    let status = Command::new(shell)
        .arg(flag)
        .arg(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    Some(status.success())
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_subcommand() {
    for (shell, marker, check) in [
        ("bash", "complete -F _lockbox", "-n"),
        ("zsh", "#compdef lockbox", "-n"),
        ("fish", "complete -c lockbox", "--no-execute"),
    ] {
        let script = stdout(&lockbox(&["completions", shell]));
        assert!(script.contains(marker), "{shell}: {script}");
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
        assert!(script.contains("manifest"), "{shell}: sync's flags");
        match shell_parses(shell, check, &script) {
            Some(ok) => assert!(ok, "{shell} does not parse its completions"),
            None => eprintln!("{shell} is not installed: completions not parsed"),
        }
        let json: Value =
            serde_json::from_str(&stdout(&lockbox(&["--json", "completions", shell]))).unwrap();
        assert_eq!(json["shell"], shell);
        assert_eq!(json["script"], script.as_str());
    }
    let o = lockbox(&["completions", "powershell"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn man_page_renders_as_roff_with_every_subcommand() {
    let page = stdout(&lockbox(&["man"]));
    assert!(page.contains(".TH lockbox 1"), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "{section}: {page}");
    }
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!("lockbox\\-{sub}(1)")),
            "{sub}: {page}"
        );
    }
    let sync = stdout(&lockbox(&["man", "sync"]));
    assert!(sync.contains(".TH lockbox-sync 1"), "{sync}");
    assert!(sync.contains("manifest"), "{sync}");
    let json: Value = serde_json::from_str(&stdout(&lockbox(&["--json", "man", "sync"]))).unwrap();
    assert_eq!(json["page"], "lockbox-sync.1");
    assert_eq!(json["roff"], sync.as_str());
    assert_eq!(lockbox(&["man", "nope"]).status.code(), Some(2));
    // man(1) renders it, where installed.
    let rendered = Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "80")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    if let Ok(mut child) = rendered {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(page.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("SYNOPSIS") && text.contains("--json"),
                "{text}"
            );
        }
    }
}
