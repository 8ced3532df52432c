//! Running the built `lockbox` binary in tests.

use std::path::PathBuf;
use std::process::{Command, Output};

mod aws_command;

pub use aws_command::aws_command;

/// Asserts the run exited 0 (showing its stderr if not) and parses its stdout as JSON.
pub fn ok_json(o: &Output) -> serde_json::Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// What `lockbox output --json` prints for the node `lockbox init --json` printed `init` for:
/// the same keys, with Polygon Edge's names (`bls_pubkey` in init's JSON is `bls` in output's)
/// and, with a BLS key, the `ibft_validator` string `0xADDRESS:0xBLS`.
pub fn output_of_init(init: &serde_json::Value) -> serde_json::Value {
    let mut output = init
        .as_object()
        .expect("init --json prints an object")
        .clone();
    if let Some(bls) = output.remove("bls_pubkey") {
        let validator = format!(
            "{}:{}",
            output["address"].as_str().expect("address"),
            bls.as_str().expect("bls_pubkey")
        );
        output.insert("bls".into(), bls);
        output.insert("ibft_validator".into(), validator.into());
    }
    output.into()
}

/// The run's stdout, as UTF-8 text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The run's stderr, as text (lossy, so a failing test can always show it).
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The run's exit code (a test fails if a signal ended it).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

/// `text` parsed as one JSON value, or a panic showing it.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("not one JSON value: {text:?}: {e}"))
}

/// The permission bits of `path`.
pub fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The workspace's root directory, for tests that run the binary on the repository's fixtures.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/lockbox-testkit sits two levels below the root")
        .to_path_buf()
}

/// A temporary directory laid out for `lockbox sync`/`read` tests: `<root>/store` (the sealed
/// store's directory), `<root>/manifest.json` and `<root>/store.key`. Removed on drop.
pub struct StoreDirs {
    _tmp: tempfile::TempDir,
    /// The temporary directory.
    pub root: PathBuf,
    /// `<root>/store`, the store directory (not created).
    pub store: PathBuf,
    /// `<root>/manifest.json` (not created).
    pub manifest: PathBuf,
}

impl Default for StoreDirs {
    fn default() -> Self {
        Self::new()
    }
}

impl StoreDirs {
    /// A fresh temporary directory.
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let root = tmp.path().to_owned();
        Self {
            store: root.join("store"),
            manifest: root.join("manifest.json"),
            root,
            _tmp: tmp,
        }
    }

    /// The store directory as an argument.
    pub fn store(&self) -> &str {
        self.store.to_str().expect("temporary paths are UTF-8")
    }

    /// `<root>/store.key`, a key file path outside the store directory.
    pub fn key(&self) -> PathBuf {
        self.root.join("store.key")
    }

    /// Writes `text` as the manifest.
    pub fn write_manifest_text(&self, text: &str) {
        std::fs::write(&self.manifest, text).expect("write the manifest");
    }

    /// Writes a v2 manifest (`{"cloudSecrets": [{"arn", "labels"}]}`) of `entries`.
    pub fn write_manifest(&self, entries: &[(&str, &[&str])]) {
        let items: Vec<_> = entries
            .iter()
            .map(|(arn, labels)| serde_json::json!({ "arn": arn, "labels": labels }))
            .collect();
        self.write_manifest_text(&serde_json::json!({ "cloudSecrets": items }).to_string());
    }

    /// `sync --manifest <manifest> --store <store> --endpoint-url <endpoint>`.
    pub fn sync_args<'a>(&'a self, endpoint: &'a str) -> Vec<&'a str> {
        vec![
            "sync",
            "--manifest",
            self.manifest.to_str().expect("temporary paths are UTF-8"),
            "--store",
            self.store(),
            "--endpoint-url",
            endpoint,
        ]
    }

    /// How many entries of the store directory start with `prefix` (leftover temporary
    /// files, when `prefix` is the store's temporary-file prefix).
    pub fn files_starting_with(&self, prefix: &str) -> usize {
        std::fs::read_dir(&self.store)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// Sends SIGTERM to `child` (with `kill`) and waits up to `within` for it to exit, panicking
/// when it does not; returns its exit status.
pub fn stop_with_sigterm(
    child: &mut std::process::Child,
    within: std::time::Duration,
) -> std::process::ExitStatus {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -TERM {} failed", child.id());
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return status;
        }
        assert!(
            start.elapsed() < within,
            "did not stop on SIGTERM within {within:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
