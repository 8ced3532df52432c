//! The accept loop: connection admission (`admission.rs`), per-connection settings (IP TTL 1
//! and IPv6 hop limit 1, no delay), hyper's HTTP/1.1 connection with the agent's bounds over
//! a socket whose stalled writes time out (`conn_io.rs`), and the graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use lockbox_core::Result;
use tokio::net::TcpStream;

use crate::admission::{PeerKey, Refusal};
use crate::conn_io::{ConnIo, Pipeline};
use crate::peer::Lookups;
use crate::routes::{Conn, Reply, handle};
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

/// What a connection refused at once is sent (best effort, never waited for).
const REFUSED: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 25\r\nconnection: close\r\n\r\nConnection limit exceeded";

/// No network hops, as the agent does (IP TTL 1), for IPv6 too (unicast hop limit 1; and
/// TTL 1 for the IPv4 clients of a dual-stack socket). Set on the listener (its SYN-ACKs and
/// what accepted sockets inherit) and again on each accepted socket.
pub(crate) fn no_hops(socket: socket2::SockRef<'_>, v6: bool) -> std::io::Result<()> {
    if v6 {
        socket.set_unicast_hops_v6(1)?;
        // A dual-stack socket's IPv4 traffic; refused on an IPv6-only socket, which has none.
        let _ = socket.set_ttl_v4(1);
        Ok(())
    } else {
        socket.set_ttl_v4(1)
    }
}

/// Closes a refused connection at once, telling the client why if its socket takes it now.
fn refuse(state: &State, stream: TcpStream, why: Refusal) {
    state.metrics.connection_refused(why);
    let _ = stream.try_write(REFUSED);
}

/// Who the peer is for the per-peer limit: the uid owning its socket, else its address.
async fn peer_key(
    lookups: &Lookups,
    peer: SocketAddr,
    local: Option<SocketAddr>,
) -> (PeerKey, Option<u32>) {
    let uid = match local {
        Some(local) => lookups.uid(peer, local).await,
        None => None,
    };
    let key = match uid {
        Some(uid) => PeerKey::Uid(uid),
        None => PeerKey::Addr(peer.ip().to_canonical()),
    };
    (key, uid)
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
        let (lookups, lookups_task) = Lookups::spawn();
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
            let pending = match self.state.conns.admit() {
                Ok(pending) => pending,
                Err(why) => {
                    refuse(&self.state, stream, why);
                    continue;
                }
            };
            let _ = no_hops(socket2::SockRef::from(&stream), peer.is_ipv6());
            let _ = stream.set_nodelay(true);
            let local = stream.local_addr().ok();
            let state = self.state.clone();
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let write_timeout = self.write_timeout;
            let lookups = lookups.clone();
            tokio::spawn(async move {
                let (key, peer_uid) = peer_key(&lookups, peer, local).await;
                let slot = match pending.join(key) {
                    Ok(slot) => slot,
                    Err(why) => {
                        refuse(&state, stream, why);
                        return;
                    }
                };
                let pipeline = Arc::new(Pipeline::default());
                let metrics = state.metrics.clone();
                let io = ConnIo::new(stream, write_timeout, pipeline.clone(), move || {
                    metrics.write_timeout()
                });
                let conn = Conn {
                    slot,
                    peer_uid,
                    pipeline,
                };
                let service = hyper::service::service_fn(move |req| {
                    // Answered here when memory can: the future then holds only the response,
                    // never hyper's request (see routes.rs).
                    let reply = handle(&state, &conn, req);
                    async move {
                        Ok::<_, Infallible>(match reply {
                            Reply::Now(response) => response,
                            Reply::Later(read) => read.run().await,
                        })
                    }
                });
                let conn = builder.serve_connection(TokioIo::new(io), service);
                let conn = watcher.watch(conn);
                if let Err(e) = conn.await {
                    tracing::debug!("connection ended: {e}");
                }
            });
        }
        drop(self.listener);
        lookups_task.abort();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23 item 5: IPv6 answers carry hop limit 1 as IPv4 ones carry TTL 1 (before:
    /// only IP_TTL was set, and IPv6 sockets kept the default 64).
    #[tokio::test]
    async fn accepted_sockets_allow_no_hops_on_either_family() {
        for (addr, v6) in [("127.0.0.1:0", false), ("[::1]:0", true)] {
            let Ok(listener) = tokio::net::TcpListener::bind(addr).await else {
                eprintln!("skipped {addr}: cannot bind");
                continue;
            };
            let client = TcpStream::connect(listener.local_addr().unwrap()).await;
            let (stream, peer) = listener.accept().await.unwrap();
            assert_eq!(peer.is_ipv6(), v6);
            no_hops(socket2::SockRef::from(&stream), v6).unwrap();
            let s = socket2::SockRef::from(&stream);
            if v6 {
                assert_eq!(s.unicast_hops_v6().unwrap(), 1);
            } else {
                assert_eq!(s.ttl_v4().unwrap(), 1);
            }
            drop(client);
        }
    }

    /// The listener too: its SYN-ACKs, and the sockets it accepts, allow no hops.
    #[tokio::test]
    async fn the_listener_allows_no_hops_on_either_family() {
        for (listen, v6) in [("127.0.0.1:0", false), ("[::1]:0", true)] {
            let config = crate::ServeConfig::from_toml(&format!(
                "validate_credentials = false\nssrf_env_variables = [\"CARGO_MANIFEST_DIR\"]\n\
                 [lockbox]\nlisten = \"{listen}\""
            ))
            .unwrap();
            let sdk =
                lockbox_testkit::aws::sdk_config("http://127.0.0.1:9", Duration::from_secs(1));
            let Ok(server) = Server::start_with_sdk(config, &sdk).await else {
                eprintln!("skipped {listen}: cannot listen");
                continue;
            };
            let s = socket2::SockRef::from(&server.listener);
            if v6 {
                assert_eq!(s.unicast_hops_v6().unwrap(), 1);
            } else {
                assert_eq!(s.ttl_v4().unwrap(), 1);
            }
        }
    }
}
