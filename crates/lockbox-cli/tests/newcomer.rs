//! The newcomer's path (issue 27): usage errors as JSON, man pages with every section, help
//! that agrees with behaviour, errors that say what to do. No emulator needed.

use std::process::{Command, Output};

use lockbox_testkit::cli::{code, json, stderr, stdout};

fn lockbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lockbox"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("AIRFLOW__SECRETS__BACKEND")
        .env_remove("AWS_ACCOUNT_ID")
        .env("AWS_REGION", "eu-west-1")
        .output()
        .unwrap()
}

const COMMANDS: [&str; 20] = [
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
    "render",
    "env",
    "export",
    "import",
    "history",
    "serve",
    "completions",
    "man",
];

#[test]
fn usage_errors_under_json_are_json_with_exit_2() {
    for args in [
        &["read", "--json", "--bogus"][..],
        &["--json", "exec", "myapp"],
        &["--json", "import"],
        &["--json", "lookup", "variable", "x"],
        &["--json", "env", "bad service"],
    ] {
        let o = lockbox(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        let e = json(&stderr(&o));
        assert!(e["error"].is_string(), "{args:?}: {e}");
    }
    let o = lockbox(&["read", "--json", "--bogus"]);
    assert_eq!(
        json(&stderr(&o))["error"],
        "unexpected argument '--bogus' found"
    );
    // Without --json, clap's text as before.
    let o = lockbox(&["read", "--bogus"]);
    assert!(stderr(&o).starts_with("error: unexpected argument '--bogus' found"));
    // --help still prints help, exit 0.
    assert_eq!(code(&lockbox(&["--json", "read", "--help"])), 0);
}

#[test]
fn misuse_found_after_parsing_is_a_usage_error_with_the_commands_usage() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    let c = cfg.to_str().unwrap();
    let o = lockbox(&[
        "generate",
        "--type",
        "aws-ssm",
        "--name",
        "n",
        "--dir",
        c,
        "--extra",
        "ssm-parameter-path=/p",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = lockbox(&["policy", "--config", c]);
    assert_eq!(code(&o), 2);
    assert_eq!(
        stderr(&o),
        "error: --account <ID> is required for an IAM policy (or set AWS_ACCOUNT_ID)\n\nUsage: \
         lockbox policy [OPTIONS] <--config <FILE>|--manifest <FILE>|--serve-config <FILE>>\n"
    );
    let o = lockbox(&["--json", "policy", "--config", c]);
    assert!(
        json(&stderr(&o))["usage"]
            .as_str()
            .unwrap()
            .starts_with("lockbox policy ")
    );
    let o = lockbox(&["import", "--config", "a.json", "--store", "s", "f.json"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).starts_with(
        "error: import takes one source (SERVICE, --config, --data-dir or --store), not 2\n"
    ));
    let o = lockbox(&["lookup", "variable", "x"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).starts_with(
        "error: no secrets backend: pass --backend aws-ssm or --backend aws-secretsmanager, or \
         set AIRFLOW__SECRETS__BACKEND as Airflow does\n"
    ));
}

#[test]
fn generate_takes_a_directory_and_the_chains_region() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let args = [
        "--json",
        "generate",
        "--type",
        "aws-ssm",
        "--name",
        "n",
        "--dir",
        d,
        "--extra",
        "ssm-parameter-path=/p",
    ];
    let o = lockbox(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let file = dir.path().join("secretsManagerConfig.json");
    assert_eq!(json(&stdout(&o))["config"], file.to_str().unwrap());
    let written = json(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(written["extra"]["region"], "eu-west-1", "AWS_REGION taken");
    let o = lockbox(&args);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("already exists; use --force to replace it"));
    let mut forced = args.to_vec();
    forced.push("--force");
    assert_eq!(code(&lockbox(&forced)), 0);
    // --type lists its values.
    let help = stdout(&lockbox(&["generate", "--help"]));
    assert!(help.contains(
        "[possible values: local, aws-ssm, aws-secretsmanager, hashicorp-vault, gcp-ssm]"
    ));
}

#[test]
fn every_man_page_has_every_section() {
    let mut pages: Vec<Option<&str>> = vec![None];
    pages.extend(COMMANDS.iter().map(|c| Some(*c)));
    for page in pages {
        let mut args = vec!["man"];
        args.extend(page);
        let o = lockbox(&args);
        assert_eq!(code(&o), 0, "{page:?}");
        let roff = stdout(&o);
        for section in [
            "DESCRIPTION",
            "ENVIRONMENT",
            "FILES",
            "EXIT STATUS",
            "EXAMPLES",
        ] {
            assert!(
                roff.contains(&format!(".SH {section}\n"))
                    || roff.contains(&format!(".SH \"{section}\"\n")),
                "{page:?} lacks {section}"
            );
        }
        if matches!(page, None | Some("generate" | "sync" | "serve" | "lookup")) {
            assert!(
                roff.contains(".SH CONFIGURATION"),
                "{page:?} lacks its keys"
            );
        }
    }
}

#[test]
fn help_agrees_with_behaviour() {
    let top = stdout(&lockbox(&["--help"]));
    for c in COMMANDS {
        assert!(
            top.contains(&format!("  {c} ")),
            "{c} missing from the command list"
        );
    }
    for group in [
        "exec, env, export, import",
        "exec --watch, render",
        "sync, read",
        "serve",
    ] {
        assert!(top.contains(group), "the description names {group}");
    }
    // import and history take one source: their help says nothing is repeatable.
    for c in ["import", "history"] {
        let help = stdout(&lockbox(&[c, "--help"]));
        assert!(!help.contains("repeatable"), "{c}: {help}");
        assert!(help.contains(&format!("Usage: lockbox {c} [OPTIONS] [SERVICE]")));
    }
    // One help layout everywhere: the compact one (no command switches to clap's long layout).
    for c in COMMANDS {
        let help = stdout(&lockbox(&[c, "--help"]));
        assert!(!help.contains("see a summary with '-h'"), "{c}: {help}");
    }
    let exec = stdout(&lockbox(&["exec", "--help"]));
    assert!(exec.contains("Usage: lockbox exec [OPTIONS] [SERVICE]... -- <COMMAND>..."));
    assert!(exec.contains("--recursive"));
    assert!(exec.contains("--watch[=<INTERVAL>]"), "{exec}");
    let render = stdout(&lockbox(&["render", "--help"]));
    assert!(
        render.contains(
            "Usage: lockbox render [OPTIONS] --template <FILE> --out <FILE> [SERVICE]..."
        ),
        "{render}"
    );
    // lookup --backend shows as optional (AIRFLOW__SECRETS__BACKEND can give it).
    let lookup = stdout(&lockbox(&["lookup", "--help"]));
    assert!(
        lookup.contains("Usage: lockbox lookup [OPTIONS] <KIND> <ID>"),
        "{lookup}"
    );
}

#[test]
fn values_get_a_newline_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("node");
    let d = d.to_str().unwrap();
    let mut put = Command::new(env!("CARGO_BIN_EXE_lockbox"))
        .args(["put", "--data-dir", d, "app/x"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut put.stdin.take().unwrap(), b"v1").unwrap();
    let o = put.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Piped: the raw bytes.
    assert_eq!(lockbox(&["get", "--data-dir", d, "app/x"]).stdout, b"v1");
    // On a terminal (script(1) gives the command a pty): a newline after the value.
    let Ok(o) = Command::new("script")
        .args([
            "-qec",
            &format!("{} get --data-dir {d} app/x", env!("CARGO_BIN_EXE_lockbox")),
            "/dev/null",
        ])
        .output()
    else {
        eprintln!("skipped the terminal half: no script(1)");
        return;
    };
    assert_eq!(stdout(&o), "v1\r\n");
}
