//! Consumers: which program may read which secret resource, as Greengrass v1 affiliates
//! functions with resources.
//!
//! A consumers file names each program that reads the sealed store through a local endpoint
//! (`lockbox serve`), how it proves who it is (its own bearer token, or the Unix uid it runs
//! as), and the resources it may read, in Greengrass's `ResourceAccessPolicies` shape:
//!
//! ```json
//! {
//!   "Consumers": [
//!     {
//!       "Name": "billing",
//!       "Token": "a-long-random-token-only-billing-has",
//!       "ResourceAccessPolicies": [{"ResourceId": "db-resource", "Permission": "ro"}]
//!     },
//!     {
//!       "Name": "metrics",
//!       "Uid": 1001,
//!       "ResourceAccessPolicies": [{"ResourceId": "api-token", "Permission": "ro"}]
//!     }
//!   ]
//! }
//! ```
//!
//! - `Consumers` (required): an array; it may be empty (then nobody may read anything).
//! - `Name` (required, unique): 1-128 of `A-Za-z0-9:_.-`; named in decisions and logs.
//! - Exactly one of `Token` (16-4096 characters, no whitespace or control characters, unique)
//!   or `Uid` (a Unix uid, 0-4294967294, unique).
//! - `ResourceAccessPolicies` (required, may be empty): `{"ResourceId", "Permission"}` objects.
//!   `ResourceId` is the `Id` of a resource in a Greengrass v1 resource definition; for a
//!   secret synced from a v2 configuration (`cloudSecrets`), which has no resource id, it is
//!   the entry's `arn` value as written in the manifest (see [`resource_key`]). `Permission`
//!   must be `"ro"`: secret resources are read-only (Greengrass allows `rw` only for local
//!   volumes and devices). A resource listed twice for one consumer is refused.
//!
//! Keys are matched exactly (as the Greengrass API does); an unknown key, a key given twice
//! (in any case), a wrong type or a broken rule is refused naming the file, the consumer index
//! and the field. The file is trusted as a key file is: a regular file (no symbolic link, no
//! FIFO) owned by the user reading it or root, that group and others cannot write, in a
//! directory owned by that user or root that group and others cannot write. A file that holds
//! a `Token` must be owner-only (`chmod 600`).
//!
//! Decisions: [`Consumer::authorize`] says [`Decision::Allowed`] only when the resource is in
//! the consumer's policies; otherwise [`Decision::Denied`], which names the consumer and the
//! resource (a server answers it with 403 naming the resource, never "not found", so a
//! consumer learns nothing it may not read from a denial that it would not from the file).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use lockbox_core::{Error, ErrorKind, Result};
use serde_json::Value;
use zeroize::Zeroizing;

use lockbox_config::strict::{only_keys, parse_file};

use crate::manifest::{check_resource_id, invalid_rule};
use crate::store::SecretInfo;

/// The top-level key of a consumers file.
pub const CONSUMERS: &str = "Consumers";

/// Shortest consumer token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

/// Longest consumer token accepted.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The one permission a secret resource can be given (read-only).
pub const READ_ONLY: &str = "ro";

/// How a consumer proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum Identity {
    /// A bearer token only this consumer has (never shown by `Debug`).
    Token(Token),
    /// The Unix uid the consumer runs as (a server checks it with `SO_PEERCRED`).
    Uid(u32),
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::Uid(uid) => write!(f, "Uid({uid})"),
        }
    }
}

/// A consumer's token: zeroed when dropped, compared in constant time, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// True when `given` is this token. The time taken does not depend on where they differ.
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        std::hint::black_box(diff) == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One consumer: its name, how it proves it, and the resources it may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// The consumer's name (unique in the file).
    pub name: String,
    /// Its token or uid.
    pub identity: Identity,
    /// The resource ids it may read (`ResourceAccessPolicies` with `"Permission": "ro"`), in
    /// file order.
    pub resources: Vec<String>,
}

/// What [`Consumer::authorize`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The consumer may read the resource.
    Allowed,
    /// The consumer may not read the resource.
    Denied {
        /// The consumer's name.
        consumer: String,
        /// The resource asked for.
        resource_id: String,
    },
}

impl Decision {
    /// True for [`Decision::Allowed`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed)
    }

    /// The message for a denial (`consumer billing may not read resource db-resource: it is
    /// not in its ResourceAccessPolicies`); `None` when allowed. A server answers it with 403.
    pub fn message(&self) -> Option<String> {
        match self {
            Self::Allowed => None,
            Self::Denied {
                consumer,
                resource_id,
            } => Some(format!(
                "consumer {consumer} may not read resource {resource_id}: it is not in its \
                 ResourceAccessPolicies"
            )),
        }
    }
}

impl Consumer {
    /// May this consumer read `resource_id`? Allowed only when its `ResourceAccessPolicies`
    /// list it (exact match).
    pub fn authorize(&self, resource_id: &str) -> Decision {
        if self.resources.iter().any(|r| r == resource_id) {
            Decision::Allowed
        } else {
            Decision::Denied {
                consumer: self.name.clone(),
                resource_id: resource_id.to_owned(),
            }
        }
    }

    /// [`Consumer::authorize`] for a secret of the store: by its resource id, or for a secret
    /// without one (synced from `cloudSecrets`) by its manifest id ([`resource_key`]).
    pub fn authorize_secret(&self, secret: &SecretInfo) -> Decision {
        self.authorize(resource_key(secret))
    }
}

/// The id consumers' policies name a stored secret by: its Greengrass v1 resource id, or, for
/// a secret synced from a v2 configuration (no resource id), the id its manifest entry used.
pub fn resource_key(secret: &SecretInfo) -> &str {
    secret.resource_id.as_deref().unwrap_or(&secret.manifest_id)
}

/// A parsed, validated consumers file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumers {
    consumers: Vec<Consumer>,
}

/// `consumer` may read `resource_id`? See [`Consumer::authorize`].
pub fn authorize(consumer: &Consumer, resource_id: &str) -> Decision {
    consumer.authorize(resource_id)
}

impl Consumers {
    /// Reads and validates the consumers file at `path`, trusted as a key file is
    /// ([`lockbox_fs::open_protected`]): a regular file under 4 MiB (no symbolic link, no
    /// FIFO), owned by this user or root, that group and others cannot write, in a directory
    /// owned by this user or root that group and others cannot write; owner-only when it
    /// holds a token.
    pub fn read(path: &Path) -> Result<Self> {
        let file = lockbox_fs::open_protected(
            path,
            lockbox_fs::MAX_INPUT_FILE_LEN,
            lockbox_fs::Readers::Anyone,
        )
        .map_err(|e| fs_error(path, &e))?;
        let meta = file.metadata().clone();
        let bytes = file.read_all().map_err(|e| fs_error(path, &e))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::invalid_config(path.display(), "not valid UTF-8"))?;
        let consumers = Self::parse(&text, &path.display().to_string())?;
        let has_token = consumers
            .consumers
            .iter()
            .any(|c| matches!(c.identity, Identity::Token(_)));
        if has_token && meta.mode() & 0o077 != 0 {
            return Err(Error::input(
                ErrorKind::PermissionDenied,
                format!(
                    "consumers file {} holds tokens and is open to others (mode {:o}); run \
                     `chmod 600 {}`",
                    path.display(),
                    meta.mode() & 0o777,
                    path.display()
                ),
            ));
        }
        Ok(consumers)
    }

    /// Parses and validates consumers text; `source` names it in errors (usually the path).
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let root = parse_file(text, source)?;
        let Value::Object(root) = root else {
            return Err(Error::invalid_config(
                source,
                format_args!("must be a JSON object with a \"{CONSUMERS}\" array"),
            ));
        };
        only_keys(&root, &[CONSUMERS], &format!("{source}: "))?;
        let Some(list) = root.get(CONSUMERS) else {
            return Err(Error::invalid_config(
                format_args!("{source}: {CONSUMERS}"),
                "is required (an array of {\"Name\", \"Token\" or \"Uid\", \
                 \"ResourceAccessPolicies\"})",
            ));
        };
        let Value::Array(list) = list else {
            return Err(Error::invalid_config(
                format_args!("{source}: {CONSUMERS}"),
                "must be an array",
            ));
        };
        let mut consumers = Vec::with_capacity(list.len());
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut uids: HashMap<u32, usize> = HashMap::new();
        for (i, entry) in list.iter().enumerate() {
            let at = format!("{source}: {CONSUMERS}[{i}]");
            let c = parse_consumer(entry, &at)?;
            if let Some(j) = names.insert(c.name.clone(), i) {
                return Err(Error::invalid_config(
                    format_args!("{at}.Name"),
                    format_args!("{:?} is already the name of {CONSUMERS}[{j}]", c.name),
                ));
            }
            match &c.identity {
                Identity::Uid(uid) => {
                    if let Some(j) = uids.insert(*uid, i) {
                        return Err(Error::invalid_config(
                            format_args!("{at}.Uid"),
                            format_args!(
                                "{uid} is already the uid of {CONSUMERS}[{j}]; each consumer \
                                 needs its own"
                            ),
                        ));
                    }
                }
                Identity::Token(t) => {
                    let clash = consumers.iter().position(
                        |o: &Consumer| matches!(&o.identity, Identity::Token(u) if u == t),
                    );
                    if let Some(j) = clash {
                        return Err(Error::invalid_config(
                            format_args!("{at}.Token"),
                            format_args!(
                                "is the token of {CONSUMERS}[{j}] too; each consumer needs its \
                                 own"
                            ),
                        ));
                    }
                }
            }
            consumers.push(c);
        }
        Ok(Self { consumers })
    }

    /// Every consumer, in file order.
    pub fn consumers(&self) -> &[Consumer] {
        &self.consumers
    }

    /// The consumer whose token is `token` (every token is compared, in constant time each).
    pub fn by_token(&self, token: &str) -> Option<&Consumer> {
        let mut found = None;
        for c in &self.consumers {
            if let Identity::Token(t) = &c.identity
                && t.matches(token)
                && found.is_none()
            {
                found = Some(c);
            }
        }
        found
    }

    /// The consumer that runs as `uid`.
    pub fn by_uid(&self, uid: u32) -> Option<&Consumer> {
        self.consumers
            .iter()
            .find(|c| c.identity == Identity::Uid(uid))
    }

    /// The consumer named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Consumer> {
        self.consumers.iter().find(|c| c.name == name)
    }

    /// (consumer name, resource id) for every policy whose resource `known` does not know
    /// (e.g. `|id| store.secrets().iter().any(|s| resource_key(s) == id)`): a server can
    /// refuse to start, or warn, as Greengrass refuses a deployment naming a missing resource.
    pub fn unknown_resources(&self, known: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        self.consumers
            .iter()
            .flat_map(|c| {
                c.resources
                    .iter()
                    .filter(|r| !known(r))
                    .map(|r| (c.name.clone(), r.clone()))
            })
            .collect()
    }
}

fn fs_error(path: &Path, e: &lockbox_fs::FsError) -> Error {
    let kind = match e.kind() {
        ErrorKind::NotFound => ErrorKind::NotFound,
        ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::InvalidConfig,
    };
    Error::input(kind, format!("consumers file {}: {e}", path.display()))
}

fn parse_consumer(entry: &Value, at: &str) -> Result<Consumer> {
    let Value::Object(fields) = entry else {
        return Err(Error::invalid_config(
            at,
            "must be an object like {\"Name\": ..., \"Token\" or \"Uid\": ..., \
             \"ResourceAccessPolicies\": [...]}",
        ));
    };
    only_keys(
        fields,
        &["Name", "Token", "Uid", "ResourceAccessPolicies"],
        &format!("{at}."),
    )?;
    let name = match fields.get("Name") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => {
            return Err(Error::invalid_config(
                format_args!("{at}.Name"),
                "is required",
            ));
        }
        Some(_) => {
            return Err(Error::invalid_config(
                format_args!("{at}.Name"),
                "must be a string",
            ));
        }
    };
    check_name(&name)
        .map_err(|rule| Error::invalid_config(format_args!("{at}.Name"), rule.message()))?;
    let identity = match (fields.get("Token"), fields.get("Uid")) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid_config(
                at,
                "has both \"Token\" and \"Uid\"; give exactly one",
            ));
        }
        (None, None) => {
            return Err(Error::invalid_config(
                at,
                "needs \"Token\" (its own bearer token) or \"Uid\" (the Unix uid it runs as)",
            ));
        }
        (Some(Value::String(t)), None) => {
            check_token(t).map_err(|rule| {
                Error::invalid_config(format_args!("{at}.Token"), rule.message())
            })?;
            Identity::Token(Token(Zeroizing::new(t.clone())))
        }
        (Some(_), None) => {
            return Err(Error::invalid_config(
                format_args!("{at}.Token"),
                "must be a string",
            ));
        }
        (None, Some(v)) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(uid) if uid != u32::MAX => Identity::Uid(uid),
            _ => {
                return Err(Error::invalid_config(
                    format_args!("{at}.Uid"),
                    format_args!("must be a Unix uid (a whole number 0-4294967294), found {v}"),
                ));
            }
        },
    };
    let Some(policies) = fields.get("ResourceAccessPolicies") else {
        return Err(Error::invalid_config(
            format_args!("{at}.ResourceAccessPolicies"),
            "is required (an array of {\"ResourceId\": ..., \"Permission\": \"ro\"}; [] for none)",
        ));
    };
    let Value::Array(policies) = policies else {
        return Err(Error::invalid_config(
            format_args!("{at}.ResourceAccessPolicies"),
            "must be an array",
        ));
    };
    let mut resources: Vec<String> = Vec::with_capacity(policies.len());
    for (j, p) in policies.iter().enumerate() {
        let at_p = format!("{at}.ResourceAccessPolicies[{j}]");
        let Value::Object(p) = p else {
            return Err(Error::invalid_config(
                &at_p,
                "must be an object like {\"ResourceId\": ..., \"Permission\": \"ro\"}",
            ));
        };
        only_keys(p, &["ResourceId", "Permission"], &format!("{at_p}."))?;
        let id = match p.get("ResourceId") {
            Some(Value::String(s)) => s.clone(),
            _ => {
                return Err(Error::invalid_config(
                    format_args!("{at_p}.ResourceId"),
                    "is required (a string: a resource Id, or a cloudSecrets entry's arn)",
                ));
            }
        };
        if check_resource_id(&id).is_err() {
            crate::manifest::check_secret_id(&id).map_err(|_| {
                Error::invalid_config(
                    format_args!("{at_p}.ResourceId"),
                    format_args!(
                        "{id:?} is neither a resource id (1-128 of A-Za-z0-9:_-) nor a secret \
                         name or ARN"
                    ),
                )
            })?;
        }
        match p.get("Permission") {
            Some(Value::String(s)) if s == READ_ONLY => {}
            Some(Value::String(s)) if s == "rw" => {
                return Err(Error::invalid_config(
                    format_args!("{at_p}.Permission"),
                    "\"rw\": secret resources are read-only; use \"ro\"",
                ));
            }
            Some(other) => {
                return Err(Error::invalid_config(
                    format_args!("{at_p}.Permission"),
                    format_args!("must be \"ro\", found {other}"),
                ));
            }
            None => {
                return Err(Error::invalid_config(
                    format_args!("{at_p}.Permission"),
                    "is required (\"ro\")",
                ));
            }
        }
        if let Some(k) = resources.iter().position(|r| *r == id) {
            return Err(Error::invalid_config(
                format_args!("{at_p}.ResourceId"),
                format_args!("{id:?} is already listed as ResourceAccessPolicies[{k}]"),
            ));
        }
        resources.push(id);
    }
    Ok(Consumer {
        name,
        identity,
        resources,
    })
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 128 {
        return Err(invalid_rule("must be 1-128 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":_.-".contains(*c)))
    {
        return Err(invalid_rule(format!(
            "{name:?} has {c:?}; names use only letters, digits and :_.-"
        )));
    }
    Ok(())
}

fn check_token(token: &str) -> Result<()> {
    let n = token.chars().count();
    if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&n) {
        return Err(Error::input(
            ErrorKind::InvalidConfig,
            format!("is {n} characters; a token has {MIN_TOKEN_LEN}-{MAX_TOKEN_LEN}"),
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::input(
            ErrorKind::InvalidConfig,
            "has whitespace or control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"Consumers": [
        {"Name": "billing", "Token": "billing-token-0123456789",
         "ResourceAccessPolicies": [{"ResourceId": "db-resource", "Permission": "ro"},
                                    {"ResourceId": "api-token", "Permission": "ro"}]},
        {"Name": "metrics", "Uid": 1001,
         "ResourceAccessPolicies": [{"ResourceId": "api-token", "Permission": "ro"}]},
        {"Name": "nobody", "Uid": 1002, "ResourceAccessPolicies": []}
    ]}"#;

    fn parse(text: &str) -> Result<Consumers> {
        Consumers::parse(text, "c.json")
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn each_consumer_reads_only_its_resources() {
        let c = parse(FILE).unwrap();
        assert_eq!(c.consumers().len(), 3);
        let billing = c.by_token("billing-token-0123456789").unwrap();
        assert_eq!(billing.name, "billing");
        assert_eq!(billing.authorize("db-resource"), Decision::Allowed);
        assert!(authorize(billing, "api-token").is_allowed());
        let metrics = c.by_uid(1001).unwrap();
        assert!(metrics.authorize("api-token").is_allowed());
        let denied = metrics.authorize("db-resource");
        assert_eq!(
            denied,
            Decision::Denied {
                consumer: "metrics".into(),
                resource_id: "db-resource".into()
            }
        );
        assert_eq!(
            denied.message().unwrap(),
            "consumer metrics may not read resource db-resource: it is not in its \
             ResourceAccessPolicies"
        );
        assert_eq!(Decision::Allowed.message(), None);
        let nobody = c.by_name("nobody").unwrap();
        assert!(!nobody.authorize("api-token").is_allowed());
        assert!(!nobody.authorize("").is_allowed());
        // Exact match only: no prefix, case or substring match.
        assert!(!billing.authorize("db-resourc").is_allowed());
        assert!(!billing.authorize("DB-RESOURCE").is_allowed());
        assert!(!billing.authorize("db-resource2").is_allowed());
        // Unknown identities.
        assert!(c.by_token("billing-token-012345678").is_none());
        assert!(c.by_token("billing-token-0123456789x").is_none());
        assert!(c.by_token("").is_none());
        assert!(c.by_uid(0).is_none());
        assert!(c.by_name("billing ").is_none());
        // Debug never shows a token.
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("billing-token"), "{dbg}");
        assert!(dbg.contains("<redacted>"), "{dbg}");
        // Policies naming resources the store lacks.
        let unknown = c.unknown_resources(|id| id == "api-token");
        assert_eq!(unknown, [("billing".to_owned(), "db-resource".to_owned())]);
    }

    #[test]
    fn v2_secrets_are_named_by_their_manifest_id() {
        let c = parse(
            r#"{"Consumers": [{"Name": "a", "Uid": 5, "ResourceAccessPolicies": [
                {"ResourceId": "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf", "Permission": "ro"}]}]}"#,
        )
        .unwrap();
        let a = c.by_uid(5).unwrap();
        let mut info = SecretInfo {
            arn: "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf".into(),
            name: "db".into(),
            manifest_id: "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf".into(),
            resource_id: None,
            resource_name: None,
            versions: Vec::new(),
        };
        assert!(a.authorize_secret(&info).is_allowed());
        // With a resource id, the resource id is what counts.
        info.resource_id = Some("db-resource".into());
        assert_eq!(resource_key(&info), "db-resource");
        assert!(!a.authorize_secret(&info).is_allowed());
    }

    #[test]
    fn strict_parsing_names_what_is_wrong() {
        let tok = "\"Token\": \"0123456789abcdef\"";
        let cases = [
            (r#"[]"#.to_owned(), "c.json: must be a JSON object"),
            (r#"{}"#.to_owned(), "c.json: Consumers: is required"),
            (r#"{"Consumers": [], "Extra": 1}"#.to_owned(), "c.json: Extra: unknown key"),
            (r#"{"Consumers": [], "consumers": []}"#.to_owned(), "c.json: consumers: duplicates \"Consumers\""),
            (r#"{"Consumers": {}}"#.to_owned(), "c.json: Consumers: must be an array"),
            (format!(r#"{{"Consumers": [{{"Name": "a", {tok}, "ResourceAccessPolicies": [], "name": "b"}}]}}"#), "duplicates \"Name\""),
            (format!(r#"{{"Consumers": [{{"Name": "a", {tok}, "ResourceAccessPolicies": [], "Extra": 1}}]}}"#), "c.json: Consumers[0].Extra: unknown key"),
            (format!(r#"{{"Consumers": [{{"Name": "a", {tok}, "resourceAccessPolicies": []}}]}}"#), "Consumers[0].resourceAccessPolicies: unknown key; did you mean \"ResourceAccessPolicies\"?"),
            (format!(r#"{{"Consumers": [{{{tok}, "ResourceAccessPolicies": []}}]}}"#), "Consumers[0].Name: is required"),
            (format!(r#"{{"Consumers": [{{"Name": "a b", {tok}, "ResourceAccessPolicies": []}}]}}"#), "Consumers[0].Name: \"a b\" has ' '"),
            (r#"{"Consumers": [{"Name": "a", "ResourceAccessPolicies": []}]}"#.to_owned(), "Consumers[0]: needs \"Token\""),
            (format!(r#"{{"Consumers": [{{"Name": "a", {tok}, "Uid": 3, "ResourceAccessPolicies": []}}]}}"#), "has both \"Token\" and \"Uid\""),
            (r#"{"Consumers": [{"Name": "a", "Token": "short", "ResourceAccessPolicies": []}]}"#.to_owned(), "Consumers[0].Token: is 5 characters"),
            (r#"{"Consumers": [{"Name": "a", "Uid": -1, "ResourceAccessPolicies": []}]}"#.to_owned(), "Consumers[0].Uid: must be a Unix uid"),
            (r#"{"Consumers": [{"Name": "a", "Uid": "1", "ResourceAccessPolicies": []}]}"#.to_owned(), "Consumers[0].Uid: must be a Unix uid"),
            (r#"{"Consumers": [{"Name": "a", "Uid": 1}]}"#.to_owned(), "Consumers[0].ResourceAccessPolicies: is required"),
            (r#"{"Consumers": [{"Name": "a", "Uid": 1, "ResourceAccessPolicies": [{"ResourceId": "x"}]}]}"#.to_owned(), "ResourceAccessPolicies[0].Permission: is required"),
            (r#"{"Consumers": [{"Name": "a", "Uid": 1, "ResourceAccessPolicies": [{"ResourceId": "x", "Permission": "rw"}]}]}"#.to_owned(), "ResourceAccessPolicies[0].Permission: \"rw\": secret resources are read-only"),
            (r#"{"Consumers": [{"Name": "a", "Uid": 1, "ResourceAccessPolicies": [{"Permission": "ro"}]}]}"#.to_owned(), "ResourceAccessPolicies[0].ResourceId: is required"),
            (r#"{"Consumers": [{"Name": "a", "Uid": 1, "ResourceAccessPolicies": [{"ResourceId": "x", "Permission": "ro", "permission": "ro"}]}]}"#.to_owned(), "duplicates \"Permission\""),
            (r#"{"Consumers": [{"Name": "a", "Uid": 1, "ResourceAccessPolicies": [{"ResourceId": "x", "Permission": "ro"}, {"ResourceId": "x", "Permission": "ro"}]}]}"#.to_owned(), "ResourceAccessPolicies[1].ResourceId: \"x\" is already listed as ResourceAccessPolicies[0]"),
            (r#"{"Consumers": [{"Name": "a", "Uid": 1, "ResourceAccessPolicies": []}, {"Name": "a", "Uid": 2, "ResourceAccessPolicies": []}]}"#.to_owned(), "Consumers[1].Name: \"a\" is already the name of Consumers[0]"),
            (r#"{"Consumers": [{"Name": "a", "Uid": 1, "ResourceAccessPolicies": []}, {"Name": "b", "Uid": 1, "ResourceAccessPolicies": []}]}"#.to_owned(), "Consumers[1].Uid: 1 is already the uid of Consumers[0]"),
            (format!(r#"{{"Consumers": [{{"Name": "a", {tok}, "ResourceAccessPolicies": []}}, {{"Name": "b", {tok}, "ResourceAccessPolicies": []}}]}}"#), "Consumers[1].Token: is the token of Consumers[0] too"),
        ];
        for (text, want) in cases {
            let e = parse(&text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{text}");
            let got = e.to_string();
            assert!(got.contains(want), "{text}: {got:?} lacks {want:?}");
            assert!(!got.contains("0123456789abcdef"), "token in error: {got}");
        }
        assert!(
            parse(r#"{"Consumers": []}"#)
                .unwrap()
                .consumers()
                .is_empty()
        );
        assert!(err("{").contains("c.json: not valid JSON"));
    }

    #[test]
    fn a_file_with_tokens_must_be_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("consumers.json");
        std::fs::write(&p, FILE).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Consumers::read(&p).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Consumers::read(&p).unwrap().consumers().len(), 3);
        // Uids only: others may read it (not write it).
        let q = tmp.path().join("uids.json");
        std::fs::write(
            &q,
            r#"{"Consumers": [{"Name": "a", "Uid": 1, "ResourceAccessPolicies": []}]}"#,
        )
        .unwrap();
        std::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Consumers::read(&q).is_ok());
        let e = Consumers::read(&tmp.path().join("missing.json")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    /// Issue 23 item 4: a consumers file is trusted like a key file. A uid-only file that
    /// others can write (0666: another user rewrites it and gives himself every resource), a
    /// symbolic link, a FIFO, a file in a directory others can write: each refused.
    #[test]
    fn a_consumers_file_others_can_change_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        };
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("etc");
        std::fs::create_dir(&dir).unwrap();
        mode(&dir, 0o755);
        let q = dir.join("uids.json");
        std::fs::write(
            &q,
            r#"{"Consumers": [{"Name": "a", "Uid": 1, "ResourceAccessPolicies": []}]}"#,
        )
        .unwrap();
        for bad in [0o666, 0o664, 0o646] {
            mode(&q, bad);
            let e = Consumers::read(&q).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{bad:o}: {e}");
            assert!(e.to_string().contains("chmod go-w"), "{e}");
        }
        mode(&q, 0o644);
        assert!(Consumers::read(&q).is_ok());
        mode(&dir, 0o777);
        let e = Consumers::read(&q).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("chmod go-w {}", dir.display())),
            "{e}"
        );
        mode(&dir, 0o755);
        let link = dir.join("link.json");
        std::os::unix::fs::symlink(&q, &link).unwrap();
        let e = Consumers::read(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let fifo = dir.join("fifo.json");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let e = Consumers::read(&fifo).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
    }
}
