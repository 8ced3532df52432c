//! Reading the sealed store: the library API programs on the device use, offline.

use std::path::{Path, PathBuf};

use lockbox_core::{Error, ErrorKind, Result, Version};
use lockbox_secretsmanager::SecretVersion;

use crate::BACKEND;
use crate::key::StoreKey;
use crate::lock_and_generations::{Generations, rollback_error};
use crate::manifest::AWSCURRENT;
use crate::sealed::{self, STORE_FILE, SecretRecord, StoreFile, VersionRecord};

/// Which version of a secret to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The version that carries this staging label.
    Stage(String),
    /// The version with this id.
    VersionId(String),
}

impl Default for Selector {
    /// `AWSCURRENT`.
    fn default() -> Self {
        Self::Stage(AWSCURRENT.to_owned())
    }
}

impl Selector {
    /// The `AWSCURRENT` stage.
    pub fn current() -> Self {
        Self::default()
    }

    /// A staging label.
    pub fn stage(label: impl Into<String>) -> Self {
        Self::Stage(label.into())
    }

    /// A version id.
    pub fn version_id(id: impl Into<String>) -> Self {
        Self::VersionId(id.into())
    }

    /// The selector a [`Version`] means; SSM version numbers have none.
    pub fn from_version(v: &Version) -> Option<Self> {
        match v {
            Version::Current => Some(Self::current()),
            Version::Label(l) => Some(Self::Stage(l.clone())),
            Version::Id(id) => Some(Self::VersionId(id.clone())),
            _ => None,
        }
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stage(s) => write!(f, "stage {s}"),
            Self::VersionId(v) => write!(f, "version id {v}"),
        }
    }
}

/// What the store holds about one secret, without values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretInfo {
    /// The full ARN.
    pub arn: String,
    /// The name.
    pub name: String,
    /// The id the manifest used (ARN or name).
    pub manifest_id: String,
    /// The Greengrass v1 resource `Id` the manifest gave it, if any.
    pub resource_id: Option<String>,
    /// The Greengrass v1 resource `Name` the manifest gave it, if any.
    pub resource_name: Option<String>,
    /// (version id, its stages) for every stored version.
    pub versions: Vec<(String, Vec<String>)>,
}

/// A verified, open sealed store. Values are decrypted only when read.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    key: StoreKey,
    file: StoreFile,
}

impl Store {
    /// Opens the store in `store_dir` with the key in `key_file`, verifying the key and every
    /// record: a wrong key, an altered record or an altered file is an error that says which.
    /// A store older than the newest one seen for this directory (remembered next to the key,
    /// see [`lock_and_generations`](crate::lock_and_generations)) is refused as a rollback.
    pub fn open(store_dir: &Path, key_file: &Path) -> Result<Self> {
        Self::open_with(store_dir, key_file, false)
    }

    /// [`Store::open`]; with `allow_rollback`, a store older than the newest one seen is
    /// accepted (a warning is logged).
    pub fn open_with(store_dir: &Path, key_file: &Path, allow_rollback: bool) -> Result<Self> {
        let path = store_dir.join(STORE_FILE);
        let bytes = match lockbox_fs::read_trusted(&path, lockbox_fs::MAX_STORE_FILE_LEN) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    BACKEND,
                    format!(
                        "no sealed store at {}; run `lockbox sync` to create it",
                        path.display()
                    ),
                ));
            }
            Err(e) => {
                return Err(Error::new(
                    e.kind(),
                    BACKEND,
                    format!("cannot read sealed store: {e}"),
                ));
            }
        };
        let key = StoreKey::load(key_file)?;
        let store = Self::from_bytes(&bytes, key, path)?;
        let seen = Generations::load(key_file)?;
        let highest = seen.get(store_dir);
        if store.generation() < highest {
            if !allow_rollback {
                return Err(rollback_error(
                    &store.path,
                    store.generation(),
                    highest,
                    seen.path(),
                ));
            }
            tracing::warn!(
                store = %store.path.display(),
                generation = store.generation(),
                seen = highest,
                "reading an older store than the newest seen (--allow-rollback)"
            );
        }
        Ok(store)
    }

    /// Opens store bytes already read, with a loaded key; `path` is used in messages.
    pub fn from_bytes(bytes: &[u8], key: StoreKey, path: PathBuf) -> Result<Self> {
        let file = sealed::open(bytes, &key, &path.display().to_string())?;
        Ok(Self { path, key, file })
    }

    /// The store's generation: one more than the highest seen when it was written (0 for a
    /// format version 1 store, which has none).
    pub fn generation(&self) -> u64 {
        self.file.generation.unwrap_or(0)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When the store was written, in seconds since the Unix epoch.
    pub fn synced_at(&self) -> i64 {
        self.file.synced_at
    }

    /// Every secret in the store, without values.
    pub fn secrets(&self) -> Vec<SecretInfo> {
        self.file
            .secrets
            .iter()
            .map(|s| SecretInfo {
                arn: s.arn.clone(),
                name: s.name.clone(),
                manifest_id: s.manifest_id.clone(),
                resource_id: s.resource_id.clone(),
                resource_name: s.resource_name.clone(),
                versions: s
                    .versions
                    .iter()
                    .map(|v| (v.version_id.clone(), v.version_stages.clone()))
                    .collect(),
            })
            .collect()
    }

    /// The version of `secret_id` (its name, full ARN, or the id the manifest used) that
    /// `selector` picks. A secret, stage or version that was not synced is a `NotFound` error
    /// naming it.
    pub fn read(&self, secret_id: &str, selector: &Selector) -> Result<SecretVersion> {
        let secret = self.find(secret_id)?;
        self.read_record(secret, secret_id, selector)
    }

    /// The version of the secret of Greengrass v1 resource `resource_id` (the `Id` of its
    /// resource in the definition it was synced from) that `selector` picks. A resource id
    /// that was not synced is a `NotFound` error naming it and the resource ids there are.
    pub fn read_resource(&self, resource_id: &str, selector: &Selector) -> Result<SecretVersion> {
        let Some(secret) = self
            .file
            .secrets
            .iter()
            .find(|s| s.resource_id.as_deref() == Some(resource_id))
        else {
            let ids: Vec<&str> = self
                .file
                .secrets
                .iter()
                .filter_map(|s| s.resource_id.as_deref())
                .collect();
            return Err(Error::new(
                ErrorKind::NotFound,
                BACKEND,
                format!(
                    "resource {resource_id} was not synced into {} (resource ids there: {}); \
                     add it to the resource definition and sync",
                    self.path.display(),
                    if ids.is_empty() {
                        "none".to_owned()
                    } else {
                        ids.join(", ")
                    }
                ),
            )
            .with_secret(resource_id));
        };
        self.read_record(secret, resource_id, selector)
    }

    /// What the store holds about the secret of resource `resource_id`, without values.
    pub fn resource(&self, resource_id: &str) -> Option<SecretInfo> {
        self.secrets()
            .into_iter()
            .find(|s| s.resource_id.as_deref() == Some(resource_id))
    }

    fn read_record(
        &self,
        secret: &SecretRecord,
        secret_id: &str,
        selector: &Selector,
    ) -> Result<SecretVersion> {
        let version = find_version(secret, selector).ok_or_else(|| {
            let synced: Vec<String> = match selector {
                Selector::Stage(_) => {
                    let mut all: Vec<String> = secret
                        .versions
                        .iter()
                        .flat_map(|v| v.version_stages.iter().cloned())
                        .collect();
                    all.sort();
                    all
                }
                Selector::VersionId(_) => secret
                    .versions
                    .iter()
                    .map(|v| v.version_id.clone())
                    .collect(),
            };
            let what = match selector {
                Selector::Stage(_) => "stages",
                Selector::VersionId(_) => "versions",
            };
            Error::new(
                ErrorKind::NotFound,
                BACKEND,
                format!(
                    "{selector} of secret {} was not synced into {} (synced {what}: {}); add it \
                     to the manifest's labels and sync",
                    secret.arn,
                    self.path.display(),
                    synced.join(", ")
                ),
            )
            .with_secret(secret_id)
        })?;
        let value = sealed::open_value(
            &self.key,
            self.file.format_version,
            secret,
            version,
            &self.path.display().to_string(),
        )?;
        Ok(SecretVersion {
            arn: secret.arn.clone(),
            name: secret.name.clone(),
            version_id: version.version_id.clone(),
            version_stages: version.version_stages.clone(),
            created_date: version.created_date,
            created_date_nanos: version.created_date_nanos,
            value,
            binary: version.binary,
        })
    }

    fn find(&self, id: &str) -> Result<&SecretRecord> {
        let matches: Vec<&SecretRecord> = self
            .file
            .secrets
            .iter()
            .filter(|s| s.arn == id || s.name == id || s.manifest_id == id)
            .collect();
        match matches[..] {
            [one] => Ok(one),
            [] => Err(Error::new(
                ErrorKind::NotFound,
                BACKEND,
                format!(
                    "secret {id} was not synced into {} ({} secrets there); add it to the \
                     manifest and sync",
                    self.path.display(),
                    self.file.secrets.len()
                ),
            )
            .with_secret(id)),
            _ => {
                // An exact ARN match wins over a name shared by secrets of other accounts.
                if let Some(exact) = matches.iter().find(|s| s.arn == id) {
                    return Ok(exact);
                }
                let arns: Vec<&str> = matches.iter().map(|s| s.arn.as_str()).collect();
                Err(Error::new(
                    ErrorKind::InvalidName,
                    BACKEND,
                    format!(
                        "{id} names several synced secrets ({}); use the ARN",
                        arns.join(", ")
                    ),
                )
                .with_secret(id))
            }
        }
    }
}

fn find_version<'a>(secret: &'a SecretRecord, selector: &Selector) -> Option<&'a VersionRecord> {
    secret.versions.iter().find(|v| match selector {
        Selector::Stage(s) => v.version_stages.iter().any(|x| x == s),
        Selector::VersionId(id) => &v.version_id == id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sealed::tests::{key, sample, secret, version};
    use crate::sealed::{Snapshot, seal};

    fn store(snapshot: &Snapshot) -> Store {
        let bytes = seal(snapshot, &key(3), 5, 1).unwrap();
        Store::from_bytes(&bytes, key(3), PathBuf::from("/s/secrets.sealed")).unwrap()
    }

    #[test]
    fn read_by_name_arn_stage_and_version_id() {
        let s = store(&sample());
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
        for id in ["db", arn] {
            let v = s.read(id, &Selector::current()).unwrap();
            assert_eq!(v.value.expose_bytes(), b"db-password-current");
            assert_eq!(v.arn, arn);
            assert_eq!(v.name, "db");
            assert_eq!(v.version_id, "v-db-1");
            assert_eq!(v.version_stages, ["AWSCURRENT", "blue"]);
            assert!(!v.binary);
        }
        let v = s.read("db", &Selector::stage("blue")).unwrap();
        assert_eq!(v.version_id, "v-db-1");
        let v = s.read("db", &Selector::stage("AWSPREVIOUS")).unwrap();
        assert_eq!(v.value.expose_bytes(), b"db-password-previous");
        let v = s.read("db", &Selector::version_id("v-db-0")).unwrap();
        assert_eq!(v.version_stages, ["AWSPREVIOUS"]);
        let c = s.read("cert", &Selector::default()).unwrap();
        assert!(c.binary);
        assert_eq!(c.value.expose_bytes(), &[0, 159, 146, 150, 255]);
        assert_eq!(c.created_date, Some(1_700_000_000));
        assert!(!format!("{c:?}").contains("159"), "Debug redacts the value");
        assert_eq!(s.synced_at(), 5);
        assert_eq!(s.secrets().len(), 2);
    }

    #[test]
    fn unsynced_secret_stage_or_version_is_named() {
        let s = store(&sample());
        let e = s.read("nope", &Selector::current()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("secret nope was not synced"), "{e}");
        let e = s.read("db", &Selector::stage("green")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let msg = e.to_string();
        assert!(msg.contains("stage green of secret"), "{msg}");
        assert!(
            msg.contains("synced stages: AWSCURRENT, AWSPREVIOUS, blue"),
            "{msg}"
        );
        let e = s.read("db", &Selector::version_id("v-9")).unwrap_err();
        assert!(e.to_string().contains("version id v-9 of secret"), "{e}");
    }

    #[test]
    fn a_name_shared_across_accounts_is_ambiguous_but_the_arn_is_not() {
        let mut a = secret("shared", vec![version("v1", &["AWSCURRENT"], b"a", false)]);
        let mut b = secret("shared", vec![version("v2", &["AWSCURRENT"], b"b", false)]);
        a.arn = "arn:aws:secretsmanager:us-east-1:111111111111:secret:shared-AAAAAA".into();
        a.manifest_id = a.arn.clone();
        b.arn = "arn:aws:secretsmanager:us-east-1:222222222222:secret:shared-BBBBBB".into();
        b.manifest_id = b.arn.clone();
        let s = store(&Snapshot {
            secrets: vec![a, b],
            requests: 0,
        });
        let e = s.read("shared", &Selector::current()).unwrap_err();
        assert!(e.to_string().contains("use the ARN"), "{e}");
        let v = s
            .read(
                "arn:aws:secretsmanager:us-east-1:222222222222:secret:shared-BBBBBB",
                &Selector::current(),
            )
            .unwrap();
        assert_eq!(v.value.expose_bytes(), b"b");
    }

    #[test]
    fn open_reports_missing_store_and_bad_key_file() {
        let tmp = tempfile::tempdir().unwrap();
        let e = Store::open(tmp.path(), &tmp.path().join("k")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("lockbox sync"), "{e}");
    }

    #[test]
    fn selector_from_version() {
        assert_eq!(
            Selector::from_version(&Version::Current),
            Some(Selector::current())
        );
        assert_eq!(
            Selector::from_version(&Version::Label("x".into())),
            Some(Selector::stage("x"))
        );
        assert_eq!(
            Selector::from_version(&Version::Id("i".into())),
            Some(Selector::version_id("i"))
        );
        assert_eq!(Selector::from_version(&Version::Number(3)), None);
    }
}
