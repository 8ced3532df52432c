//! The cache at scale and through the trait object: many fills keep the LRU bound exactly
//! (a model of the LRU order checked after every read), a hit through
//! `Arc<dyn SecretsManager>` is answered from the cache, and threads reading one secret all
//! get its value.

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use common::{config, n, probe};
use lockbox_cache::{Cache, CacheConfig, ManualClock};
use lockbox_core::{Retry, RetryPolicy, SecretsManager};
use proptest::prelude::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Reads of names from a pool larger than the cache: after every read the cache holds
    /// exactly the `max_entries` most recently read names (a model LRU), never more.
    #[test]
    fn many_fills_keep_exactly_the_most_recently_used(
        max_entries in 1usize..8,
        reads in proptest::collection::vec(0usize..24, 1..120),
    ) {
        rt().block_on(async {
            let clock = ManualClock::new();
            let probe = probe(0);
            for i in 0..24 {
                probe.seed(&format!("k{i}"), "v").await;
            }
            let cache = Cache::new(
                Arc::clone(&probe),
                CacheConfig { max_entries, ..config(&clock) },
            );
            let mut model: VecDeque<usize> = VecDeque::new();
            for &i in &reads {
                // Recency is kept to the millisecond: one second between reads orders them.
                clock.advance(Duration::from_secs(1));
                cache.get(&n(&format!("k{i}"))).await.unwrap();
                model.retain(|&k| k != i);
                model.push_back(i);
                if model.len() > max_entries {
                    model.pop_front();
                }
                assert_eq!(cache.len(), model.len());
                for &k in &model {
                    assert!(cache.contains(&n(&format!("k{k}"))), "k{k} must be held");
                }
            }
        });
    }
}

#[tokio::test]
async fn thousands_of_fills_stay_within_the_bound() {
    let clock = ManualClock::new();
    let probe = probe(0);
    for i in 0..3_000 {
        probe.seed(&format!("f{i}"), "v").await;
    }
    let cache = Cache::new(
        Arc::clone(&probe),
        CacheConfig {
            max_entries: 100,
            ..config(&clock)
        },
    );
    for i in 0..3_000 {
        clock.advance(Duration::from_millis(2));
        cache.get(&n(&format!("f{i}"))).await.unwrap();
        assert!(cache.len() <= 100);
    }
    assert_eq!(cache.len(), 100);
    for i in 2_900..3_000 {
        assert!(cache.contains(&n(&format!("f{i}"))));
    }
    assert_eq!(cache.stats().evictions, 2_900);
}

#[tokio::test]
async fn a_hit_through_the_trait_object_is_answered_from_the_cache() {
    let clock = ManualClock::new();
    let probe = probe(0);
    probe.seed("k", "v").await;
    let cache = Cache::new(Arc::clone(&probe), config(&clock));
    let handle: Arc<dyn SecretsManager> =
        Arc::new(Retry::new(cache.clone(), RetryPolicy::default()));
    assert!(handle.get_cached(&n("k")).is_none(), "nothing cached yet");
    assert_eq!(handle.get(&n("k")).await.unwrap().expose_str(), Some("v"));
    assert_eq!(probe.calls(), 1);
    let hit = handle.get_cached(&n("k")).expect("cached now").unwrap();
    assert_eq!(hit.expose_str(), Some("v"));
    for _ in 0..5 {
        assert_eq!(handle.get(&n("k")).await.unwrap().expose_str(), Some("v"));
    }
    assert_eq!(probe.calls(), 1, "hits make no call");
    assert_eq!(cache.stats().hits, 6);
    // A remembered NotFound is a cached answer too.
    assert!(handle.get(&n("gone")).await.unwrap_err().is_not_found());
    let cached = handle.get_cached(&n("gone")).expect("negative entry");
    assert!(cached.unwrap_err().is_not_found());
    // Past the TTL the fast path has nothing, and get fetches again.
    clock.advance(Duration::from_secs(301));
    assert!(handle.get_cached(&n("k")).is_none());
    assert_eq!(handle.get(&n("k")).await.unwrap().expose_str(), Some("v"));
    assert_eq!(probe.calls(), 3);
}

#[test]
fn threads_reading_one_secret_all_get_its_value() {
    let clock = ManualClock::new();
    let cache = rt().block_on(async {
        let probe = probe(0);
        probe.seed("k", "shared-value").await;
        let cache = Cache::new(probe, config(&clock));
        cache.get(&n("k")).await.unwrap();
        cache
    });
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let rt = rt();
                rt.block_on(async {
                    for _ in 0..1_000 {
                        let value = cache.get(&n("k")).await.unwrap();
                        assert_eq!(value.expose_str(), Some("shared-value"));
                    }
                });
            });
        }
    });
    assert_eq!(cache.stats().backend_calls, 1);
    // Hits are counted per thread without atomic adds: exact while no two threads share a
    // stripe, and never over-counted.
    assert!(cache.stats().hits <= 4_000);
}
