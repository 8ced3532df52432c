//! `secretsManagerConfig.json`: reading, writing and validating it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use lockbox_core::{Error, ErrorKind, PutMode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use crate::strict::{StrictJsonError, type_name};

/// The file name `lockbox generate` writes by default, as Polygon Edge does.
pub const DEFAULT_CONFIG_FILE: &str = "secretsManagerConfig.json";

/// Which secrets manager a config describes; the strings are Polygon Edge's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagerType {
    /// Files under a data directory (`extra.path`).
    Local,
    /// AWS Systems Manager Parameter Store.
    AwsSsm,
    /// AWS Secrets Manager.
    AwsSecretsManager,
    /// HashiCorp Vault or OpenBao (KV version 2, Polygon Edge's paths).
    HashicorpVault,
    /// Google Cloud Secret Manager (recognised for compatibility; lockbox has no backend for it).
    GcpSsm,
}

impl ManagerType {
    /// Every type, in the order help texts list them.
    pub const ALL: [ManagerType; 5] = [
        Self::Local,
        Self::AwsSsm,
        Self::AwsSecretsManager,
        Self::HashicorpVault,
        Self::GcpSsm,
    ];

    /// The config file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::AwsSsm => "aws-ssm",
            Self::AwsSecretsManager => "aws-secretsmanager",
            Self::HashicorpVault => "hashicorp-vault",
            Self::GcpSsm => "gcp-ssm",
        }
    }

    /// Parses the config file's spelling, or says which ones exist.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|t| t.as_str()).collect();
                Error::invalid_config(
                    "type",
                    format!("unknown type {s:?} (expected one of: {})", known.join(", ")),
                )
            })
    }
}

impl fmt::Display for ManagerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An access token. Debug and Display never show it.
#[derive(Clone)]
pub struct Token(SecretString);

impl Token {
    /// Wraps a token.
    pub fn new(token: String) -> Self {
        Self(SecretString::from(token))
    }

    /// The token itself, for the one call that needs it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([REDACTED])")
    }
}

/// The contents of `secretsManagerConfig.json`.
///
/// Keys are matched case-insensitively, as Polygon Edge's Go reader does, so both `type` and
/// the `Type` its docs show are accepted. Empty strings (Polygon Edge writes them for unset
/// fields) read as absent.
#[derive(Clone, Debug)]
pub struct SecretsManagerConfig {
    /// Access token (Vault); redacted in Debug.
    pub token: Option<Token>,
    /// Custom endpoint, for example an emulator's `http://127.0.0.1:PORT`.
    pub server_url: Option<String>,
    /// Which secrets manager.
    pub manager_type: ManagerType,
    /// The node's name: the path segment its secrets live under.
    pub name: String,
    /// Namespace (Vault).
    pub namespace: Option<String>,
    /// Type-specific settings (`region`, `ssm-parameter-path`, `path`, ...).
    pub extra: BTreeMap<String, String>,
}

const KEYS: [&str; 6] = ["token", "server_url", "type", "name", "namespace", "extra"];

impl SecretsManagerConfig {
    /// Parses and validates the JSON text of a config. A key given twice (in any case, or
    /// twice in `extra`) is an error naming it.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let object = match crate::strict::parse(text) {
            Ok(Value::Object(object)) => object,
            Ok(_) => {
                return Err(Error::invalid_config(
                    "JSON",
                    "the top level must be an object",
                ));
            }
            Err(StrictJsonError::Syntax { message, .. }) => {
                return Err(Error::invalid_config("JSON", message));
            }
            Err(StrictJsonError::DuplicateKey { path, key, .. }) => {
                let field = if path.is_empty() {
                    format!("key {key:?}")
                } else if path.eq_ignore_ascii_case("extra") {
                    crate::extra_field(&key)
                } else {
                    format!("{path}.{key}")
                };
                return Err(Error::invalid_config(
                    field,
                    "given twice (keys are matched regardless of case)",
                ));
            }
        };
        let mut fields: BTreeMap<&str, &Value> = BTreeMap::new();
        for (key, value) in &object {
            let lower = key.to_ascii_lowercase();
            let Some(known) = KEYS.iter().find(|k| **k == lower) else {
                return Err(Error::invalid_config(
                    format!("key {key:?}"),
                    format!("unknown key (expected: {})", KEYS.join(", ")),
                ));
            };
            fields.insert(known, value);
        }
        let text_field = |key: &str| -> Result<Option<String>, Error> {
            let Some(raw) = fields.get(key) else {
                return Ok(None);
            };
            match raw {
                Value::Null => Ok(None),
                Value::String(s) if s.is_empty() => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                other => Err(Error::invalid_config(
                    key,
                    format!("must be a string, not {}", type_name(other)),
                )),
            }
        };
        let manager_type = match text_field("type")? {
            Some(t) => ManagerType::parse(&t)?,
            None => return Err(Error::invalid_config("type", "is required")),
        };
        let extra = match fields.get("extra") {
            Some(raw) => extra_map(raw)?,
            None => BTreeMap::new(),
        };
        let config = Self {
            token: text_field("token")?.map(Token::new),
            server_url: text_field("server_url")?,
            manager_type,
            name: text_field("name")?.unwrap_or_default(),
            namespace: text_field("namespace")?,
            extra,
        };
        config.validate()?;
        Ok(config)
    }

    /// The JSON text, with Polygon Edge's keys in its order; unset fields are empty strings,
    /// as Polygon Edge writes them.
    pub fn to_json(&self) -> String {
        let mut extra = Map::new();
        for (k, v) in &self.extra {
            extra.insert(k.clone(), Value::String(v.clone()));
        }
        let fields: [(&str, Value); 6] = [
            (
                "token",
                self.token.as_ref().map(|t| t.expose()).unwrap_or("").into(),
            ),
            (
                "server_url",
                self.server_url.clone().unwrap_or_default().into(),
            ),
            ("type", self.manager_type.as_str().into()),
            ("name", self.name.clone().into()),
            (
                "namespace",
                self.namespace.clone().unwrap_or_default().into(),
            ),
            ("extra", Value::Object(extra)),
        ];
        let mut out = String::from("{\n");
        for (i, (key, value)) in fields.iter().enumerate() {
            let value = serde_json::to_string_pretty(value).expect("JSON values serialize");
            let value = value.replace('\n', "\n    ");
            let comma = if i + 1 < fields.len() { "," } else { "" };
            out.push_str(&format!("    {key:?}: {value}{comma}\n"));
        }
        out.push_str("}\n");
        out
    }

    /// Reads and validates a config file; errors name the file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        // Non-blocking (a FIFO is refused at once), a regular file, at most 4 MiB, UTF-8.
        let text = crate::strict::read_text(path).map_err(|e| {
            let (kind, message) = match &e {
                lockbox_fs::FsError::Io { source, .. } => (
                    match source.kind() {
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData => {
                            ErrorKind::InvalidConfig
                        }
                        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                        _ => ErrorKind::Backend,
                    },
                    format!("cannot read config file {}: {source}", path.display()),
                ),
                other => (other.kind(), format!("cannot read config file: {other}")),
            };
            Error::input(kind, message)
        })?;
        let text = zeroize::Zeroizing::new(text);
        let config = Self::from_json(&text).map_err(|e| {
            Error::input(
                e.kind(),
                format!("config file {}: {}", path.display(), e.message()),
            )
        })?;
        if config.token.is_some() {
            let meta = std::fs::metadata(path).map_err(|e| {
                Error::input(
                    ErrorKind::Backend,
                    format!("cannot stat config file {}: {e}", path.display()),
                )
            })?;
            refuse_shared_token_file(path, &meta)?;
        }
        Ok(config)
    }

    /// Writes the config atomically with owner-only permissions (it may hold a token). Refuses
    /// to replace an existing file unless `overwrite`.
    pub fn write(&self, path: &Path, overwrite: bool) -> Result<(), Error> {
        self.validate()?;
        let mode = if overwrite {
            PutMode::Overwrite
        } else {
            PutMode::Create
        };
        lockbox_fs::write_file_atomic(path, self.to_json().as_bytes(), mode).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::input(
                    ErrorKind::AlreadyExists,
                    format!(
                        "config file {} already exists; use --force to replace it",
                        path.display()
                    ),
                )
            } else {
                Error::input(ErrorKind::Backend, format!("writing config file: {e}"))
            }
        })
    }
}

/// A config file that holds a token must be owner-only, like key files: refused with the
/// `chmod` that fixes it when group or others can access it.
pub fn refuse_shared_token_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), Error> {
    match lockbox_fs::check_owner_only(path, meta) {
        Ok(()) => Ok(()),
        Err(open) => Err(Error::input(
            ErrorKind::PermissionDenied,
            format!(
                "config file {} holds a token and has mode {:04o}, so group or others can \
                 access it; refusing to use a token others can read (fix: {})",
                path.display(),
                open.mode,
                open.fix()
            ),
        )),
    }
}

/// `extra`: null, or an object of strings (keys already unique regardless of case).
fn extra_map(raw: &Value) -> Result<BTreeMap<String, String>, Error> {
    let entries = match raw {
        Value::Null => return Ok(BTreeMap::new()),
        Value::Object(entries) => entries,
        other => {
            return Err(Error::invalid_config(
                "extra",
                format!("must be an object, not {}", type_name(other)),
            ));
        }
    };
    let mut map = BTreeMap::new();
    for (key, value) in entries {
        let Value::String(value) = value else {
            return Err(Error::invalid_config(
                crate::extra_field(key),
                format!("must be a string, not {}", type_name(value)),
            ));
        };
        map.insert(key.clone(), value.clone());
    }
    Ok(map)
}

/// True for names shaped like AWS regions: `us-east-1`, `us-gov-west-1`, `cn-north-1`.
pub fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EDGE_SSM: &str = r#"{
        "token": "",
        "server_url": "",
        "type": "aws-ssm",
        "name": "node1",
        "namespace": "",
        "extra": {"region": "us-east-1", "ssm-parameter-path": "/polygon-edge/nodes"}
    }"#;

    #[test]
    fn a_config_file_that_is_not_utf8_is_an_invalid_config_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, b"{\"type\": \"\xff\"}").unwrap();
        let e = SecretsManagerConfig::read(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert_eq!(
            e.message(),
            format!(
                "cannot read config file {}: stream did not contain valid UTF-8",
                path.display()
            )
        );
    }

    #[test]
    fn reads_polygon_edge_output() {
        let c = SecretsManagerConfig::from_json(EDGE_SSM).unwrap();
        assert_eq!(c.manager_type, ManagerType::AwsSsm);
        assert_eq!(c.name, "node1");
        assert!(c.token.is_none() && c.server_url.is_none() && c.namespace.is_none());
        assert_eq!(c.extra["ssm-parameter-path"], "/polygon-edge/nodes");
    }

    #[test]
    fn accepts_capitalised_keys_from_the_docs() {
        let c = SecretsManagerConfig::from_json(
            r#"{"Type": "aws-ssm", "Name": "n", "Extra": {"region": "eu-west-2", "ssm-parameter-path": "/x"}}"#,
        )
        .unwrap();
        assert_eq!(c.extra["region"], "eu-west-2");
        let e =
            SecretsManagerConfig::from_json(r#"{"type": "local", "Type": "local", "name": "n"}"#)
                .unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
    }

    #[test]
    fn to_json_keeps_its_exact_layout() {
        let c = SecretsManagerConfig::from_json(EDGE_SSM).unwrap();
        let expected = "{\n    \"token\": \"\",\n    \"server_url\": \"\",\n    \"type\": \"aws-ssm\",\n    \
            \"name\": \"node1\",\n    \"namespace\": \"\",\n    \"extra\": {\n      \
            \"region\": \"us-east-1\",\n      \"ssm-parameter-path\": \"/polygon-edge/nodes\"\n    }\n}\n";
        assert_eq!(c.to_json(), expected);
    }

    #[test]
    fn refuses_keys_given_twice_in_any_case() {
        for (json, key) in [
            (
                r#"{"type": "local", "type": "aws-ssm", "name": "n"}"#,
                "key \"type\"",
            ),
            (
                r#"{"type": "local", "name": "n", "NAME": "m"}"#,
                "key \"NAME\"",
            ),
            (
                r#"{"type": "local", "name": "n", "extra": {"path": "a", "path": "b"}}"#,
                "extra.path",
            ),
        ] {
            let e = SecretsManagerConfig::from_json(json).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig);
            let e = e.to_string();
            assert!(e.contains(&format!("{key}: given twice")), "{json}: {e}");
        }
    }

    #[test]
    fn refuses_extra_keys_given_twice_in_any_case_and_nested_duplicates() {
        let e = SecretsManagerConfig::from_json(
            r#"{"type": "local", "name": "n", "extra": {"path": "a", "PATH": "b"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("extra.PATH: given twice"), "{e}");
        let e = SecretsManagerConfig::from_json(
            r#"{"type": "local", "name": "n", "TYPE": "aws-ssm", "extra": {"path": "a"}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("key \"TYPE\": given twice"), "{e}");
    }

    #[test]
    fn a_config_holding_a_token_must_be_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_CONFIG_FILE);
        let with_token = r#"{"type": "hashicorp-vault", "name": "n", "server_url": "http://v", "token": "s.SUPERSECRET"}"#;
        std::fs::write(&path, with_token).unwrap();
        for mode in [0o644, 0o640, 0o604] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = SecretsManagerConfig::read(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PermissionDenied);
            let msg = e.to_string();
            assert!(msg.contains("holds a token"), "{msg}");
            assert!(
                msg.contains(&format!("chmod 600 {}", path.display())),
                "{msg}"
            );
            assert!(!msg.contains("SUPERSECRET"), "{msg}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        SecretsManagerConfig::read(&path).unwrap();
        // Without a token the mode is not checked (a config names no secret).
        std::fs::write(&path, EDGE_SSM).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        SecretsManagerConfig::read(&path).unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"name": "n"}"#, "type: is required"),
            (
                r#"{"type": "vault", "name": "n"}"#,
                "type: unknown type \"vault\"",
            ),
            (
                r#"{"type": "local", "extra": {"path": "d"}}"#,
                "name: is required",
            ),
            (
                r#"{"type": "local", "name": "a/b", "extra": {"path": "d"}}"#,
                "name: \"a/b\" must be one path segment",
            ),
            (
                r#"{"type": "aws-ssm", "name": "n", "extra": {"ssm-parameter-path": "/p"}}"#,
                "extra.region: is required for type aws-ssm",
            ),
            (
                r#"{"type": "aws-ssm", "name": "n", "extra": {"region": "us-east-1"}}"#,
                "extra.ssm-parameter-path: is required",
            ),
            (
                r#"{"type": "aws-ssm", "name": "n", "extra": {"region": "Mars", "ssm-parameter-path": "/p"}}"#,
                "extra.region: \"Mars\" is not an AWS region",
            ),
            (
                r#"{"type": "aws-ssm", "name": "n", "extra": {"region": "us-east-1", "ssm-parameter-path": "/p", "ssm-paramter-path": "/q"}}"#,
                "extra.ssm-paramter-path: is not a setting of type aws-ssm",
            ),
            (
                r#"{"type": "local", "name": "n", "extra": {"path": 3}}"#,
                "extra.path: must be a string, not a number",
            ),
            (
                r#"{"type": "local", "name": "n", "extra": {"path": "d"}, "extras": {}}"#,
                "key \"extras\": unknown key",
            ),
            (
                r#"{"type": "local", "name": "n", "server_url": "ftp://x", "extra": {"path": "d"}}"#,
                "server_url: \"ftp://x\" must start with http",
            ),
            (
                r#"{"type": "hashicorp-vault", "name": "n", "server_url": "http://v"}"#,
                "token: is required",
            ),
            (r#"[1]"#, "top level must be an object"),
            (r#"{"type": "local""#, "JSON: EOF"),
        ];
        for (json, expected) in cases {
            let e = SecretsManagerConfig::from_json(json).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig);
            assert!(
                e.to_string().contains(expected),
                "{json}\n  got: {e}\n  want: {expected}"
            );
        }
    }

    #[test]
    fn token_is_never_in_debug() {
        let c = SecretsManagerConfig::from_json(
            r#"{"type": "hashicorp-vault", "name": "n", "server_url": "http://v", "token": "s.SUPERSECRET"}"#,
        )
        .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("SUPERSECRET"), "{debug}");
        assert!(debug.contains("REDACTED"));
        assert_eq!(c.token.unwrap().expose(), "s.SUPERSECRET");
    }

    #[test]
    fn written_file_is_owner_only_and_not_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_CONFIG_FILE);
        let c = SecretsManagerConfig::from_json(EDGE_SSM).unwrap();
        c.write(&path, false).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let e = c.write(&path, false).unwrap_err();
        assert!(e.to_string().contains("use --force"), "{e}");
        c.write(&path, true).unwrap();
        let back = SecretsManagerConfig::read(&path).unwrap();
        assert_eq!(back.to_json(), c.to_json());
        let e = SecretsManagerConfig::read(&dir.path().join("nope.json")).unwrap_err();
        assert!(e.to_string().contains("nope.json"), "{e}");
    }

    #[test]
    fn region_names() {
        for ok in [
            "us-east-1",
            "us-gov-west-1",
            "cn-north-1",
            "ap-southeast-2",
            "eu-central-2",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "US-EAST-1",
            "useast1",
            "us--1",
            "u-east-1",
            "us-east-1a",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }

    /// Config-like JSON: the known keys (in any case) with values of any shape, or noise.
    fn config_like() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            prop_oneof![
                Just("local".to_string()),
                Just("aws-ssm".to_string()),
                Just("hashicorp-vault".to_string()),
                Just("us-east-1".to_string()),
                Just("/p".to_string()),
                "\\PC{0,12}"
            ]
            .prop_map(Value::String),
        ];
        let key = prop_oneof![
            Just("type".to_string()),
            Just("TYPE".to_string()),
            Just("name".to_string()),
            Just("extra".to_string()),
            Just("token".to_string()),
            Just("server_url".to_string()),
            Just("region".to_string()),
            Just("path".to_string()),
            Just("ssm-parameter-path".to_string()),
            "[a-zA-Z_-]{0,8}"
        ];
        let value = leaf.prop_recursive(2, 16, 6, move |inner| {
            proptest::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
        });
        prop_oneof![value.prop_map(|v| v.to_string()), "\\PC{0,120}"]
    }

    fn segment() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_-]{1,16}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Fuzzing: anything parses to a valid config or an InvalidConfig error; no panic.
        #[test]
        fn arbitrary_configs_never_panic(text in config_like()) {
            if let Err(e) = SecretsManagerConfig::from_json(&text) {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{}", e);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Err(e) = SecretsManagerConfig::from_json(&String::from_utf8_lossy(&bytes)) {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{}", e);
            }
        }

        #[test]
        fn configs_round_trip(
            name in segment(),
            path in prop::collection::vec(segment(), 1..4),
            token in proptest::option::of("[ -~]{1,20}"),
            ns in proptest::option::of(segment()),
            url in proptest::option::of("http://127\\.0\\.0\\.1:[0-9]{2,5}"),
        ) {
            let mut extra = BTreeMap::new();
            extra.insert("region".to_string(), "us-west-2".to_string());
            extra.insert("ssm-parameter-path".to_string(), format!("/{}", path.join("/")));
            let c = SecretsManagerConfig {
                token: token.map(Token::new),
                server_url: url,
                manager_type: ManagerType::AwsSsm,
                name,
                namespace: ns,
                extra,
            };
            let back = SecretsManagerConfig::from_json(&c.to_json()).unwrap();
            prop_assert_eq!(back.to_json(), c.to_json());
            prop_assert_eq!(back.token.as_ref().map(|t| t.expose().to_string()), c.token.as_ref().map(|t| t.expose().to_string()));
            prop_assert_eq!(&back.extra, &c.extra);
            prop_assert_eq!(&back.name, &c.name);
        }
    }
}
