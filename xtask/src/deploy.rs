//! CI checks of the deployment files (issue 25): `systemd-analyze verify` of the units under
//! packaging/systemd/.
//!
//! `verify` wants every `ExecStart` binary to exist and the system's own units
//! (sysinit.target...), so the units are checked in a scratch root holding them, a
//! `/usr/bin/lockbox` (the built debug binary when there is one) and a copy of the host's
//! `/usr/lib/systemd/system`. Man pages are not looked up (`--man=no`: the package installs
//! them, the host has none). An unknown key is only a warning to `verify`, so any output on
//! stderr fails the step too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::paths;
use crate::steps::Steps;

/// The units under packaging/systemd/.
pub const UNITS: [&str; 2] = ["lockbox-serve.service", "lockbox-sync.service"];

/// Where the host keeps its systemd units.
const SYSTEM_UNITS: [&str; 2] = ["/usr/lib/systemd/system", "/lib/systemd/system"];

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("create {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            let link = std::fs::read_link(entry.path())?;
            std::os::unix::fs::symlink(link, &target)?;
        } else if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// A scratch root for `systemd-analyze verify --root`.
fn scratch_root() -> Result<PathBuf> {
    let root = paths::target_dir().join("xtask-systemd-root");
    if root.exists() {
        std::fs::remove_dir_all(&root).with_context(|| format!("remove {}", root.display()))?;
    }
    let system = SYSTEM_UNITS
        .iter()
        .map(Path::new)
        .find(|p| p.join("sysinit.target").exists())
        .context("no systemd units on this host (install Debian's systemd package)")?;
    copy_dir(system, &root.join("usr/lib/systemd/system"))?;
    let units = root.join("etc/systemd/system");
    std::fs::create_dir_all(&units)?;
    for unit in UNITS {
        let from = paths::workspace_root().join("packaging/systemd").join(unit);
        std::fs::copy(&from, units.join(unit))
            .with_context(|| format!("copy {}", from.display()))?;
    }
    let bin = root.join("usr/bin/lockbox");
    std::fs::create_dir_all(root.join("usr/bin"))?;
    let built = paths::target_dir().join("debug/lockbox");
    if built.exists() {
        std::fs::copy(&built, &bin)?;
    } else {
        std::fs::write(&bin, "#!/bin/sh\nexit 0\n")?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    Ok(root)
}

/// `systemd-analyze verify` of both units as CI step `systemd verify`; skipped (with the
/// reason) when systemd-analyze is not installed.
pub fn systemd_verify(steps: &mut Steps) -> Result<()> {
    let started = Instant::now();
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "xtask: SKIPPED [systemd verify]: systemd-analyze is not installed \
             (apt-get install systemd)"
        );
        return Ok(());
    }
    let root = scratch_root()?;
    let mut command = Command::new("systemd-analyze");
    command
        .arg("verify")
        .arg("--man=no")
        .arg(format!("--root={}", root.display()))
        .args(UNITS);
    eprintln!(
        "\nxtask: ==> [systemd verify] {}",
        crate::steps::show(&command)
    );
    let out = command.output().context("could not run systemd-analyze")?;
    steps.record("systemd verify", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stderr.trim().is_empty() {
        bail!(
            "systemd-analyze verify of {UNITS:?} failed ({}):\n{stderr}",
            out.status
        );
    }
    eprintln!("xtask: <== [systemd verify] ok: {}", UNITS.join(", "));
    Ok(())
}
