//! The behaviour every backend promises, as one suite each backend's tests run.
//!
//! ```ignore
//! lockbox_core::conformance::run(&backend, &Options::default()).await;
//! ```
//! Every check works under a fresh random prefix, so runs against a shared server never collide.

use std::sync::Arc;

use crate::{ErrorKind, PutMode, SecretName, SecretValue, SecretsManager, SecretsManagerExt};

/// What the backend under test can hold.
#[derive(Clone, Debug)]
pub struct Options {
    /// Values that are not UTF-8 (SSM parameters cannot hold them).
    pub binary_values: bool,
    /// Prefix for every name the suite creates; a random one is appended.
    pub prefix: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            binary_values: true,
            prefix: "conformance".into(),
        }
    }
}

/// A random lowercase tag for test names, such as `k3x9q2m1`.
pub fn random_tag() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)]))
        .collect()
}

fn name(base: &str, leaf: &str) -> SecretName {
    SecretName::new(format!("{base}/{leaf}")).expect("conformance names are valid")
}

/// Runs every check against `backend`, panicking with a message naming the broken promise.
/// Leaves nothing behind when it passes.
pub async fn run(backend: Arc<dyn SecretsManager>, options: &Options) {
    let base = format!("{}-{}", options.prefix, random_tag());
    let b = backend.as_ref();
    let who = b.backend();

    // Absent secrets are NotFound, and has() says false.
    let missing = name(&base, "missing");
    let err = b
        .get(&missing)
        .await
        .expect_err("get of a missing secret must fail");
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "{who}: get of a missing secret: {err}"
    );
    assert!(
        !b.has(&missing).await.expect("has() of a missing secret"),
        "{who}: has() must be false"
    );
    let err = b
        .delete(&missing)
        .await
        .expect_err("delete of a missing secret must fail");
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "{who}: delete of a missing secret: {err}"
    );

    // Create, read back, refuse a second create without touching the value.
    let a = name(&base, "alpha");
    b.put(&a, &SecretValue::from("first"), PutMode::Create)
        .await
        .expect("create");
    assert_eq!(
        b.get(&a).await.expect("get after create").expose_bytes(),
        b"first",
        "{who}"
    );
    assert!(
        b.has(&a).await.expect("has after create"),
        "{who}: has() after create"
    );
    let err = b
        .put(&a, &SecretValue::from("second"), PutMode::Create)
        .await
        .expect_err("second create");
    assert_eq!(
        err.kind(),
        ErrorKind::AlreadyExists,
        "{who}: second create: {err}"
    );
    assert_eq!(
        b.get(&a).await.unwrap().expose_bytes(),
        b"first",
        "{who}: a refused create changed the value"
    );

    // Overwrite replaces; it also creates.
    b.put(&a, &SecretValue::from("second"), PutMode::Overwrite)
        .await
        .expect("overwrite");
    assert_eq!(
        b.get(&a).await.unwrap().expose_bytes(),
        b"second",
        "{who}: overwrite"
    );
    let o = name(&base, "nested/omega");
    b.put(&o, &SecretValue::from("o"), PutMode::Overwrite)
        .await
        .expect("overwrite as create");

    // Values keep every byte.
    let big = name(&base, "big");
    let text: String = (0..2000)
        .map(|i| char::from(b'!' + (i % 90) as u8))
        .collect();
    b.create(&big, &SecretValue::from(text.clone()))
        .await
        .expect("create 2000-byte value");
    assert_eq!(
        b.get(&big).await.unwrap().expose_str(),
        Some(text.as_str()),
        "{who}: long value"
    );
    let mut names = vec![a.clone(), big.clone(), o.clone()];
    if options.binary_values {
        let bin = name(&base, "binary");
        let bytes: Vec<u8> = (0..=255u8).rev().collect();
        b.create(&bin, &SecretValue::new(bytes.clone()))
            .await
            .expect("create binary");
        assert_eq!(
            b.get(&bin).await.unwrap().expose_bytes(),
            &bytes[..],
            "{who}: binary value"
        );
        names.push(bin);
    }
    names.sort();

    // list() returns exactly ours, sorted.
    let listed = b.list(&format!("{base}/")).await.expect("list");
    assert_eq!(listed, names, "{who}: list under the suite's prefix");
    let none = b
        .list(&format!("{base}/zzz"))
        .await
        .expect("list with no match");
    assert!(
        none.is_empty(),
        "{who}: list with no match returned {none:?}"
    );

    // get_many keeps order and reports per name.
    let got = b.get_many(&[o.clone(), missing.clone(), a.clone()]).await;
    assert_eq!(got.len(), 3, "{who}: get_many result count");
    assert_eq!(
        got[0].as_ref().expect("get_many[0]").expose_bytes(),
        b"o",
        "{who}"
    );
    assert_eq!(
        got[1].as_ref().expect_err("get_many[1]").kind(),
        ErrorKind::NotFound,
        "{who}"
    );
    assert_eq!(
        got[2].as_ref().expect("get_many[2]").expose_bytes(),
        b"second",
        "{who}"
    );

    // Concurrent creates of one name: exactly one wins.
    let race = name(&base, "race");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let backend = backend.clone();
            let race = race.clone();
            tokio::spawn(async move {
                backend
                    .put(
                        &race,
                        &SecretValue::from(format!("writer-{i}")),
                        PutMode::Create,
                    )
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(()) => wins += 1,
            Err(e) => assert_eq!(
                e.kind(),
                ErrorKind::AlreadyExists,
                "{who}: racing create: {e}"
            ),
        }
    }
    assert_eq!(
        wins, 1,
        "{who}: racing creates must have exactly one winner"
    );
    names.push(race);

    // Delete removes; a second delete is NotFound.
    for n in &names {
        b.delete(n)
            .await
            .unwrap_or_else(|e| panic!("{who}: delete {n}: {e}"));
        assert!(
            !b.has(n).await.expect("has after delete"),
            "{who}: {n} still there after delete"
        );
    }
    assert!(
        !b.delete_if_exists(&a).await.expect("delete_if_exists"),
        "{who}: second delete"
    );
    assert!(
        b.list(&format!("{base}/"))
            .await
            .expect("list after cleanup")
            .is_empty(),
        "{who}: leftovers"
    );
}
