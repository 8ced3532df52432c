//! chamber's Secrets Manager backend (`CHAMBER_SECRET_BACKEND=secretsmanager`), read-only: a
//! service is one secret named `<service>` whose SecretString is a JSON object of keys to
//! values. As chamber reads it, numbers and booleans become their text and other values the
//! empty string; chamber's own `_chamber_metadata` entry is left out (it is bookkeeping, not a
//! secret). Writing is refused: chamber keeps per-key metadata in the same secret.

use std::collections::BTreeMap;

use async_trait::async_trait;
use lockbox_core::{
    Error, ErrorKind, PutMode, Result, SecretName, SecretValue, SecretsManager, Version,
};
use lockbox_secretsmanager::SecretsManagerClient;

const BACKEND: &str = "chamber-secretsmanager";

/// chamber's custom Secrets Manager endpoint variable.
pub const ENV_ENDPOINT: &str = "CHAMBER_AWS_SECRETS_MANAGER_ENDPOINT";

/// The key chamber keeps its metadata under.
const METADATA_KEY: &str = "_chamber_metadata";

/// One chamber service in Secrets Manager.
#[derive(Debug)]
pub struct ServiceSecret {
    client: SecretsManagerClient,
    service: String,
}

impl ServiceSecret {
    /// The service `service` (normalised) through `client`.
    pub fn new(client: SecretsManagerClient, service: String) -> Self {
        Self { client, service }
    }

    /// Key -> value of the service's secret.
    async fn entries(&self) -> Result<BTreeMap<String, SecretValue>> {
        let version = self
            .client
            .fetch_version(&self.service, &Version::Current)
            .await?;
        parse(&self.service, version.value.expose_bytes())
    }

    fn read_only(&self, name: &SecretName) -> Error {
        Error::new(
            ErrorKind::Unsupported,
            BACKEND,
            format!(
                "lockbox reads chamber's Secrets Manager services but does not write them \
                 (chamber keeps its metadata in the same secret {}); write with chamber, or use \
                 the ssm backend",
                self.service
            ),
        )
        .with_secret(name)
    }
}

/// The entries of a chamber Secrets Manager secret's value.
fn parse(service: &str, bytes: &[u8]) -> Result<BTreeMap<String, SecretValue>> {
    let corrupt = || {
        Error::new(
            ErrorKind::Corrupt,
            BACKEND,
            format!(
                "secret {service}: its value is not a JSON object of keys to values, as chamber \
                 stores a service"
            ),
        )
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|_| corrupt())?;
    let mut out = BTreeMap::new();
    for (key, value) in object {
        if key == METADATA_KEY {
            continue;
        }
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => String::new(),
        };
        out.insert(key, SecretValue::from_string(text));
    }
    Ok(out)
}

#[async_trait]
impl SecretsManager for ServiceSecret {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self, name: &SecretName) -> String {
        format!("key {name} of Secrets Manager secret {}", self.service)
    }

    async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
        self.entries()
            .await?
            .remove(name.as_str())
            .ok_or_else(|| Error::not_found(BACKEND, name))
    }

    fn check_put(&self, name: &SecretName, _value: &SecretValue) -> Result<()> {
        Err(self.read_only(name))
    }

    async fn put(&self, name: &SecretName, _value: &SecretValue, _mode: PutMode) -> Result<()> {
        Err(self.read_only(name))
    }

    async fn delete(&self, name: &SecretName) -> Result<()> {
        Err(self.read_only(name))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        Ok(self
            .read_prefix(prefix)
            .await?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    async fn read_prefix(&self, prefix: &str) -> Result<Vec<(SecretName, SecretValue)>> {
        let mut out = Vec::new();
        for (key, value) in self.entries().await? {
            if key.starts_with(prefix) {
                out.push((SecretName::new(key.as_str())?, value));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn values_read_as_chamber_reads_them() {
        let got = parse(
            "app",
            br#"{"a": "x", "port": 5432, "f": 1.5, "on": true, "n": null, "o": {}, "_chamber_metadata": "{}"}"#,
        )
        .unwrap();
        let text: Vec<(&str, &str)> = got
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose_str().unwrap()))
            .collect();
        assert_eq!(
            text,
            [
                ("a", "x"),
                ("f", "1.5"),
                ("n", ""),
                ("o", ""),
                ("on", "true"),
                ("port", "5432")
            ]
        );
        assert!(parse("app", b"plain text").is_err());
    }
}
