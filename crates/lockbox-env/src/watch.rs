//! Watching sources: re-read them every interval (each wait jittered by up to 10% so a fleet
//! does not poll in step) and hand out the loaded map each time it changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lockbox_core::{Error, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::poll::Poller;
use crate::source::{Layer, Loaded, Source};

/// How often to poll.
#[derive(Clone, Copy, Debug)]
pub struct WatchOptions {
    /// The wait between the end of one poll and the start of the next, before jitter (each
    /// wait is this plus up to 10%).
    pub interval: Duration,
}

impl Default for WatchOptions {
    /// Every 60 s, as `--watch` without a value.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
        }
    }
}

/// Whether the last poll could read every source. Never holds a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// The last poll read every source.
    Fresh,
    /// Polls have failed since `since`: the map handed out is the last one read in full.
    Failing {
        /// When the first poll of this run of failures failed.
        since: Instant,
        /// How many polls in a row failed.
        failures: u64,
        /// The source whose read failed last (its label, such as `config app.json`).
        source: String,
        /// That failure (kind and message, never a value).
        error: String,
    },
}

impl Health {
    /// True when polls have been failing for at least `max_stale`.
    pub fn stale(&self, max_stale: Duration) -> bool {
        match self {
            Health::Fresh => false,
            Health::Failing { since, .. } => since.elapsed() >= max_stale,
        }
    }
}

/// Sources being watched. The map handed out changes only when a poll reads something
/// different (a name added, removed, or a value or its binary flag changed); a poll that
/// fails keeps the last map, logs one warning naming the source and the error, and the next
/// poll comes at the next interval. Dropping the `Watcher` stops polling.
pub struct Watcher {
    loaded: watch::Receiver<Arc<Loaded>>,
    health: watch::Receiver<Health>,
    polls: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("polls", &*self.polls.borrow())
            .field("health", &*self.health.borrow())
            .finish_non_exhaustive()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    /// Reads every source once (an error here is returned: there is nothing to run on yet),
    /// then polls them in a task of the current Tokio runtime. Polls move values only for
    /// secrets whose version tag changed where the backend lists tags (see [`Poller`]).
    pub async fn start(sources: Vec<Source>, options: WatchOptions) -> Result<Watcher> {
        let mut poller = Poller::new(sources);
        let first = poller.poll().await?;
        let (loaded_tx, loaded) = watch::channel(Arc::new(first));
        let (health_tx, health) = watch::channel(Health::Fresh);
        let (polls_tx, polls) = watch::channel(0u64);
        let task = tokio::spawn(poll_loop(poller, options, loaded_tx, health_tx, polls_tx));
        Ok(Watcher {
            loaded,
            health,
            polls,
            task,
        })
    }

    /// The map read last (in full).
    pub fn current(&self) -> Arc<Loaded> {
        self.loaded.borrow().clone()
    }

    /// A receiver that sees each new map (`changed().await`, then `borrow_and_update()`).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Loaded>> {
        self.loaded.clone()
    }

    /// A receiver of [`Health`], updated after every poll that fails and when reads work
    /// again.
    pub fn health(&self) -> watch::Receiver<Health> {
        self.health.clone()
    }

    /// A receiver of the number of polls done so far (after the first read).
    pub fn polls(&self) -> watch::Receiver<u64> {
        self.polls.clone()
    }

    /// Waits for the next map that differs from the last one this watcher's own receiver saw.
    /// Returns `None` if polling stopped.
    pub async fn changed(&mut self) -> Option<Arc<Loaded>> {
        self.loaded.changed().await.ok()?;
        Some(self.loaded.borrow_and_update().clone())
    }
}

async fn poll_loop(
    mut poller: Poller,
    options: WatchOptions,
    loaded_tx: watch::Sender<Arc<Loaded>>,
    health_tx: watch::Sender<Health>,
    polls_tx: watch::Sender<u64>,
) {
    let mut polls = 0u64;
    loop {
        tokio::time::sleep(jittered(options.interval)).await;
        if loaded_tx.is_closed() && health_tx.is_closed() && polls_tx.is_closed() {
            return;
        }
        let result: std::result::Result<Loaded, (String, Error)> = poller.poll_named().await;
        polls += 1;
        match result {
            Ok(new) => {
                if !matches!(*health_tx.borrow(), Health::Fresh) {
                    tracing::warn!("reads work again; the values are current");
                    health_tx.send_replace(Health::Fresh);
                }
                let changed = loaded_tx.send_if_modified(|current| {
                    let differs = !same(current, &new);
                    if differs {
                        *current = Arc::new(new);
                    }
                    differs
                });
                if changed {
                    tracing::info!("poll {polls}: the secrets changed");
                } else {
                    tracing::debug!("poll {polls}: no change");
                }
            }
            Err((source, e)) => {
                tracing::warn!(
                    "{source}: {e} (keeping the values read before; retrying in {:?})",
                    options.interval
                );
                health_tx.send_modify(|h| {
                    let (since, failures) = match h {
                        Health::Failing {
                            since, failures, ..
                        } => (*since, *failures + 1),
                        Health::Fresh => (Instant::now(), 1),
                    };
                    *h = Health::Failing {
                        since,
                        failures,
                        source,
                        error: e.to_string(),
                    };
                });
            }
        }
        polls_tx.send_replace(polls);
    }
}

/// `interval` plus a random part of up to 10% of it.
fn jittered(interval: Duration) -> Duration {
    interval + lockbox_core::jitter(interval.mul_f64(0.1))
}

/// True when `a` and `b` hold the same sources with the same names, values and binary flags.
fn same(a: &Loaded, b: &Loaded) -> bool {
    fn layer_eq(x: &Layer, y: &Layer) -> bool {
        x.label == y.label
            && x.entries.len() == y.entries.len()
            && x.entries.iter().zip(&y.entries).all(|(p, q)| {
                p.name == q.name
                    && p.binary == q.binary
                    && p.value.expose_bytes() == q.value.expose_bytes()
            })
    }
    a.layers.len() == b.layers.len() && a.layers.iter().zip(&b.layers).all(|(x, y)| layer_eq(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poll::tests::memory_source;
    use lockbox_core::{PutMode, SecretValue, SecretsManager};

    #[test]
    fn jitter_stays_within_ten_percent() {
        let base = Duration::from_secs(10);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(base)).collect();
        assert!(waits.iter().all(|w| *w >= base && *w <= base.mul_f64(1.1)));
        assert!(waits.iter().any(|w| *w != waits[0]), "no jitter at all");
    }

    #[tokio::test(start_paused = true)]
    async fn hands_out_a_new_map_only_when_something_changed() {
        let (m, name, source) = memory_source("").await;
        let sources = vec![source];
        let options = WatchOptions {
            interval: Duration::from_secs(1),
        };
        let mut w = Watcher::start(sources, options).await.unwrap();
        let mut polls = w.polls();
        // Two polls without a change: nothing handed out.
        polls.wait_for(|n| *n >= 2).await.unwrap();
        assert!(!w.loaded.has_changed().unwrap());
        m.put(&name, &SecretValue::from("two"), PutMode::Overwrite)
            .await
            .unwrap();
        let new = w.changed().await.unwrap();
        assert_eq!(new.by_name()["db/password"].value.expose_str(), Some("two"));
        let seen = *polls.borrow_and_update();
        polls.wait_for(|n| *n >= seen + 2).await.unwrap();
        assert!(!w.loaded.has_changed().unwrap());
        assert_eq!(*w.health().borrow(), Health::Fresh);
    }
}
