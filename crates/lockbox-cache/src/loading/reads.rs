//! The lock-free read path: what a read finds in the map, without waiting.

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use lockbox_core::Result;
use papaya::Equivalent;

use super::entry::Entry;
use super::{Lookup, Shared};
use crate::load::{Key, Load};
use crate::stats::stripe;

impl<K: Key, L: Load<K>> Shared<K, L> {
    /// Runs `f` on the entry for `name`, if any, under a lock-free read guard.
    #[inline]
    pub(super) fn with_entry<Q, R>(
        &self,
        name: &Q,
        f: impl FnOnce(Option<&Entry<L::Value>>) -> R,
    ) -> R
    where
        Q: Equivalent<Arc<K>> + Hash + ?Sized,
    {
        let guard = self.map.guard();
        f(self.map.get(name, &guard))
    }

    /// The lock-free read path.
    #[inline]
    pub(crate) fn lookup(&self, name: &K) -> Lookup<L::Value> {
        let now = self.config.clock.coarse_nanos();
        self.with_entry(name, |entry| self.lookup_in(entry, now))
    }

    /// The common case alone: a value (not a remembered `NotFound`) that needs no refresh.
    /// Returns only the 8-byte handle, so nothing large is copied on the hot path.
    #[inline]
    pub(crate) fn fresh_value<Q>(&self, name: &Q) -> Option<L::Value>
    where
        Q: Equivalent<Arc<K>> + Hash + ?Sized,
    {
        let now = self.config.clock.coarse_nanos();
        self.with_entry(name, |entry| {
            let entry = entry?;
            let value = entry.outcome.as_ref().ok()?;
            if now >= entry.refresh_at {
                return None;
            }
            entry.touch(now);
            let stripe = stripe();
            self.counters.hit(stripe);
            Some(entry.value_for(value, stripe))
        })
    }

    /// What a read gets without waiting: the fresh value (the common case, checked first),
    /// else any usable answer (starting a refresh-ahead when due); `None` on a miss.
    #[inline]
    pub(crate) fn cached(self: &Arc<Self>, name: &K) -> Option<Result<L::Value>> {
        if let Some(value) = self.fresh_value(name) {
            return Some(Ok(value));
        }
        match self.lookup(name) {
            Lookup::Hit(answer) => Some(answer),
            Lookup::HitRefresh(answer) => {
                self.refresh_in_background(name);
                Some(answer)
            }
            Lookup::Miss => None,
        }
    }

    #[inline]
    fn lookup_in(&self, entry: Option<&Entry<L::Value>>, now: u64) -> Lookup<L::Value> {
        let Some(entry) = entry else {
            return Lookup::Miss;
        };
        if now < entry.refresh_at {
            entry.touch(now);
            self.counters.hit(stripe());
            return Lookup::Hit(entry.answer());
        }
        if now < entry.expires_at {
            entry.touch(now);
            self.counters.hit(stripe());
            let first = entry
                .refreshing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            return if first {
                Lookup::HitRefresh(entry.answer())
            } else {
                Lookup::Hit(entry.answer())
            };
        }
        Lookup::Miss
    }
}
