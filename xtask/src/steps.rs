//! Running cargo steps, failing fast with a clear message, and keeping their timings.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::emulator::Session;
use crate::vault::VaultServer;
use crate::{ENV_EMULATOR, ENV_ENDPOINT, ENV_MOTO_SERVER, ENV_REGION, REGION, paths};

/// The test runner.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Runner {
    /// `cargo nextest run`.
    Nextest,
    /// `cargo test`.
    Cargo,
}

/// Which tests to run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TestSet {
    /// Every test target of the workspace (doc tests run separately).
    All,
    /// Only the integration test binaries named `it_*`.
    Integration,
}

/// The cargo that runs xtask (`$CARGO`), or `cargo` from PATH.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

/// True if `cargo nextest --version` works.
pub fn nextest_available() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Test counts read from the runners' own summary lines.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed (or timed out).
    pub failed: u64,
    /// Tests skipped or ignored.
    pub skipped: u64,
}

impl Counts {
    /// Adds the counts from one line of runner output, if it is a summary line: libtest's
    /// `test result: ok. 3 passed; 0 failed; 1 ignored; ...` or nextest's
    /// `Summary [ 1.2s] 4 tests run: 3 passed, 1 failed, 2 skipped`.
    fn add_line(&mut self, line: &str) {
        let line = strip_ansi(line);
        let line = line.trim();
        let items = if let Some(rest) = line.strip_prefix("test result: ") {
            // "ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s"
            rest.split_once(". ")
                .map(|(_, items)| items.split(';').collect::<Vec<_>>())
        } else if line.starts_with("Summary [") {
            line.split_once(" run: ")
                .map(|(_, items)| items.split(',').collect::<Vec<_>>())
        } else {
            None
        };
        for item in items.unwrap_or_default() {
            let mut words = item.split_whitespace();
            let Some(n) = words.next().and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            match words.next() {
                Some("passed") => self.passed += n,
                Some("failed" | "timed") => self.failed += n,
                Some("ignored" | "skipped") => self.skipped += n,
                _ => {}
            }
        }
    }
}

/// `line` without ANSI escape sequences (CSI ... letter).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A sequence of steps with their durations and test counts, for the closing summary.
#[derive(Default)]
pub struct Steps {
    /// (step name, how long it took).
    timings: Vec<(String, Duration)>,
    /// Tests counted so far, across test steps.
    counts: Counts,
}

impl Steps {
    /// Records a step that ran elsewhere.
    pub fn record(&mut self, name: &str, took: Duration) {
        self.timings.push((name.to_owned(), took));
    }

    /// Runs `cargo ARGS` as step `name`; fails if it exits non-zero.
    pub fn cargo(&mut self, name: &str, args: &[&str]) -> Result<()> {
        let mut command = cargo();
        command.args(args).current_dir(paths::workspace_root());
        self.run(name, &mut command)
    }

    /// Runs `command` with inherited stdio as step `name`.
    pub fn run(&mut self, name: &str, command: &mut Command) -> Result<()> {
        self.run_inner(name, command, false)
    }

    /// Runs `command` as step `name`, passing its output through while counting tests.
    fn run_counted(&mut self, name: &str, command: &mut Command) -> Result<()> {
        if std::io::stderr().is_terminal() && std::env::var_os("CARGO_TERM_COLOR").is_none() {
            command.env("CARGO_TERM_COLOR", "always");
        }
        self.run_inner(name, command, true)
    }

    /// Runs one step; with `count`, tees its output and adds up the runner's summary lines.
    fn run_inner(&mut self, name: &str, command: &mut Command, count: bool) -> Result<()> {
        let shown = show(command);
        eprintln!("\nxtask: ==> [{name}] {shown}");
        let started = Instant::now();
        command.stdin(Stdio::null());
        let status = if count {
            let (status, counts) = tee_and_count(command)
                .with_context(|| format!("step `{name}`: could not run `{shown}`"))?;
            self.counts.passed += counts.passed;
            self.counts.failed += counts.failed;
            self.counts.skipped += counts.skipped;
            status
        } else {
            command
                .status()
                .with_context(|| format!("step `{name}`: could not run `{shown}`"))?
        };
        let took = started.elapsed();
        self.record(name, took);
        if !status.success() {
            let code = status.code().map_or_else(
                || "killed by a signal".to_owned(),
                |c| format!("exit code {c}"),
            );
            bail!("step `{name}` failed ({code}) after {took:.1?}: `{shown}`");
        }
        eprintln!("xtask: <== [{name}] ok in {took:.1?}");
        Ok(())
    }

    /// Runs tests with `runner`, pointed at `session`'s endpoint and `vault`'s address (or
    /// with them unset, so those tests skip themselves).
    pub fn tests(
        &mut self,
        runner: Runner,
        session: Option<&Session>,
        vault: Option<&VaultServer>,
        set: TestSet,
        extra: &[String],
    ) -> Result<()> {
        let mut command = cargo();
        command.current_dir(paths::workspace_root());
        match runner {
            Runner::Nextest => {
                // moto 5.2.5's Secrets Manager sometimes answers 500 ("dictionary changed size
                // during iteration") when tests write and batch-read at once; a test that fails
                // that way is retried, and nextest reports it as FLAKY, not as passed.
                command.args([
                    "nextest",
                    "run",
                    "--workspace",
                    "--no-fail-fast",
                    "--retries",
                    "2",
                ]);
            }
            Runner::Cargo => {
                command.args(["test", "--workspace", "--no-fail-fast"]);
            }
        }
        if set == TestSet::Integration {
            // cargo expands the glob, and builds only these test binaries.
            command.args(["--test", "it_*"]);
        }
        command.args(extra);
        set_emulator_env(&mut command, session);
        match vault {
            Some(vault) => vault.set_env(&mut command),
            None => crate::vault::clear_env(&mut command),
        }
        let name = match set {
            TestSet::All => "tests",
            TestSet::Integration => "integration tests",
        };
        self.run_counted(name, &mut command)
    }

    /// Runs the doc tests (nextest does not run them).
    pub fn doc_tests(&mut self, session: Option<&Session>) -> Result<()> {
        let mut command = cargo();
        command
            .args(["test", "--workspace", "--doc", "--no-fail-fast"])
            .current_dir(paths::workspace_root());
        set_emulator_env(&mut command, session);
        self.run_counted("doc tests", &mut command)
    }

    /// Prints how long each step took.
    pub fn summary(&self, what: &str, total: Duration) {
        eprintln!("\nxtask: {what} passed in {total:.1?}");
        for (name, took) in &self.timings {
            eprintln!("xtask:   {name:<18} {took:>8.1?}");
        }
    }

    /// Prints the plain closing line `WHAT: N passed, N failed, N skipped` on stdout, once any
    /// test step ran.
    pub fn print_counts(&self, what: &str) {
        let Counts {
            passed,
            failed,
            skipped,
        } = self.counts;
        let ran_tests = self.timings.iter().any(|(name, _)| name.contains("tests"));
        if ran_tests {
            let _ = std::io::stderr().flush();
            println!("{what}: {passed} passed, {failed} failed, {skipped} skipped");
        }
    }
}

/// Runs `command` with its stdout and stderr piped through to ours, line by line, and counts
/// the tests its summary lines report.
fn tee_and_count(command: &mut Command) -> Result<(ExitStatus, Counts)> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let counts = Arc::new(Mutex::new(Counts::default()));
    let stdout = child.stdout.take().map(|out| {
        let counts = Arc::clone(&counts);
        thread::spawn(move || pump(out, std::io::stdout(), &counts))
    });
    let stderr = child.stderr.take().map(|err| {
        let counts = Arc::clone(&counts);
        thread::spawn(move || pump(err, std::io::stderr(), &counts))
    });
    for pump in [stdout, stderr].into_iter().flatten() {
        let _ = pump.join();
    }
    let status = child.wait()?;
    let counts = *counts
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok((status, counts))
}

/// Copies `from` to `to` line by line, adding summary lines to `counts`.
fn pump(from: impl Read, mut to: impl Write, counts: &Mutex<Counts>) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let _ = to.write_all(&line);
                let _ = to.flush();
                if let Ok(mut counts) = counts.lock() {
                    counts.add_line(&String::from_utf8_lossy(&line));
                }
            }
        }
    }
}

/// Sets (or, without a session, removes) the variables integration tests read.
pub fn set_emulator_env(command: &mut Command, session: Option<&Session>) {
    match session {
        Some(session) => {
            eprintln!(
                "xtask: {ENV_ENDPOINT}={} {ENV_REGION}={REGION} {ENV_EMULATOR}={}",
                session.endpoint,
                session.kind.name()
            );
            command
                .env(ENV_ENDPOINT, &session.endpoint)
                .env(ENV_REGION, REGION)
                .env(ENV_EMULATOR, session.kind.name());
            if let Some(moto) = crate::emulator::installed_moto_server() {
                command.env(ENV_MOTO_SERVER, moto);
            }
        }
        None => {
            command
                .env_remove(ENV_ENDPOINT)
                .env_remove(ENV_REGION)
                .env_remove(ENV_EMULATOR)
                .env_remove(ENV_MOTO_SERVER);
        }
    }
}

/// `command` as a shell-like string, for messages.
pub fn show(command: &Command) -> String {
    let program = command.get_program().to_string_lossy();
    let program = if program.ends_with("/cargo") || program.ends_with("\\cargo.exe") {
        "cargo".into()
    } else {
        program
    };
    let mut shown = program.into_owned();
    for arg in command.get_args() {
        let arg = arg.to_string_lossy();
        shown.push(' ');
        if arg.is_empty() || arg.contains([' ', '*', '(', ')', '&', '|', '\'', '"', '$']) {
            shown.push('\'');
            shown.push_str(&arg.replace('\'', r"'\''"));
            shown.push('\'');
        } else {
            shown.push_str(&arg);
        }
    }
    shown
}

/// Builds `target/release/lockbox` (`cargo build --release -p lockbox-cli --bin lockbox`), for
/// the measurements and tests that run the binary as users do.
pub fn build_release_lockbox() -> Result<()> {
    let status = cargo()
        .current_dir(crate::paths::workspace_root())
        .args([
            "build",
            "--release",
            "-p",
            "lockbox-cli",
            "--bin",
            "lockbox",
        ])
        .status()
        .context("could not run cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p lockbox-cli failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_libtest_and_nextest_summaries() {
        let mut counts = Counts::default();
        counts.add_line(
            "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; \
             finished in 0.00s\n",
        );
        counts.add_line("test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured");
        counts.add_line("     Summary [   9.856s] 142 tests run: 142 passed, 0 skipped");
        counts.add_line(
            "\u{1b}[32;1m     Summary\u{1b}[0m [   1.0s] 5 tests run: 3 passed, \
             1 failed, 1 timed out, 4 skipped",
        );
        // A test that passed on a retry counts once, as passed.
        counts.add_line("     Summary [  12.0s] 7 tests run: 7 passed (1 flaky), 0 skipped");
        counts.add_line("running 3 tests");
        assert_eq!(
            counts,
            Counts {
                passed: 156,
                failed: 4,
                skipped: 5
            }
        );
    }

    #[test]
    fn shows_commands_quoted() {
        let mut command = Command::new("cargo");
        command.args(["test", "--test", "it_*"]);
        assert_eq!(show(&command), "cargo test --test 'it_*'");
    }
}
