//! The local backend keeps every promise of the trait, and deleting leaves directories but no
//! files behind.

use lockbox_local::LocalBackend;
use lockbox_testkit::conformance::{Capabilities, Subject};

/// Owns the backend's directory; when the behaviour has passed, no file may be left in it.
struct NoFilesLeft(tempfile::TempDir);

impl Drop for NoFilesLeft {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        // Deleting leaves directories but no files behind.
        let mut files = 0;
        for entry in walkdir(self.0.path()) {
            if entry.is_file() {
                files += 1;
            }
        }
        assert_eq!(files, 0);
    }
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

lockbox_testkit::conformance_tests!(
    |_test| async {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path());
        Some(Subject::new(backend).with_guard(NoFilesLeft(dir)))
    },
    Capabilities::default()
);
