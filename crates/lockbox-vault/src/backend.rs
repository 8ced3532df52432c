//! The Vault KV v2 backend.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lockbox_core::{
    Error, ErrorKind, PutMode, Result, SecretName, SecretValue, SecretsManager, VersionInfo,
};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::errors::{Op, from_status, from_transport, vault_messages};
use crate::settings::{ENV_CACERT, VaultSettings};

pub(crate) const BACKEND: &str = "hashicorp-vault";

/// Connection attempts give up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A whole request gives up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Node secrets in a KV version 2 engine: secret `<secret>` of node `<name>` is
/// `<mount>/data/<name>/<secret>` holding `{"<secret>": "<value>"}`, as Polygon Edge writes it.
///
/// The backend does not retry; wrap it in [`lockbox_core::Retry`]. It never follows redirects,
/// so the token only ever goes to `server_url`.
#[derive(Clone)]
pub struct VaultBackend {
    http: reqwest::Client,
    /// The address without a trailing `/`.
    base: String,
    token: SecretString,
    namespace: Option<String>,
    mount: String,
    node: String,
}

impl VaultBackend {
    /// Checks `settings` and builds the HTTP client (rustls with the platform's roots, plus the
    /// PEM file named by `VAULT_CACERT`; 3 s connect and 10 s request timeouts). Makes no
    /// request.
    pub fn connect(settings: VaultSettings) -> Result<Self> {
        let base = settings.base_url()?;
        let token = settings.require_token()?;
        let mount = settings.checked_mount()?;
        let node = settings.checked_node()?;
        if reqwest::header::HeaderValue::from_str(token.expose_secret()).is_err() {
            return Err(Error::invalid_config(
                "token",
                "holds characters an HTTP header cannot carry",
            ));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lockbox/", env!("CARGO_PKG_VERSION")));
        for cert in extra_roots(std::env::var_os(ENV_CACERT).as_deref())? {
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| {
            Error::invalid_config(
                "server_url",
                format!("could not set up the HTTP client: {e}"),
            )
        })?;
        Ok(Self {
            http,
            base: base_string(&base),
            token,
            namespace: settings.namespace.filter(|n| !n.is_empty()),
            mount,
            node,
        })
    }

    /// Like [`VaultBackend::connect`], taking a missing token from `LOCKBOX_TOKEN` or
    /// `VAULT_TOKEN`.
    pub fn from_env(settings: VaultSettings) -> Result<Self> {
        Self::connect(settings.with_env_token())
    }

    /// The KV v2 data path of `name`: `<mount>/data/<node>/<name>`.
    pub fn data_path(&self, name: &SecretName) -> String {
        format!("{}/data/{}/{}", self.mount, self.node, name)
    }

    /// The KV v2 metadata path of `name`: `<mount>/metadata/<node>/<name>`.
    pub fn metadata_path(&self, name: &SecretName) -> String {
        format!("{}/metadata/{}/{}", self.mount, self.node, name)
    }

    /// The namespace sent as `X-Vault-Namespace`, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Sends one request to `/v1/<path>` and returns the body of a 2xx answer; anything else
    /// becomes an error through the one mapping in `errors`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: Option<(&str, &str)>,
        body: Option<String>,
        op: Op,
        secret: &str,
    ) -> Result<Vec<u8>> {
        let mut token = reqwest::header::HeaderValue::from_str(self.token.expose_secret())
            .expect("checked in connect");
        token.set_sensitive(true);
        let mut request = self
            .http
            .request(method, format!("{}/v1/{path}", self.base))
            .header("X-Vault-Token", token)
            .header("X-Vault-Request", "true");
        if let Some(q) = query {
            request = request.query(&[q]);
        }
        if let Some(ns) = &self.namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| from_transport(&e, op, secret, path))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| from_transport(&e, op, secret, path))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        if status.is_redirection() {
            return Err(Error::new(
                ErrorKind::Backend,
                BACKEND,
                format!(
                    "{path}: the server redirected (HTTP {}); lockbox does not follow redirects, so \
                     the token never goes elsewhere: point server_url at the active node",
                    status.as_u16()
                ),
            )
            .with_secret(secret));
        }
        Err(from_status(
            status.as_u16(),
            &vault_messages(&bytes),
            op,
            secret,
            path,
        ))
    }

    fn corrupt(&self, name: &SecretName, what: impl fmt::Display) -> Error {
        Error::new(
            ErrorKind::Corrupt,
            BACKEND,
            format!("Vault path {}: {what}", self.data_path(name)),
        )
        .with_secret(name)
    }

    /// The value as text: Vault values are JSON strings.
    fn text<'a>(&self, name: &SecretName, value: &'a SecretValue) -> Result<&'a str> {
        value.expose_str().ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                BACKEND,
                format!(
                    "Vault path {}: Vault values are JSON strings and this value is not UTF-8; \
                     store it hex- or base64-encoded",
                    self.data_path(name)
                ),
            )
            .with_secret(name)
        })
    }

    /// Writes `{"<name>": value}`, with check-and-set 0 when `create`.
    async fn write(&self, name: &SecretName, text: &str, create: bool) -> Result<()> {
        let key = serde_json::to_string(name.as_str()).expect("a string serialises");
        let value = serde_json::to_string(text).expect("a string serialises");
        let options = if create {
            r#""options":{"cas":0},"#
        } else {
            ""
        };
        let body = format!(r#"{{{options}"data":{{{key}:{value}}}}}"#);
        let op = if create { Op::Create } else { Op::Write };
        self.call(
            Method::POST,
            &self.data_path(name),
            None,
            Some(body),
            op,
            name.as_str(),
        )
        .await?;
        tracing::debug!(secret = %name, path = %self.data_path(name), "stored Vault secret");
        Ok(())
    }
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time as Vault writes it
/// (`2024-05-01T12:34:56.789Z`); `None` for anything else.
fn rfc3339_seconds(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !t.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3_600 + mm * 60 + ss)
}

/// `url` as text without a trailing `/`.
fn base_string(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// Certificates from the PEM file `path` (the value of `VAULT_CACERT`), if set.
fn extra_roots(path: Option<&std::ffi::OsStr>) -> Result<Vec<reqwest::Certificate>> {
    let Some(path) = path.filter(|p| !p.is_empty()) else {
        return Ok(Vec::new());
    };
    let shown = std::path::Path::new(path).display().to_string();
    let pem = std::fs::read(path)
        .map_err(|e| Error::invalid_config(ENV_CACERT, format!("cannot read {shown}: {e}")))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        Error::invalid_config(
            ENV_CACERT,
            format!("{shown} is not a PEM certificate bundle: {e}"),
        )
    })?;
    if certs.is_empty() {
        return Err(Error::invalid_config(
            ENV_CACERT,
            format!("{shown} holds no PEM certificate"),
        ));
    }
    Ok(certs)
}

/// The JSON type of `v`, for messages that must not show the value itself.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[async_trait]
impl SecretsManager for VaultBackend {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn location(&self, name: &SecretName) -> String {
        match &self.namespace {
            Some(ns) => format!("Vault path {} (namespace {ns})", self.data_path(name)),
            None => format!("Vault path {}", self.data_path(name)),
        }
    }

    async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
        let path = self.data_path(name);
        let body = self
            .call(Method::GET, &path, None, None, Op::Read, name.as_str())
            .await?;
        let mut json: Value = serde_json::from_slice(&body)
            .map_err(|_| self.corrupt(name, "the answer is not JSON"))?;
        drop(body);
        let Some(data) = json
            .pointer_mut("/data/data")
            .and_then(Value::as_object_mut)
        else {
            return Err(self.corrupt(
                name,
                "the answer holds no data (is the mount KV version 2?)",
            ));
        };
        match data.get_mut(name.as_str()).map(Value::take) {
            Some(Value::String(s)) => Ok(SecretValue::from_string(s)),
            Some(other) => Err(self.corrupt(
                name,
                format!(
                    "key {:?} holds a JSON {}, not a string",
                    name.as_str(),
                    json_type(&other)
                ),
            )),
            None => Err(self.corrupt(name, format!("the secret has no key {:?}", name.as_str()))),
        }
    }

    fn check_put(&self, name: &SecretName, value: &SecretValue) -> Result<()> {
        self.text(name, value).map(drop)
    }

    /// KV v2 metadata: every version the engine keeps, with its creation date; the current
    /// one carries the label `current`, deleted or destroyed ones are marked. Never values.
    async fn history(&self, name: &SecretName) -> Result<Vec<VersionInfo>> {
        let path = self.metadata_path(name);
        let body = self
            .call(Method::GET, &path, None, None, Op::Read, name.as_str())
            .await?;
        let json: Value = serde_json::from_slice(&body)
            .map_err(|_| self.corrupt(name, "the metadata answer is not JSON"))?;
        let current = json
            .pointer("/data/current_version")
            .and_then(Value::as_u64);
        let Some(versions) = json.pointer("/data/versions").and_then(Value::as_object) else {
            return Err(self.corrupt(name, "the metadata answer lists no versions"));
        };
        let mut out: Vec<VersionInfo> = versions
            .iter()
            .map(|(number, meta)| {
                let mut v = VersionInfo::new(number.clone());
                if current.is_some_and(|c| c.to_string() == *number) {
                    v.labels.push("current".into());
                }
                v.created = meta
                    .get("created_time")
                    .and_then(Value::as_str)
                    .and_then(rfc3339_seconds);
                v.deleted = meta.get("destroyed").and_then(Value::as_bool) == Some(true)
                    || meta
                        .get("deletion_time")
                        .and_then(Value::as_str)
                        .is_some_and(|t| !t.is_empty());
                v
            })
            .collect();
        out.sort_by_key(|v| v.version.parse::<u64>().unwrap_or(u64::MAX));
        Ok(out)
    }

    async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
        let text = self.text(name, value)?;
        let create = mode == PutMode::Create;
        match self.write(name, text, create).await {
            // Vault checks `update` rather than `create` when the path exists, so a token that
            // may only create (the node policy) hears 403 for a secret that is already there.
            Err(e) if create && e.kind() == ErrorKind::PermissionDenied => {
                let path = self.metadata_path(name);
                match self
                    .call(Method::GET, &path, None, None, Op::Delete, name.as_str())
                    .await
                {
                    Ok(_) => Err(Error::already_exists(BACKEND, name)
                        .with_message(format!("Vault path {}", self.data_path(name)))),
                    Err(_) => Err(e),
                }
            }
            other => other,
        }
    }

    /// Removes every version and the metadata (so a create of the name works again);
    /// `NotFound` when there is no metadata.
    async fn delete(&self, name: &SecretName) -> Result<()> {
        let path = self.metadata_path(name);
        self.call(Method::GET, &path, None, None, Op::Delete, name.as_str())
            .await?;
        self.call(Method::DELETE, &path, None, None, Op::Delete, name.as_str())
            .await?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        // Start at the deepest directory the prefix names; no valid name lies under a
        // directory that is not itself a valid name.
        let start = match prefix.rfind('/') {
            Some(i) => &prefix[..=i],
            None => "",
        };
        if !start.is_empty() && SecretName::new(&start[..start.len() - 1]).is_err() {
            return Ok(Vec::new());
        }
        let what = format!("{prefix}*");
        let mut names = Vec::new();
        let mut dirs = vec![start.to_owned()];
        while let Some(dir) = dirs.pop() {
            let path = format!("{}/metadata/{}/{dir}", self.mount, self.node);
            let body = match self
                .call(
                    Method::GET,
                    &path,
                    Some(("list", "true")),
                    None,
                    Op::List,
                    &what,
                )
                .await
            {
                Ok(body) => body,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            let json: Value = serde_json::from_slice(&body).map_err(|_| {
                Error::new(
                    ErrorKind::Backend,
                    BACKEND,
                    format!("listing Vault path {path}: the answer is not JSON"),
                )
            })?;
            let keys = json.pointer("/data/keys").and_then(Value::as_array);
            for key in keys.into_iter().flatten().filter_map(Value::as_str) {
                let full = format!("{dir}{key}");
                if key.ends_with('/') {
                    if full.starts_with(prefix) || prefix.starts_with(&full) {
                        dirs.push(full);
                    }
                } else if full.starts_with(prefix)
                    && let Ok(name) = SecretName::new(full)
                {
                    names.push(name);
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }
}

impl fmt::Debug for VaultBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultBackend")
            .field("address", &self.base)
            .field("token", &"[REDACTED]")
            .field("namespace", &self.namespace)
            .field("mount", &self.mount)
            .field("node", &self.node)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> VaultBackend {
        VaultBackend::connect(
            VaultSettings::new("http://127.0.0.1:8200/", "node1").token("s.SUPERSECRET"),
        )
        .unwrap()
    }

    #[test]
    fn vault_times_become_epoch_seconds() {
        assert_eq!(rfc3339_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_seconds("2018-03-22T02:24:06.945319214Z"),
            Some(1_521_685_446)
        );
        assert_eq!(rfc3339_seconds("2024-02-29T23:59:59Z"), Some(1_709_251_199));
        assert_eq!(rfc3339_seconds(""), None);
        assert_eq!(rfc3339_seconds("yesterday"), None);
    }

    #[test]
    fn paths_are_polygon_edges() {
        let b = backend();
        let n = SecretName::new("validator-key").unwrap();
        assert_eq!(b.data_path(&n), "secret/data/node1/validator-key");
        assert_eq!(b.metadata_path(&n), "secret/metadata/node1/validator-key");
        assert_eq!(b.location(&n), "Vault path secret/data/node1/validator-key");
        assert_eq!(b.base, "http://127.0.0.1:8200");
    }

    #[test]
    fn debug_redacts_the_token() {
        let d = format!("{:?}", backend());
        assert!(!d.contains("SUPERSECRET"), "{d}");
    }

    #[test]
    fn connect_refuses_bad_settings() {
        let e = VaultBackend::connect(VaultSettings::new("not a url", "n").token("t")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        let e = VaultBackend::connect(VaultSettings::new("http://v", "n")).unwrap_err();
        assert!(e.to_string().contains("LOCKBOX_TOKEN"), "{e}");
        let e =
            VaultBackend::connect(VaultSettings::new("http://v", "n").token("a\nb")).unwrap_err();
        assert!(!e.to_string().contains("a\nb"), "{e}");
    }

    #[test]
    fn vault_cacert_must_name_a_pem_bundle() {
        use std::ffi::OsStr;
        assert!(extra_roots(None).unwrap().is_empty());
        assert!(extra_roots(Some(OsStr::new(""))).unwrap().is_empty());
        let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/test-ca.pem");
        assert_eq!(extra_roots(Some(OsStr::new(pem))).unwrap().len(), 1);
        for bad in [
            "/nonexistent/ca.pem",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ] {
            let e = extra_roots(Some(OsStr::new(bad))).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
            assert!(
                e.to_string().contains("VAULT_CACERT") && e.to_string().contains(bad),
                "{e}"
            );
        }
    }

    #[tokio::test]
    async fn non_utf8_values_are_refused_before_any_request() {
        // Nothing listens on port 9: a request would fail as Unavailable.
        let b = VaultBackend::connect(VaultSettings::new("http://127.0.0.1:9", "n").token("t"))
            .unwrap();
        let e = b
            .put(
                &SecretName::new("k").unwrap(),
                &SecretValue::new(vec![0xff, 0xfe]),
                PutMode::Create,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }
}
