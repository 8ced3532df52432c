//! A one-line progress indicator on stderr (`syncing secret 3/40`), drawn only when stderr is a
//! terminal and silent otherwise. It shows counts only: never a value, nor a name.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Progress through `total` items; the line is cleared when dropped.
pub struct Progress {
    what: &'static str,
    total: usize,
    done: AtomicUsize,
    enabled: bool,
}

impl Progress {
    /// Progress through `total` items, each called `what` (`"syncing secret"`).
    pub fn new(what: &'static str, total: usize) -> Self {
        Self {
            what,
            total,
            done: AtomicUsize::new(0),
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// Item `n` (1-based) is under way. Going back (a retry) draws nothing.
    pub fn at(&self, n: usize) {
        if self.enabled && self.done.fetch_max(n, Ordering::Relaxed) < n {
            let mut err = std::io::stderr().lock();
            // A progress line that cannot be drawn is not worth failing for.
            let _ = write!(err, "\r{} {n}/{}\x1b[K", self.what, self.total);
            let _ = err.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.enabled && self.done.load(Ordering::Relaxed) > 0 {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}
