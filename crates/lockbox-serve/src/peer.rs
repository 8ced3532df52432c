//! The Unix uid on the other end of a loopback TCP connection, for consumers identified by
//! `Uid`.
//!
//! `SO_PEERCRED` exists only for Unix sockets, and the clients `serve` drops in for (the AWS
//! agent's and the Lambda extension's) speak HTTP over TCP to `127.0.0.1`. So the uid is read
//! the way `ss -e` does it: the client's own socket is listed in `/proc/net/tcp` (or `tcp6`)
//! with its local address (our peer), its remote address (our local address), state
//! ESTABLISHED and the uid that owns it. Linux only, same network namespace only, loopback
//! peers only; elsewhere no uid is found and only token consumers can be identified.
//!
//! The uid is that of whoever owns the client socket: a proxy (or any forwarder) running as a
//! uid lends that uid to everyone who can reach it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

/// TCP state ESTABLISHED in `/proc/net/tcp`.
const ESTABLISHED: &str = "01";

/// The uid owning the client socket `peer` connected to our `local`, when `peer` is a
/// loopback address and the kernel lists the socket. On a dual-stack (`[::]`) listener an IPv4
/// client shows as `::ffff:a.b.c.d`: its socket is listed in `/proc/net/tcp` under the IPv4
/// addresses (an `AF_INET` client), or in `tcp6` under the mapped ones (an `AF_INET6` client
/// that connected to a mapped address); both are looked at.
#[cfg(test)]
fn tcp_peer_uid(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    tcp_peer_uids(&[(peer, local)]).pop().flatten()
}

/// The uid of each connection (client socket, our local address) as `tcp_peer_uid` finds it,
/// reading each table once.
pub(crate) fn tcp_peer_uids(queries: &[(SocketAddr, SocketAddr)]) -> Vec<Option<u32>> {
    let wanted = |v6: bool| {
        queries.iter().any(|(peer, _)| {
            crate::config::is_loopback(peer.ip())
                && (peer.is_ipv6() == v6 || unmapped(*peer).is_some())
        })
    };
    let table = |wanted: bool, file: &str| -> HashMap<(SocketAddr, SocketAddr), u32> {
        if !wanted {
            return HashMap::new();
        }
        std::fs::read_to_string(file)
            .map(|t| established(t.lines()))
            .unwrap_or_default()
    };
    let (v4, v6) = (
        table(wanted(false), "/proc/net/tcp"),
        table(wanted(true), "/proc/net/tcp6"),
    );
    queries
        .iter()
        .map(|&(peer, local)| {
            if !crate::config::is_loopback(peer.ip()) {
                return None;
            }
            let in_v6 = || v6.get(&(peer, local)).copied();
            match (unmapped(peer), unmapped(local), peer) {
                (Some(p4), Some(l4), _) => v4.get(&(p4, l4)).copied().or_else(in_v6),
                (_, _, SocketAddr::V4(_)) => v4.get(&(peer, local)).copied(),
                _ => in_v6(),
            }
        })
        .collect()
}

/// Looks up peers' uids in batches: one reader of the tables at a time, answering every
/// connection that asked meanwhile. So a flood of connections costs one table read per round,
/// not one each (on a busy host the table has thousands of lines).
#[derive(Default)]
pub(crate) struct Lookups {
    queue: Mutex<Vec<Query>>,
    wake: tokio::sync::Notify,
}

type Query = (
    SocketAddr,
    SocketAddr,
    tokio::sync::oneshot::Sender<Option<u32>>,
);

impl Lookups {
    /// Starts the reader; it stops when the returned handle is aborted.
    pub(crate) fn spawn() -> (Arc<Self>, tokio::task::AbortHandle) {
        let me = Arc::new(Self::default());
        let worker = me.clone();
        let task = tokio::spawn(async move {
            loop {
                worker.wake.notified().await;
                let batch =
                    std::mem::take(&mut *worker.queue.lock().unwrap_or_else(|e| e.into_inner()));
                if batch.is_empty() {
                    continue;
                }
                let answered = tokio::task::spawn_blocking(move || {
                    let queries: Vec<_> = batch.iter().map(|(p, l, _)| (*p, *l)).collect();
                    let uids = tcp_peer_uids(&queries);
                    for ((_, _, tx), uid) in batch.into_iter().zip(uids) {
                        let _ = tx.send(uid);
                    }
                })
                .await;
                if answered.is_err() {
                    tracing::warn!("a peer uid lookup failed");
                }
            }
        });
        (me, task.abort_handle())
    }

    /// The uid owning the client socket `peer` connected to our `local` (see
    /// [`tcp_peer_uids`]).
    pub(crate) async fn uid(&self, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
        if !crate::config::is_loopback(peer.ip()) {
            return None;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((peer, local, tx));
        self.wake.notify_one();
        rx.await.ok().flatten()
    }
}

/// The IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) stands for.
fn unmapped(addr: SocketAddr) -> Option<SocketAddr> {
    match addr {
        SocketAddr::V6(v6) => v6
            .ip()
            .to_ipv4_mapped()
            .map(|v4| SocketAddr::new(IpAddr::V4(v4), v6.port())),
        SocketAddr::V4(_) => None,
    }
}

/// The owner uid of every ESTABLISHED socket in a `/proc/net/tcp{,6}` table, by (its local
/// address, its remote address).
fn established<L: AsRef<str>>(
    table: impl Iterator<Item = L>,
) -> HashMap<(SocketAddr, SocketAddr), u32> {
    let mut out = HashMap::new();
    for line in table.skip(1) {
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ...
        let fields: Vec<&str> = line.as_ref().split_whitespace().collect();
        if fields.len() < 8 || fields[3] != ESTABLISHED {
            continue;
        }
        if let (Some(local), Some(remote), Ok(uid)) =
            (parse(fields[1]), parse(fields[2]), fields[7].parse())
        {
            out.insert((local, remote), uid);
        }
    }
    out
}

/// The uid of the ESTABLISHED socket from `peer` to `local` in a table.
#[cfg(test)]
fn find_uid(table: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    established(table.lines()).get(&(peer, local)).copied()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): the kernel prints each 32-bit
/// word of the address as a native-endian number, and the port in host order.
fn parse(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_ne_bytes);
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn finds_the_established_client_socket() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0AD5 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 0100007F:C350 0100007F:0AD5 06 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:C351 0100007F:0AD5 01 00000000:00000000 00:00000000 00000000  1001        0 3 1 0 20 4 30 10 -1
   3: 0100007F:0AD5 0100007F:C351 01 00000000:00000000 00:00000000 00000000  1000        0 4 1 0 20 4 30 10 -1
";
        let server: SocketAddr = "127.0.0.1:2773".parse().unwrap();
        let client: SocketAddr = "127.0.0.1:50001".parse().unwrap();
        assert_eq!(find_uid(table, client, server), Some(1001));
        // TIME_WAIT (06) sockets have no owner.
        let gone: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        assert_eq!(find_uid(table, gone, server), None);
        let v6 = "00000000000000000000000001000000:0AD5";
        assert_eq!(parse(v6), Some("[::1]:2773".parse().unwrap()));
    }

    fn own_uid() -> Option<u32> {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().next()?.parse::<u32>().ok())
            })
    }

    /// Issue 23 item 5: on a dual-stack `[::]` listener an IPv4 client is seen as
    /// `::ffff:127.0.0.1`; its uid is found (before, only tcp6 was read and none was).
    #[test]
    fn an_ipv4_client_of_a_dual_stack_listener_is_found() {
        let Ok(listener) = std::net::TcpListener::bind("[::]:0") else {
            eprintln!("skipped: no IPv6 here");
            return;
        };
        let port = listener.local_addr().unwrap().port();
        let Ok(_client) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            eprintln!("skipped: the [::] listener is IPv6-only here (bindv6only)");
            return;
        };
        let (server_side, peer) = listener.accept().unwrap();
        assert!(unmapped(peer).is_some(), "{peer}");
        let local = server_side.local_addr().unwrap();
        assert_eq!(tcp_peer_uid(peer, local), own_uid());
        assert!(own_uid().is_some());
    }

    #[test]
    fn a_real_loopback_connection_is_ours() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        if let Some(uid) = own_uid() {
            assert_eq!(
                tcp_peer_uid(peer, listener.local_addr().unwrap()),
                Some(uid)
            );
        }
    }
}
