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
//! - A connection whose peer is still being looked up counts for none of these (so a flood
//!   refused by its peer limit takes no share while it is looked up); at most
//!   `max_conn + OVERFLOW_CONNECTIONS` may wait for their lookup, more are closed at once.
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
    /// Accepted, peer not yet known.
    pending: AtomicUsize,
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
            pending: AtomicUsize::new(0),
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

    /// A connection just accepted, until its peer is known; or `Overflow` when too many
    /// wait for that already.
    pub(crate) fn admit(self: &Arc<Self>) -> Result<Pending, Refusal> {
        if self.pending.load(Ordering::Relaxed) >= self.max_conn + OVERFLOW_CONNECTIONS {
            return Err(Refusal::Overflow);
        }
        self.pending.fetch_add(1, Ordering::Relaxed);
        Ok(Pending(self.clone()))
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

/// An accepted connection whose peer is being looked up.
#[derive(Debug)]
pub(crate) struct Pending(Arc<Admission>);

impl Pending {
    /// The connection is from `peer`: a slot (counted open, unproven and against the peer),
    /// or why not.
    pub(crate) fn join(self, peer: PeerKey) -> Result<Slot, Refusal> {
        let a = self.0.clone();
        drop(self);
        let mut peers = a.peers.lock().unwrap_or_else(|e| e.into_inner());
        if peers.get(&peer).copied().unwrap_or(0) >= a.per_peer {
            return Err(Refusal::Peer);
        }
        if a.unproven() >= a.max_conn - a.reserved {
            return Err(Refusal::Reserve);
        }
        if a.active() >= a.max_conn + OVERFLOW_CONNECTIONS {
            return Err(Refusal::Overflow);
        }
        *peers.entry(peer).or_insert(0) += 1;
        a.active.fetch_add(1, Ordering::Relaxed);
        a.unproven.fetch_add(1, Ordering::Relaxed);
        drop(peers);
        Ok(Slot {
            admission: a,
            peer,
            proven: AtomicBool::new(false),
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One connection's place in the counts, released when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    admission: Arc<Admission>,
    peer: PeerKey,
    proven: AtomicBool,
}

impl Slot {
    /// A request on this connection presented a valid token: it no longer counts as unproven
    /// (in all, nor for its peer).
    pub(crate) fn prove(&self) {
        if !self.proven.swap(true, Ordering::Relaxed) {
            self.release_unproven();
        }
    }

    fn release_unproven(&self) {
        let a = &self.admission;
        let mut peers = a.peers.lock().unwrap_or_else(|e| e.into_inner());
        a.unproven.fetch_sub(1, Ordering::Relaxed);
        if let Some(n) = peers.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                peers.remove(&self.peer);
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

    fn open(a: &Arc<Admission>, peer: PeerKey) -> Result<Slot, Refusal> {
        a.admit()?.join(peer)
    }

    #[test]
    fn peers_the_unproven_share_and_the_overflow_are_bounded() {
        let a = Arc::new(Admission::new(10, 4, 3));
        let (alice, bob) = (PeerKey::Uid(1000), PeerKey::Uid(1001));
        let mut held: Vec<Slot> = (0..4).map(|_| open(&a, alice).unwrap()).collect();
        assert_eq!(open(&a, alice).unwrap_err(), Refusal::Peer);
        // A connection of alice's that shows the token leaves her count.
        held[3].prove();
        held[3].prove();
        held.push(open(&a, alice).unwrap());
        assert_eq!(open(&a, alice).unwrap_err(), Refusal::Peer);
        assert_eq!((a.active(), a.unproven()), (5, 4));
        // Bob fills the rest of the unproven share (7 = 10 - 3)...
        for _ in 0..3 {
            held.push(open(&a, bob).unwrap());
        }
        assert_eq!(open(&a, bob).unwrap_err(), Refusal::Reserve);
        // ...token-less requests now get 429 past 7 open, token requests past 10.
        assert!(a.over_limit(false, false));
        assert!(!a.over_limit(false, true) && !a.over_limit(true, false));
        // Connections waiting for their lookup take no share.
        let waiting: Vec<Pending> = (0..20).map(|_| a.admit().unwrap()).collect();
        assert_eq!((a.active(), a.unproven()), (8, 7));
        drop(waiting);
        drop(held);
        assert_eq!((a.active(), a.unproven()), (0, 0));
        assert_eq!(a.pending.load(Ordering::Relaxed), 0);
        assert!(a.peers.lock().unwrap().is_empty());
    }
}
