//! The built `lockbox` binary in an environment cleaned for AWS. One source for the tests
//! (`lockbox_testkit::cli::aws_command`) and for xtask's CLI timings, which compiles this file
//! into its `util` module with `#[path]` rather than depend on the test kit (tokio, wiremock,
//! lockbox-core: some 130 crates more for every `cargo xtask`). std only, on purpose.

use std::ffi::OsStr;
use std::process::Command;

/// `exe` (a test's `env!("CARGO_BIN_EXE_lockbox")`, or xtask's release build) with `args`, in
/// an environment cleaned of what a developer's shell may hold (`RUST_LOG`, `AWS_ENDPOINT_URL`,
/// `AWS_PROFILE`), with static test keys and no EC2 metadata lookups.
pub fn aws_command(exe: impl AsRef<OsStr>, args: &[&str]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}
