//! `cargo xtask gen-policy`: the IAM policy `lockbox policy` prints, and the example policies
//! kept under `fixtures/policies/`.
//!
//! - `cargo xtask gen-policy ARGS`: runs `lockbox policy ARGS` (the same binary, through
//!   `cargo run`), so both print byte-identical JSON on stdout.
//! - `cargo xtask gen-policy --check`: regenerates every example listed in
//!   `fixtures/policies/cases.txt` (`OUTPUT = ARGS` per line) and fails listing each file that
//!   is stale or missing, and any `.json` under `fixtures/policies/` that no case produces.
//! - `cargo xtask gen-policy --update`: rewrites the stale or missing examples.
//!
//! `cargo test --workspace` runs the same check as the test `policy_examples_are_up_to_date`
//! (rust-analyzer style); with `UPDATE_FIXTURES=1` that test rewrites the examples instead.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode, Output, Stdio};

use anyhow::{Context, Result, bail};

use crate::{paths, steps};

/// The list of example policies and the arguments that produce each.
const CASES: &str = "fixtures/policies/cases.txt";
/// Where the example policies live.
const POLICY_DIR: &str = "fixtures/policies";

/// `cargo xtask gen-policy`'s arguments.
#[derive(clap::Args, Debug, PartialEq, Eq)]
pub struct Args {
    /// Regenerate every example under fixtures/policies/ and fail if one is stale or missing.
    #[arg(long, conflicts_with_all = ["update", "args"])]
    pub check: bool,
    /// Rewrite the stale or missing examples under fixtures/policies/.
    #[arg(long, conflicts_with = "args")]
    pub update: bool,
    /// Arguments of `lockbox policy`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

impl Args {
    /// Runs `cargo xtask gen-policy`.
    pub fn run(self) -> Result<ExitCode> {
        run(&self).map(|()| ExitCode::SUCCESS)
    }
}

/// Runs `cargo xtask gen-policy`.
pub fn run(args: &Args) -> Result<()> {
    let root = paths::workspace_root();
    if args.check || args.update {
        return examples(&root, args.update);
    }
    if let Some(flag) = args
        .args
        .iter()
        .find(|a| *a == "--check" || *a == "--update")
    {
        bail!("gen-policy {flag} takes no other arguments (it runs every case in {CASES})");
    }
    let status = lockbox_policy(&root, &args.args)
        .status()
        .context("could not run `cargo run -p lockbox-cli`")?;
    if !status.success() {
        bail!("`lockbox policy` failed ({status})");
    }
    Ok(())
}

/// `cargo run -q -p lockbox-cli -- policy ARGS`, from the workspace root.
fn lockbox_policy(root: &Path, args: &[String]) -> Command {
    let mut cmd = steps::cargo();
    cmd.current_dir(root)
        .args(["run", "-q", "-p", "lockbox-cli", "--", "policy"])
        .args(args);
    cmd
}

/// One line of `cases.txt`.
struct Case {
    output: String,
    args: Vec<String>,
}

fn read_cases(root: &Path) -> Result<Vec<Case>> {
    let path = root.join(CASES);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut cases: Vec<Case> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((output, args)) = line.split_once(" = ") else {
            bail!("{CASES}:{}: expected `OUTPUT.json = ARGS`", i + 1);
        };
        let output = output.trim().to_owned();
        if !output.ends_with(".json") || output.contains('/') {
            bail!(
                "{CASES}:{}: {output:?} must be a file name ending in .json",
                i + 1
            );
        }
        if cases.iter().any(|c| c.output == output) {
            bail!("{CASES}:{}: {output} is listed twice", i + 1);
        }
        cases.push(Case {
            output,
            args: args.split_whitespace().map(str::to_owned).collect(),
        });
    }
    if cases.is_empty() {
        bail!("{CASES} lists no cases");
    }
    Ok(cases)
}

/// Regenerates every example; with `update` rewrites the stale ones, else fails on them.
fn examples(root: &Path, update: bool) -> Result<()> {
    let cases = read_cases(root)?;
    let dir = root.join(POLICY_DIR);
    let mut problems = Vec::new();
    let mut written = Vec::new();
    for case in &cases {
        let mut cmd = lockbox_policy(root, &case.args);
        cmd.env_remove("AWS_ACCOUNT_ID").stdin(Stdio::null());
        let Output {
            status,
            stdout,
            stderr,
        } = cmd
            .output()
            .context("could not run `cargo run -p lockbox-cli`")?;
        if !status.success() {
            bail!(
                "`lockbox policy {}` for {} failed ({status}):\n{}",
                case.args.join(" "),
                case.output,
                String::from_utf8_lossy(&stderr)
            );
        }
        let path = dir.join(&case.output);
        let current = std::fs::read(&path).ok();
        if current.as_deref() == Some(stdout.as_slice()) {
            continue;
        }
        if update {
            std::fs::write(&path, &stdout)
                .with_context(|| format!("writing {}", path.display()))?;
            written.push(format!("{POLICY_DIR}/{}", case.output));
        } else if current.is_none() {
            problems.push(format!("{POLICY_DIR}/{} (missing)", case.output));
        } else {
            problems.push(format!("{POLICY_DIR}/{} (stale)", case.output));
        }
    }
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && !cases.iter().any(|c| c.output == name) {
            problems.push(format!(
                "{POLICY_DIR}/{name} (no case in {CASES} produces it)"
            ));
        }
    }
    for w in &written {
        eprintln!("xtask: gen-policy: wrote {w}");
    }
    if !problems.is_empty() {
        let mut message = String::from("example policies do not match `lockbox policy`:\n");
        for p in &problems {
            let _ = writeln!(message, "  {p}");
        }
        message.push_str("regenerate them with `cargo xtask gen-policy --update`");
        bail!(message);
    }
    eprintln!(
        "xtask: gen-policy: {} example policies are up to date",
        cases.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Environment variable that makes [`policy_examples_are_up_to_date`] rewrite the examples.
    const ENV_UPDATE: &str = "UPDATE_FIXTURES";

    /// The generated examples under `fixtures/policies/` are what `lockbox policy` prints.
    #[test]
    fn policy_examples_are_up_to_date() {
        let update = std::env::var_os(ENV_UPDATE).is_some_and(|v| v == "1");
        if let Err(err) = examples(&paths::workspace_root(), update) {
            panic!(
                "{err:#}\nor rerun this test with {ENV_UPDATE}=1: \
                 {ENV_UPDATE}=1 cargo test -p xtask policy_examples_are_up_to_date"
            );
        }
    }

    #[derive(Parser)]
    struct GenPolicy {
        #[command(flatten)]
        args: Args,
    }

    fn parse(a: &[&str]) -> Result<Args, clap::Error> {
        GenPolicy::try_parse_from(std::iter::once("gen-policy").chain(a.iter().copied()))
            .map(|g| g.args)
    }

    #[test]
    fn parses_modes_and_policy_arguments() {
        let a = parse(&["--check"]).unwrap();
        assert!(a.check && !a.update && a.args.is_empty());
        let a = parse(&["--update"]).unwrap();
        assert!(!a.check && a.update && a.args.is_empty());
        let a = parse(&["--config", "c.json", "--account", "1", "--read-only"]).unwrap();
        assert!(!a.check && !a.update);
        assert_eq!(
            a.args,
            ["--config", "c.json", "--account", "1", "--read-only"]
        );
        assert!(parse(&["--check", "--update"]).is_err());
        assert!(parse(&["--check", "--config", "c.json"]).is_err());
        let a = parse(&["--config", "c.json", "--check"]).unwrap();
        assert!(
            run(&a).is_err(),
            "--check after policy arguments is refused"
        );
    }
}
