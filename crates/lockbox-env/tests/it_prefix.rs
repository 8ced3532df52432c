//! The batched read of a whole prefix, against the emulator `cargo xtask` starts (skipped with
//! a note without it): 100 secrets are read in the batched number of calls, counted by an SDK
//! interceptor that sees every request the client sends (the emulator does not count calls).
//! And a watch's polls ([`Poller`]): a poll that finds nothing changed costs the tag listing
//! only; a change, a deletion and a new secret move exactly those values.

use lockbox_testkit::aws::{aws_sdk_secretsmanager, aws_sdk_ssm};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use lockbox_core::{PutMode, SecretName, SecretValue, SecretsManager};
use lockbox_env::{Binary, Loaded, Poller, Source};
use lockbox_testkit::aws::{ATTEMPT_TIMEOUT, sdk_config, secretsmanager_settings, ssm_settings};
use lockbox_testkit::{emulator, prefix};

/// Counts requests by their `x-amz-target` (`AmazonSSM.GetParametersByPath`, ...).
#[derive(Clone, Debug, Default)]
struct Calls(Arc<Mutex<BTreeMap<String, usize>>>);

impl Calls {
    fn of(&self, op: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.ends_with(&format!(".{op}")))
            .map(|(_, n)| n)
            .sum()
    }
    fn total(&self) -> usize {
        self.0.lock().unwrap().values().sum()
    }
    fn reset(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?")
            .to_owned();
        *self.0.lock().unwrap().entry(target).or_default() += 1;
        Ok(())
    }
}

const COUNT: usize = 100;

/// Awaits `$op` (an expression evaluated again for each attempt) until it does not fail
/// transiently, at most 10 times: moto serves requests on threads and answers HTTP 500 when
/// two of them race over its tables (the tests run in parallel on one server).
macro_rules! transient {
    ($op:expr) => {{
        let mut attempts = 0;
        loop {
            match $op.await {
                Err(e) if e.is_retryable() && attempts < 10 => {
                    attempts += 1;
                    eprintln!("retrying after a transient error: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => break other,
            }
        }
    }};
}

async fn fill(backend: &dyn SecretsManager) {
    for i in 0..COUNT {
        let name = SecretName::new(format!("svc/key-{i:03}")).unwrap();
        let value = SecretValue::from(format!("value-{i}"));
        transient!(backend.put(&name, &value, PutMode::Overwrite)).unwrap();
    }
}

async fn check(backend: Arc<dyn SecretsManager>) {
    let vars = lockbox_env::variables(backend.clone(), "svc/", false, Binary::Refuse)
        .await
        .unwrap();
    assert_eq!(vars.len(), COUNT);
    assert_eq!(vars["KEY_042"], "value-42");
    let loaded = lockbox_env::load(&[Source::Backend {
        backend,
        prefix: "svc/key-00".into(),
        label: "test".into(),
    }])
    .await
    .unwrap();
    assert_eq!(loaded.len(), 10);
}

#[tokio::test]
async fn it_ssm_reads_100_secrets_in_10_pages() {
    let Some(endpoint) = emulator("it_ssm_reads_100_secrets_in_10_pages") else {
        return;
    };
    let calls = Calls::default();
    let conf = aws_sdk_ssm::config::Builder::from(&sdk_config(&endpoint, ATTEMPT_TIMEOUT))
        .interceptor(calls.clone())
        .build();
    let backend = lockbox_ssm::SsmBackend::with_client(
        aws_sdk_ssm::Client::from_conf(conf),
        ssm_settings("/lockbox-it", &prefix("env")),
    )
    .unwrap();
    fill(&backend).await;
    let backend: Arc<dyn SecretsManager> = Arc::new(backend);
    let read = transient!({
        calls.reset();
        backend.read_prefix("svc/")
    })
    .unwrap();
    assert_eq!(read.len(), COUNT);
    assert_eq!(read[7].1.expose_str(), Some("value-7"), "decrypted values");
    // GetParametersByPath answers 10 parameters a call, names and values together; after a
    // full last page the service may still hand out a NextToken, whose page is empty (moto
    // does: 11 calls).
    let pages = calls.of("GetParametersByPath");
    assert!(pages == COUNT / 10 || pages == COUNT / 10 + 1, "{calls:?}");
    assert_eq!(calls.total(), pages, "{calls:?}");
    eprintln!("SSM, {COUNT} secrets: {calls:?}");
    calls.reset();
    check(backend).await;
    assert_eq!(calls.of("GetParameter"), 0, "{calls:?}");
}

#[tokio::test]
async fn it_secretsmanager_reads_100_secrets_in_batches() {
    let Some(endpoint) = emulator("it_secretsmanager_reads_100_secrets_in_batches") else {
        return;
    };
    let calls = Calls::default();
    let conf =
        aws_sdk_secretsmanager::config::Builder::from(&sdk_config(&endpoint, ATTEMPT_TIMEOUT))
            .interceptor(calls.clone())
            .build();
    let backend = lockbox_secretsmanager::SecretsManagerBackend::with_client(
        aws_sdk_secretsmanager::Client::from_conf(conf),
        secretsmanager_settings("lockbox-it", &prefix("env")),
    )
    .unwrap();
    fill(&backend).await;
    let backend: Arc<dyn SecretsManager> = Arc::new(backend);
    let read = transient!({
        calls.reset();
        backend.read_prefix("svc/")
    })
    .unwrap();
    assert_eq!(read.len(), COUNT);
    assert_eq!(read[7].1.expose_str(), Some("value-7"));
    // One listing (ListSecrets answers up to 100 names a page), then BatchGetSecretValue with
    // 20 ids a call; never one GetSecretValue per name.
    let list = calls.of("ListSecrets");
    assert_eq!(calls.of("BatchGetSecretValue"), COUNT / 20, "{calls:?}");
    assert_eq!(calls.of("GetSecretValue"), 0, "{calls:?}");
    assert!(list >= 1 && list <= COUNT.div_ceil(100) + 1, "{calls:?}");
    assert_eq!(calls.total(), list + COUNT / 20, "{calls:?}");
    eprintln!("Secrets Manager, {COUNT} secrets: {calls:?}");
    calls.reset();
    check(backend).await;
    assert_eq!(calls.of("GetSecretValue"), 0, "{calls:?}");
}

fn value_of<'a>(loaded: &'a Loaded, name: &str) -> Option<&'a str> {
    loaded
        .by_name()
        .get(name)
        .and_then(|e| e.value.expose_str())
}

/// Polls `svc/` of `backend` (filled with [`COUNT`] secrets): the first poll reads everything;
/// the second, with nothing changed, only lists tags (`listing`, at most `max_pages` calls);
/// after one change, one deletion and one new secret, the third reads those two values in
/// one `read_op` call and notices the deletion.
async fn polls_move_only_what_changed(
    backend: Arc<dyn SecretsManager>,
    calls: &Calls,
    listing: &str,
    max_pages: usize,
    read_op: &str,
) {
    let mut poller = Poller::new(vec![Source::Backend {
        backend: backend.clone(),
        prefix: "svc/".into(),
        label: "test".into(),
    }]);
    let first = transient!(poller.poll()).unwrap();
    assert_eq!(first.len(), COUNT);
    assert_eq!(value_of(&first, "svc/key-042"), Some("value-42"));
    let second = transient!({
        calls.reset();
        poller.poll()
    })
    .unwrap();
    assert_eq!(second.len(), COUNT);
    assert_eq!(value_of(&second, "svc/key-042"), Some("value-42"));
    let pages = calls.of(listing);
    assert!(pages >= 1 && pages <= max_pages, "{calls:?}");
    assert_eq!(
        calls.total(),
        pages,
        "an unchanged poll lists only: {calls:?}"
    );
    eprintln!("unchanged poll of {COUNT} secrets: {calls:?}");

    let changed = SecretName::new("svc/key-042").unwrap();
    let deleted = SecretName::new("svc/key-007").unwrap();
    let added = SecretName::new("svc/key-new").unwrap();
    let rotated = SecretValue::from("rotated");
    transient!(backend.put(&changed, &rotated, PutMode::Overwrite)).unwrap();
    // A retried delete may find its first attempt applied.
    if let Err(e) = transient!(backend.delete(&deleted)) {
        assert!(e.is_not_found(), "{e}");
    }
    let fresh = SecretValue::from("fresh");
    transient!(backend.put(&added, &fresh, PutMode::Overwrite)).unwrap();
    let third = transient!({
        calls.reset();
        poller.poll()
    })
    .unwrap();
    assert_eq!(value_of(&third, "svc/key-042"), Some("rotated"));
    assert_eq!(value_of(&third, "svc/key-new"), Some("fresh"));
    assert_eq!(
        value_of(&third, "svc/key-007"),
        None,
        "the deletion is noticed"
    );
    assert_eq!(value_of(&third, "svc/key-043"), Some("value-43"));
    assert_eq!(third.len(), COUNT);
    assert_eq!(calls.of(read_op), 1, "two values in one read: {calls:?}");
    assert_eq!(calls.total(), calls.of(listing) + 1, "{calls:?}");
    let fourth = transient!({
        calls.reset();
        poller.poll()
    })
    .unwrap();
    assert_eq!(value_of(&fourth, "svc/key-042"), Some("rotated"));
    assert_eq!(calls.total(), calls.of(listing), "quiet again: {calls:?}");
}

#[tokio::test]
async fn it_ssm_polls_list_versions_and_read_only_changes() {
    let Some(endpoint) = emulator("it_ssm_polls_list_versions_and_read_only_changes") else {
        return;
    };
    let calls = Calls::default();
    let conf = aws_sdk_ssm::config::Builder::from(&sdk_config(&endpoint, ATTEMPT_TIMEOUT))
        .interceptor(calls.clone())
        .build();
    let backend = lockbox_ssm::SsmBackend::with_client(
        aws_sdk_ssm::Client::from_conf(conf),
        ssm_settings("/lockbox-it", &prefix("poll")),
    )
    .unwrap();
    fill(&backend).await;
    // DescribeParameters answers up to 50 a page on AWS; moto 5.2 answers 10 whatever
    // MaxResults says, and hands out a NextToken after a full last page (an empty page): 11.
    polls_move_only_what_changed(
        Arc::new(backend),
        &calls,
        "DescribeParameters",
        COUNT / 10 + 1,
        "GetParameters",
    )
    .await;
}

#[tokio::test]
async fn it_secretsmanager_polls_list_versions_and_read_only_changes() {
    let Some(endpoint) = emulator("it_secretsmanager_polls_list_versions_and_read_only_changes")
    else {
        return;
    };
    let calls = Calls::default();
    let conf =
        aws_sdk_secretsmanager::config::Builder::from(&sdk_config(&endpoint, ATTEMPT_TIMEOUT))
            .interceptor(calls.clone())
            .build();
    let backend = lockbox_secretsmanager::SecretsManagerBackend::with_client(
        aws_sdk_secretsmanager::Client::from_conf(conf),
        secretsmanager_settings("lockbox-it", &prefix("poll")),
    )
    .unwrap();
    fill(&backend).await;
    // ListSecrets answers 100 a page (and maybe an empty page after a full last one).
    polls_move_only_what_changed(
        Arc::new(backend),
        &calls,
        "ListSecrets",
        COUNT / 100 + 1,
        "BatchGetSecretValue",
    )
    .await;
}
