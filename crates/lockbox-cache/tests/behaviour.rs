//! The cache's behaviours, each on a probe backend with a manual clock: TTL, eviction order,
//! single-flight, batching boundaries, stale-if-error limits, negative caching, refresh-ahead,
//! invalidation. No assertion depends on how long anything took.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{config, n, probe, until, v};
use lockbox_cache::{Cache, CacheConfig, ManualClock};
use lockbox_core::{
    ErrorKind, MemoryBackend, PutMode, Retry, RetryPolicy, SecretName, SecretsManager,
    SecretsManagerExt, Version,
};
use lockbox_testkit::conformance::{Capabilities, Subject};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test]
async fn hits_are_served_until_the_ttl_then_refetched() {
    let clock = ManualClock::new();
    let probe = probe(0);
    probe.seed("k", "v1").await;
    let cache = Cache::new(
        Arc::clone(&probe),
        CacheConfig {
            ttl: secs(10),
            ..config(&clock)
        },
    );
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("v1"));
    probe.seed("k", "v2").await; // behind the cache's back
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("v1"));
    assert_eq!(probe.calls(), 1);
    clock.advance(Duration::from_millis(1));
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("v2"));
    assert_eq!(probe.calls(), 2);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.backend_calls), (1, 2, 2));
}

#[tokio::test]
async fn eviction_drops_the_least_recently_used_not_the_oldest_write() {
    let clock = ManualClock::new();
    let probe = probe(0);
    for k in ["a", "b", "c", "d"] {
        probe.seed(k, k).await;
    }
    let cache = Cache::new(
        Arc::clone(&probe),
        CacheConfig {
            max_entries: 3,
            ..config(&clock)
        },
    );
    for k in ["a", "b", "c"] {
        cache.get(&n(k)).await.unwrap();
        clock.advance(secs(1));
    }
    // `a` was written first but is used now; `b` becomes the least recently used.
    cache.get(&n("a")).await.unwrap();
    clock.advance(secs(1));
    cache.get(&n("d")).await.unwrap();
    assert_eq!(cache.len(), 3);
    assert!(!cache.contains(&n("b")), "b was least recently used");
    for k in ["a", "c", "d"] {
        assert!(cache.contains(&n(k)), "{k} must stay");
    }
    clock.advance(secs(1));
    cache.get(&n("e")).await.unwrap_err(); // a remembered NotFound is an entry too
    assert!(!cache.contains(&n("c")), "c is now least recently used");
    assert_eq!(cache.stats().evictions, 2);
}

#[tokio::test]
async fn eviction_drops_unservable_entries_before_used_ones() {
    let clock = ManualClock::new();
    let probe = probe(0);
    for k in ["a", "b", "c"] {
        probe.seed(k, k).await;
    }
    let cache = Cache::new(
        Arc::clone(&probe),
        CacheConfig {
            max_entries: 2,
            negative_ttl: secs(1),
            ..config(&clock)
        },
    );
    cache.get(&n("a")).await.unwrap();
    clock.advance(secs(1));
    cache.get(&n("gone")).await.unwrap_err();
    clock.advance(secs(5)); // `gone` is past its negative TTL: useless, though more recent
    cache.get(&n("c")).await.unwrap();
    assert!(cache.contains(&n("a")));
    assert!(!cache.contains(&n("gone")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_on_one_name_make_one_call_and_share_the_value() {
    let probe = probe(0);
    probe.seed("hot", "value").await;
    probe.close_gate();
    let cache = Cache::new(Arc::clone(&probe), CacheConfig::default());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let cache = cache.clone();
        tasks.spawn(async move { cache.get(&n("hot")).await });
    }
    until("all 200 readers wait", || cache.stats().misses == 200).await;
    until("the fetch reached the backend", || {
        probe.entered.load(Ordering::SeqCst) == 1
    })
    .await;
    probe.open_gate();
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap().expose_str(), Some("value"));
    }
    assert_eq!(probe.calls(), 1);
    assert_eq!(cache.stats().coalesced_waits, 199);
    assert_eq!(cache.stats().backend_calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_the_error_too() {
    let probe = probe(0);
    probe.fail_with("hot", Some(ErrorKind::Unavailable));
    probe.close_gate();
    let cache = Cache::new(Arc::clone(&probe), CacheConfig::default());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let cache = cache.clone();
        tasks.spawn(async move { cache.get(&n("hot")).await });
    }
    until("all 50 readers wait", || cache.stats().misses == 50).await;
    probe.open_gate();
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap_err().kind(), ErrorKind::Unavailable);
    }
    assert_eq!(probe.calls(), 1);
    // Errors are not cached: the next read asks again.
    probe.fail_with("hot", None);
    probe.seed("hot", "back").await;
    assert_eq!(
        cache.get(&n("hot")).await.unwrap().expose_str(),
        Some("back")
    );
    assert_eq!(probe.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn misses_arriving_together_go_to_get_many_in_one_batch() {
    let probe = probe(10);
    let names: Vec<SecretName> = (0..25).map(|i| n(&format!("s{i}"))).collect();
    for name in &names {
        probe.seed(name.as_str(), name.as_str()).await;
    }
    let cache = Cache::new(Arc::clone(&probe), CacheConfig::default());
    let mut tasks = tokio::task::JoinSet::new();
    for name in names.clone() {
        let cache = cache.clone();
        tasks.spawn(async move { (cache.get(&name).await.unwrap(), name) });
    }
    while let Some(r) = tasks.join_next().await {
        let (value, name) = r.unwrap();
        assert_eq!(value.expose_str(), Some(name.as_str()));
    }
    assert_eq!(*probe.batch_sizes.lock().unwrap(), vec![25]);
    assert_eq!(probe.requests(), 3, "25 names in requests of 10");
    assert_eq!(cache.stats().backend_calls, 1);
    assert_eq!(cache.stats().names_fetched, 25);
}

#[tokio::test(start_paused = true)]
async fn a_trickle_of_misses_keeps_the_batch_open_up_to_eight_windows() {
    let probe = probe(0);
    for i in 0..35 {
        probe.seed(&format!("t{i}"), "x").await;
    }
    let cache = Cache::new(
        Arc::clone(&probe),
        CacheConfig {
            batch_window: Duration::from_millis(10),
            ..CacheConfig::default()
        },
    );
    let trickle = |range: std::ops::Range<usize>| {
        let cache = cache.clone();
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for i in range {
                let cache = cache.clone();
                tasks.spawn(async move { cache.get(&n(&format!("t{i}"))).await.unwrap() });
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            while let Some(r) = tasks.join_next().await {
                r.unwrap();
            }
        }
    };
    // Five misses 3 ms apart: each arrives within a window of the last, so one batch.
    trickle(0..5).await;
    assert_eq!(*probe.batch_sizes.lock().unwrap(), vec![5]);
    // Thirty misses 3 ms apart never leave a quiet window: the batch closes after 8 windows
    // (80 ms, 27 misses) and the rest form the next one.
    trickle(5..35).await;
    assert_eq!(*probe.batch_sizes.lock().unwrap(), vec![5, 27, 3]);
}

/// Cold reads of `count` names through a cache over a backend that takes `chunk` names a
/// request: how many requests reached the backend, with concurrent `get`s and with `get_many`.
async fn requests_for(count: usize, chunk: usize) -> (usize, usize) {
    let names: Vec<SecretName> = (0..count).map(|i| n(&format!("p/{i}"))).collect();
    let mut out = [0; 2];
    for (round, slot) in out.iter_mut().enumerate() {
        let probe = probe(chunk);
        for name in &names {
            probe.seed(name.as_str(), "x").await;
        }
        let cache = Cache::new(Arc::clone(&probe), CacheConfig::default());
        if round == 0 {
            let mut tasks = tokio::task::JoinSet::new();
            for name in names.clone() {
                let cache = cache.clone();
                tasks.spawn(async move { cache.get(&name).await.unwrap() });
            }
            while let Some(r) = tasks.join_next().await {
                r.unwrap();
            }
        } else {
            for r in cache.get_many(&names).await {
                r.unwrap();
            }
        }
        assert_eq!(probe.calls(), 1, "{count} names: one call to the backend");
        *slot = probe.requests();
    }
    (out[0], out[1])
}

#[tokio::test(start_paused = true)]
async fn batching_boundaries_follow_the_backend_batch_sizes() {
    // SSM's GetParameters takes 10 names, Secrets Manager's BatchGetSecretValue 20.
    for (chunk, cases) in [
        (10, [(1, 1), (9, 1), (10, 1), (11, 2), (20, 2), (21, 3)]),
        (20, [(1, 1), (19, 1), (20, 1), (21, 2), (40, 2), (41, 3)]),
    ] {
        for (count, want) in cases {
            assert_eq!(
                requests_for(count, chunk).await,
                (want, want),
                "{count} names, batches of {chunk}"
            );
        }
    }
}

#[tokio::test]
async fn stale_if_error_serves_the_old_value_up_to_max_stale_then_fails() {
    let clock = ManualClock::new();
    let probe = probe(0);
    probe.seed("k", "old").await;
    let cache = Cache::new(
        Arc::clone(&probe),
        CacheConfig {
            ttl: secs(10),
            max_stale: secs(30),
            stale_retry_interval: secs(2),
            ..config(&clock)
        },
    );
    cache.get(&n("k")).await.unwrap();
    probe.fail_with("k", Some(ErrorKind::Throttled));
    clock.advance(secs(11));
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("old"));
    assert_eq!(probe.calls(), 2);
    assert_eq!(cache.stats().stale_served, 1);
    // Within the retry interval the stale value is served without asking again.
    clock.advance(secs(1));
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("old"));
    assert_eq!(probe.calls(), 2);
    // After it, the backend is asked again; still failing, still stale.
    clock.advance(secs(1)); // t = 13 s
    probe.fail_with("k", Some(ErrorKind::Unavailable));
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("old"));
    assert_eq!(probe.calls(), 3);
    // 10 s TTL + 30 s max staleness: at 40 s the error comes through.
    clock.advance(Duration::from_millis(26_999)); // t = 39.999 s
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("old"));
    clock.advance(Duration::from_millis(1)); // t = 40 s
    assert_eq!(
        cache.get(&n("k")).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    // And recovery replaces the stale value.
    probe.fail_with("k", None);
    probe.seed("k", "new").await;
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("new"));
}

#[tokio::test]
async fn stale_if_error_off_returns_the_error_at_expiry() {
    let clock = ManualClock::new();
    let probe = probe(0);
    probe.seed("k", "old").await;
    let cache = Cache::new(
        Arc::clone(&probe),
        CacheConfig {
            ttl: secs(10),
            max_stale: Duration::ZERO,
            ..config(&clock)
        },
    );
    cache.get(&n("k")).await.unwrap();
    probe.fail_with("k", Some(ErrorKind::Throttled));
    clock.advance(secs(10));
    assert_eq!(
        cache.get(&n("k")).await.unwrap_err().kind(),
        ErrorKind::Throttled
    );
}

#[tokio::test]
async fn not_found_and_permission_denied_are_never_masked() {
    for kind in [
        ErrorKind::NotFound,
        ErrorKind::PermissionDenied,
        ErrorKind::Unauthenticated,
        ErrorKind::Corrupt,
    ] {
        let clock = ManualClock::new();
        let probe = probe(0);
        probe.seed("k", "old").await;
        let cache = Cache::new(
            Arc::clone(&probe),
            CacheConfig {
                ttl: secs(10),
                max_stale: secs(3600),
                ..config(&clock)
            },
        );
        cache.get(&n("k")).await.unwrap();
        probe.fail_with("k", Some(kind));
        clock.advance(secs(11));
        assert_eq!(
            cache.get(&n("k")).await.unwrap_err().kind(),
            kind,
            "{kind:?}"
        );
        // The old value is gone for good, not merely hidden once.
        assert_eq!(
            cache.get(&n("k")).await.unwrap_err().kind(),
            kind,
            "{kind:?}"
        );
        assert_eq!(cache.stats().stale_served, 0);
    }
}

#[tokio::test]
async fn not_found_is_remembered_briefly_but_not_forever() {
    let clock = ManualClock::new();
    let probe = probe(0);
    let cache = Cache::new(
        Arc::clone(&probe),
        CacheConfig {
            negative_ttl: secs(5),
            ..config(&clock)
        },
    );
    for _ in 0..10 {
        assert_eq!(
            cache.get(&n("later")).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
    assert_eq!(probe.calls(), 1, "NotFound is remembered within its TTL");
    assert!(!cache.has(&n("later")).await.unwrap());
    assert_eq!(probe.calls(), 1);
    probe.seed("later", "arrived").await; // created elsewhere
    clock.advance(Duration::from_millis(4_999));
    assert!(cache.get(&n("later")).await.is_err());
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        cache.get(&n("later")).await.unwrap().expose_str(),
        Some("arrived")
    );
    assert_eq!(probe.calls(), 2);
}

#[tokio::test]
async fn negative_ttl_zero_remembers_no_not_found() {
    let clock = ManualClock::new();
    let probe = probe(0);
    let cache = Cache::new(
        Arc::clone(&probe),
        CacheConfig {
            negative_ttl: Duration::ZERO,
            ..config(&clock)
        },
    );
    for _ in 0..3 {
        cache.get(&n("nope")).await.unwrap_err();
    }
    assert_eq!(probe.calls(), 3);
    assert!(cache.is_empty());
}

#[tokio::test]
async fn writes_through_the_cache_invalidate() {
    let clock = ManualClock::new();
    let probe = probe(0);
    let cache = Cache::new(Arc::clone(&probe), config(&clock));
    assert!(cache.get(&n("k")).await.is_err()); // NotFound remembered
    cache.create(&n("k"), &v("one")).await.unwrap();
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("one"));
    cache
        .put(&n("k"), &v("two"), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("two"));
    assert_eq!(
        cache.create(&n("k"), &v("x")).await.unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    cache.delete(&n("k")).await.unwrap();
    assert_eq!(
        cache.get(&n("k")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn explicit_invalidate_forgets_one_or_all() {
    let clock = ManualClock::new();
    let probe = probe(0);
    probe.seed("a", "1").await;
    probe.seed("b", "1").await;
    let cache = Cache::new(Arc::clone(&probe), config(&clock));
    cache.get_many(&[n("a"), n("b")]).await;
    probe.seed("a", "2").await;
    probe.seed("b", "2").await;
    cache.invalidate(&n("a"));
    assert_eq!(cache.get(&n("a")).await.unwrap().expose_str(), Some("2"));
    assert_eq!(cache.get(&n("b")).await.unwrap().expose_str(), Some("1"));
    cache.invalidate_all();
    assert!(cache.is_empty());
    assert_eq!(cache.get(&n("b")).await.unwrap().expose_str(), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_in_flight_during_invalidate_is_not_stored() {
    let probe = probe(0);
    probe.seed("k", "before").await;
    probe.close_gate();
    let cache = Cache::new(Arc::clone(&probe), CacheConfig::default());
    let early = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get(&n("k")).await })
    };
    until("the fetch is at the backend", || {
        probe.entered.load(Ordering::SeqCst) == 1
    })
    .await;
    // A write lands while the read is in flight; the read still answers its callers, but the
    // cache must not keep its (possibly older) answer.
    cache
        .put(&n("k"), &v("after"), PutMode::Overwrite)
        .await
        .unwrap();
    probe.open_gate();
    early.await.unwrap().unwrap();
    assert_eq!(
        cache.get(&n("k")).await.unwrap().expose_str(),
        Some("after")
    );
    assert_eq!(probe.calls(), 2);
}

#[tokio::test]
async fn refresh_ahead_answers_at_once_and_refreshes_in_the_background() {
    let clock = ManualClock::new();
    let probe = probe(0);
    probe.seed("k", "v1").await;
    let cache = Cache::new(
        Arc::clone(&probe),
        CacheConfig {
            ttl: secs(10),
            refresh_ahead: Some(secs(3)),
            ..config(&clock)
        },
    );
    cache.get(&n("k")).await.unwrap();
    probe.seed("k", "v2").await;
    clock.advance(secs(6));
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("v1"));
    assert_eq!(
        probe.calls(),
        1,
        "before the refresh-ahead point nothing happens"
    );
    clock.advance(secs(2)); // 2 s of TTL left
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("v1"));
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("v1"));
    until("the background refresh is stored", || {
        cache
            .peek(&n("k"))
            .is_some_and(|r| r.unwrap().expose_str() == Some("v2"))
    })
    .await;
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("v2"));
    assert_eq!(probe.calls(), 2);
    assert_eq!(cache.stats().misses, 1);
    assert_eq!(cache.stats().background_refreshes, 1);
}

#[tokio::test]
async fn refresh_ahead_is_off_by_default() {
    let clock = ManualClock::new();
    let probe = probe(0);
    probe.seed("k", "v1").await;
    let cache = Cache::new(Arc::clone(&probe), config(&clock));
    assert!(cache.config().refresh_ahead.is_none());
    cache.get(&n("k")).await.unwrap();
    clock.advance(cache.config().ttl - Duration::from_millis(1));
    cache.get(&n("k")).await.unwrap();
    tokio::task::yield_now().await;
    assert_eq!(probe.calls(), 1);
    assert_eq!(cache.stats().background_refreshes, 0);
}

#[tokio::test]
async fn has_uses_the_cache_and_other_versions_pass_through() {
    let clock = ManualClock::new();
    let probe = probe(0);
    probe.seed("k", "v").await;
    let cache = Cache::new(Arc::clone(&probe), config(&clock));
    assert!(cache.has(&n("k")).await.unwrap()); // backend's has(): default get()
    cache.get(&n("k")).await.unwrap();
    let before = probe.calls();
    assert!(cache.has(&n("k")).await.unwrap());
    assert_eq!(
        cache
            .get_version(&n("k"), &Version::Current)
            .await
            .unwrap()
            .expose_str(),
        Some("v")
    );
    assert_eq!(probe.calls(), before);
    assert_eq!(
        cache
            .get_version(&n("k"), &Version::Number(1))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
}

#[tokio::test]
async fn a_fetch_that_panics_fails_its_readers_instead_of_stranding_them() {
    let probe = probe(0);
    probe.panic.store(true, Ordering::SeqCst);
    let cache = Cache::new(Arc::clone(&probe), CacheConfig::default());
    let e = cache.get(&n("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    probe.panic.store(false, Ordering::SeqCst);
    probe.seed("k", "fine").await;
    assert_eq!(cache.get(&n("k")).await.unwrap().expose_str(), Some("fine"));
}

#[tokio::test]
async fn stacks_with_retry_and_works_as_a_trait_object() {
    let probe = probe(0);
    probe.seed("k", "v").await;
    let retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
        max_elapsed: secs(5),
    };
    let secrets: Arc<dyn SecretsManager> = Arc::new(Cache::new(
        Retry::new(Arc::clone(&probe), retry),
        CacheConfig::default(),
    ));
    assert_eq!(secrets.get(&n("k")).await.unwrap().expose_str(), Some("v"));
    assert_eq!(secrets.get(&n("k")).await.unwrap().expose_str(), Some("v"));
    assert_eq!(secrets.backend(), "probe");
    assert_eq!(probe.calls(), 1);
    assert_eq!(secrets.list("").await.unwrap(), vec![n("k")]);
}

lockbox_testkit::conformance_tests!(
    |_test| async {
        Some(Subject::new(Cache::new(
            MemoryBackend::new(),
            CacheConfig::default(),
        )))
    },
    Capabilities::default()
);
