//! The manifest: which cloud secrets, and which of their staging labels, a device keeps.
//!
//! The shape is the configuration of AWS IoT Greengrass v2's secret manager component
//! (`aws.greengrass.SecretManager`), so a component configuration can be used as it is:
//!
//! ```json
//! {
//!   "cloudSecrets": [
//!     { "arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", "labels": ["blue"] },
//!     { "arn": "api-token" }
//!   ]
//! }
//! ```
//!
//! - `cloudSecrets` (required): an array of entries; it may be empty (a sync then empties the
//!   store).
//! - `arn` (required): the secret's ARN, or its name (Secrets Manager accepts both as a secret
//!   id). Like Greengrass, the entry keys are matched case-insensitively (`ARN`, `Labels`).
//! - `labels` (optional): staging labels to keep in addition to `AWSCURRENT`, which is always
//!   kept. Duplicates are ignored.
//! - `periodicRefreshIntervalMin` (optional, top level): accepted so a Greengrass configuration
//!   parses; `lockbox sync` refreshes only with `--interval`, and library callers can read it
//!   with [`Manifest::periodic_refresh_interval`].
//!
//! Anything else is refused with an error that names the file, the entry index and the field,
//! so a typo (`label`, `cloudSecret`) does not silently drop a secret.
//!
//! Files: this one holds the types and the reader; `v2.rs` the component configuration
//! (`cloudSecrets`), `v1.rs` a Greengrass v1 resource definition, `ids.rs` the rules for secret
//! ids, staging labels and resource ids.

mod ids;
mod v1;
mod v2;

use std::path::Path;
use std::time::Duration;

use lockbox_aws::Arn;
use lockbox_config::strict::{parse_file, type_name};
use lockbox_core::{Error, ErrorKind, Result};
use serde_json::Value;

pub(crate) use ids::invalid_rule;
pub use ids::{MAX_RESOURCE_ID_LEN, check_label, check_resource_id, check_secret_id};
pub use v1::{V1_INITIAL_VERSION, V1_RESOURCES, V1_SECRET_DATA, V1_SKIPPED_DATA};
pub use v2::CLOUD_SECRETS;

/// The staging label Secrets Manager gives the current version; always synced.
pub const AWSCURRENT: &str = "AWSCURRENT";

/// Most staging labels one secret can carry (a Secrets Manager quota), AWSCURRENT included.
pub const MAX_LABELS: usize = 20;

/// One manifest entry: a secret and the staging labels to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudSecret {
    /// The secret id as the manifest gives it: a full ARN, or a name.
    pub arn: String,
    /// The staging labels to keep: `AWSCURRENT` first, then the manifest's labels in their
    /// order, without duplicates.
    pub labels: Vec<String>,
    /// The Greengrass v1 resource this entry came from (its `Id` and `Name`); `None` for an
    /// entry of a v2 component configuration (`cloudSecrets`).
    pub resource: Option<Resource>,
}

/// A Greengrass v1 secret resource's identity, kept from the resource definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The resource `Id` (what functions' `ResourceAccessPolicies` name, and what
    /// `lockbox read --resource-id` takes).
    pub id: String,
    /// The resource `Name` (descriptive).
    pub name: String,
    /// Where it is in the definition, for messages: `Resources[2]` or
    /// `InitialVersion.Resources[2]`.
    pub at: String,
}

impl CloudSecret {
    /// An entry for `id` with `extra` labels; `AWSCURRENT` is added and duplicates dropped.
    /// Nothing is validated (use [`Manifest::parse`] for untrusted input).
    pub fn new(id: impl Into<String>, extra: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut labels = vec![AWSCURRENT.to_owned()];
        for l in extra {
            let l = l.into();
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
        Self {
            arn: id.into(),
            labels,
            resource: None,
        }
    }

    /// This entry for messages, given its index in [`Manifest::cloud_secrets`]:
    /// `cloudSecrets[3]`, or for a v1 resource `Resources[4] (Id "db-resource")`.
    pub fn describe(&self, index: usize) -> String {
        match &self.resource {
            None => format!("{CLOUD_SECRETS}[{index}]"),
            Some(r) => format!("{} (Id {:?})", r.at, r.id),
        }
    }

    /// The resource id, when the entry came from a v1 resource definition.
    pub fn resource_id(&self) -> Option<&str> {
        self.resource.as_ref().map(|r| r.id.as_str())
    }

    /// True when the id is a full ARN (`arn:...`), false for a name.
    pub fn is_arn(&self) -> bool {
        Arn::looks_like(&self.arn)
    }

    /// The secret's name as far as the id tells it: the id itself for a name; for an ARN the
    /// part after `:secret:`, which still carries the 6-character suffix AWS adds.
    pub fn name_or_arn_name(&self) -> &str {
        Arn::parse(&self.arn)
            .and_then(|arn| arn.secret_name())
            .unwrap_or(&self.arn)
    }

    /// The region named by a full ARN (`arn:aws:secretsmanager:REGION:...`), if any.
    pub fn arn_region(&self) -> Option<&str> {
        Arn::parse(&self.arn)
            .map(|arn| arn.region)
            .filter(|r| !r.is_empty())
    }
}

/// A parsed, validated manifest.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The secrets, in manifest order.
    pub cloud_secrets: Vec<CloudSecret>,
    /// Greengrass's `periodicRefreshIntervalMin`, when the manifest sets it.
    pub periodic_refresh_interval_min: Option<u64>,
    /// What parsing skipped without failing (a v1 definition's local volumes, devices and
    /// machine-learning models), one sentence each; see [`Manifest::notes`].
    pub notes: Vec<String>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`. Errors name the file, the entry index and
    /// the field (`manifest.json: cloudSecrets[2].labels[0]: must be a string`).
    pub fn read(path: &Path) -> Result<Self> {
        // Non-blocking (a FIFO is refused at once), a regular file, at most 4 MiB, UTF-8.
        let text = lockbox_config::strict::read_text(path).map_err(|e| {
            let kind = match e.kind() {
                ErrorKind::NotFound => ErrorKind::NotFound,
                ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::InvalidConfig,
            };
            let message = match &e {
                lockbox_fs::FsError::Io { source, .. } => {
                    format!("manifest {}: cannot read: {source}", path.display())
                }
                other => format!("manifest: {other}"),
            };
            Error::input(kind, message)
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates manifest text; `source` names it in errors (usually the path): a
    /// component configuration (`cloudSecrets`), or a Greengrass v1 resource definition
    /// (`Resources`, or `InitialVersion`).
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let root = parse_file(text, source)?;
        let Value::Object(root) = root else {
            return Err(Error::invalid_config(
                source,
                format_args!(
                    "must be a JSON object with a \"{CLOUD_SECRETS}\" array, found {}",
                    type_name(&root)
                ),
            ));
        };
        if root.contains_key(V1_RESOURCES) || root.contains_key(V1_INITIAL_VERSION) {
            v1::parse(&root, source)
        } else {
            v2::parse(&root, source)
        }
    }

    /// What parsing skipped without failing, one sentence each (a v1 definition's
    /// `LocalVolumeResourceData`, `LocalDeviceResourceData`,
    /// `S3MachineLearningModelResourceData` and `SageMakerMachineLearningModelResourceData`
    /// resources, which hold no secret). `lockbox sync` prints each on stderr as
    /// `note: ...` (`{"note": ...}` with `--json`) and lists them under `"notes"` in its JSON
    /// report.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The entry for v1 resource `id`, if the manifest has it.
    pub fn resource(&self, id: &str) -> Option<&CloudSecret> {
        self.cloud_secrets
            .iter()
            .find(|s| s.resource_id() == Some(id))
    }

    /// The secret ids (ARNs or names) in manifest order: what an IAM policy must allow
    /// `secretsmanager:GetSecretValue` on.
    pub fn secret_ids(&self) -> impl Iterator<Item = &str> {
        self.cloud_secrets.iter().map(|s| s.arn.as_str())
    }

    /// Every (secret id, staging label) pair a sync fetches, `AWSCURRENT` first per secret.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.cloud_secrets
            .iter()
            .flat_map(|s| s.labels.iter().map(move |l| (s.arn.as_str(), l.as_str())))
    }

    /// Greengrass's `periodicRefreshIntervalMin` as a duration, when set.
    pub fn periodic_refresh_interval(&self) -> Option<Duration> {
        self.periodic_refresh_interval_min
            .map(|m| Duration::from_secs(m.saturating_mul(60)))
    }

    /// The one region all full ARNs in the manifest name, when there is exactly one and every
    /// entry is an ARN.
    pub fn single_arn_region(&self) -> Option<&str> {
        let mut regions = self.cloud_secrets.iter().map(CloudSecret::arn_region);
        let first = regions.next()??;
        regions.all(|r| r == Some(first)).then_some(first)
    }
}

/// A label list (`null`/absent, or an array of strings) at `{at}.{key}`.
pub(super) fn parse_labels(labels: Option<&Value>, at: &str, key: &str) -> Result<Vec<String>> {
    let mut extra = Vec::new();
    match labels {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            // Distinct labels so far, AWSCURRENT included: more than MAX_LABELS stops here,
            // so a huge list costs no more than MAX_LABELS comparisons per label.
            let mut distinct: Vec<&str> = vec![AWSCURRENT];
            for (j, item) in items.iter().enumerate() {
                let Value::String(label) = item else {
                    return Err(Error::invalid_config(
                        format_args!("{at}.{key}[{j}]"),
                        format_args!("must be a string, found {}", type_name(item)),
                    ));
                };
                check_label(label).map_err(|rule| {
                    Error::invalid_config(format_args!("{at}.{key}[{j}]"), rule.message())
                })?;
                if !distinct.contains(&label.as_str()) {
                    distinct.push(label);
                    if distinct.len() > MAX_LABELS {
                        return Err(too_many_labels(at, key, distinct.len()));
                    }
                }
                extra.push(label.clone());
            }
        }
        Some(other) => {
            return Err(Error::invalid_config(
                format_args!("{at}.{key}"),
                format_args!("must be an array of strings, found {}", type_name(other)),
            ));
        }
    }
    Ok(extra)
}

fn too_many_labels(at: &str, key: &str, count: usize) -> Error {
    Error::invalid_config(
        format_args!("{at}.{key}"),
        format_args!(
            "{count} distinct labels with AWSCURRENT; a secret carries at most {MAX_LABELS}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Parses `text` as the manifest `m.json`.
    pub(super) fn parse(text: &str) -> Result<Manifest> {
        Manifest::parse(text, "m.json")
    }

    /// The error parsing `text` as `m.json` gives, as text.
    pub(super) fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn json_errors_give_line_and_column() {
        let e = err("{\n  \"cloudSecrets\": [,]\n}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn read_names_missing_file() {
        let e = Manifest::read(Path::new("/nonexistent/m.json")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("/nonexistent/m.json"), "{e}");
        let not_text = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_text.path(), b"\xff").unwrap();
        let want = format!(
            "manifest {}: cannot read: stream did not contain valid UTF-8",
            not_text.path().display()
        );
        let e = Manifest::read(not_text.path()).unwrap_err();
        assert_eq!(
            (e.kind(), e.to_string().contains(&want)),
            (ErrorKind::InvalidConfig, true),
            "{e}"
        );
    }

    #[test]
    fn fixtures_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/resources");
        let m = Manifest::read(&dir.join("manifest.json")).unwrap();
        assert!(!m.cloud_secrets.is_empty());
        let e = Manifest::read(&dir.join("manifest-invalid.json")).unwrap_err();
        assert!(
            e.to_string()
                .contains("manifest-invalid.json: cloudSecrets[1]"),
            "{e}"
        );
    }

    #[test]
    fn single_arn_region_needs_one_region_and_all_arns() {
        let arn = |r: &str, n: &str| format!("arn:aws:secretsmanager:{r}:1:secret:{n}");
        let m = Manifest {
            cloud_secrets: vec![
                CloudSecret::new(arn("eu-west-1", "a"), Vec::<String>::new()),
                CloudSecret::new(arn("eu-west-1", "b"), Vec::<String>::new()),
            ],
            ..Manifest::default()
        };
        assert_eq!(m.single_arn_region(), Some("eu-west-1"));
        let mut m2 = m.clone();
        m2.cloud_secrets[1].arn = arn("us-east-1", "b");
        assert_eq!(m2.single_arn_region(), None);
        assert_eq!(Manifest::default().single_arn_region(), None);
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9/_+=.@-]{1,40}"
    }

    fn label() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.:-]{1,20}"
    }

    proptest! {
        #[test]
        fn valid_manifests_round_trip(
            entries in proptest::collection::btree_map(name(), proptest::collection::vec(label(), 0..5), 0..6),
            as_arn in any::<bool>(),
        ) {
            let items: Vec<Value> = entries
                .iter()
                .map(|(n, ls)| {
                    let id = if as_arn { format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{n}") } else { n.clone() };
                    serde_json::json!({"arn": id, "labels": ls})
                })
                .collect();
            let text = serde_json::json!({ "cloudSecrets": items }).to_string();
            let m = parse(&text).unwrap();
            prop_assert_eq!(m.cloud_secrets.len(), entries.len());
            for (s, (_, ls)) in m.cloud_secrets.iter().zip(&entries) {
                prop_assert_eq!(s.labels[0].as_str(), AWSCURRENT);
                let want: BTreeSet<&str> = ls.iter().map(String::as_str).chain([AWSCURRENT]).collect();
                let got: BTreeSet<&str> = s.labels.iter().map(String::as_str).collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(s.labels.len(), want_len(ls));
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            if let Err(e) = parse(&text) {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{}", e);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Err(e) = parse(&String::from_utf8_lossy(&bytes)) {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{}", e);
            }
        }

        #[test]
        fn arbitrary_documents_never_panic(v in arb_json(), wrap in any::<bool>()) {
            let text = if wrap { serde_json::json!({ "cloudSecrets": v, "periodicRefreshIntervalMin": 1 }).to_string() } else { v.to_string() };
            if let Err(e) = parse(&text) {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{}", e);
            }
        }

        #[test]
        fn arbitrary_entries_never_panic(v in arb_json()) {
            let text = serde_json::json!({ "cloudSecrets": [v] }).to_string();
            if let Err(e) = parse(&text) {
                prop_assert!(e.to_string().contains("cloudSecrets[0]"), "{}", e);
                prop_assert_eq!(e.kind(), ErrorKind::InvalidConfig);
            }
        }
    }

    fn want_len(ls: &[String]) -> usize {
        ls.iter()
            .map(String::as_str)
            .chain([AWSCURRENT])
            .collect::<BTreeSet<_>>()
            .len()
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("arn".to_string()),
                        Just("labels".to_string()),
                        ".{0,6}"
                    ],
                    inner,
                    0..3
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
