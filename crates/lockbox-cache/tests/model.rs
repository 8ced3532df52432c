//! Property: over the in-memory backend, the cache answers exactly what the backend would, for
//! any interleaving of writes through the cache, reads, invalidations and passing time.

use std::sync::Arc;
use std::time::Duration;

use lockbox_cache::{Cache, CacheConfig, ManualClock};
use lockbox_core::{MemoryBackend, PutMode, Result, SecretName, SecretValue, SecretsManager};
use proptest::prelude::*;

const NAMES: [&str; 4] = ["a", "b", "dir/c", "dir/d"];

#[derive(Clone, Debug)]
enum Op {
    Put(usize, u8, bool),
    Delete(usize),
    Get(usize),
    GetMany(Vec<usize>),
    Has(usize),
    Invalidate(usize),
    InvalidateAll,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0..NAMES.len();
    prop_oneof![
        3 => (name.clone(), any::<u8>(), any::<bool>()).prop_map(|(n, v, c)| Op::Put(n, v, c)),
        1 => name.clone().prop_map(Op::Delete),
        5 => name.clone().prop_map(Op::Get),
        2 => prop::collection::vec(name.clone(), 0..6).prop_map(Op::GetMany),
        1 => name.clone().prop_map(Op::Has),
        1 => name.prop_map(Op::Invalidate),
        1 => Just(Op::InvalidateAll),
        2 => (0u64..20_000).prop_map(Op::Advance),
    ]
}

/// Values and error kinds: what a caller can observe.
fn seen(r: &Result<SecretValue>) -> std::result::Result<Vec<u8>, lockbox_core::ErrorKind> {
    r.as_ref()
        .map(|v| v.expose_bytes().to_vec())
        .map_err(|e| e.kind())
}

fn name(i: usize) -> SecretName {
    SecretName::new(NAMES[i]).unwrap()
}

async fn check(ops: Vec<Op>, config: CacheConfig, clock: ManualClock) {
    let backend = Arc::new(MemoryBackend::new());
    let cache = Cache::new(Arc::clone(&backend), config);
    for op in ops {
        match op {
            Op::Put(i, v, create) => {
                let mode = if create {
                    PutMode::Create
                } else {
                    PutMode::Overwrite
                };
                let existed = backend.has(&name(i)).await.unwrap();
                let r = cache.put(&name(i), &SecretValue::new(vec![v]), mode).await;
                assert_eq!(r.is_err(), create && existed);
            }
            Op::Delete(i) => {
                let existed = backend.has(&name(i)).await.unwrap();
                assert_eq!(cache.delete(&name(i)).await.is_ok(), existed);
            }
            Op::Get(i) => {
                let want = seen(&backend.get(&name(i)).await);
                assert_eq!(seen(&cache.get(&name(i)).await), want, "get {}", NAMES[i]);
            }
            Op::GetMany(is) => {
                let names: Vec<SecretName> = is.iter().map(|&i| name(i)).collect();
                let got = cache.get_many(&names).await;
                assert_eq!(got.len(), names.len());
                for (n, r) in names.iter().zip(&got) {
                    assert_eq!(seen(r), seen(&backend.get(n).await), "get_many {n}");
                }
            }
            Op::Has(i) => {
                assert_eq!(
                    cache.has(&name(i)).await.unwrap(),
                    backend.has(&name(i)).await.unwrap()
                );
            }
            Op::Invalidate(i) => cache.invalidate(&name(i)),
            Op::InvalidateAll => cache.invalidate_all(),
            Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn cache_answers_what_the_backend_would(
        ops in prop::collection::vec(op(), 1..60),
        max_entries in 1usize..5,
        refresh_ahead in any::<bool>(),
    ) {
        let clock = ManualClock::new();
        let config = CacheConfig {
            ttl: Duration::from_secs(10),
            negative_ttl: Duration::from_secs(3),
            max_entries,
            refresh_ahead: refresh_ahead.then(|| Duration::from_secs(4)),
            batch_window: Duration::ZERO,
            clock: clock.clock(),
            ..CacheConfig::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(check(ops, config, clock));
    }
}
