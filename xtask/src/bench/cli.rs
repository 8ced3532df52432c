//! The CLI's start-up figures, measured as whole processes on the shipped binary (the `dist`
//! profile, as in the Debian package and the Lambda layer), each command run 10 times after
//! one warm-up run, the median wall time in milliseconds; and the shipped sizes.
//!
//! - `binary_mb`: the `lockbox` binary, in MB (10^6 bytes).
//! - `layer_zip_mb`: the Lambda layer zip `cargo xtask lambda-layer` writes, in MB.
//! - `cli_output_local_ms`: `lockbox output --data-dir DIR` on a node `lockbox init
//!   --data-dir DIR` created (local keys, no network).
//! - `cli_get_ssm_ms`: `lockbox get --config FILE NAME` of one SSM parameter on a private moto
//!   (started here, stopped at the end), with static test credentials in the environment.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::emulator::{Kind, Session};
use crate::paths;
use crate::util::aws_command;

/// Runs timed per command.
const RUNS: usize = 10;

/// Builds the shipped binary and its layer zip, and measures both commands: `(key, value)`.
pub fn measure() -> Result<Vec<(&'static str, f64)>> {
    let profile = crate::deb::SHIPPED_PROFILE;
    eprintln!("building the {profile} lockbox binary and layer zip for the CLI figures");
    let layer = crate::lambda_layer::build(profile, None)?;
    let sizes = [
        ("binary_mb", crate::lambda_layer::megabytes(&layer.binary)?),
        ("layer_zip_mb", crate::lambda_layer::megabytes(&layer.zip)?),
    ];
    eprintln!(
        "cli: binary {:.1} MB, layer zip {:.1} MB ({profile})",
        sizes[0].1, sizes[1].1
    );
    let exe = layer.binary;
    let work = paths::target_dir()
        .join("lockbox-bench")
        .join(format!("cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let result = measure_in(&exe, &work);
    let _ = std::fs::remove_dir_all(&work);
    Ok(sizes.into_iter().chain(result?).collect())
}

fn measure_in(exe: &Path, work: &Path) -> Result<Vec<(&'static str, f64)>> {
    let node = work.join("node");
    let node_arg = node.to_str().context("work dir is not UTF-8")?;
    run_ok(exe, &["init", "--data-dir", node_arg], None)?;
    let output = median_ms(exe, &["output", "--data-dir", node_arg])?;
    eprintln!("cli: lockbox output --data-dir: median {output:.2} ms of {RUNS}");

    let moto = Session::start_scoped(Kind::Moto)?;
    let config = work.join("secretsManagerConfig.json");
    let config_arg = config.to_str().context("work dir is not UTF-8")?;
    run_ok(
        exe,
        &[
            "generate",
            "--type",
            "aws-ssm",
            "--name",
            "bench-node",
            "--dir",
            config_arg,
            "--extra",
            "region=us-east-1,ssm-parameter-path=/lockbox-bench",
            "--server-url",
            &moto.endpoint,
        ],
        None,
    )?;
    run_ok(
        exe,
        &["put", "--config", config_arg, "bench-key"],
        Some(b"bench-value"),
    )?;
    let get = median_ms(exe, &["get", "--config", config_arg, "bench-key"])?;
    eprintln!("cli: lockbox get --config (SSM on moto): median {get:.2} ms of {RUNS}");
    moto.stop();
    Ok(vec![
        ("cli_output_local_ms", output),
        ("cli_get_ssm_ms", get),
    ])
}

fn run_ok(exe: &Path, args: &[&str], stdin: Option<&[u8]>) -> Result<()> {
    let mut command = aws_command(exe, args);
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .with_context(|| format!("running {}", exe.display()))?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(bytes)?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "lockbox {} failed ({}): {}",
            args.first().unwrap_or(&""),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// One warm-up run, then the median of [`RUNS`] timed runs (each must succeed), in ms.
fn median_ms(exe: &Path, args: &[&str]) -> Result<f64> {
    run_ok(exe, args, None)?;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let mut command = aws_command(exe, args);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let start = Instant::now();
        let status = command.status()?;
        let took = start.elapsed();
        if !status.success() {
            bail!("lockbox {} failed ({status})", args.join(" "));
        }
        times.push(took.as_secs_f64() * 1e3);
    }
    Ok(median(&mut times))
}

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
