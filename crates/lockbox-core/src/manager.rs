//! The secrets-manager trait.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;

use crate::{Result, SecretName, SecretValue};

/// How `put` treats a secret that already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Fail with `AlreadyExists` and leave the stored secret untouched.
    Create,
    /// Replace the stored secret (or create it).
    Overwrite,
}

/// Which version of a secret to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Version {
    /// The current version (Secrets Manager's AWSCURRENT, SSM's latest).
    Current,
    /// An SSM version number (`name:3`).
    Number(u64),
    /// An SSM parameter label or a Secrets Manager staging label (`name:prod`, `AWSPREVIOUS`).
    Label(String),
    /// A Secrets Manager version id.
    Id(String),
}

impl Version {
    /// Parses the `name:selector` suffix SSM uses: digits are a version number, anything else a
    /// label.
    pub fn from_selector(selector: &str) -> Self {
        match selector.parse::<u64>() {
            Ok(n) => Self::Number(n),
            Err(_) => Self::Label(selector.to_owned()),
        }
    }
}

/// What a backend knows about one version of a secret: never its value.
///
/// Built with [`VersionInfo::new`] and filled in field by field, so fields can be added
/// without breaking backends.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version: an SSM version number, a Secrets Manager version id, a Vault version.
    pub version: String,
    /// SSM parameter labels, or Secrets Manager staging labels (`AWSCURRENT`, ...).
    pub labels: Vec<String>,
    /// When the version was written, in seconds since the Unix epoch.
    pub created: Option<i64>,
    /// Who wrote it, when the backend records that (SSM's `LastModifiedUser`, an ARN).
    pub changed_by: Option<String>,
    /// True when the version was deleted or destroyed but is still listed (Vault).
    pub deleted: bool,
}

impl VersionInfo {
    /// A version with only its identifier set.
    pub fn new(version: impl Into<String>) -> Self {
        Self {
            version: version.into(),
            ..Self::default()
        }
    }
}

/// A place that keeps secrets: local disk, memory, or a cloud service.
///
/// Dyn-compatible, so a backend chosen from a config at run time is an
/// `Arc<dyn SecretsManager>`. Wrappers (prefix, retry, cache) implement it too, so they stack.
#[async_trait]
pub trait SecretsManager: Send + Sync + Debug {
    /// A short name for errors and logs: `memory`, `local`, `aws-ssm`, ...
    fn backend(&self) -> &'static str;

    /// Where `name` lives, for error messages: a file path, a parameter name, an ARN. Never
    /// a value. Defaults to the name itself.
    fn location(&self, name: &SecretName) -> String {
        name.to_string()
    }

    /// The secret's current value, or an error of kind `NotFound` when the backend says it does
    /// not exist.
    ///
    /// Not an `async fn`: the future is a concrete [`GetFuture`], so that an answer a wrapper
    /// already holds (a cache hit) comes back through `dyn SecretsManager` without boxing a
    /// future. The default answers from [`get_cached`](Self::get_cached) when it has an
    /// answer, else boxes [`get_uncached`](Self::get_uncached). Backends implement
    /// `get_uncached`; only wrappers with a faster path of their own override this.
    fn get<'a>(&'a self, name: &'a SecretName) -> GetFuture<'a> {
        match self.get_cached(name) {
            Some(answer) => GetFuture::ready(answer),
            None => GetFuture::boxed(self.get_uncached(name)),
        }
    }

    /// The answer [`get`](Self::get) would give right now without waiting for anything (no
    /// call, no lock held across an await): a cache's hit. `None` (the default) means "ask
    /// with `get_uncached`". Counts as a read where the backend counts reads.
    #[inline]
    fn get_cached(&self, name: &SecretName) -> Option<Result<SecretValue>> {
        let _ = name;
        None
    }

    /// The backend's own read of the secret's current value, the slow path of
    /// [`get`](Self::get): what every backend implements. Callers use `get`.
    async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue>;

    /// A given version of the secret. Backends without versions support only
    /// [`Version::Current`] and answer `Unsupported` for the rest.
    async fn get_version(&self, name: &SecretName, version: &Version) -> Result<SecretValue> {
        match version {
            Version::Current => self.get(name).await,
            other => Err(crate::Error::new(
                crate::ErrorKind::Unsupported,
                self.backend(),
                format!("this backend keeps no versions, so {other:?} cannot be read"),
            )
            .with_secret(name)),
        }
    }

    /// Stores `value` under `name`. With [`PutMode::Create`] an existing secret is never
    /// overwritten: the backend itself refuses (no check-then-write race).
    async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()>;

    /// Removes the secret; `NotFound` when there is none.
    async fn delete(&self, name: &SecretName) -> Result<()>;

    /// Names that start with `prefix` (plain text prefix; `""` lists all), sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>>;

    /// Whether the secret exists. An error that leaves the answer unknown (access denied,
    /// network) is returned as an error, never as `false`.
    async fn has(&self, name: &SecretName) -> Result<bool> {
        match self.get(name).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Values of several secrets, one result per name in the order given. Backends that can
    /// fetch in batches override this.
    async fn get_many(&self, names: &[SecretName]) -> Vec<Result<SecretValue>> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(self.get(name).await);
        }
        out
    }

    /// Checks, without any call, whether [`put`](Self::put) would accept `name` and `value`
    /// under this backend's own rules (name length and characters, value size, text only):
    /// the error `put` would give for them. `put` checks again; this lets a caller validate a
    /// whole batch before writing any of it. Defaults to `Ok(())`.
    fn check_put(&self, name: &SecretName, value: &SecretValue) -> Result<()> {
        let _ = (name, value);
        Ok(())
    }

    /// Every secret whose name starts with `prefix` (as [`list`](Self::list) means it), with its
    /// current value, sorted by name. Backends that can read a whole prefix in batches (SSM
    /// GetParametersByPath) override this; the default is [`list`](Self::list) then
    /// [`get_many`](Self::get_many). A secret that vanishes between the two is left out; any
    /// other failure fails the whole read.
    async fn read_prefix(&self, prefix: &str) -> Result<Vec<(SecretName, SecretValue)>> {
        let names = self.list(prefix).await?;
        let values = self.get_many(&names).await;
        let mut out = Vec::with_capacity(names.len());
        for (name, value) in names.into_iter().zip(values) {
            match value {
                Ok(v) => out.push((name, v)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// A version tag for every secret whose name starts with `prefix` (as
    /// [`list`](Self::list) means it), sorted by name, from listing calls that move no values:
    /// what a watcher polls to tell which secrets changed before reading any value. A tag is
    /// opaque; it changes whenever the secret's current value may have changed (Secrets
    /// Manager: the id of the AWSCURRENT version; SSM: version number and modification date).
    /// `None` for a secret the listing gives no tag for: read its value to know. Backends that
    /// cannot list tags more cheaply than values answer `Unsupported` (the default); an
    /// access-denied answer is `PermissionDenied`, never an empty list.
    async fn version_tags(&self, prefix: &str) -> Result<Vec<(SecretName, Option<String>)>> {
        let _ = prefix;
        Err(crate::Error::new(
            crate::ErrorKind::Unsupported,
            self.backend(),
            "this backend cannot list version tags without reading values",
        ))
    }

    /// The versions of a secret, oldest first, with their labels and dates: never values.
    /// Backends without versions answer `Unsupported` (the default).
    async fn history(&self, name: &SecretName) -> Result<Vec<VersionInfo>> {
        Err(crate::Error::new(
            crate::ErrorKind::Unsupported,
            self.backend(),
            "this backend keeps no version history",
        )
        .with_secret(name))
    }
}

/// Conveniences on top of [`SecretsManager`], for every backend and wrapper.
#[async_trait]
pub trait SecretsManagerExt: SecretsManager {
    /// `Ok(None)` when the secret does not exist; other errors stay errors.
    async fn get_optional(&self, name: &SecretName) -> Result<Option<SecretValue>> {
        match self.get(name).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores a new secret; `AlreadyExists` if one is there.
    async fn create(&self, name: &SecretName, value: &SecretValue) -> Result<()> {
        self.put(name, value, PutMode::Create).await
    }

    /// Deletes the secret if it exists; returns whether it did.
    async fn delete_if_exists(&self, name: &SecretName) -> Result<bool> {
        match self.delete(name).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl<T: SecretsManager + ?Sized> SecretsManagerExt for T {}

// A forwarding impl: a new trait method must be forwarded too, or `Arc<dyn ...>` would
// silently use the default instead of the backend's own.
#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl<T: SecretsManager + ?Sized> SecretsManager for std::sync::Arc<T> {
    fn backend(&self) -> &'static str {
        (**self).backend()
    }
    fn location(&self, name: &SecretName) -> String {
        (**self).location(name)
    }
    fn get<'a>(&'a self, name: &'a SecretName) -> GetFuture<'a> {
        (**self).get(name)
    }
    #[inline]
    fn get_cached(&self, name: &SecretName) -> Option<Result<SecretValue>> {
        (**self).get_cached(name)
    }
    async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
        (**self).get_uncached(name).await
    }
    async fn get_version(&self, name: &SecretName, version: &Version) -> Result<SecretValue> {
        (**self).get_version(name, version).await
    }
    async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
        (**self).put(name, value, mode).await
    }
    async fn delete(&self, name: &SecretName) -> Result<()> {
        (**self).delete(name).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        (**self).list(prefix).await
    }
    async fn has(&self, name: &SecretName) -> Result<bool> {
        (**self).has(name).await
    }
    async fn get_many(&self, names: &[SecretName]) -> Vec<Result<SecretValue>> {
        (**self).get_many(names).await
    }
    fn check_put(&self, name: &SecretName, value: &SecretValue) -> Result<()> {
        (**self).check_put(name, value)
    }
    async fn read_prefix(&self, prefix: &str) -> Result<Vec<(SecretName, SecretValue)>> {
        (**self).read_prefix(prefix).await
    }
    async fn history(&self, name: &SecretName) -> Result<Vec<VersionInfo>> {
        (**self).history(name).await
    }
    async fn version_tags(&self, prefix: &str) -> Result<Vec<(SecretName, Option<String>)>> {
        (**self).version_tags(prefix).await
    }
}

type BoxedGet<'a> = Pin<Box<dyn Future<Output = Result<SecretValue>> + Send + 'a>>;

/// The future of [`SecretsManager::get`]: either an answer already at hand (a cache hit,
/// returned on the first poll with nothing allocated) or a boxed read.
#[must_use = "futures do nothing unless awaited"]
pub struct GetFuture<'a>(GetState<'a>);

enum GetState<'a> {
    Ready(Option<Result<SecretValue>>),
    Boxed(BoxedGet<'a>),
}

impl<'a> GetFuture<'a> {
    /// A future that answers `answer` on its first poll.
    #[inline]
    pub fn ready(answer: Result<SecretValue>) -> Self {
        Self(GetState::Ready(Some(answer)))
    }

    /// A future that runs `future` (boxed).
    pub fn boxed(future: impl Future<Output = Result<SecretValue>> + Send + 'a) -> Self {
        Self(GetState::Boxed(Box::pin(future)))
    }

    /// A future that runs an already boxed `future` (what `async_trait` methods return).
    pub fn from_boxed(future: BoxedGet<'a>) -> Self {
        Self(GetState::Boxed(future))
    }
}

impl Future for GetFuture<'_> {
    type Output = Result<SecretValue>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            GetState::Ready(answer) => {
                Poll::Ready(answer.take().expect("GetFuture polled after completion"))
            }
            GetState::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

impl Debug for GetFuture<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the answer: it may hold a secret.
        f.write_str(match self.0 {
            GetState::Ready(_) => "GetFuture::Ready",
            GetState::Boxed(_) => "GetFuture::Boxed",
        })
    }
}

#[allow(dead_code)]
fn assert_dyn_compatible(_: &dyn SecretsManager) {}
