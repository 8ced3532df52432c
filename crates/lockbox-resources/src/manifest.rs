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

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use lockbox_aws::Arn;
use lockbox_config::strict::StrictJsonError;
use lockbox_core::{Error, ErrorKind, Result};
use serde_json::{Map, Value};

/// The staging label Secrets Manager gives the current version; always synced.
pub const AWSCURRENT: &str = "AWSCURRENT";

/// Most staging labels one secret can carry (a Secrets Manager quota), AWSCURRENT included.
pub const MAX_LABELS: usize = 20;

/// Longest staging label Secrets Manager accepts.
pub const MAX_LABEL_LEN: usize = 256;

/// Longest secret name Secrets Manager accepts.
pub const MAX_NAME_LEN: usize = 512;

/// Longest secret id (name or ARN) accepted in a manifest.
pub const MAX_ID_LEN: usize = 2048;

/// The top-level key that lists the secrets.
pub const CLOUD_SECRETS: &str = "cloudSecrets";

const REFRESH_KEY: &str = "periodicRefreshIntervalMin";

/// The top-level key of a Greengrass v1 resource definition version.
pub const V1_RESOURCES: &str = "Resources";

/// The wrapper `aws greengrass create-resource-definition --initial-version` takes.
pub const V1_INITIAL_VERSION: &str = "InitialVersion";

/// The v1 resource data container that holds a Secrets Manager secret.
pub const V1_SECRET_DATA: &str = "SecretsManagerSecretResourceData";

/// The other v1 resource data containers: accepted and skipped with a note.
pub const V1_SKIPPED_DATA: [&str; 4] = [
    "LocalVolumeResourceData",
    "LocalDeviceResourceData",
    "S3MachineLearningModelResourceData",
    "SageMakerMachineLearningModelResourceData",
];

/// Longest v1 resource `Id` or `Name` (Greengrass's limit).
pub const MAX_RESOURCE_ID_LEN: usize = 128;

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
        // Non-blocking (a FIFO is refused at once), a regular file, at most 4 MiB.
        let bytes =
            lockbox_fs::read_regular(path, lockbox_fs::MAX_INPUT_FILE_LEN).map_err(|e| {
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
        let text = String::from_utf8(bytes).map_err(|_| {
            Error::input(
                ErrorKind::InvalidConfig,
                format!(
                    "manifest {}: cannot read: stream did not contain valid UTF-8",
                    path.display()
                ),
            )
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates manifest text; `source` names it in errors (usually the path).
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let root = parse_json(text, source)?;
        let Value::Object(root) = root else {
            return Err(Error::invalid_config(
                source,
                format_args!(
                    "must be a JSON object with a \"{CLOUD_SECRETS}\" array, found {}",
                    kind_of(&root)
                ),
            ));
        };
        if root.contains_key(V1_RESOURCES) || root.contains_key(V1_INITIAL_VERSION) {
            return parse_v1(&root, source);
        }
        let mut cloud = None;
        let mut refresh = None;
        for (key, value) in &root {
            match key.as_str() {
                CLOUD_SECRETS => cloud = Some(value),
                REFRESH_KEY => refresh = Some(parse_refresh(value, source)?),
                other => {
                    return Err(Error::invalid_config(
                        format_args!("{source}: {other}"),
                        format_args!(
                            "unknown key; a manifest has \"{CLOUD_SECRETS}\" (and optionally \
                             \"{REFRESH_KEY}\"), or is a Greengrass v1 resource definition \
                             (\"{V1_RESOURCES}\", or \"{V1_INITIAL_VERSION}\": {{\"{V1_RESOURCES}\": \
                             [...]}})"
                        ),
                    ));
                }
            }
        }
        let Some(cloud) = cloud else {
            return Err(Error::invalid_config(
                format_args!("{source}: {CLOUD_SECRETS}"),
                "is required (an array of {\"arn\": ..., \"labels\": [...]})",
            ));
        };
        let Value::Array(entries) = cloud else {
            return Err(Error::invalid_config(
                format_args!("{source}: {CLOUD_SECRETS}"),
                format_args!("must be an array, found {}", kind_of(cloud)),
            ));
        };
        let mut cloud_secrets: Vec<CloudSecret> = Vec::with_capacity(entries.len());
        // Secret id -> its entry's index: one hash lookup per entry.
        let mut listed: HashMap<String, usize> = HashMap::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("{source}: {CLOUD_SECRETS}[{i}]");
            let secret = parse_entry(entry, &at)?;
            #[cfg(test)]
            tests::LOOKUPS.with(|n| n.set(n.get() + 1));
            if let Some(&j) = listed.get(&secret.arn) {
                return Err(Error::invalid_config(
                    format_args!("{at}.arn"),
                    format_args!(
                        "{:?} is already listed as {CLOUD_SECRETS}[{j}]; list each secret once \
                         with all its labels",
                        secret.arn
                    ),
                ));
            }
            listed.insert(secret.arn.clone(), i);
            cloud_secrets.push(secret);
        }
        Ok(Self {
            cloud_secrets,
            periodic_refresh_interval_min: refresh,
            notes: Vec::new(),
        })
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

fn parse_refresh(value: &Value, source: &str) -> Result<u64> {
    match value.as_u64() {
        Some(n) if n > 0 => Ok(n),
        _ => Err(Error::invalid_config(
            format_args!("{source}: {REFRESH_KEY}"),
            format_args!("must be a whole number of minutes above 0, found {value}"),
        )),
    }
}

fn parse_entry(entry: &Value, at: &str) -> Result<CloudSecret> {
    let Value::Object(fields) = entry else {
        return Err(Error::invalid_config(
            at,
            format_args!(
                "must be an object like {{\"arn\": ..., \"labels\": [...]}}, found {}",
                kind_of(entry)
            ),
        ));
    };
    let arn = field(fields, "arn");
    let labels = field(fields, "labels");
    for key in fields.keys() {
        if !key.eq_ignore_ascii_case("arn") && !key.eq_ignore_ascii_case("labels") {
            return Err(Error::invalid_config(
                format_args!("{at}.{key}"),
                "unknown key; an entry has \"arn\" and optionally \"labels\"",
            ));
        }
    }
    let arn = match arn {
        None | Some(Value::Null) => {
            return Err(Error::invalid_config(
                format_args!("{at}.arn"),
                "is required (the secret's ARN or name)",
            ));
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(Error::invalid_config(
                format_args!("{at}.arn"),
                format_args!("must be a string, found {}", kind_of(other)),
            ));
        }
    };
    check_secret_id(&arn)
        .map_err(|rule| Error::invalid_config(format_args!("{at}.arn"), rule.message()))?;
    let extra = parse_labels(labels, at, "labels")?;
    Ok(CloudSecret::new(arn, extra))
}

/// A label list (`null`/absent, or an array of strings) at `{at}.{key}`.
fn parse_labels(labels: Option<&Value>, at: &str, key: &str) -> Result<Vec<String>> {
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
                        format_args!("must be a string, found {}", kind_of(item)),
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
                format_args!("must be an array of strings, found {}", kind_of(other)),
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

/// A Greengrass v1 resource definition: `{"Resources": [...]}` (a definition version, as
/// `get-resource-definition-version` shows under `Definition`) or `{"InitialVersion":
/// {"Resources": [...]}}` (as `create-resource-definition --initial-version` takes it). Keys
/// are matched exactly, as the Greengrass API does.
fn parse_v1(root: &Map<String, Value>, source: &str) -> Result<Manifest> {
    let (resources, path) = if let Some(v) = root.get(V1_INITIAL_VERSION) {
        only_keys(root, &[V1_INITIAL_VERSION], &format!("{source}: "))?;
        let Value::Object(inner) = v else {
            return Err(Error::invalid_config(
                format_args!("{source}: {V1_INITIAL_VERSION}"),
                format_args!(
                    "must be an object like {{\"{V1_RESOURCES}\": [...]}}, found {}",
                    kind_of(v)
                ),
            ));
        };
        let at = format!("{V1_INITIAL_VERSION}.");
        only_keys(inner, &[V1_RESOURCES], &format!("{source}: {at}"))?;
        let Some(r) = inner.get(V1_RESOURCES) else {
            return Err(Error::invalid_config(
                format_args!("{source}: {at}{V1_RESOURCES}"),
                "is required (an array of resources)",
            ));
        };
        (r, format!("{at}{V1_RESOURCES}"))
    } else {
        only_keys(root, &[V1_RESOURCES], &format!("{source}: "))?;
        (&root[V1_RESOURCES], V1_RESOURCES.to_owned())
    };
    let Value::Array(entries) = resources else {
        return Err(Error::invalid_config(
            format_args!("{source}: {path}"),
            format_args!("must be an array, found {}", kind_of(resources)),
        ));
    };
    let mut manifest = Manifest::default();
    // Secret ARN / resource Id / resource Name -> the entry that has it.
    let mut arns: HashMap<String, String> = HashMap::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let here = format!("{path}[{i}]");
        let at = format!("{source}: {here}");
        let Value::Object(fields) = entry else {
            return Err(Error::invalid_config(
                &at,
                format_args!(
                    "must be an object like {{\"Id\": ..., \"Name\": ..., \
                     \"ResourceDataContainer\": {{...}}}}, found {}",
                    kind_of(entry)
                ),
            ));
        };
        only_keys(
            fields,
            &["Id", "Name", "ResourceDataContainer"],
            &format!("{source}: {here}."),
        )?;
        let id = resource_word(fields, "Id", &at)?;
        let name = resource_word(fields, "Name", &at)?;
        if let Some(j) = ids.insert(id.clone(), i) {
            return Err(Error::invalid_config(
                format_args!("{at}.Id"),
                format_args!("{id:?} is already the Id of {path}[{j}]; resource ids are unique"),
            ));
        }
        if let Some(j) = names.insert(name.clone(), i) {
            return Err(Error::invalid_config(
                format_args!("{at}.Name"),
                format_args!(
                    "{name:?} is already the Name of {path}[{j}]; resource names are unique"
                ),
            ));
        }
        let Some(container) = fields.get("ResourceDataContainer") else {
            return Err(Error::invalid_config(
                format_args!("{at}.ResourceDataContainer"),
                format_args!("is required (an object with \"{V1_SECRET_DATA}\")"),
            ));
        };
        let Value::Object(container) = container else {
            return Err(Error::invalid_config(
                format_args!("{at}.ResourceDataContainer"),
                format_args!("must be an object, found {}", kind_of(container)),
            ));
        };
        let mut kinds = container.iter();
        let (Some((kind, data)), None) = (kinds.next(), kinds.next()) else {
            return Err(Error::invalid_config(
                format_args!("{at}.ResourceDataContainer"),
                format_args!(
                    "must hold exactly one resource type, found {}",
                    container.len()
                ),
            ));
        };
        let at_data = format!("{at}.ResourceDataContainer.{kind}");
        if V1_SKIPPED_DATA.contains(&kind.as_str()) {
            manifest.notes.push(format!(
                "{source}: {here} (Id {id:?}) is a {kind}, not a secret; skipped (lockbox syncs \
                 only {V1_SECRET_DATA})"
            ));
            continue;
        }
        if kind != V1_SECRET_DATA {
            return Err(Error::invalid_config(
                &at_data,
                format_args!(
                    "unknown resource type; one of {V1_SECRET_DATA}, {}",
                    V1_SKIPPED_DATA.join(", ")
                ),
            ));
        }
        let Value::Object(data) = data else {
            return Err(Error::invalid_config(
                &at_data,
                format_args!(
                    "must be an object like {{\"ARN\": ..., \
                     \"AdditionalStagingLabelsToDownload\": [...]}}, found {}",
                    kind_of(data)
                ),
            ));
        };
        only_keys(
            data,
            &["ARN", "AdditionalStagingLabelsToDownload"],
            &format!("{source}: {here}.ResourceDataContainer.{kind}."),
        )?;
        let arn = match data.get("ARN") {
            None | Some(Value::Null) => {
                return Err(Error::invalid_config(
                    format_args!("{at_data}.ARN"),
                    "is required (the secret's ARN)",
                ));
            }
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(Error::invalid_config(
                    format_args!("{at_data}.ARN"),
                    format_args!("must be a string, found {}", kind_of(other)),
                ));
            }
        };
        check_secret_id(&arn)
            .map_err(|rule| Error::invalid_config(format_args!("{at_data}.ARN"), rule.message()))?;
        let entry_name = format!("{here} (Id {id:?})");
        if let Some(first) = arns.get(&arn) {
            return Err(Error::invalid_config(
                format_args!("{at_data}.ARN"),
                format_args!(
                    "{arn:?} is already the secret of {first}; {entry_name} references it \
                     again, and a secret may be referenced by one resource only (as in a \
                     Greengrass group): keep one resource with all the labels"
                ),
            ));
        }
        arns.insert(arn.clone(), entry_name);
        let extra = parse_labels(
            data.get("AdditionalStagingLabelsToDownload"),
            &at_data,
            "AdditionalStagingLabelsToDownload",
        )?;
        let mut secret = CloudSecret::new(arn, extra);
        secret.resource = Some(Resource { id, name, at: here });
        manifest.cloud_secrets.push(secret);
    }
    Ok(manifest)
}

/// Refuses any key of `fields` not in `allowed`, naming it as `{at}{key}` (`at` names the
/// file and the object, e.g. `"manifest.json: Resources[0]."`); keys are matched exactly, as the
/// Greengrass API does, with a hint when only the case differs.
pub(crate) fn only_keys(fields: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<()> {
    for key in fields.keys() {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        let hint = match allowed.iter().find(|a| a.eq_ignore_ascii_case(key)) {
            Some(a) => format!("unknown key; did you mean {a:?}? (keys are matched exactly)"),
            None => format!(
                "unknown key; expected {}",
                allowed
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return Err(Error::invalid_config(format_args!("{at}{key}"), hint));
    }
    Ok(())
}

/// A v1 resource `Id` or `Name`: 1-128 characters of `[a-zA-Z0-9:_-]`.
fn resource_word(fields: &Map<String, Value>, key: &str, at: &str) -> Result<String> {
    let value = match fields.get(key) {
        None | Some(Value::Null) => {
            return Err(Error::invalid_config(
                format_args!("{at}.{key}"),
                "is required",
            ));
        }
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(Error::invalid_config(
                format_args!("{at}.{key}"),
                format_args!("must be a string, found {}", kind_of(other)),
            ));
        }
    };
    check_resource_id(value)
        .map_err(|rule| Error::invalid_config(format_args!("{at}.{key}"), rule.message()))?;
    Ok(value.clone())
}

/// An id or name that breaks a naming rule: the message is the rule alone, so that callers can
/// place it under the field that held the id.
pub(crate) fn invalid_rule(rule: impl Into<String>) -> Error {
    Error::input(ErrorKind::InvalidName, rule)
}

/// Checks a v1 resource `Id` or `Name`: 1-128 characters of `[a-zA-Z0-9:_-]` (Greengrass's
/// rule).
pub fn check_resource_id(value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_RESOURCE_ID_LEN {
        return Err(invalid_rule(format!(
            "must be 1-{MAX_RESOURCE_ID_LEN} characters"
        )));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":_-".contains(*c)))
    {
        return Err(invalid_rule(format!(
            "{value:?} has {c:?}; resource ids and names use only letters, digits and :_-"
        )));
    }
    Ok(())
}

/// The value of `name` in `fields`, matched case-insensitively (as Greengrass does); the
/// strict parser has already refused two spellings of one key.
fn field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Checks a secret id: a name (1-512 of `A-Za-z0-9/_+=.@-`) or a Secrets Manager ARN
/// (`arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME`).
pub fn check_secret_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(invalid_rule("must not be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(invalid_rule(format!(
            "is {} characters; at most {MAX_ID_LEN}",
            id.len()
        )));
    }
    let name = if Arn::looks_like(id) {
        let Some(arn) = Arn::parse(id) else {
            return Err(invalid_rule(format!(
                "{id:?} is not a Secrets Manager ARN \
                 (arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME)"
            )));
        };
        if arn.partition.is_empty() || arn.region.is_empty() || arn.account.is_empty() {
            return Err(invalid_rule(format!(
                "{id:?} is not a Secrets Manager ARN: partition, region and account must be set"
            )));
        }
        if arn.service != "secretsmanager" {
            return Err(invalid_rule(format!(
                "{id:?} is an ARN of service {:?}, not secretsmanager",
                arn.service
            )));
        }
        match arn.secret_name() {
            Some(name) => name,
            None => {
                return Err(invalid_rule(format!(
                    "{id:?} is not a secret ARN (the resource must start with \"secret:\")"
                )));
            }
        }
    } else {
        id
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(invalid_rule(format!(
            "secret name {name:?} must be 1-{MAX_NAME_LEN} characters"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
    {
        return Err(invalid_rule(format!(
            "secret name {name:?} has {c:?}; names use only letters, digits and /_+=.@-"
        )));
    }
    Ok(())
}

/// Checks a staging label: 1-256 characters, no whitespace or control characters.
pub fn check_label(label: &str) -> Result<()> {
    if label.is_empty() {
        return Err(invalid_rule("a staging label must not be empty"));
    }
    if label.chars().count() > MAX_LABEL_LEN {
        return Err(invalid_rule(format!(
            "staging label is {} characters; at most {MAX_LABEL_LEN}",
            label.chars().count()
        )));
    }
    if label.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid_rule(format!(
            "staging label {label:?} has whitespace or control characters"
        )));
    }
    Ok(())
}

fn kind_of(v: &Value) -> &'static str {
    lockbox_config::strict::type_name(v)
}

/// Parses `text` as strict JSON (a key given twice in any case is refused, naming it), with
/// errors that name `source`: the one reader of the crate's JSON files (manifests, consumers).
pub(crate) fn parse_json(text: &str, source: &str) -> Result<Value> {
    lockbox_config::strict::parse(text).map_err(|e| match e {
        StrictJsonError::Syntax { message, .. } => {
            Error::invalid_config(source, format_args!("not valid JSON: {message}"))
        }
        StrictJsonError::DuplicateKey {
            ref first, line, ..
        } => Error::invalid_config(
            format_args!("{source}: {}", e.key_path().unwrap_or_default()),
            format_args!(
                "duplicates {first:?} (line {line}; keys are matched ignoring case, and \
                 each may be given once)"
            ),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn parse(text: &str) -> Result<Manifest> {
        Manifest::parse(text, "m.json")
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn greengrass_shape_with_awscurrent_always_first() {
        let m = parse(
            r#"{"cloudSecrets": [
                {"arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", "labels": ["blue", "AWSCURRENT", "blue"]},
                {"arn": "api/token"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(m.cloud_secrets.len(), 2);
        assert_eq!(m.cloud_secrets[0].labels, ["AWSCURRENT", "blue"]);
        assert_eq!(m.cloud_secrets[1].labels, ["AWSCURRENT"]);
        assert_eq!(
            m.secret_ids().collect::<Vec<_>>(),
            [
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
                "api/token"
            ]
        );
        assert_eq!(m.pairs().count(), 3);
        assert_eq!(m.cloud_secrets[0].name_or_arn_name(), "db-AbCdEf");
        assert_eq!(m.cloud_secrets[0].arn_region(), Some("us-east-1"));
        assert_eq!(m.single_arn_region(), None, "a name gives no region");
        assert_eq!(m.periodic_refresh_interval(), None);
    }

    #[test]
    fn keys_match_case_insensitively_like_greengrass() {
        let m = parse(
            r#"{"cloudSecrets": [{"ARN": "a", "Labels": ["x"]}], "periodicRefreshIntervalMin": 5}"#,
        )
        .unwrap();
        assert_eq!(m.cloud_secrets[0], CloudSecret::new("a", ["x"]));
        assert_eq!(
            m.periodic_refresh_interval(),
            Some(Duration::from_secs(300))
        );
        assert!(err(r#"{"cloudSecrets": [{"arn": "a", "ARN": "b"}]}"#).contains("duplicates"));
    }

    thread_local! {
        /// Duplicate-id lookups made by `Manifest::parse` on this thread.
        pub(super) static LOOKUPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn keys_given_twice_in_any_case_are_refused_naming_them() {
        for (text, want) in [
            (
                r#"{"cloudSecrets": [{"arn": "a"}], "cloudSecrets": []}"#,
                "m.json: cloudSecrets: duplicates \"cloudSecrets\"",
            ),
            (
                r#"{"cloudSecrets": [], "CLOUDSECRETS": [{"arn": "a"}]}"#,
                "m.json: CLOUDSECRETS: duplicates \"cloudSecrets\"",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a", "labels": [], "Labels": ["x"]}]}"#,
                "m.json: cloudSecrets[0].Labels: duplicates \"labels\"",
            ),
            (
                r#"{"periodicRefreshIntervalMin": 1, "periodicrefreshintervalmin": 2, "cloudSecrets": []}"#,
                "m.json: periodicrefreshintervalmin: duplicates",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig);
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn duplicate_ids_are_found_in_linear_time() {
        let n = 50_000;
        let items: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"arn": "secret-{i}", "labels": ["blue"]}}"#))
            .collect();
        let text = format!(r#"{{"cloudSecrets": [{}]}}"#, items.join(","));
        LOOKUPS.with(|c| c.set(0));
        let m = parse(&text).unwrap();
        assert_eq!(m.cloud_secrets.len(), n);
        // One hash lookup per entry (a pairwise check made n * (n - 1) / 2 comparisons).
        assert_eq!(LOOKUPS.with(std::cell::Cell::get), n);
        let dup = format!(
            r#"{{"cloudSecrets": [{}, {{"arn": "secret-7"}}]}}"#,
            items.join(",")
        );
        let e = parse(&dup).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "cloudSecrets[{n}].arn: \"secret-7\" is already listed as cloudSecrets[7]"
            )),
            "{e}"
        );
        // A huge label list stops at the first label over the limit.
        let labels: Vec<String> = (0..100_000).map(|i| format!("\"l{i}\"")).collect();
        let text = format!(
            r#"{{"cloudSecrets": [{{"arn": "a", "labels": [{}]}}]}}"#,
            labels.join(",")
        );
        assert!(err(&text).contains("21 distinct labels"), "{}", err(&text));
    }

    #[test]
    fn empty_list_and_null_labels_are_fine() {
        assert!(
            parse(r#"{"cloudSecrets": []}"#)
                .unwrap()
                .cloud_secrets
                .is_empty()
        );
        let m = parse(r#"{"cloudSecrets": [{"arn": "a", "labels": null}]}"#).unwrap();
        assert_eq!(m.cloud_secrets[0].labels, ["AWSCURRENT"]);
    }

    #[test]
    fn errors_name_file_entry_and_field() {
        let cases = [
            ("[]", "m.json: must be a JSON object"),
            ("{", "m.json: not valid JSON"),
            ("{}", "m.json: cloudSecrets: is required"),
            (
                r#"{"cloudSecrets": {}}"#,
                "m.json: cloudSecrets: must be an array, found an object",
            ),
            (r#"{"cloudSecret": []}"#, "m.json: cloudSecret: unknown key"),
            (
                r#"{"cloudSecrets": [3]}"#,
                "m.json: cloudSecrets[0]: must be an object",
            ),
            (
                r#"{"cloudSecrets": [{}]}"#,
                "m.json: cloudSecrets[0].arn: is required",
            ),
            (
                r#"{"cloudSecrets": [{"arn": 1}]}"#,
                "cloudSecrets[0].arn: must be a string, found a number",
            ),
            (
                r#"{"cloudSecrets": [{"arn": ""}]}"#,
                "cloudSecrets[0].arn: must not be empty",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a b"}]}"#,
                "cloudSecrets[0].arn: secret name \"a b\" has ' '",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a"}, {"arn": "arn:aws:ssm:us-east-1:1:parameter/x"}]}"#,
                "cloudSecrets[1].arn: \"arn:aws:ssm:us-east-1:1:parameter/x\" is an ARN of service \"ssm\"",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "arn:aws:secretsmanager:us-east-1:1:key:x"}]}"#,
                "is not a secret ARN",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "arn:aws:secretsmanager"}]}"#,
                "is not a Secrets Manager ARN",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a", "labels": "x"}]}"#,
                "cloudSecrets[0].labels: must be an array of strings, found a string",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a", "labels": ["x", 2]}]}"#,
                "cloudSecrets[0].labels[1]: must be a string, found a number",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a", "labels": [""]}]}"#,
                "cloudSecrets[0].labels[0]: a staging label must not be empty",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a", "labels": ["a b"]}]}"#,
                "has whitespace",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a", "label": ["x"]}]}"#,
                "cloudSecrets[0].label: unknown key",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a"}, {"arn": "a"}]}"#,
                "cloudSecrets[1].arn: \"a\" is already listed as cloudSecrets[0]",
            ),
            (
                r#"{"cloudSecrets": [], "periodicRefreshIntervalMin": 0}"#,
                "periodicRefreshIntervalMin: must be a whole number",
            ),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(got.contains(want), "{text}: {got:?} lacks {want:?}");
            assert!(got.contains("m.json"), "{got}");
        }
        let many: Vec<String> = (0..20).map(|i| format!("\"l{i}\"")).collect();
        let text = format!(
            r#"{{"cloudSecrets": [{{"arn": "a", "labels": [{}]}}]}}"#,
            many.join(",")
        );
        assert!(err(&text).contains("21 distinct labels"), "{}", err(&text));
    }

    /// The example of `aws greengrass create-resource-definition` in Greengrass's
    /// documentation, as is.
    pub(crate) const GREENGRASS_DOC_DEFINITION: &str = r#"{
    "Resources": [
        {
            "Id": "my-resource-id",
            "Name": "MySecretResource",
            "ResourceDataContainer": {
                "SecretsManagerSecretResourceData": {
                    "ARN": "arn:aws:secretsmanager:us-west-2:123456789012:secret:greengrass-SomeSecret-KUj89s",
                    "AdditionalStagingLabelsToDownload": [
                        "Label1",
                        "Label2"
                    ]
                }
            }
        }
    ]
}"#;

    #[test]
    fn greengrass_v1_definition_as_documented() {
        let m = parse(GREENGRASS_DOC_DEFINITION).unwrap();
        assert_eq!(m.cloud_secrets.len(), 1);
        let s = &m.cloud_secrets[0];
        assert_eq!(
            s.arn,
            "arn:aws:secretsmanager:us-west-2:123456789012:secret:greengrass-SomeSecret-KUj89s"
        );
        assert_eq!(s.labels, ["AWSCURRENT", "Label1", "Label2"]);
        assert_eq!(
            s.resource,
            Some(Resource {
                id: "my-resource-id".into(),
                name: "MySecretResource".into(),
                at: "Resources[0]".into()
            })
        );
        assert_eq!(s.describe(0), "Resources[0] (Id \"my-resource-id\")");
        assert!(m.notes().is_empty());
        assert_eq!(m.periodic_refresh_interval(), None);
        assert_eq!(m.resource("my-resource-id"), Some(s));
        assert_eq!(m.single_arn_region(), Some("us-west-2"));
        // The --initial-version wrapper gives the same manifest, paths aside.
        let wrapped = format!(r#"{{"InitialVersion": {GREENGRASS_DOC_DEFINITION}}}"#);
        let w = parse(&wrapped).unwrap();
        assert_eq!(w.cloud_secrets[0].arn, s.arn);
        assert_eq!(w.cloud_secrets[0].labels, s.labels);
        assert_eq!(
            w.cloud_secrets[0].resource.as_ref().unwrap().at,
            "InitialVersion.Resources[0]"
        );
    }

    fn resource(id: &str, container: &str) -> String {
        format!(r#"{{"Id": "{id}", "Name": "N-{id}", "ResourceDataContainer": {container}}}"#)
    }

    fn secret_data(arn: &str) -> String {
        format!(r#"{{"SecretsManagerSecretResourceData": {{"ARN": "{arn}"}}}}"#)
    }

    #[test]
    fn other_v1_resource_types_are_skipped_with_a_note() {
        let text = format!(
            r#"{{"Resources": [{}, {}, {}, {}, {}]}}"#,
            resource(
                "data-volume",
                r#"{"LocalVolumeResourceData": {"SourcePath": "/src/LRAtest", "DestinationPath": "/dest/LRAtest", "GroupOwnerSetting": {"AutoAddGroupOwner": true}}}"#
            ),
            resource(
                "db",
                &secret_data("arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf")
            ),
            resource(
                "tty",
                r#"{"LocalDeviceResourceData": {"SourcePath": "/dev/tty0"}}"#
            ),
            resource(
                "model",
                r#"{"S3MachineLearningModelResourceData": {"S3Uri": "s3://b/m.zip", "DestinationPath": "/m"}}"#
            ),
            resource(
                "sm",
                r#"{"SageMakerMachineLearningModelResourceData": {"SageMakerJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/x", "DestinationPath": "/s"}}"#
            ),
        );
        let m = parse(&text).unwrap();
        assert_eq!(m.cloud_secrets.len(), 1);
        assert_eq!(m.cloud_secrets[0].resource_id(), Some("db"));
        assert_eq!(m.cloud_secrets[0].describe(0), "Resources[1] (Id \"db\")");
        assert_eq!(m.notes().len(), 4, "{:?}", m.notes());
        assert!(
            m.notes()[0].contains(
                "m.json: Resources[0] (Id \"data-volume\") is a LocalVolumeResourceData, not a secret; skipped"
            ),
            "{:?}",
            m.notes()
        );
        assert!(m.notes()[3].contains("SageMakerMachineLearningModelResourceData"));
    }

    #[test]
    fn a_secret_referenced_twice_is_refused_naming_both_resources() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf";
        let text = format!(
            r#"{{"Resources": [{}, {}, {}]}}"#,
            resource("first", &secret_data(arn)),
            resource("other", &secret_data("api")),
            resource("second", &secret_data(arn)),
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        let e = e.to_string();
        assert!(
            e.contains("Resources[2].ResourceDataContainer.SecretsManagerSecretResourceData.ARN"),
            "{e}"
        );
        assert!(e.contains("Resources[0] (Id \"first\")"), "{e}");
        assert!(e.contains("Resources[2] (Id \"second\")"), "{e}");
    }

    #[test]
    #[allow(clippy::useless_format)]
    fn v1_errors_name_file_resource_and_field() {
        let ok = secret_data("db");
        let cases = [
            (format!(r#"{{"Resources": {{}}}}"#), "m.json: Resources: must be an array".to_owned()),
            (format!(r#"{{"Resources": [], "cloudSecrets": []}}"#), "m.json: cloudSecrets: unknown key; expected \"Resources\"".to_owned()),
            (format!(r#"{{"InitialVersion": {{"Resources": [], "X": 1}}}}"#), "m.json: InitialVersion.X: unknown key".to_owned()),
            (format!(r#"{{"InitialVersion": []}}"#), "m.json: InitialVersion: must be an object".to_owned()),
            (format!(r#"{{"InitialVersion": {{}}}}"#), "m.json: InitialVersion.Resources: is required".to_owned()),
            (format!(r#"{{"Resources": [3]}}"#), "m.json: Resources[0]: must be an object".to_owned()),
            (format!(r#"{{"Resources": [{{"id": "a", "Name": "b", "ResourceDataContainer": {ok}}}]}}"#), "m.json: Resources[0].id: unknown key; did you mean \"Id\"?".to_owned()),
            (format!(r#"{{"Resources": [{{"Name": "b", "ResourceDataContainer": {ok}}}]}}"#), "m.json: Resources[0].Id: is required".to_owned()),
            (format!(r#"{{"Resources": [{{"Id": "a b", "Name": "b", "ResourceDataContainer": {ok}}}]}}"#), "m.json: Resources[0].Id: \"a b\" has ' '".to_owned()),
            (format!(r#"{{"Resources": [{}, {}]}}"#, resource("a", &ok), resource("a", &secret_data("x"))), "m.json: Resources[1].Id: \"a\" is already the Id of Resources[0]".to_owned()),
            (format!(r#"{{"Resources": [{}]}}"#, resource("a", "{}")), "m.json: Resources[0].ResourceDataContainer: must hold exactly one resource type, found 0".to_owned()),
            (format!(r#"{{"Resources": [{}]}}"#, resource("a", r#"{"FooResourceData": {}}"#)), "m.json: Resources[0].ResourceDataContainer.FooResourceData: unknown resource type".to_owned()),
            (format!(r#"{{"Resources": [{}]}}"#, resource("a", r#"{"SecretsManagerSecretResourceData": {}}"#)), "SecretsManagerSecretResourceData.ARN: is required".to_owned()),
            (format!(r#"{{"Resources": [{}]}}"#, resource("a", r#"{"SecretsManagerSecretResourceData": {"ARN": "db", "Labels": []}}"#)), "SecretsManagerSecretResourceData.Labels: unknown key".to_owned()),
            (format!(r#"{{"Resources": [{}]}}"#, resource("a", r#"{"SecretsManagerSecretResourceData": {"ARN": "db", "AdditionalStagingLabelsToDownload": [1]}}"#)), "SecretsManagerSecretResourceData.AdditionalStagingLabelsToDownload[0]: must be a string".to_owned()),
            (format!(r#"{{"Resources": [{}]}}"#, resource("a", r#"{"SecretsManagerSecretResourceData": {"ARN": "arn:aws:ssm:us-east-1:1:parameter/x"}}"#)), "is an ARN of service \"ssm\"".to_owned()),
            (format!(r#"{{"Resources": [], "resources": []}}"#), "m.json: resources: duplicates \"Resources\"".to_owned()),
        ];
        for (text, want) in cases {
            let got = err(&text);
            assert!(got.contains(&want), "{text}: {got:?} lacks {want:?}");
        }
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
