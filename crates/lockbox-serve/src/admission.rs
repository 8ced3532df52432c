//! Who may hold a connection (issue 23 item 1): a process without the token must not be able
//! to keep one that has it from being served.
//!
//! - A connection is *unproven* until one of its requests presents a valid token (the SSRF
//!   token or a consumer's). Unproven connections are counted per peer: the Unix uid owning a
//!   loopback client's socket (found in `/proc/net/tcp{,6}`), else the client's IP address. A
//!   peer holding `max_conn_per_peer` unproven connections gets no more: a new one is closed
//!   at once.
//! - Unproven connections may hold at most `max_conn - token_reserved_conn` slots in all; past
//!   that a new connection is closed at once, so the reserved slots stay for token holders.
//! - Past `max_conn + OVERFLOW_CONNECTIONS` connections in all, a new one is closed at once.
//! - Per request: a request with a valid token gets 429 past `max_conn` connections (the
//!   agent's rule), `/ping` past `max_conn + 2`, any other request past
//!   `max_conn - token_reserved_conn`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Connections past `max_conn` are still answered (429) up to this many more; past that they
/// are closed at once, so a flood cannot exhaust memory or file descriptors.
pub(crate) const OVERFLOW_CONNECTIONS: usize = 64;

/// Whom connections are counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PeerKey {
    /// The uid owning the client's socket.
    Uid(u32),
    /// The client's address (its uid is not known).
    Addr(IpAddr),
}

/// Why a new connection was closed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// More than `max_conn + OVERFLOW_CONNECTIONS` in all.
    Overflow,
    /// The unproven share (`max_conn - token_reserved_conn`) is full.
    Reserve,
    /// The peer holds `max_conn_per_peer` unproven connections.
    Peer,
}

/// The connection counts and limits.
#[derive(Debug)]
pub(crate) struct Admission {
    max_conn: usize,
    per_peer: usize,
    reserved: usize,
    active: AtomicUsize,
    unproven: AtomicUsize,
    peers: Mutex<HashMap<PeerKey, usize>>,
}

impl Admission {
    pub(crate) fn new(max_conn: usize, per_peer: usize, reserved: usize) -> Self {
        Self {
            max_conn,
            per_peer,
            reserved: reserved.min(max_conn.saturating_sub(1)),
            active: AtomicUsize::new(0),
            unproven: AtomicUsize::new(0),
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// Connections open.
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Connections open that have not presented a valid token.
    pub(crate) fn unproven(&self) -> usize {
        self.unproven.load(Ordering::Relaxed)
    }

    /// A slot for a connection just accepted (counted open and unproven), or why not. The
    /// accept loop is the only caller, so the checks and the counts cannot race each other.
    pub(crate) fn admit(self: &Arc<Self>) -> Result<Slot, Refusal> {
        if self.active() >= self.max_conn + OVERFLOW_CONNECTIONS {
            return Err(Refusal::Overflow);
        }
        if self.unproven() >= self.max_conn - self.reserved {
            return Err(Refusal::Reserve);
        }
        self.active.fetch_add(1, Ordering::Relaxed);
        self.unproven.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            admission: self.clone(),
            peer: None,
            proven: AtomicBool::new(false),
        })
    }

    /// Whether a request must be answered 429: `ping` is `/ping`, `token` whether it presented
    /// a valid token.
    pub(crate) fn over_limit(&self, ping: bool, token: bool) -> bool {
        let limit = match (ping, token) {
            (true, _) => self.max_conn + 2,
            (false, true) => self.max_conn,
            (false, false) => self.max_conn - self.reserved,
        };
        self.active() > limit
    }
}

/// One connection's place in the counts, released when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    peer: Option<PeerKey>,
    proven: AtomicBool,
}

impl Slot {
    /// Counts the (unproven) connection against `peer`, or refuses it when the peer holds
    /// `max_conn_per_peer` unproven connections already.
    pub(crate) fn join(&mut self, peer: PeerKey) -> Result<(), Refusal> {
        let a = &self.admission;
        let mut peers = a.peers.lock().unwrap_or_else(|e| e.into_inner());
        let n = peers.entry(peer).or_insert(0);
        if *n >= a.per_peer {
            if *n == 0 {
                peers.remove(&peer);
            }
            return Err(Refusal::Peer);
        }
        *n += 1;
        self.peer = Some(peer);
        Ok(())
    }

    /// A request on this connection presented a valid token: it no longer counts as unproven
    /// (in all, nor for its peer).
    pub(crate) fn prove(&self) {
        if !self.proven.swap(true, Ordering::Relaxed) {
            self.release_unproven();
        }
    }

    fn release_unproven(&self) {
        let a = &self.admission;
        a.unproven.fetch_sub(1, Ordering::Relaxed);
        if let Some(peer) = self.peer {
            let mut peers = a.peers.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = peers.get_mut(&peer) {
                *n -= 1;
                if *n == 0 {
                    peers.remove(&peer);
                }
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.active.fetch_sub(1, Ordering::Relaxed);
        if !self.proven.load(Ordering::Relaxed) {
            self.release_unproven();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_the_unproven_share_and_the_overflow_are_bounded() {
        let a = Arc::new(Admission::new(10, 4, 3));
        let alice = PeerKey::Uid(1000);
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut s = a.admit().unwrap();
            s.join(alice).unwrap();
            held.push(s);
        }
        let mut fifth = a.admit().unwrap();
        assert_eq!(fifth.join(alice), Err(Refusal::Peer));
        drop(fifth);
        // A connection of alice's that shows the token leaves her count.
        held[3].prove();
        let mut s = a.admit().unwrap();
        s.join(alice).unwrap();
        let mut sixth = a.admit().unwrap();
        assert_eq!(sixth.join(alice), Err(Refusal::Peer));
        drop(sixth);
        drop((held.pop(), s));
        // Another peer fills the rest of the unproven share (7 = 10 - 3)...
        for _ in 0..4 {
            let mut s = a.admit().unwrap();
            s.join(PeerKey::Uid(1001)).unwrap();
            held.push(s);
        }
        assert_eq!(a.admit().unwrap_err(), Refusal::Reserve);
        // ...token-less requests now get 429 only past 7, token requests past 10.
        assert!(!a.over_limit(false, false));
        // A connection that shows the token frees an unproven slot.
        held[0].prove();
        held[0].prove();
        assert_eq!(a.unproven(), 6);
        let mut s = a.admit().unwrap();
        s.join(PeerKey::Addr("127.0.0.1".parse().unwrap())).unwrap();
        held.push(s);
        assert_eq!(a.active(), 8);
        assert!(a.over_limit(false, false));
        assert!(!a.over_limit(false, true) && !a.over_limit(true, false));
        drop(held);
        assert_eq!((a.active(), a.unproven()), (0, 0));
        assert!(a.peers.lock().unwrap().is_empty());
    }
}
