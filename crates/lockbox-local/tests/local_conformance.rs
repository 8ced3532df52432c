//! The local backend keeps every promise of the trait.

use std::sync::Arc;

use lockbox_core::conformance;
use lockbox_local::LocalBackend;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_backend_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run(
        Arc::new(LocalBackend::new(dir.path())),
        &conformance::Options::default(),
    )
    .await;
    // Deleting leaves directories but no files behind.
    let mut files = 0;
    for entry in walkdir(dir.path()) {
        if entry.is_file() {
            files += 1;
        }
    }
    assert_eq!(files, 0);
}

fn walkdir(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(p).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        }
        out.push(path);
    }
    out
}
