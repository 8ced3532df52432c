//! Temporary files of `write_file_atomic` (issue 23, item 8): one is removed only when no
//! writer holds it, whatever its file times say, so racing writers never lose their file.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use lockbox_core::PutMode;
use lockbox_fs::{remove_stale_temp_files, write_file_atomic};
use rustix::fs::{FlockOperation, flock};

fn temp_file(dir: &Path, name: &str, modified: SystemTime) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::write(&p, "part of a secret").unwrap();
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    p
}

#[test]
fn a_temp_file_a_writer_holds_is_left_alone_however_old_it_looks() {
    let dir = tempfile::tempdir().unwrap();
    // A long write in another process (or a file time coarser than the clock): old mtime,
    // lock held.
    let live = temp_file(
        dir.path(),
        ".lockbox-tmp-Live01",
        SystemTime::now() - Duration::from_secs(3600),
    );
    let holder = fs::File::open(&live).unwrap();
    flock(&holder, FlockOperation::LockExclusive).unwrap();
    write_file_atomic(&dir.path().join("k"), b"v", PutMode::Create).unwrap();
    assert!(
        live.exists(),
        "a temp file whose writer holds it was removed"
    );
    assert_eq!(remove_stale_temp_files(dir.path()), 0);
    assert!(live.exists());
    // Its writer died: the lock is gone, and the next write removes it.
    drop(holder);
    write_file_atomic(&dir.path().join("k2"), b"v", PutMode::Create).unwrap();
    assert!(!live.exists(), "a temp file no one holds was left behind");
}

#[test]
fn a_temp_file_no_writer_holds_is_removed_however_new_it_looks() {
    let dir = tempfile::tempdir().unwrap();
    // Left by a process killed after this one started (its mtime is later than our start).
    let dead = temp_file(
        dir.path(),
        ".lockbox-tmp-Dead01",
        SystemTime::now() + Duration::from_secs(60),
    );
    assert_eq!(remove_stale_temp_files(dir.path()), 1);
    assert!(!dead.exists());
}

#[test]
fn racing_creates_in_one_directory_always_have_exactly_one_winner() {
    const WRITERS: usize = 8;
    const ROUNDS: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    for round in 0..ROUNDS {
        let path = Arc::new(dir.path().join(format!("r{round}/race")));
        let barrier = Arc::new(Barrier::new(WRITERS));
        let writers: Vec<_> = (0..WRITERS)
            .map(|i| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    write_file_atomic(&path, format!("writer-{i}").as_bytes(), PutMode::Create)
                })
            })
            .collect();
        let mut wins = 0;
        for w in writers {
            match w.join().unwrap() {
                Ok(()) => wins += 1,
                Err(e) => assert_eq!(
                    e.kind(),
                    std::io::ErrorKind::AlreadyExists,
                    "round {round}: a racing create failed: {e}"
                ),
            }
        }
        assert_eq!(wins, 1, "round {round}: one create must win");
        let left: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["race"], "round {round}: temporary files left behind");
    }
}
