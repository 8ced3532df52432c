//! Where serve's log records go, so that logging never stops or stalls serving.
//!
//! - [`RollingLog`], the agent's log file: `./logs/secrets_manager_agent.log`, rolled when it passes 10 MB into
//!   gzipped archives `./logs/archive/secrets_manager_agent_{0..4}.gz` (0 the newest, at most
//!   5), as the agent's log4rs set-up does (its logging.rs: a size trigger and a fixed-window
//!   roller).
//! - [`LossyStderr`] (`log_to_file = false`): records handed to a writer thread through a
//!   bounded queue, dropped (and counted) when stderr is not read fast enough, so a closed
//!   or unread stderr never blocks a request.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The log file, relative to the working directory (the agent's path).
pub const LOG_FILE: &str = "logs/secrets_manager_agent.log";
/// Where rolled logs go.
pub const ARCHIVE_DIR: &str = "logs/archive";
/// Size at which the log is rolled.
pub const ROLL_BYTES: u64 = 10 * 1024 * 1024;
/// Archives kept.
pub const ARCHIVES: u32 = 5;

/// A size-rolled log file; `&RollingLog` writes whole records (one `write_all` per record
/// under a lock). Write errors are reported to the caller and never stop serve: a full disk
/// loses log lines, not requests.
#[derive(Debug)]
pub struct RollingLog {
    dir: PathBuf,
    roll_bytes: u64,
    state: Mutex<Open>,
}

#[derive(Debug)]
struct Open {
    file: File,
    written: u64,
}

impl RollingLog {
    /// Opens (appending, created 0600) `<base>/logs/secrets_manager_agent.log`.
    pub fn open(base: &Path) -> io::Result<Self> {
        Self::with_limit(base, ROLL_BYTES)
    }

    /// [`RollingLog::open`] rolling at `roll_bytes` (tests).
    pub fn with_limit(base: &Path, roll_bytes: u64) -> io::Result<Self> {
        let dir = base.to_path_buf();
        let file = open_log(&dir.join(LOG_FILE))?;
        let written = file.metadata()?.len();
        Ok(Self {
            dir,
            roll_bytes,
            state: Mutex::new(Open { file, written }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one record, rolling first when the file has reached the limit.
    pub fn append(&self, record: &[u8]) -> io::Result<()> {
        let mut open = self.lock();
        if open.written >= self.roll_bytes {
            self.roll(&mut open)?;
        }
        open.file.write_all(record)?;
        open.written += record.len() as u64;
        Ok(())
    }

    /// Moves the archives up one (dropping the oldest), gzips the current log into archive
    /// 0 and starts an empty log.
    fn roll(&self, open: &mut Open) -> io::Result<()> {
        let archive = self.dir.join(ARCHIVE_DIR);
        fs::create_dir_all(&archive)?;
        let name = |i: u32| archive.join(format!("secrets_manager_agent_{i}.gz"));
        let _ = fs::remove_file(name(ARCHIVES - 1));
        for i in (0..ARCHIVES - 1).rev() {
            if name(i).exists() {
                fs::rename(name(i), name(i + 1))?;
            }
        }
        let log = self.dir.join(LOG_FILE);
        let tmp = archive.join(".secrets_manager_agent_0.gz.tmp");
        {
            let mut src = File::open(&log)?;
            let mut gz =
                flate2::write::GzEncoder::new(open_log(&tmp)?, flate2::Compression::default());
            io::copy(&mut src, &mut gz)?;
            gz.finish()?.sync_all()?;
        }
        fs::rename(&tmp, name(0))?;
        open.file.set_len(0)?;
        open.written = 0;
        Ok(())
    }
}

impl Write for &RollingLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Records queued for stderr before new ones are dropped.
const STDERR_QUEUE: usize = 1024;

/// stderr behind a bounded queue and a writer thread: a record that does not fit is dropped.
#[derive(Debug)]
pub struct LossyStderr {
    queue: SyncSender<Vec<u8>>,
    dropped: AtomicU64,
}

impl LossyStderr {
    /// Starts the writer thread. It ends when the last handle is dropped; a write error
    /// (stderr closed) ends it early, after which records are dropped.
    pub fn start() -> Self {
        let (queue, records) = sync_channel::<Vec<u8>>(STDERR_QUEUE);
        let _ = std::thread::Builder::new()
            .name("lockbox-log".into())
            .spawn(move || {
                let mut err = io::stderr();
                for record in records {
                    if err.write_all(&record).is_err() {
                        break;
                    }
                }
            });
        Self {
            queue,
            dropped: AtomicU64::new(0),
        }
    }

    /// Records dropped so far (queue full or stderr gone).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Write for &LossyStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.queue.try_send(buf.to_vec()) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Appends to `path` (its directory created), owner-only when created.
fn open_log(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_full_stderr_queue_drops_records_instead_of_blocking() {
        let (queue, _records) = sync_channel(1);
        let lossy = LossyStderr {
            queue,
            dropped: AtomicU64::new(0),
        };
        for _ in 0..3 {
            (&lossy).write_all(b"x\n").unwrap();
        }
        assert_eq!(lossy.dropped(), 2);
    }

    #[test]
    fn rolls_into_five_gzipped_archives() {
        let dir = tempfile::tempdir().unwrap();
        let log = RollingLog::with_limit(dir.path(), 100).unwrap();
        for i in 0..8u8 {
            let line = vec![b'a' + i; 100];
            (&log).write_all(&line).unwrap();
        }
        let archive = dir.path().join(ARCHIVE_DIR);
        let mut names: Vec<_> = fs::read_dir(&archive)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            (0..5)
                .map(|i| format!("secrets_manager_agent_{i}.gz"))
                .collect::<Vec<_>>()
        );
        // The newest archive holds the record before the current one.
        let mut text = String::new();
        flate2::read::GzDecoder::new(
            File::open(archive.join("secrets_manager_agent_0.gz")).unwrap(),
        )
        .read_to_string(&mut text)
        .unwrap();
        assert_eq!(text, "g".repeat(100));
        let current = fs::read_to_string(dir.path().join(LOG_FILE)).unwrap();
        assert_eq!(current, "h".repeat(100));
    }
}
