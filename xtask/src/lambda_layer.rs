//! `cargo xtask lambda-layer [--profile P] [--out FILE]`: a Lambda layer zip with
//! `extensions/lockbox` (a script that starts `lockbox serve` as an external extension, named
//! after its file as Lambda requires) and the binary as `bin/lockbox`, built for the host's
//! architecture with the `dist` profile; prints the zip's path and size. Needs `zip` (Info-ZIP),
//! which keeps the files' execute bits.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::paths;

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

/// Builds the binary and writes the layer zip; prints its path and size.
pub fn run(args: &Args) -> Result<()> {
    let layer = build(&args.profile, args.out.as_deref())?;
    println!(
        "{}: {:.1} MB (binary {:.1} MB, {})",
        paths::show(&layer.zip),
        megabytes(&layer.zip)?,
        megabytes(&layer.binary)?,
        std::env::consts::ARCH
    );
    Ok(())
}

/// A layer zip written by [`build`] and the binary in it.
pub struct Layer {
    /// The zip.
    pub zip: PathBuf,
    /// The `lockbox` binary it holds, as built.
    pub binary: PathBuf,
}

/// The size of `path` in MB (10^6 bytes).
pub fn megabytes(path: &std::path::Path) -> Result<f64> {
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .len() as f64
        / 1_000_000.0)
}

/// Builds `lockbox` with `profile` and writes the layer zip to `out` (default
/// `target/lambda/lockbox-layer-<arch>.zip`).
pub fn build(profile: &str, out: Option<&std::path::Path>) -> Result<Layer> {
    let binary = crate::deb::build_lockbox(profile)?;

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
    let out = match out {
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
    Ok(Layer { zip: out, binary })
}
