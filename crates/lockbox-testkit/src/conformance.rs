//! The behaviour every backend promises: one public async function per behaviour, each under
//! a fresh random prefix and leaving nothing behind when it passes, and
//! [`conformance_tests!`](crate::conformance_tests) to run each as its own test, so a failure
//! names the behaviour.
//!
//! ```ignore
//! lockbox_testkit::conformance_tests!(
//!     |_test| async { Some(Subject::new(MemoryBackend::new())) },
//!     Capabilities::default()
//! );
//! ```

use std::any::Any;
use std::sync::Arc;

use lockbox_core::{
    ErrorKind, PutMode, SecretName, SecretValue, SecretsManager, SecretsManagerExt,
};

/// What the backend under test can do. A behaviour that needs a missing capability passes
/// without calling the backend.
#[derive(Clone, Debug)]
pub struct Capabilities {
    /// Values that are not UTF-8 (SSM parameters cannot hold them).
    pub binary_values: bool,
    /// `list` by prefix.
    pub list: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            binary_values: true,
            list: true,
        }
    }
}

/// A backend under test, and whatever must live as long as it (a temporary directory; a
/// guard whose `Drop` checks what the test left behind).
pub struct Subject {
    /// The backend.
    pub backend: Arc<dyn SecretsManager>,
    _guard: Option<Box<dyn Any + Send>>,
}

impl Subject {
    /// `backend`, with nothing else to keep.
    pub fn new(backend: impl SecretsManager + 'static) -> Self {
        Self {
            backend: Arc::new(backend),
            _guard: None,
        }
    }

    /// Keeps `guard` until the behaviour has run; it is dropped after the backend.
    pub fn with_guard(mut self, guard: impl Any + Send) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }
}

/// Expands to one `#[tokio::test]` per behaviour in a module `conformance`, each running
/// that behaviour against the backend `factory` makes. `factory` is called with the test's
/// name and returns `Option<Subject>` (`None`: skipped, for example without an emulator, see
/// [`emulator`](crate::emulator)); `capabilities` is a [`Capabilities`].
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr, $capabilities:expr $(,)?) => {
        $crate::conformance_tests!(@each $factory, $capabilities;
            missing_secrets_are_not_found,
            create_reads_back_and_a_second_create_is_refused,
            overwrite_replaces_and_also_creates,
            long_values_keep_every_byte,
            binary_values_keep_every_byte,
            list_returns_exactly_ours_sorted,
            get_many_keeps_order_and_reports_per_name,
            read_prefix_returns_ours_with_values_sorted,
            racing_creates_have_exactly_one_winner,
            delete_removes_and_a_second_delete_is_not_found,
        );
    };
    (@each $factory:expr, $capabilities:expr; $($behaviour:ident),* $(,)?) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $behaviour() {
                    let factory = $factory;
                    let test: &'static str = concat!("conformance::", stringify!($behaviour));
                    let Some(subject) = factory(test).await else {
                        return;
                    };
                    let capabilities: $crate::conformance::Capabilities = $capabilities;
                    $crate::conformance::$behaviour(subject.backend.clone(), &capabilities).await;
                    drop(subject);
                }
            )*
        }
    };
}

fn name(base: &str, leaf: &str) -> SecretName {
    SecretName::new(format!("{base}/{leaf}")).expect("conformance names are valid")
}

/// A fresh prefix for one behaviour's names.
fn base() -> String {
    crate::prefix("conformance")
}

/// Deletes `names`, checking each is gone, and (when the backend lists) that nothing is left
/// under `base`.
async fn clean_up(
    b: &dyn SecretsManager,
    capabilities: &Capabilities,
    base: &str,
    names: &[SecretName],
) {
    let who = b.backend();
    for n in names {
        b.delete(n)
            .await
            .unwrap_or_else(|e| panic!("{who}: delete {n}: {e}"));
        assert!(
            !b.has(n).await.expect("has after delete"),
            "{who}: {n} still there after delete"
        );
    }
    if capabilities.list {
        assert!(
            b.list(&format!("{base}/"))
                .await
                .expect("list after cleanup")
                .is_empty(),
            "{who}: leftovers"
        );
    }
}

/// Absent secrets are NotFound to `get` and `delete`, and `has` says false.
pub async fn missing_secrets_are_not_found(backend: Arc<dyn SecretsManager>, _: &Capabilities) {
    let b = backend.as_ref();
    let who = b.backend();
    let missing = name(&base(), "missing");
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
}

/// A created secret reads back and `has` it; a second create is refused without touching the
/// value.
pub async fn create_reads_back_and_a_second_create_is_refused(
    backend: Arc<dyn SecretsManager>,
    capabilities: &Capabilities,
) {
    let b = backend.as_ref();
    let who = b.backend();
    let base = base();
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
    clean_up(b, capabilities, &base, &[a]).await;
}

/// Overwrite replaces a value, and creates an absent one (also below a nested name).
pub async fn overwrite_replaces_and_also_creates(
    backend: Arc<dyn SecretsManager>,
    capabilities: &Capabilities,
) {
    let b = backend.as_ref();
    let who = b.backend();
    let base = base();
    let a = name(&base, "alpha");
    b.put(&a, &SecretValue::from("first"), PutMode::Create)
        .await
        .expect("create");
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
    assert_eq!(
        b.get(&o).await.unwrap().expose_bytes(),
        b"o",
        "{who}: overwrite as create"
    );
    clean_up(b, capabilities, &base, &[a, o]).await;
}

/// Stores `value` at a fresh name, reads it back whole, and cleans up.
async fn round_trip(
    backend: Arc<dyn SecretsManager>,
    capabilities: &Capabilities,
    value: SecretValue,
    what: &str,
) {
    let b = backend.as_ref();
    let who = b.backend();
    let base = base();
    let n = name(&base, "value");
    b.create(&n, &value)
        .await
        .unwrap_or_else(|e| panic!("{who}: create {what}: {e}"));
    assert_eq!(
        b.get(&n).await.unwrap().expose_bytes(),
        value.expose_bytes(),
        "{who}: {what}"
    );
    clean_up(b, capabilities, &base, &[n]).await;
}

/// A 2,000-byte value keeps every byte.
pub async fn long_values_keep_every_byte(
    backend: Arc<dyn SecretsManager>,
    capabilities: &Capabilities,
) {
    let text: String = (0..2000)
        .map(|i| char::from(b'!' + (i % 90) as u8))
        .collect();
    round_trip(backend, capabilities, SecretValue::from(text), "long value").await;
}

/// A value of every byte from 255 down to 0 keeps every byte (capability `binary_values`).
pub async fn binary_values_keep_every_byte(
    backend: Arc<dyn SecretsManager>,
    capabilities: &Capabilities,
) {
    if capabilities.binary_values {
        let bytes: Vec<u8> = (0..=255u8).rev().collect();
        round_trip(
            backend,
            capabilities,
            SecretValue::new(bytes),
            "binary value",
        )
        .await;
    }
}

/// `list` returns exactly the names under a prefix, sorted, and nothing for a prefix no name
/// has (capability `list`).
pub async fn list_returns_exactly_ours_sorted(
    backend: Arc<dyn SecretsManager>,
    capabilities: &Capabilities,
) {
    if !capabilities.list {
        return;
    }
    let b = backend.as_ref();
    let who = b.backend();
    let base = base();
    let mut names = vec![
        name(&base, "alpha"),
        name(&base, "big"),
        name(&base, "nested/omega"),
    ];
    if capabilities.binary_values {
        names.push(name(&base, "binary"));
    }
    for n in &names {
        b.create(n, &SecretValue::from("v")).await.expect("create");
    }
    names.sort();
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
    clean_up(b, capabilities, &base, &names).await;
}

/// `get_many` answers one result per name, in the order asked, each with its own outcome.
pub async fn get_many_keeps_order_and_reports_per_name(
    backend: Arc<dyn SecretsManager>,
    capabilities: &Capabilities,
) {
    let b = backend.as_ref();
    let who = b.backend();
    let base = base();
    let a = name(&base, "alpha");
    let o = name(&base, "nested/omega");
    let missing = name(&base, "missing");
    b.create(&a, &SecretValue::from("second"))
        .await
        .expect("create");
    b.create(&o, &SecretValue::from("o")).await.expect("create");
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
    clean_up(b, capabilities, &base, &[a, o]).await;
}

/// `read_prefix` returns exactly the secrets under a prefix, sorted by name, each with its own
/// current value, and nothing for a prefix no name has (capability `list`).
pub async fn read_prefix_returns_ours_with_values_sorted(
    backend: Arc<dyn SecretsManager>,
    capabilities: &Capabilities,
) {
    if !capabilities.list {
        return;
    }
    let b = backend.as_ref();
    let who = b.backend();
    let base = base();
    let mut expected: Vec<(SecretName, Vec<u8>)> = vec![
        (name(&base, "omega"), b"last".to_vec()),
        (name(&base, "alpha"), b"first".to_vec()),
        (name(&base, "nested/deep"), b"n=1\nline two".to_vec()),
    ];
    if capabilities.binary_values {
        expected.push((name(&base, "binary"), vec![0, 159, 146, 150, 255]));
    }
    for (n, v) in &expected {
        b.create(n, &SecretValue::from(v.clone()))
            .await
            .expect("create");
    }
    expected.sort_by(|x, y| x.0.cmp(&y.0));
    let read = b
        .read_prefix(&format!("{base}/"))
        .await
        .expect("read_prefix");
    let got: Vec<(SecretName, Vec<u8>)> = read
        .iter()
        .map(|(n, v)| (n.clone(), v.expose_bytes().to_vec()))
        .collect();
    let got_names: Vec<&SecretName> = got.iter().map(|(n, _)| n).collect();
    let expected_names: Vec<&SecretName> = expected.iter().map(|(n, _)| n).collect();
    assert_eq!(got_names, expected_names, "{who}: read_prefix names");
    assert!(got == expected, "{who}: read_prefix values differ");
    let none = b
        .read_prefix(&format!("{base}/zzz"))
        .await
        .expect("read_prefix with no match");
    assert!(
        none.is_empty(),
        "{who}: read_prefix with no match returned {} secrets",
        none.len()
    );
    let names: Vec<SecretName> = expected.into_iter().map(|(n, _)| n).collect();
    clean_up(b, capabilities, &base, &names).await;
}

/// Of eight concurrent creates of one name, exactly one wins; the others are AlreadyExists.
pub async fn racing_creates_have_exactly_one_winner(
    backend: Arc<dyn SecretsManager>,
    capabilities: &Capabilities,
) {
    let who = backend.backend();
    let base = base();
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
    clean_up(backend.as_ref(), capabilities, &base, &[race]).await;
}

/// Delete removes a secret (`has` says false, nothing is left under the prefix); a second
/// delete is NotFound, so `delete_if_exists` says false.
pub async fn delete_removes_and_a_second_delete_is_not_found(
    backend: Arc<dyn SecretsManager>,
    capabilities: &Capabilities,
) {
    let b = backend.as_ref();
    let who = b.backend();
    let base = base();
    let a = name(&base, "alpha");
    b.create(&a, &SecretValue::from("first"))
        .await
        .expect("create");
    clean_up(b, capabilities, &base, std::slice::from_ref(&a)).await;
    assert!(
        !b.delete_if_exists(&a).await.expect("delete_if_exists"),
        "{who}: second delete"
    );
}
