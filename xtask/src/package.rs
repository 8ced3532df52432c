//! `cargo package` for every publishable crate of the workspace, as `ci` runs it.
//!
//! `--no-verify` (about 25 s on 2 cores): cargo still checks each manifest, the file list and
//! that every dependency resolves (crates.io, or the other packaged crates through its local
//! registry overlay). Verifying would rebuild every crate and dependency in a separate target
//! dir (about 12 minutes on 2 cores) to compile the same sources clippy and the doc tests
//! compile in place; it would only add a check that no crate reads a file from outside its own
//! directory (`include_str!("../../fixtures/..")`), which none does.

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{paths, steps};

/// The workspace members `cargo metadata` says may be published (no `publish = false`), sorted.
pub fn publishable_crates() -> Result<Vec<String>> {
    let output = steps::cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(paths::workspace_root())
        .output()
        .context("could not run `cargo metadata`")?;
    if !output.status.success() {
        bail!(
            "`cargo metadata` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("`cargo metadata` printed no JSON")?;
    publishable(&metadata)
}

/// The names of the members of `metadata` whose `publish` is not `[]` (`publish = false`).
fn publishable(metadata: &Value) -> Result<Vec<String>> {
    let packages = metadata["packages"]
        .as_array()
        .context("`cargo metadata` lists no packages")?;
    let mut names: Vec<String> = packages
        .iter()
        .filter(|p| p["publish"].as_array().is_none_or(|r| !r.is_empty()))
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

/// The arguments of `cargo package` for `crates`: one run packages them all, resolving their
/// dependencies on each other through a local registry overlay.
pub fn package_args(crates: &[String]) -> Vec<String> {
    let mut args = vec!["package".to_owned(), "--no-verify".to_owned()];
    for name in crates {
        args.push("-p".to_owned());
        args.push(name.clone());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_crates_without_publish_false() {
        let metadata = serde_json::json!({"packages": [
            {"name": "lockbox-ssm", "publish": null},
            {"name": "xtask", "publish": []},
            {"name": "lockbox-core", "publish": null},
            {"name": "private-registry-only", "publish": ["mine"]},
        ]});
        assert_eq!(
            publishable(&metadata).unwrap(),
            ["lockbox-core", "lockbox-ssm", "private-registry-only"]
        );
        assert_eq!(
            package_args(&["a".into(), "b".into()]),
            ["package", "--no-verify", "-p", "a", "-p", "b"]
        );
    }
}
