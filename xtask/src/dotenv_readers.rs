//! `cargo xtask dotenv-readers`: installs the two dotenv readers `lockbox export -f dotenv` is
//! checked against (crates/lockbox-env/tests/dotenv_readers.rs), pinned under
//! `fixtures/dotenv/`: python-dotenv into the cached virtualenv `<target>/xtask/venv-dotenv`
//! (`requirements.txt`) and npm `dotenv` into `<target>/xtask/node-dotenv` (`package.json`,
//! with the machine's `npm`). Both are reinstalled only when their pins change. The test finds
//! them there and skips, saying so, when they are missing.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

use crate::emulator::{self, PyTool};
use crate::paths;

/// python-dotenv, pinned in `fixtures/dotenv/requirements.txt`.
const PYTHON_DOTENV: PyTool = PyTool {
    name: "dotenv",
    min_python: (3, 9),
    entry_point: "bin/dotenv",
};

/// `cargo xtask dotenv-readers` (no arguments).
#[derive(clap::Args)]
pub struct DotenvReaders {}

impl DotenvReaders {
    /// Runs `cargo xtask dotenv-readers`.
    pub fn run(self) -> Result<ExitCode> {
        run().map(|()| ExitCode::SUCCESS)
    }
}

/// Installs both readers (when their pins changed) and prints where they are.
pub fn run() -> Result<()> {
    let venv = emulator::ensure_venv(PYTHON_DOTENV)?;
    let node = ensure_npm()?;
    println!("python-dotenv: {}", venv.join("bin/python").display());
    println!("npm dotenv: {}", node.join("node_modules/dotenv").display());
    Ok(())
}

/// The `cargo xtask ci` step: installs both readers so the dotenv round-trip test runs instead
/// of skipping. Without `npm` or `node` on PATH it says the test will skip and installs
/// nothing; a failed install (with npm there) is an error.
pub fn ci_step() -> Result<()> {
    for tool in ["node", "npm"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            eprintln!(
                "xtask: SKIPPING the dotenv readers: no `{tool}` on PATH, so the dotenv \
                 round-trip test (crates/lockbox-env/tests/dotenv_readers.rs) will skip; \
                 install Node.js and npm to run it"
            );
            return Ok(());
        }
    }
    run()
}

/// Makes sure `<target>/xtask/node-dotenv` holds the pinned npm `dotenv`; returns that dir.
fn ensure_npm() -> Result<PathBuf> {
    let manifest = paths::workspace_root().join("fixtures/dotenv/package.json");
    let pins = fs::read(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
    let dir = paths::state_dir()?.join("node-dotenv");
    let marker = dir.join(".xtask-installed");
    let pins_line = format!("package-fnv1a64={:016x}\n", emulator::fnv1a64(&pins));
    if fs::read_to_string(&marker).is_ok_and(|m| m == pins_line)
        && dir.join("node_modules/dotenv/package.json").is_file()
    {
        return Ok(dir);
    }
    eprintln!(
        "xtask: installing npm dotenv ({}) into {}",
        paths::show(&manifest),
        paths::show(&dir)
    );
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("package.json"), &pins)?;
    emulator::run_quiet(
        Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--omit=dev",
            ])
            .current_dir(&dir),
        "npm install (needs npm on PATH)",
    )?;
    fs::write(&marker, pins_line)?;
    Ok(dir)
}
