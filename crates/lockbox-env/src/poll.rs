//! One poll of the sources, moving values only for what changed where a backend can tell
//! ([`SecretsManager::version_tags`](lockbox_core::SecretsManager::version_tags)).

use std::collections::HashMap;

use lockbox_core::{Error, ErrorKind, Result, SecretName, SecretValue};

use crate::source::{Entry, Layer, Loaded, Source, read};

/// Reads sources poll after poll. For a backend that lists version tags (Secrets Manager:
/// ListSecrets, 100 secrets a call; SSM: DescribeParameters, 50 a call), a poll lists the tags
/// and reads the values of only the secrets whose tag is new or changed; the first poll reads
/// every value. Other backends, sealed stores, and backends whose tag listing is refused
/// (access denied: said once in a warning) are read whole every poll.
pub struct Poller {
    sources: Vec<Source>,
    states: Vec<State>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

/// What a poll of one source remembers from the last one.
#[derive(Default)]
enum State {
    /// Not polled yet, or its last poll read it whole without tags.
    #[default]
    Fresh,
    /// Each secret's tag and entry as of the last poll.
    Tagged(HashMap<String, (Option<String>, Entry)>),
    /// Its tags cannot be listed: read whole every poll.
    Whole,
}

impl Poller {
    /// Sources to poll, in order (later sources win, as with [`load`](crate::load)).
    pub fn new(sources: Vec<Source>) -> Self {
        let states = sources.iter().map(|_| State::Fresh).collect();
        Self { sources, states }
    }

    /// The sources polled.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Reads every source once, moving only changed values where it can. A failed poll
    /// changes nothing remembered: the next one compares with the last that worked.
    pub async fn poll(&mut self) -> Result<Loaded> {
        self.poll_named().await.map_err(|(_, e)| e)
    }

    /// [`poll`](Self::poll), a failure coming with the label of the source that failed.
    pub(crate) async fn poll_named(&mut self) -> std::result::Result<Loaded, (String, Error)> {
        let mut layers = Vec::with_capacity(self.sources.len());
        for (source, state) in self.sources.iter().zip(self.states.iter_mut()) {
            let layer = poll_one(source, state)
                .await
                .map_err(|e| (label(source).to_owned(), e))?;
            layers.push(layer);
        }
        Ok(Loaded { layers })
    }
}

/// The label of a source, for messages.
fn label(source: &Source) -> &str {
    match source {
        Source::Backend { label, .. } | Source::Store { label, .. } => label,
    }
}

async fn poll_one(source: &Source, state: &mut State) -> Result<Layer> {
    let Source::Backend {
        backend,
        prefix,
        label,
    } = source
    else {
        return read(source).await;
    };
    if matches!(state, State::Whole) {
        return read(source).await;
    }
    let tags = match backend.version_tags(prefix).await {
        Ok(tags) => tags,
        Err(e) if e.kind() == ErrorKind::Unsupported => {
            *state = State::Whole;
            return read(source).await;
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            // Not "nothing changed", not "nothing there": read the values instead.
            tracing::warn!(
                "{label}: listing version tags was refused ({e}); every poll now reads every \
                 value (grant the listing action for cheaper polls)"
            );
            *state = State::Whole;
            return read(source).await;
        }
        Err(e) => return Err(e),
    };
    let known = match state {
        State::Tagged(known) => Some(&*known),
        _ => None,
    };
    // A secret is read when it is new, its tag changed, or its tag is unknown.
    let is_stale: Vec<bool> = tags
        .iter()
        .map(|(name, tag)| {
            tag.is_none()
                || known
                    .and_then(|k| k.get(name.as_str()))
                    .is_none_or(|(old, _)| old != tag)
        })
        .collect();
    let stale: Vec<SecretName> = tags
        .iter()
        .zip(&is_stale)
        .filter(|(_, s)| **s)
        .map(|((name, _), _)| name.clone())
        .collect();
    let values = if stale.is_empty() {
        Vec::new()
    } else {
        backend.get_many(&stale).await
    };
    let mut fresh: HashMap<String, SecretValue> = HashMap::with_capacity(stale.len());
    for (name, value) in stale.iter().zip(values) {
        match value {
            Ok(v) => {
                fresh.insert(name.as_str().to_owned(), v);
            }
            // Listed, then gone before its read: absent for this poll (and read again at
            // the next, since its tag is not remembered).
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    let mut remembered = HashMap::with_capacity(tags.len());
    let mut layer = Vec::with_capacity(tags.len());
    for ((name, tag), stale) in tags.into_iter().zip(is_stale) {
        let key = name.as_str().to_owned();
        let entry = if stale {
            match fresh.remove(&key) {
                Some(value) => Entry {
                    binary: value.expose_str().is_none(),
                    name: key.clone(),
                    value,
                },
                None => continue,
            }
        } else {
            match known.and_then(|k| k.get(&key)) {
                Some((_, old)) => old.clone(),
                None => continue,
            }
        };
        layer.push(entry.clone());
        remembered.insert(key, (tag, entry));
    }
    *state = State::Tagged(remembered);
    Ok(Layer {
        label: label.clone(),
        entries: layer,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use async_trait::async_trait;
    use lockbox_core::{MemoryBackend, PutMode, SecretsManager};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// Memory with version tags (a counter bumped by each write), a switch that makes the tag
    /// listing answer access denied, and a count of the values read.
    #[derive(Debug, Default)]
    struct Tagged {
        inner: MemoryBackend,
        versions: Mutex<HashMap<String, u64>>,
        deny: AtomicBool,
        fail: AtomicBool,
        reads: AtomicUsize,
        listings: AtomicUsize,
    }

    #[async_trait]
    impl SecretsManager for Tagged {
        fn backend(&self) -> &'static str {
            "tagged"
        }
        async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.get(name).await
        }
        async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
            *self
                .versions
                .lock()
                .unwrap()
                .entry(name.to_string())
                .or_default() += 1;
            self.inner.put(name, value, mode).await
        }
        async fn delete(&self, name: &SecretName) -> Result<()> {
            self.inner.delete(name).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
            self.inner.list(prefix).await
        }
        async fn version_tags(&self, prefix: &str) -> Result<Vec<(SecretName, Option<String>)>> {
            self.listings.fetch_add(1, Ordering::SeqCst);
            if self.deny.load(Ordering::SeqCst) {
                return Err(Error::new(ErrorKind::PermissionDenied, "tagged", "denied"));
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err(Error::new(ErrorKind::Unavailable, "tagged", "unreachable"));
            }
            let versions = self.versions.lock().unwrap().clone();
            Ok(self
                .inner
                .list(prefix)
                .await?
                .into_iter()
                .map(|n| {
                    let tag = versions.get(n.as_str()).map(u64::to_string);
                    (n, tag)
                })
                .collect())
        }
    }

    fn n(s: &str) -> SecretName {
        SecretName::new(s).unwrap()
    }

    async fn tagged(secrets: &[&str]) -> (Arc<Tagged>, Poller) {
        let t = Arc::new(Tagged::default());
        for s in secrets {
            t.put(&n(s), &SecretValue::from(format!("{s}-1")), PutMode::Create)
                .await
                .unwrap();
        }
        let backend: Arc<dyn SecretsManager> = t.clone();
        let poller = Poller::new(vec![Source::Backend {
            backend,
            prefix: String::new(),
            label: "tagged".into(),
        }]);
        (t, poller)
    }

    fn value<'a>(l: &'a Loaded, name: &str) -> Option<&'a str> {
        l.by_name().get(name).and_then(|e| e.value.expose_str())
    }

    #[tokio::test]
    async fn only_changed_tags_move_values() {
        let (t, mut p) = tagged(&["a", "b", "c"]).await;
        assert_eq!(p.poll().await.unwrap().len(), 3);
        assert_eq!(
            t.reads.swap(0, Ordering::SeqCst),
            3,
            "the first poll reads all"
        );
        assert_eq!(p.poll().await.unwrap().len(), 3);
        assert_eq!(t.reads.swap(0, Ordering::SeqCst), 0, "nothing changed");
        t.put(&n("b"), &SecretValue::from("b-2"), PutMode::Overwrite)
            .await
            .unwrap();
        t.delete(&n("c")).await.unwrap();
        t.put(&n("d"), &SecretValue::from("d-1"), PutMode::Create)
            .await
            .unwrap();
        let l = p.poll().await.unwrap();
        assert_eq!(t.reads.swap(0, Ordering::SeqCst), 2, "b and d");
        assert_eq!(
            [
                value(&l, "a"),
                value(&l, "b"),
                value(&l, "c"),
                value(&l, "d")
            ],
            [Some("a-1"), Some("b-2"), None, Some("d-1")]
        );
        let names: Vec<&str> = l.layers[0]
            .entries
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b", "d"], "sorted by name");
    }

    #[tokio::test]
    async fn a_denied_listing_falls_back_to_reading_values() {
        let (t, mut p) = tagged(&["a", "b"]).await;
        p.poll().await.unwrap();
        t.deny.store(true, Ordering::SeqCst);
        t.put(&n("a"), &SecretValue::from("a-2"), PutMode::Overwrite)
            .await
            .unwrap();
        t.reads.store(0, Ordering::SeqCst);
        let l = p.poll().await.unwrap();
        assert_eq!(value(&l, "a"), Some("a-2"), "not taken for unchanged");
        assert_eq!(value(&l, "b"), Some("b-1"), "not taken for absent");
        assert_eq!(t.reads.swap(0, Ordering::SeqCst), 2, "read whole");
        let listings = t.listings.load(Ordering::SeqCst);
        p.poll().await.unwrap();
        assert_eq!(
            t.listings.load(Ordering::SeqCst),
            listings,
            "a refused listing is not asked again"
        );
    }

    #[tokio::test]
    async fn a_failed_listing_fails_the_poll_and_forgets_nothing() {
        let (t, mut p) = tagged(&["a"]).await;
        p.poll().await.unwrap();
        t.fail.store(true, Ordering::SeqCst);
        let e = p.poll().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        t.fail.store(false, Ordering::SeqCst);
        t.reads.store(0, Ordering::SeqCst);
        assert_eq!(value(&p.poll().await.unwrap(), "a"), Some("a-1"));
        assert_eq!(
            t.reads.load(Ordering::SeqCst),
            0,
            "still known, still unchanged"
        );
    }

    #[tokio::test]
    async fn a_poll_trusts_unchanged_tags() {
        let (t, mut p) = tagged(&["a"]).await;
        p.poll().await.unwrap();
        t.inner
            .put(&n("a"), &SecretValue::from("sneaky"), PutMode::Overwrite)
            .await
            .unwrap();
        // The inner write bumped no tag: the poll trusts the tag and moves nothing.
        let l = p.poll().await.unwrap();
        assert_eq!(value(&l, "a"), Some("a-1"));
        assert!(matches!(p.states[0], State::Tagged(_)));
    }

    #[tokio::test]
    async fn a_backend_without_tags_is_read_whole_each_poll() {
        let (m, name, source) = memory_source("db/").await;
        let mut p = Poller::new(vec![source]);
        let first = p.poll().await.unwrap();
        assert_eq!(
            first.by_name()["db/password"].value.expose_str(),
            Some("one")
        );
        m.put(&name, &SecretValue::from("two"), PutMode::Overwrite)
            .await
            .unwrap();
        let second = p.poll().await.unwrap();
        assert_eq!(
            second.by_name()["db/password"].value.expose_str(),
            Some("two")
        );
        assert!(matches!(p.states[0], State::Whole));
    }

    /// Memory holding `db/password` = "one", and a source (label "memory") reading `prefix`
    /// of it; the watcher's tests start from it too.
    pub(crate) async fn memory_source(prefix: &str) -> (Arc<MemoryBackend>, SecretName, Source) {
        let m = Arc::new(MemoryBackend::new());
        let name = SecretName::new("db/password").unwrap();
        m.put(&name, &SecretValue::from("one"), PutMode::Create)
            .await
            .unwrap();
        let backend: Arc<dyn SecretsManager> = m.clone();
        let source = Source::Backend {
            backend,
            prefix: prefix.into(),
            label: "memory".into(),
        };
        (m, name, source)
    }
}
