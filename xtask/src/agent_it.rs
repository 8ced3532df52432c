//! `cargo xtask agent-it [-- TEST ARGS]`: the AWS Secrets Manager Agent's own integration tests
//! (`integration-tests/` of github.com/aws/aws-secretsmanager-agent, checkout named by
//! `LOCKBOX_AGENT_SRC`) run against `lockbox serve` on a private moto.
//!
//! The agent's tests start "the agent" as `target/release/aws_secretsmanager_agent --config
//! FILE` relative to their working directory, wait for a first stdout line containing
//! `listening on`, and create their secrets with the AWS SDK's default chain. So this command:
//!
//! 1. builds the release `lockbox` binary, and the agent's test binaries (`cargo test --no-run
//!    -p integration-tests`, into `<target>/aws-agent`, cached by cargo);
//! 2. writes a two-line shim `<target>/xtask/agent-it/target/release/aws_secretsmanager_agent`
//!    that only adds `serve`: `exec lockbox serve "$@"` (lockbox prints its `listening on`
//!    line first on stdout, as the agent does; `exec` keeps the test's kill-on-drop aimed at
//!    lockbox itself);
//! 3. starts a private moto and runs every test binary from that directory, one test at a time
//!    (the tests share fixed ports), with `AWS_ENDPOINT_URL` pointing both the tests' SDK and
//!    lockbox at the emulator and test credentials;
//! 4. prints each binary's result, the failed tests, and `agent-it: N passed, N failed`.
//!
//! Tests that need what lockbox deliberately refuses or the emulator lacks fail here; the
//! report lists them (see benches/README.md).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::emulator::{Kind, Session};
use crate::load::ENV_AGENT_SRC;
use crate::{REGION, paths, steps};

/// `cargo xtask agent-it`'s arguments.
#[derive(clap::Args)]
pub struct AgentIt {
    /// Extra arguments for every test binary (after `--`), e.g. a test name filter.
    #[arg(last = true)]
    args: Vec<String>,
}

impl AgentIt {
    /// Runs `cargo xtask agent-it`.
    pub fn run(self) -> Result<ExitCode> {
        run(&self.args)
    }
}

/// The agent's tests that fail on moto for the real agent too (emulator gaps, not lockbox's):
/// moto answers 404 where AWS answers 400 for a missing secret, and moto accepts any
/// credentials, so the invalid ones the test writes never fail a read.
pub const EMULATOR_GAPS: [&str; 2] = [
    "secret_retrieval::test_real_nonexistent_secret",
    "file_credentials::test_credential_rotation_while_running",
];

/// Runs the agent's integration tests against `lockbox serve`; `args` go to every test binary.
/// Succeeds when every failure is one of the [`EMULATOR_GAPS`].
pub fn run(args: &[String]) -> Result<ExitCode> {
    let src = std::env::var_os(ENV_AGENT_SRC)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .with_context(|| {
            format!(
                "{ENV_AGENT_SRC} is not set: point it at a checkout of \
                 https://github.com/aws/aws-secretsmanager-agent"
            )
        })?;
    if !src.join("integration-tests/Cargo.toml").is_file() {
        bail!(
            "{} has no integration-tests/Cargo.toml: not a checkout of aws-secretsmanager-agent",
            src.display()
        );
    }
    let target = paths::target_dir();

    eprintln!("agent-it: building the release lockbox binary");
    steps::build_release_lockbox()?;
    let lockbox = target.join("release/lockbox");

    eprintln!("agent-it: building the agent's integration tests (cargo test --no-run)");
    let output = steps::cargo()
        .current_dir(&src)
        .args([
            "test",
            "--locked",
            "--no-run",
            "-p",
            "integration-tests",
            "--message-format=json",
        ])
        .env("CARGO_TARGET_DIR", target.join("aws-agent"))
        .env_remove("RUSTFLAGS")
        .stderr(Stdio::inherit())
        .output()
        .context("could not run cargo test --no-run for the agent")?;
    if !output.status.success() {
        bail!(
            "building the agent's integration tests failed ({})",
            output.status
        );
    }
    let binaries = test_binaries(&String::from_utf8_lossy(&output.stdout));
    if binaries.is_empty() {
        bail!("cargo built no test binaries for integration-tests");
    }

    let dir = paths::state_dir()?.join("agent-it");
    let shim = dir.join("target/release/aws_secretsmanager_agent");
    fs::create_dir_all(shim.parent().context("shim dir")?)?;
    fs::write(&shim, shim_script(&lockbox))?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&shim, fs::Permissions::from_mode(0o755))?;
    }

    let emulator = Session::start_scoped(Kind::Moto)?;
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    let mut failures = Vec::new();
    for (name, exe) in &binaries {
        eprintln!("agent-it: {name}");
        let output = Command::new(exe)
            .arg("--test-threads=1")
            .args(args)
            .current_dir(&dir)
            .env("AWS_ENDPOINT_URL", &emulator.endpoint)
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", exe.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        print!("{stdout}");
        let (p, f, i) = counts(&stdout);
        passed += p;
        failed += f;
        ignored += i;
        failures.extend(
            stdout
                .lines()
                .filter_map(|l| l.strip_prefix("test ")?.strip_suffix(" ... FAILED"))
                .map(|t| format!("{name}::{t}")),
        );
        if !output.status.success() && f == 0 {
            // A crash or a build problem rather than failed tests.
            failed += 1;
            failures.push(format!("{name} (exited {}, no test result)", output.status));
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
        }
    }
    emulator.stop();
    let mut unexpected = 0;
    for failure in &failures {
        if EMULATOR_GAPS.contains(&failure.as_str()) {
            println!(
                "agent-it: FAILED {failure} (an emulator gap: the agent fails it on moto too)"
            );
        } else {
            unexpected += 1;
            println!("agent-it: FAILED {failure}");
        }
    }
    println!("agent-it: {passed} passed, {failed} failed, {ignored} ignored");
    Ok(if unexpected == 0 && failures.len() as u64 == failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo xtask ci`'s step: the agent's tests against the plain binary when
/// `LOCKBOX_AGENT_SRC` names a checkout (CI machines have none: skipped, saying so).
pub fn ci_step(steps: &mut crate::steps::Steps) -> Result<()> {
    if std::env::var_os(ENV_AGENT_SRC).is_none_or(|s| s.is_empty()) {
        eprintln!("xtask: agent-it skipped: {ENV_AGENT_SRC} names no checkout of the AWS agent");
        return Ok(());
    }
    let t = std::time::Instant::now();
    let code = run(&[])?;
    steps.record("agent-it", t.elapsed());
    if code != ExitCode::SUCCESS {
        bail!("agent-it: the AWS agent's integration tests failed against lockbox serve");
    }
    Ok(())
}

/// The shim that stands in for the agent's binary.
fn shim_script(lockbox: &Path) -> String {
    format!(
        "#!/bin/sh\n# lockbox serve in place of the AWS agent (written by cargo xtask agent-it)\n\
         exec '{}' serve \"$@\"\n",
        lockbox.display().to_string().replace('\'', "'\\''")
    )
}

/// (name, executable) of every test target in cargo's JSON messages.
fn test_binaries(messages: &str) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "test"))
        })
        .filter_map(|m| {
            Some((
                m["target"]["name"].as_str()?.to_owned(),
                PathBuf::from(m["executable"].as_str()?),
            ))
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// (passed, failed, ignored) from libtest's `test result:` line.
fn counts(stdout: &str) -> (u64, u64, u64) {
    let Some(line) = stdout.lines().find(|l| l.starts_with("test result:")) else {
        return (0, 0, 0);
    };
    let number = |what: &str| -> u64 {
        line.split(';')
            .find(|part| part.trim_end().ends_with(what))
            .and_then(|part| part.split_whitespace().rev().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (number("passed"), number("failed"), number("ignored"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libtest_counts() {
        let out = "running 3 tests\ntest a ... ok\ntest b ... FAILED\n\n\
                   test result: FAILED. 2 passed; 1 failed; 4 ignored; 0 measured; 0 filtered out";
        assert_eq!(counts(out), (2, 1, 4));
        assert_eq!(counts("nothing"), (0, 0, 0));
    }

    #[test]
    fn finds_test_targets_only() {
        let msgs = r#"{"reason":"compiler-artifact","profile":{"test":true},"target":{"name":"security","kind":["test"]},"executable":"/t/security-1"}
{"reason":"compiler-artifact","profile":{"test":true},"target":{"name":"integration_tests","kind":["lib"]},"executable":"/t/lib-1"}
{"reason":"compiler-artifact","profile":{"test":false},"target":{"name":"x","kind":["lib"]},"executable":null}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            test_binaries(msgs),
            [("security".to_owned(), PathBuf::from("/t/security-1"))]
        );
    }

    #[test]
    fn the_shim_only_adds_serve() {
        let s = shim_script(Path::new("/x/it's/lockbox"));
        assert!(
            s.ends_with("exec '/x/it'\\''s/lockbox' serve \"$@\"\n"),
            "{s}"
        );
    }
}
