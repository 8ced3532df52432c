//! Cached virtualenvs `<target>/xtask/venv-NAME` holding a pinned Python tool: installed once,
//! reinstalled when the pins change, one installer at a time (a lock directory).

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::python::find_python;
use crate::util::last_lines;
use crate::{paths, proc};

/// A pinned Python tool xtask installs into a cached virtualenv `<target>/xtask/venv-NAME` from
/// `fixtures/emulator/NAME-requirements.txt`: moto, LocalStack, OpenBao's `bao`.
#[derive(Clone, Copy, Debug)]
pub struct PyTool {
    /// The name in file names and messages.
    pub name: &'static str,
    /// The lowest Python it runs on.
    pub min_python: (u32, u32),
    /// The file whose presence shows the virtualenv holds it, relative to the virtualenv.
    pub entry_point: &'static str,
}

impl PyTool {
    /// The pinned requirements file: `fixtures/NAME/requirements.txt` for a tool with its own
    /// fixtures directory (Airflow), else `fixtures/emulator/NAME-requirements.txt`.
    fn requirements(self) -> PathBuf {
        let own = paths::workspace_root()
            .join("fixtures")
            .join(self.name)
            .join("requirements.txt");
        if own.is_file() {
            return own;
        }
        paths::emulator_fixtures().join(format!("{}-requirements.txt", self.name))
    }
}

/// FNV-1a, 64 bit: a stable hash for the install marker (std's hasher is not stable).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Makes sure `<target>/xtask/venv-NAME` holds `tool`'s pinned requirements; returns its path.
pub fn ensure_venv(tool: PyTool) -> Result<PathBuf> {
    let state = paths::state_dir()?;
    let venv = state.join(format!("venv-{}", tool.name));
    let requirements = tool.requirements();
    let pins =
        fs::read(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let marker = venv.join(".xtask-installed");
    // Hash only what pip reads, so editing a comment does not reinstall.
    let pins: Vec<&str> = std::str::from_utf8(&pins)
        .with_context(|| format!("{} is not UTF-8", requirements.display()))?
        .lines()
        .map(|line| line.split(" #").next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let pins_line = format!(
        "requirements-fnv1a64={:016x}",
        fnv1a64(pins.join("\n").as_bytes())
    );
    let ready = || {
        let installed = fs::read_to_string(&marker).unwrap_or_default();
        venv_matches(tool, &venv, &installed, &pins_line)
    };
    if ready() {
        return Ok(venv);
    }
    // Another xtask (another terminal, another agent) may be installing the same venv.
    let _lock = InstallLock::acquire(&state.join(format!("venv-{}.lock", tool.name)))?;
    if ready() {
        return Ok(venv);
    }

    let python = find_python(tool)?;
    eprintln!(
        "xtask: installing {} ({}) into {} with Python {} (once; cached until the pins change)",
        tool.name,
        paths::show(&requirements),
        paths::show(&venv),
        python.full
    );
    let started = Instant::now();
    if venv.exists() {
        fs::remove_dir_all(&venv).with_context(|| format!("removing {}", venv.display()))?;
    }
    run_quiet(
        Command::new(&python.exe)
            .args([OsStr::new("-m"), OsStr::new("venv")])
            .arg(&venv),
        "creating the virtualenv",
    )?;
    run_quiet(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-r",
            ])
            .arg(&requirements)
            .env("PIP_NO_INPUT", "1"),
        "pip install",
    )?;
    if !venv.join(tool.entry_point).is_file() {
        bail!(
            "pip installed {} but {} is missing",
            paths::show(&requirements),
            venv.join(tool.entry_point).display()
        );
    }
    fs::write(
        &marker,
        format!(
            "{pins_line}\npython={} {}\n",
            python.full,
            python.exe.display()
        ),
    )?;
    eprintln!(
        "xtask: installed {} in {:.1?}",
        tool.name,
        started.elapsed()
    );
    Ok(venv)
}

/// True if the install `marker` of `venv` records `pins_line` and a Python new enough for
/// `tool`, and its entry point is there.
fn venv_matches(tool: PyTool, venv: &Path, marker: &str, pins_line: &str) -> bool {
    let mut lines = marker.lines();
    let pins_match = lines.next() == Some(pins_line);
    let python_fits = lines
        .next()
        .and_then(|line| line.strip_prefix("python="))
        .and_then(|rest| {
            let mut parts = rest.split(['.', ' ']).map(str::parse::<u32>);
            Some((parts.next()?.ok()?, parts.next()?.ok()?))
        })
        .is_some_and(|version| version >= tool.min_python);
    pins_match
        && python_fits
        && venv.join(tool.entry_point).is_file()
        && venv.join("bin/python").exists()
}

/// A lock directory held while a virtualenv is (re)installed; removed on drop.
struct InstallLock {
    /// The lock directory.
    dir: PathBuf,
}

impl InstallLock {
    /// Creates the lock directory, waiting (up to 15 min) while a live process holds it.
    fn acquire(dir: &Path) -> Result<InstallLock> {
        let deadline = Instant::now() + Duration::from_secs(15 * 60);
        let mut told = false;
        loop {
            match fs::create_dir(dir) {
                Ok(()) => {
                    fs::write(dir.join("pid"), std::process::id().to_string())?;
                    return Ok(InstallLock {
                        dir: dir.to_path_buf(),
                    });
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("creating {}", dir.display()));
                }
            }
            let holder = fs::read_to_string(dir.join("pid"))
                .ok()
                .and_then(|pid| pid.trim().parse::<u32>().ok());
            let age = fs::metadata(dir)
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .unwrap_or_default();
            let stale = match holder {
                Some(pid) => !proc::alive(pid),
                None => age > Duration::from_secs(30),
            };
            if stale {
                let _ = fs::remove_dir_all(dir);
                continue;
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} is still held by pid {holder:?}; remove it if no install runs",
                    dir.display()
                );
            }
            if !told {
                eprintln!(
                    "xtask: waiting for another xtask (pid {}) to finish installing",
                    holder.map_or_else(|| "?".to_owned(), |pid| pid.to_string())
                );
                told = true;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Runs an install command, showing its output only if it fails.
pub(crate) fn run_quiet(command: &mut Command, what: &str) -> Result<()> {
    let output = command.stdin(Stdio::null()).output().with_context(|| {
        format!(
            "{what}: could not run {}",
            command.get_program().to_string_lossy()
        )
    })?;
    if !output.status.success() {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        let tail = last_lines(&text, 40);
        bail!("{what} failed ({}):\n{tail}", output.status);
    }
    Ok(())
}
