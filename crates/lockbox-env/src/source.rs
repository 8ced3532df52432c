//! Sources of secrets, read whole, and the layered name/value map they make.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry as MapEntry;
use std::sync::Arc;

use lockbox_core::{Error, ErrorKind, Result, SecretValue, SecretsManager};
use lockbox_resources::{Selector, Store};

use crate::format::Binary;
use crate::name::{collision, variable_name};

/// Where secrets come from.
pub enum Source {
    /// Every secret of a backend whose name starts with `prefix` (`""`: all of them), read with
    /// [`SecretsManager::read_prefix`] (batched where the backend can).
    Backend {
        /// The backend, such as one opened from a config (its node prefix already applied).
        backend: Arc<dyn SecretsManager>,
        /// Only names starting with this.
        prefix: String,
        /// What messages call this source, such as `config app.json`.
        label: String,
    },
    /// The AWSCURRENT version of every secret in a sealed store whose name starts with
    /// `prefix`, read offline.
    Store {
        /// The open store.
        store: Box<Store>,
        /// Only names starting with this.
        prefix: String,
        /// What messages call this source, such as `store /var/lib/lockbox`.
        label: String,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Backend { label, prefix, .. } | Source::Store { label, prefix, .. } => f
                .debug_struct("Source")
                .field("label", label)
                .field("prefix", prefix)
                .finish(),
        }
    }
}

/// One secret read from a source. Debug redacts the value.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its name in the source (relative to a backend's node prefix; a sealed store's secret
    /// name).
    pub name: String,
    /// Its value.
    pub value: SecretValue,
    /// True when the source stored it as binary (Secrets Manager's SecretBinary). A value that
    /// is not UTF-8 counts as binary too.
    pub binary: bool,
}

impl Entry {
    /// The value as text: UTF-8 as it is; binary as base64 with [`Binary::Base64`], else an
    /// error naming the secret.
    pub fn text(&self, binary: Binary) -> Result<Cow<'_, str>> {
        match (self.binary, self.value.expose_str(), binary) {
            (false, Some(text), _) => Ok(Cow::Borrowed(text)),
            (_, _, Binary::Base64) => {
                use base64::Engine;
                Ok(Cow::Owned(
                    base64::engine::general_purpose::STANDARD.encode(self.value.expose_bytes()),
                ))
            }
            (_, _, Binary::Refuse) => Err(Error::input(
                ErrorKind::Unsupported,
                "the value is binary (not UTF-8 text), which an environment variable or a text \
                 format cannot hold as it is; ask for it base64-encoded (--binary=base64)",
            )
            .with_secret(&self.name)),
        }
    }
}

/// Every secret of one source, sorted by name.
#[derive(Clone, Debug)]
pub struct Layer {
    /// What messages call the source.
    pub label: String,
    /// Its secrets.
    pub entries: Vec<Entry>,
}

/// The secrets of several sources, in the order given: later sources win.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// One layer per source.
    pub layers: Vec<Layer>,
}

impl Loaded {
    /// Name -> entry over all layers, a later layer's entry replacing an earlier one's of the
    /// same name.
    pub fn by_name(&self) -> BTreeMap<&str, &Entry> {
        let mut out = BTreeMap::new();
        for layer in &self.layers {
            for entry in &layer.entries {
                out.insert(entry.name.as_str(), entry);
            }
        }
        out
    }

    /// Variable -> entry (see [`variable_name`]). Two names of one source that map to the
    /// same variable are an error naming both; across sources, the later one wins.
    pub fn variables(&self, preserve_case: bool) -> Result<BTreeMap<String, &Entry>> {
        let mut out = BTreeMap::new();
        for layer in &self.layers {
            let mut mine: BTreeMap<String, &Entry> = BTreeMap::new();
            for entry in &layer.entries {
                let var = variable_name(&entry.name, preserve_case)?;
                match mine.entry(var) {
                    MapEntry::Occupied(o) => {
                        return Err(collision(o.key(), &o.get().name, &entry.name, &layer.label));
                    }
                    MapEntry::Vacant(v) => {
                        v.insert(entry);
                    }
                }
            }
            out.extend(mine);
        }
        Ok(out)
    }

    /// How many distinct names there are over all layers.
    pub fn len(&self) -> usize {
        self.by_name().len()
    }

    /// True when no source had a secret.
    pub fn is_empty(&self) -> bool {
        self.layers.iter().all(|l| l.entries.is_empty())
    }
}

/// Reads every source, in order.
pub async fn load(sources: &[Source]) -> Result<Loaded> {
    let mut layers = Vec::with_capacity(sources.len());
    for source in sources {
        layers.push(read(source).await?);
    }
    Ok(Loaded { layers })
}

/// One source's layer.
pub(crate) async fn read(source: &Source) -> Result<Layer> {
    match source {
        Source::Backend {
            backend,
            prefix,
            label,
        } => {
            let entries = backend
                .read_prefix(prefix)
                .await?
                .into_iter()
                .map(|(name, value)| Entry {
                    binary: value.expose_str().is_none(),
                    name: name.as_str().to_owned(),
                    value,
                })
                .collect();
            Ok(Layer {
                label: label.clone(),
                entries,
            })
        }
        Source::Store {
            store,
            prefix,
            label,
        } => {
            let mut entries = Vec::new();
            for info in store.secrets() {
                if !info.name.starts_with(prefix.as_str()) {
                    continue;
                }
                let version = store.read(&info.name, &Selector::current())?;
                entries.push(Entry {
                    binary: version.binary || version.value.expose_str().is_none(),
                    name: info.name,
                    value: version.value,
                });
            }
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(Layer {
                label: label.clone(),
                entries,
            })
        }
    }
}

/// The environment a Rust service would get from `lockbox exec`: every secret of `backend`
/// under `prefix`, read in batches, as variable -> value text (see [`variable_name`]).
/// Collisions and binary values (unless [`Binary::Base64`]) are errors naming the secrets.
pub async fn variables(
    backend: Arc<dyn SecretsManager>,
    prefix: &str,
    preserve_case: bool,
    binary: Binary,
) -> Result<BTreeMap<String, String>> {
    let loaded = load(&[Source::Backend {
        label: format!("{} backend", backend.backend()),
        backend,
        prefix: prefix.to_owned(),
    }])
    .await?;
    loaded
        .variables(preserve_case)?
        .into_iter()
        .map(|(var, entry)| Ok((var, entry.text(binary)?.into_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockbox_core::{MemoryBackend, PutMode, SecretName};

    async fn memory(secrets: &[(&str, &[u8])]) -> Arc<dyn SecretsManager> {
        let m = MemoryBackend::new();
        for (n, v) in secrets {
            m.put(
                &SecretName::new(*n).unwrap(),
                &SecretValue::new(v.to_vec()),
                PutMode::Create,
            )
            .await
            .unwrap();
        }
        Arc::new(m)
    }

    fn source(backend: Arc<dyn SecretsManager>, prefix: &str, label: &str) -> Source {
        Source::Backend {
            backend,
            prefix: prefix.into(),
            label: label.into(),
        }
    }

    #[tokio::test]
    async fn later_sources_win_and_prefixes_narrow() {
        let a = memory(&[
            ("db/password", b"a-pw"),
            ("db/user", b"a-user"),
            ("x", b"1"),
        ])
        .await;
        let b = memory(&[("db/password", b"b-pw")]).await;
        let loaded = load(&[source(a.clone(), "db/", "a"), source(b, "", "b")])
            .await
            .unwrap();
        let vars = loaded.variables(false).unwrap();
        let got: Vec<(&str, &str)> = vars
            .iter()
            .map(|(k, e)| (k.as_str(), e.value.expose_str().unwrap()))
            .collect();
        assert_eq!(got, [("PASSWORD", "b-pw"), ("USER", "a-user")]);
        assert_eq!(
            loaded.by_name()["db/password"].value.expose_str(),
            Some("b-pw")
        );
        assert_eq!(loaded.len(), 2);
    }

    #[tokio::test]
    async fn a_collision_names_both_secrets() {
        let a = memory(&[("db/password", b"1"), ("cache/password", b"2")]).await;
        let loaded = load(&[source(a, "", "config app.json")]).await.unwrap();
        let e = loaded.variables(false).unwrap_err().to_string();
        assert!(
            e.contains("\"cache/password\"")
                && e.contains("\"db/password\"")
                && e.contains("PASSWORD"),
            "{e}"
        );
        assert!(e.contains("config app.json"), "{e}");
    }

    #[tokio::test]
    async fn binary_values_are_refused_unless_base64() {
        let a = memory(&[("bin", &[0xff, 0x00, 0x10])]).await;
        let e = variables(a.clone(), "", false, Binary::Refuse)
            .await
            .unwrap_err();
        assert_eq!(e.secret(), Some("bin"));
        assert!(e.to_string().contains("--binary=base64"), "{e}");
        let vars = variables(a, "", false, Binary::Base64).await.unwrap();
        assert_eq!(vars["BIN"], "/wAQ");
    }
}
