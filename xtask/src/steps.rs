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

/// Whose summary lines a step's output is counted from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Summaries {
    /// libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; ...`, one per test binary
    /// (`cargo test`, doc tests).
    Libtest,
    /// nextest's one `Summary [ 1.2s] 4 tests run: 3 passed (1 flaky), 1 failed, 2 skipped`
    /// and the `FLAKY` lines under it. The libtest lines nextest shows in a failed try's output
    /// are not counted: a test that passed on a retry is a flaky pass, not a failure.
    Nextest,
}

/// Test counts read from the runners' own summary lines.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed (flaky ones included).
    pub passed: u64,
    /// Tests that failed (or timed out).
    pub failed: u64,
    /// Tests skipped or ignored.
    pub skipped: u64,
    /// Of those passed, how many passed only on a retry.
    pub flaky: u64,
    /// The names nextest gives them (`crate::binary test_name`), as it lists them.
    pub flaky_names: Vec<String>,
}

impl Counts {
    /// The counts in `output`, a step's whole output read as `from`.
    #[cfg(test)]
    fn of_output(output: &str, from: Summaries) -> Self {
        let mut counts = Self::default();
        for line in output.lines() {
            counts.add_line(line, from);
        }
        counts
    }

    /// Adds the counts from one line of runner output, if it is a summary line of `from`.
    fn add_line(&mut self, line: &str, from: Summaries) {
        let line = strip_ansi(line);
        let line = line.trim();
        let items = match from {
            // "ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s"
            Summaries::Libtest => line
                .strip_prefix("test result: ")
                .and_then(|rest| rest.split_once(". "))
                .map(|(_, items)| items.split(';').collect::<Vec<_>>()),
            Summaries::Nextest => {
                if let Some(rest) = line.strip_prefix("FLAKY ") {
                    self.add_flaky_name(rest);
                    return;
                }
                // "Summary [   0.3s] 3 tests run: 2 passed (1 flaky), 1 failed, 1 skipped"
                line.strip_prefix("Summary [")
                    .and_then(|rest| rest.split_once(" run: "))
                    .map(|(_, items)| items.split(',').collect::<Vec<_>>())
            }
        };
        for item in items.unwrap_or_default() {
            let mut words = item.split_whitespace();
            let Some(n) = words.next().and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            match words.next() {
                Some("passed") => {
                    self.passed += n;
                    // "(1 flaky)"
                    if let Some(flaky) = words
                        .next()
                        .and_then(|w| w.strip_prefix('('))
                        .and_then(|w| w.parse::<u64>().ok())
                        .filter(|_| words.next() == Some("flaky)"))
                    {
                        self.flaky += flaky;
                    }
                }
                Some("failed" | "timed") => self.failed += n,
                Some("ignored" | "skipped") => self.skipped += n,
                _ => {}
            }
        }
    }

    /// Records the test of a `FLAKY 2/3 [   0.007s] (1/3) crate::bin test_name` line (the
    /// text after `FLAKY `; older nextest versions print no `(1/3)`).
    fn add_flaky_name(&mut self, rest: &str) {
        let Some((_, after)) = rest.split_once("] ") else {
            return;
        };
        let after = after.trim_start();
        let name = match after.strip_prefix('(') {
            Some(progress) => progress.split_once(") ").map_or("", |(_, name)| name),
            None => after,
        };
        let name = name.trim();
        if !name.is_empty() && !self.flaky_names.iter().any(|n| n == name) {
            self.flaky_names.push(name.to_owned());
        }
    }

    /// Adds `other`'s counts and flaky names.
    fn add(&mut self, other: Self) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.flaky += other.flaky;
        self.flaky_names.extend(other.flaky_names);
    }

    /// The closing lines: `WHAT: N passed, N failed, N skipped`, with ` (N flaky)` after the
    /// passed count and one `WHAT: flaky: NAME` line per flaky test when there are any.
    pub fn closing_lines(&self, what: &str) -> Vec<String> {
        let Self {
            passed,
            failed,
            skipped,
            flaky,
            flaky_names,
        } = self;
        let flaky_note = if *flaky > 0 {
            format!(" ({flaky} flaky)")
        } else {
            String::new()
        };
        let mut lines = vec![format!(
            "{what}: {passed} passed{flaky_note}, {failed} failed, {skipped} skipped"
        )];
        lines.extend(
            flaky_names
                .iter()
                .map(|name| format!("{what}: flaky: {name}")),
        );
        lines
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
        self.run_inner(name, command, None)
    }

    /// Runs `command` as step `name`, passing its output through while counting tests from
    /// the summary lines of `from`.
    fn run_counted(&mut self, name: &str, command: &mut Command, from: Summaries) -> Result<()> {
        if std::io::stderr().is_terminal() && std::env::var_os("CARGO_TERM_COLOR").is_none() {
            command.env("CARGO_TERM_COLOR", "always");
        }
        self.run_inner(name, command, Some(from))
    }

    /// Runs one step; with `count`, tees its output and adds up the runner's summary lines.
    fn run_inner(
        &mut self,
        name: &str,
        command: &mut Command,
        count: Option<Summaries>,
    ) -> Result<()> {
        let shown = show(command);
        eprintln!("\nxtask: ==> [{name}] {shown}");
        let started = Instant::now();
        command.stdin(Stdio::null());
        let status = if let Some(from) = count {
            let (status, counts) = tee_and_count(command, from)
                .with_context(|| format!("step `{name}`: could not run `{shown}`"))?;
            self.counts.add(counts);
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
        let from = match runner {
            Runner::Nextest => Summaries::Nextest,
            Runner::Cargo => Summaries::Libtest,
        };
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
        self.run_counted(name, &mut command, from)
    }

    /// Runs the doc tests (nextest does not run them).
    pub fn doc_tests(&mut self, session: Option<&Session>) -> Result<()> {
        let mut command = cargo();
        command
            .args(["test", "--workspace", "--doc", "--no-fail-fast"])
            .current_dir(paths::workspace_root());
        set_emulator_env(&mut command, session);
        self.run_counted("doc tests", &mut command, Summaries::Libtest)
    }

    /// Prints how long each step took.
    pub fn summary(&self, what: &str, total: Duration) {
        eprintln!("\nxtask: {what} passed in {total:.1?}");
        for (name, took) in &self.timings {
            eprintln!("xtask:   {name:<18} {took:>8.1?}");
        }
    }

    /// Prints the plain closing line `WHAT: N passed, N failed, N skipped` on stdout (with
    /// ` (N flaky)` after the passed count and a `WHAT: flaky: NAME` line for each test that
    /// passed only on a retry), once any test step ran.
    pub fn print_counts(&self, what: &str) {
        let ran_tests = self.timings.iter().any(|(name, _)| name.contains("tests"));
        if ran_tests {
            let _ = std::io::stderr().flush();
            for line in self.counts.closing_lines(what) {
                println!("{line}");
            }
        }
    }
}

/// Runs `command` with its stdout and stderr piped through to ours, line by line, and counts
/// the tests its summary lines (of `from`) report.
fn tee_and_count(command: &mut Command, from: Summaries) -> Result<(ExitStatus, Counts)> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let counts = Arc::new(Mutex::new(Counts::default()));
    let stdout = child.stdout.take().map(|out| {
        let counts = Arc::clone(&counts);
        thread::spawn(move || pump(out, std::io::stdout(), &counts, from))
    });
    let stderr = child.stderr.take().map(|err| {
        let counts = Arc::clone(&counts);
        thread::spawn(move || pump(err, std::io::stderr(), &counts, from))
    });
    for pump in [stdout, stderr].into_iter().flatten() {
        let _ = pump.join();
    }
    let status = child.wait()?;
    let counts = std::mem::take(
        &mut *counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    Ok((status, counts))
}

/// Copies `from` to `to` line by line, adding summary lines to `counts`.
fn pump(from: impl Read, mut to: impl Write, counts: &Mutex<Counts>, summaries: Summaries) {
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
                    counts.add_line(&String::from_utf8_lossy(&line), summaries);
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
    build_lockbox("release")
}

/// Builds the `lockbox` binary with cargo profile `profile` (`--release` for `release`, else
/// `--profile PROFILE`) into `<target>/<profile dir>/lockbox`.
pub fn build_lockbox(profile: &str) -> Result<()> {
    let selector = match profile {
        "release" => vec!["--release"],
        other => vec!["--profile", other],
    };
    let status = cargo()
        .current_dir(crate::paths::workspace_root())
        .arg("build")
        .args(&selector)
        .args(["-p", "lockbox-cli", "--bin", "lockbox"])
        .status()
        .context("could not run cargo build")?;
    if !status.success() {
        bail!(
            "cargo build {} -p lockbox-cli failed ({status})",
            selector.join(" ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_libtest_summaries() {
        let output = "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; \
                      finished in 0.00s\n\
                      running 3 tests\n\
                      test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured\n\
                      \u{1b}[32;1m     Summary\u{1b}[0m [   1.0s] 5 tests run: 5 passed, 0 skipped\n";
        assert_eq!(
            Counts::of_output(output, Summaries::Libtest),
            Counts {
                passed: 4,
                failed: 2,
                skipped: 1,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn counts_nextest_summaries_only() {
        let output = "     Summary [   9.856s] 142 tests run: 142 passed, 0 skipped\n\
                      \u{1b}[32;1m     Summary\u{1b}[0m [   1.0s] 5 tests run: 3 passed, \
                      1 failed, 1 timed out, 4 skipped\n\
                      test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured\n";
        assert_eq!(
            Counts::of_output(output, Summaries::Nextest),
            Counts {
                passed: 145,
                failed: 2,
                skipped: 4,
                ..Counts::default()
            }
        );
    }

    /// Captured from nextest 0.9.143 (colours on): a test failed its first try and passed its
    /// second; the run exits 0. The failed try's output shows libtest's `FAILED` line.
    #[test]
    fn a_test_that_passed_on_a_retry_is_flaky_not_failed() {
        let counts = Counts::of_output(
            include_str!("../testdata/nextest_flaky_passed.txt"),
            Summaries::Nextest,
        );
        assert_eq!(
            counts,
            Counts {
                passed: 2,
                failed: 0,
                skipped: 2,
                flaky: 1,
                flaky_names: vec!["harden-flaky flaky_one".to_owned()],
            }
        );
        assert_eq!(
            counts.closing_lines("ci"),
            [
                "ci: 2 passed (1 flaky), 0 failed, 2 skipped",
                "ci: flaky: harden-flaky flaky_one",
            ]
        );
    }

    /// Captured from nextest 0.9.143 (no colours): one flaky test, one that failed all three
    /// tries, one ignored; the run exits 100.
    #[test]
    fn a_test_that_failed_every_try_counts_once() {
        let counts = Counts::of_output(
            include_str!("../testdata/nextest_flaky_and_failed.txt"),
            Summaries::Nextest,
        );
        assert_eq!(
            counts.closing_lines("it"),
            [
                "it: 2 passed (1 flaky), 1 failed, 1 skipped",
                "it: flaky: harden-flaky flaky_one",
            ]
        );
        let mut all = counts.clone();
        all.add(Counts::of_output(
            "test result: ok. 7 passed; 0 failed; 0 ignored; 0 measured\n",
            Summaries::Libtest,
        ));
        assert_eq!(
            all.closing_lines("ci")[0],
            "ci: 9 passed (1 flaky), 1 failed, 1 skipped"
        );
    }

    #[test]
    fn shows_commands_quoted() {
        let mut command = Command::new("cargo");
        command.args(["test", "--test", "it_*"]);
        assert_eq!(show(&command), "cargo test --test 'it_*'");
    }
}
