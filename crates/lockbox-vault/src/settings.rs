//! What a `hashicorp-vault` config says, checked before any request.

use std::fmt;

use lockbox_core::Error;
use reqwest::Url;
use secrecy::SecretString;

/// The KV v2 mount Polygon Edge uses.
pub const DEFAULT_MOUNT: &str = "secret";

/// Environment variables a token is read from, first set (and non-empty) wins.
pub const TOKEN_ENV_VARS: [&str; 2] = ["LOCKBOX_TOKEN", "VAULT_TOKEN"];

/// Environment variable naming a PEM file of extra CA certificates (Vault's own name).
pub const ENV_CACERT: &str = "VAULT_CACERT";

/// Settings of a Vault backend. Build with [`VaultSettings::new`], then set the token (or take it
/// from the environment with [`VaultSettings::with_env_token`]).
#[derive(Clone)]
pub struct VaultSettings {
    /// The server's address (config `server_url`), such as `https://vault.example:8200`.
    pub address: String,
    /// The token (config `token`, else `LOCKBOX_TOKEN` or `VAULT_TOKEN`). Required.
    pub token: Option<SecretString>,
    /// Vault Enterprise / OpenBao namespace, sent as `X-Vault-Namespace` when set.
    pub namespace: Option<String>,
    /// The node's name (config `name`): the path segment after the mount's `data/`.
    pub node_name: String,
    /// The KV v2 mount, [`DEFAULT_MOUNT`] unless set.
    pub mount: String,
}

impl VaultSettings {
    /// Settings for node `node_name` on the server at `address`, mount `secret`, no token and
    /// no namespace yet.
    pub fn new(address: impl Into<String>, node_name: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            token: None,
            namespace: None,
            node_name: node_name.into(),
            mount: DEFAULT_MOUNT.into(),
        }
    }

    /// Sets the token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SecretString::from(token.into()));
        self
    }

    /// Sets the namespace (`None` or `""` sends no namespace header).
    pub fn namespace(mut self, namespace: Option<String>) -> Self {
        self.namespace = namespace.filter(|n| !n.is_empty());
        self
    }

    /// Fills a missing (or empty) token from `LOCKBOX_TOKEN` or `VAULT_TOKEN`.
    pub fn with_env_token(mut self) -> Self {
        if !has_token(&self.token) {
            self.token = token_from_env();
        }
        self
    }

    /// `address` as a URL without a trailing `/`, or an `InvalidConfig` error naming the field.
    pub(crate) fn base_url(&self) -> Result<Url, Error> {
        let field = "server_url";
        let url = Url::parse(self.address.trim()).map_err(|e| {
            Error::invalid_config(
                field,
                format!(
                    "{:?} is not a URL ({e}); use the Vault address, like http://127.0.0.1:8200",
                    self.address
                ),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::invalid_config(
                field,
                format!(
                    "{:?} is not an http:// or https:// URL with a host",
                    self.address
                ),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::invalid_config(
                field,
                "must not carry credentials; put the token in `token` or LOCKBOX_TOKEN",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::invalid_config(
                field,
                format!("{:?} must not have a query or fragment", self.address),
            ));
        }
        Ok(url)
    }

    /// The token, or an `InvalidConfig` error saying where one can come from.
    pub(crate) fn require_token(&self) -> Result<SecretString, Error> {
        match &self.token {
            Some(t) if has_token(&self.token) => Ok(t.clone()),
            _ => Err(Error::invalid_config(
                "token",
                format!(
                    "is required for type hashicorp-vault: set `token` in the config, or {} or {}",
                    TOKEN_ENV_VARS[0], TOKEN_ENV_VARS[1]
                ),
            )),
        }
    }

    /// The mount without leading or trailing `/`, checked.
    pub(crate) fn checked_mount(&self) -> Result<String, Error> {
        let mount = self.mount.trim_matches('/');
        let ok = !mount.is_empty()
            && mount
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != ".." && s.chars().all(plain_char));
        if !ok {
            return Err(Error::invalid_config(
                "mount",
                format!(
                    "{:?} is not a mount path (segments of A-Z a-z 0-9 _ . -)",
                    self.mount
                ),
            ));
        }
        Ok(mount.to_owned())
    }

    /// The node name, checked to be one plain path segment.
    pub(crate) fn checked_node(&self) -> Result<String, Error> {
        let node = &self.node_name;
        if node.is_empty() || node == "." || node == ".." || !node.chars().all(plain_char) {
            return Err(Error::invalid_config(
                "name",
                format!(
                    "{node:?} is not a usable node name for Vault (1 or more of A-Z a-z 0-9 _ . -)"
                ),
            ));
        }
        Ok(node.clone())
    }
}

/// Characters allowed in a node name or mount segment: safe in URLs and in policy paths (no
/// glob characters such as `*` or `+`).
fn plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn has_token(token: &Option<SecretString>) -> bool {
    use secrecy::ExposeSecret;
    token
        .as_ref()
        .is_some_and(|t| !t.expose_secret().trim().is_empty())
}

/// The token from `LOCKBOX_TOKEN`, else `VAULT_TOKEN` (empty values are skipped).
pub fn token_from_env() -> Option<SecretString> {
    TOKEN_ENV_VARS.iter().find_map(|var| {
        std::env::var(var)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(SecretString::from)
    })
}

impl fmt::Debug for VaultSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSettings")
            .field("address", &self.address)
            .field(
                "token",
                &if has_token(&self.token) {
                    "[REDACTED]"
                } else {
                    "<none>"
                },
            )
            .field("namespace", &self.namespace)
            .field("node_name", &self.node_name)
            .field("mount", &self.mount)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockbox_core::ErrorKind;

    #[test]
    fn debug_redacts_the_token() {
        let s = VaultSettings::new("http://127.0.0.1:8200", "n").token("s.SUPERSECRET");
        let d = format!("{s:?} {s:#?}");
        assert!(!d.contains("SUPERSECRET"), "{d}");
        assert!(d.contains("[REDACTED]"), "{d}");
    }

    #[test]
    fn addresses_must_be_http_urls() {
        for bad in [
            "",
            "vault:8200",
            "127.0.0.1:8200",
            "ftp://v",
            "http://",
            "http://u:p@v",
        ] {
            let e = VaultSettings::new(bad, "n").base_url().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
            assert!(e.to_string().contains("server_url"), "{e}");
        }
        let e = VaultSettings::new("http://u:pw-secret@v", "n")
            .base_url()
            .unwrap_err();
        assert!(!e.to_string().contains("pw-secret"), "{e}");
        for good in [
            "http://127.0.0.1:8200",
            "https://vault.example/",
            "https://v/prefix",
        ] {
            VaultSettings::new(good, "n").base_url().unwrap();
        }
    }

    #[test]
    fn missing_token_names_the_variables() {
        for s in [
            VaultSettings::new("http://v", "n"),
            VaultSettings::new("http://v", "n").token("  "),
        ] {
            let e = s.require_token().unwrap_err().to_string();
            assert!(
                e.contains("LOCKBOX_TOKEN") && e.contains("VAULT_TOKEN"),
                "{e}"
            );
        }
    }

    #[test]
    fn node_and_mount_are_plain_segments() {
        for bad in ["", "a/b", "..", "a*", "a+b", "a b"] {
            assert!(
                VaultSettings::new("http://v", bad).checked_node().is_err(),
                "{bad}"
            );
        }
        let mut s = VaultSettings::new("http://v", "node-1.a_b");
        assert_eq!(s.checked_node().unwrap(), "node-1.a_b");
        s.mount = "/kv/team/".into();
        assert_eq!(s.checked_mount().unwrap(), "kv/team");
        s.mount = "kv//x".into();
        assert!(s.checked_mount().is_err());
    }
}
