//! The accept loop: connection limits, per-connection settings (IP TTL 1, no delay), hyper's
//! HTTP/1.1 connection with the agent's bounds, and the graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use lockbox_core::Result;

use crate::routes::{Reply, handle};
use crate::server::Server;
use crate::state::State;

/// Largest request head hyper buffers (the agent's bound: 321 KiB).
const MAX_BUF_BYTES: usize = (65 + 256) * 1024;

/// hyper's own cap on request header lines when none is set. Below it hyper parses into an
/// array on the stack; a cap set on the builder instead initialises a buffer of that many
/// headers for every request. So a `max_headers` up to this is checked by the router, and
/// only a larger one is handed to hyper.
const HYPER_MAX_HEADERS: usize = 100;

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Connections past `max_conn` are still answered (429) up to this many more; past that they
/// are closed at once, so a flood cannot exhaust memory or file descriptors.
const OVERFLOW_CONNECTIONS: usize = 64;

/// Counts a connection while it lives.
struct ConnGuard(Arc<State>);

impl ConnGuard {
    fn new(state: Arc<State>) -> Self {
        state.active.fetch_add(1, Ordering::Relaxed);
        Self(state)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Server {
    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
    /// (up to 10 s) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(MAX_BUF_BYTES)
            .keep_alive(true);
        if self.max_headers > HYPER_MAX_HEADERS {
            builder.max_headers(self.max_headers);
        }
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let active = self.state.active.load(Ordering::Relaxed);
            if active >= self.state.max_conn + OVERFLOW_CONNECTIONS {
                drop(stream);
                continue;
            }
            // Prohibit network hops, as the agent does.
            let _ = stream.set_ttl(1);
            let _ = stream.set_nodelay(true);
            let guard = ConnGuard::new(self.state.clone());
            let state = self.state.clone();
            // Only looked up when some consumer is identified by uid.
            let local = if self.state.uid_consumers {
                stream.local_addr().ok()
            } else {
                None
            };
            let builder = builder.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _guard = guard;
                let peer_uid = match (state.uid_consumers, local) {
                    (true, Some(local)) => {
                        tokio::task::spawn_blocking(move || crate::peer::tcp_peer_uid(peer, local))
                            .await
                            .ok()
                            .flatten()
                    }
                    _ => None,
                };
                let service = hyper::service::service_fn(move |req| {
                    // Answered here when memory can: the future then holds only the response,
                    // never hyper's request (see routes.rs).
                    let reply = handle(&state, req, peer_uid);
                    async move {
                        Ok::<_, Infallible>(match reply {
                            Reply::Now(response) => response,
                            Reply::Later(read) => read.run().await,
                        })
                    }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = watcher.watch(conn);
                if let Err(e) = conn.await {
                    tracing::debug!("connection ended: {e}");
                }
            });
        }
        drop(self.listener);
        if let Some(refresh) = &self.refresh {
            refresh.abort();
        }
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(SHUTDOWN_GRACE) => {
                tracing::warn!("in-flight requests did not finish within {SHUTDOWN_GRACE:?}");
            }
        }
        Ok(())
    }
}
