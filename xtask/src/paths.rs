//! Where things live: the workspace root, the target dir and xtask's own state dir.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The workspace root (the parent of xtask's manifest dir).
pub fn workspace_root() -> PathBuf {
    // `cargo run` sets CARGO_MANIFEST_DIR at run time too; prefer it, so a moved checkout works.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.join("src/main.rs").is_file() && dir.ends_with("xtask"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

/// The cargo target dir: `$CARGO_TARGET_DIR` (relative to the current dir, as cargo reads it)
/// or `<workspace root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir()
                    .map(|cwd| cwd.join(&dir))
                    .unwrap_or(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// xtask's state dir, `<target>/xtask`, created if missing.
pub fn state_dir() -> Result<PathBuf> {
    let dir = target_dir().join("xtask");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The pinned emulator requirements files live here.
pub fn emulator_fixtures() -> PathBuf {
    workspace_root().join("fixtures").join("emulator")
}

/// Names of the integration test binaries: `tests/it_*.rs` files and `tests/it_*/main.rs` dirs
/// in any package directly under the workspace root or under `crates/`, sorted.
pub fn integration_test_binaries() -> Result<Vec<String>> {
    let root = workspace_root();
    let mut packages = Vec::new();
    for parent in [root.clone(), root.join("crates")] {
        let Ok(entries) = fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries {
            let path = entry
                .with_context(|| format!("reading {}", parent.display()))?
                .path();
            if path.join("Cargo.toml").is_file() && path.join("tests").is_dir() {
                packages.push(path);
            }
        }
    }

    let mut names = Vec::new();
    for package in packages {
        let tests = package.join("tests");
        for entry in fs::read_dir(&tests).with_context(|| format!("reading {}", tests.display()))? {
            let path = entry
                .with_context(|| format!("reading {}", tests.display()))?
                .path();
            let Some(stem) = path.file_stem().and_then(OsStr::to_str) else {
                continue;
            };
            if !stem.starts_with("it_") {
                continue;
            }
            let is_test_file = path.extension() == Some(OsStr::new("rs")) && path.is_file();
            let is_test_dir = path.join("main.rs").is_file();
            if is_test_file || is_test_dir {
                names.push(stem.to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Displays `path` relative to the workspace root when it lies inside it.
pub fn show(path: &Path) -> String {
    let root = workspace_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}
