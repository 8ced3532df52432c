//! Python discovery: an interpreter new enough for a tool's virtualenv, with its venv and
//! ensurepip modules (`python3`, pyenv's, versioned ones, or the one an environment variable
//! names).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Result, anyhow, bail};

use super::PyTool;

/// Environment variable naming the Python interpreter for moto's virtualenv.
const ENV_PYTHON: &str = "XTASK_PYTHON";
/// Environment variable naming the Python (3.13 or newer) for LocalStack's virtualenv.
const ENV_LOCALSTACK_PYTHON: &str = "XTASK_LOCALSTACK_PYTHON";

/// A Python interpreter found on this machine.
pub(super) struct Python {
    /// Its real executable (not a pyenv shim).
    pub(super) exe: PathBuf,
    /// Major and minor version.
    pub(super) version: (u32, u32),
    /// The full version, e.g. 3.11.7.
    pub(super) full: String,
}

/// Asks `program` for its executable and version, and checks it can make virtualenvs.
fn interrogate(program: &OsStr) -> Result<Python> {
    let output = Command::new(program)
        .args([
            "-c",
            "import sys, venv, ensurepip; print(sys.executable); \
             print('%d.%d.%d' % sys.version_info[:3])",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| anyhow!("{}: {err}", program.to_string_lossy()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or_default().to_owned();
        bail!("{}: {last}", program.to_string_lossy());
    }
    let mut lines = stdout.lines();
    let exe = PathBuf::from(lines.next().unwrap_or_default().trim());
    let full = lines.next().unwrap_or_default().trim().to_owned();
    let mut parts = full.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    Ok(Python { exe, version, full })
}

/// Finds an interpreter for `tool`'s virtualenv: `python3` (or `$XTASK_PYTHON`), or for a tool
/// that needs Python 3.13 (LocalStack) pyenv's and versioned ones (or
/// `$XTASK_LOCALSTACK_PYTHON`).
pub(super) fn find_python(tool: PyTool) -> Result<Python> {
    let needs_new = tool.min_python >= (3, 13);
    let (env_var, mut candidates): (&str, Vec<OsString>) = match needs_new {
        false => (ENV_PYTHON, vec!["python3".into(), "python".into()]),
        true => {
            let mut candidates: Vec<OsString> = pyenv_pythons(tool.min_python)
                .into_iter()
                .map(PathBuf::into_os_string)
                .collect();
            for name in ["python3.13", "python3.14", "python3.15", "python3"] {
                candidates.push(name.into());
            }
            (ENV_LOCALSTACK_PYTHON, candidates)
        }
    };
    if let Some(chosen) = std::env::var_os(env_var).filter(|s| !s.is_empty()) {
        candidates = vec![chosen];
    }
    let min = tool.min_python;
    let mut rejected = Vec::new();
    for candidate in &candidates {
        match interrogate(candidate) {
            Ok(python) if python.version >= min => return Ok(python),
            Ok(python) => rejected.push(format!(
                "{} is Python {}",
                candidate.to_string_lossy(),
                python.full
            )),
            Err(err) => rejected.push(err.to_string()),
        }
    }
    let hint = match needs_new {
        false => {
            "install python3 with its venv module (Debian: apt-get install python3-venv)".to_owned()
        }
        true => format!(
            "install Python 3.13 or newer with its venv module (e.g. `pyenv install 3.13`, or \
             Debian 13: apt-get install python3-venv), or point {ENV_LOCALSTACK_PYTHON} at one"
        ),
    };
    bail!(
        "{} needs Python {}.{} or newer with the venv and ensurepip modules; none found ({}). \
         To fix: {hint}",
        tool.name,
        min.0,
        min.1,
        rejected.join("; ")
    )
}

/// pyenv's installed CPythons of at least `min`, lowest version first.
fn pyenv_pythons(min: (u32, u32)) -> Vec<PathBuf> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pyenv")));
    let Some(Ok(entries)) = root.map(|root| fs::read_dir(root.join("versions"))) else {
        return Vec::new();
    };
    let mut found: Vec<((u32, u32, u32), PathBuf)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let mut parts = name.split('.');
            let version = (
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
                parts.next()?.parse().ok()?,
            );
            if parts.next().is_some() || (version.0, version.1) < min {
                return None;
            }
            let exe = entry.path().join("bin/python3");
            exe.is_file().then_some((version, exe))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, exe)| exe).collect()
}
