//! `cargo xtask lambda-layer [--profile P] [--out FILE]`: a Lambda layer zip with
//! `extensions/lockbox` (a script that starts `lockbox serve` as an external extension, named
//! after its file as Lambda requires) and the binary as `bin/lockbox`, built for the host's
//! architecture with the `dist` profile; prints the zip's path and size. Needs `zip` (Info-ZIP),
//! which keeps the files' execute bits.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::{paths, steps};

/// The layer's extension script: Lambda starts every file in /opt/extensions at init.
const EXTENSION_SCRIPT: &str = "#!/bin/sh\n\
# lockbox serve as a Lambda extension: it registers with the Extensions API under this file's\n\
# name, configured by the Parameters and Secrets Lambda Extension's variables.\n\
exec /opt/bin/lockbox serve --lambda-extension --lambda-extension-name \"$(basename \"$0\")\"\n";

/// Arguments of `cargo xtask lambda-layer`.
#[derive(clap::Args)]
pub struct Args {
    /// The cargo profile to build `lockbox` with.
    #[arg(long, default_value = "dist")]
    profile: String,
    /// Where to write the zip [default: target/lambda/lockbox-layer-<arch>.zip].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

impl Args {
    /// Runs `cargo xtask lambda-layer`.
    pub fn run(self) -> Result<ExitCode> {
        run(&self).map(|()| ExitCode::SUCCESS)
    }
}

/// Builds the binary and writes the layer zip.
pub fn run(args: &Args) -> Result<()> {
    steps::build_lockbox(&args.profile)?;
    let dir = if args.profile == "dev" {
        "debug"
    } else {
        args.profile.as_str()
    };
    let binary = paths::target_dir().join(dir).join("lockbox");
    let stage = paths::target_dir().join("lambda/layer");
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    std::fs::create_dir_all(stage.join("extensions"))?;
    std::fs::create_dir_all(stage.join("bin"))?;
    let script = stage.join("extensions/lockbox");
    std::fs::write(&script, EXTENSION_SCRIPT)?;
    std::fs::copy(&binary, stage.join("bin/lockbox"))
        .with_context(|| format!("copy {}", binary.display()))?;
    for file in [script, stage.join("bin/lockbox")] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
    }
    let out = match &args.out {
        Some(out) => std::path::absolute(out)?,
        None => paths::target_dir().join(format!(
            "lambda/lockbox-layer-{}.zip",
            std::env::consts::ARCH
        )),
    };
    if out.exists() {
        std::fs::remove_file(&out)?;
    }
    let status = Command::new("zip")
        .current_dir(&stage)
        .args(["-q", "-X", "-r"])
        .arg(&out)
        .args(["extensions", "bin"])
        .status()
        .context("could not run zip (apt-get install zip)")?;
    if !status.success() {
        bail!("zip failed ({status})");
    }
    let mb = |p: &std::path::Path| -> Result<f64> {
        Ok(std::fs::metadata(p)?.len() as f64 / 1_000_000.0)
    };
    println!(
        "{}: {:.1} MB (binary {:.1} MB, {})",
        paths::show(&out),
        mb(&out)?,
        mb(&binary)?,
        std::env::consts::ARCH
    );
    Ok(())
}
