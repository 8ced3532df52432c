//! The serve config: the AWS Secrets Manager Agent's TOML keys with the agent's defaults and
//! limits, plus lockbox's own keys in a `[lockbox]` section.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lockbox_core::{Error, Result};
use serde::Deserialize;

/// The agent's default port.
pub const DEFAULT_HTTP_PORT: u16 = 2773;
/// The agent's default TTL.
pub const DEFAULT_TTL_SECONDS: u64 = 300;
/// The agent's default cache size.
pub const DEFAULT_CACHE_SIZE: usize = 1000;
/// The agent's default connection limit.
pub const DEFAULT_MAX_CONN: usize = 800;
/// The agent's default path prefix.
pub const DEFAULT_PATH_PREFIX: &str = "/v1/";
/// Default `[lockbox] max_pipelined_requests`.
pub const DEFAULT_MAX_PIPELINED_REQUESTS: usize = 16;
/// Default `[lockbox] write_timeout_seconds` (and `header_read_timeout_seconds`).
pub const DEFAULT_WRITE_TIMEOUT_SECONDS: u64 = 10;
/// The agent's default SSRF headers.
pub const DEFAULT_SSRF_HEADERS: [&str; 2] = ["X-Aws-Parameters-Secrets-Token", "X-Vault-Token"];
/// The agent's default SSRF environment variables, first set wins.
pub const DEFAULT_SSRF_ENV_VARIABLES: [&str; 3] = [
    "AWS_TOKEN",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

// The agent's own messages, so a user sees the same words for the same mistake.
const BAD_LOG_LEVEL: &str = "The log level specified in the configuration file isn't valid. The log level must be DEBUG, INFO, WARN, ERROR, or NONE.";
const BAD_HTTP_PORT: &str = "The HTTP port specified in the configuration file isn't valid. The HTTP port must be in the range 1024 to 65535.";
const BAD_TTL: &str = "The TTL in seconds specified in the configuration file isn't valid. The TTL in seconds must be in the range 0 to 3600.";
const BAD_CACHE_SIZE: &str = "The cache size specified in the configuration file isn't valid. The cache size must be in the range 1 to 1000.";
const BAD_MAX_CONN: &str = "The maximum number of connections specified in the configuration file isn't valid. The maximum number of connections must be in the range 1 to 1000.";
const EMPTY_SSRF_LIST: &str = "The list of SSRF headers in the configuration file can't be empty.";
const EMPTY_ENV_LIST: &str =
    "The list of SSRF environment variables in the configuration file can't be empty.";
const BAD_PREFIX: &str = "The path prefix specified in the configuration file must begin with /.";

/// The agent's log levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// `DEBUG`
    Debug,
    /// `INFO` (the default)
    Info,
    /// `WARN`
    Warn,
    /// `ERROR`
    Error,
    /// `NONE`: nothing is logged.
    None,
}

impl LogLevel {
    /// The matching `tracing` filter directive (`off` for `NONE`).
    pub fn filter(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::None => "off",
        }
    }
}

/// A whole serve config, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeConfig {
    /// `log_level` (default INFO).
    pub log_level: LogLevel,
    /// `log_to_file` (default true, as in the agent): log records go to
    /// `./logs/secrets_manager_agent.log` (rolled at 10 MB into 5 gzipped archives under
    /// `./logs/archive/`); false sends them to stderr.
    pub log_to_file: bool,
    /// `http_port` (default 2773, 1024..=65535).
    pub http_port: u16,
    /// `ttl_seconds` (default 300, at most 3600; 0 disables caching).
    pub ttl: Duration,
    /// `cache_size` (default 1000, 1..=1000): most entries kept per service.
    pub cache_size: usize,
    /// `max_conn` (default 800, 1..=1000): concurrent connections before answering 429.
    pub max_conn: usize,
    /// `region`; `None` uses the SDK's default chain (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// `path_prefix` (default `/v1/`): `GET <prefix><secretId>` reads a secret.
    pub path_prefix: String,
    /// `ssrf_headers`: headers that may carry the SSRF token.
    pub ssrf_headers: Vec<String>,
    /// `ssrf_env_variables`: where the token is read from, first set wins.
    pub ssrf_env_variables: Vec<String>,
    /// `ignore_transient_errors` (default true): serve the cached value when a refresh fails
    /// transiently (throttling, unreachable, 5xx).
    pub ignore_transient_errors: bool,
    /// `validate_credentials` (default true): refuse to start when no AWS credentials resolve.
    pub validate_credentials: bool,
    /// `credentials_file_path`: an AWS shared-credentials file to sign with instead of the
    /// SDK's chain, re-read when it changes (checked every 300 s, or every
    /// `SMA_CREDENTIALS_RELOAD_SECS`), as the agent does. A missing, empty or malformed file
    /// does not stop the start (and `validate_credentials` is then skipped): reads answer
    /// `InternalFailure` until valid credentials appear.
    pub credentials_file_path: Option<PathBuf>,
    /// lockbox's own keys, from `[lockbox]`.
    pub lockbox: LockboxSettings,
}

/// lockbox's own keys (section `[lockbox]`).
#[derive(Clone, Debug, PartialEq)]
pub struct LockboxSettings {
    /// `listen`: the address to bind. Default `127.0.0.1:<http_port>`; an address that is
    /// not loopback is refused unless `allow_non_loopback` is set.
    pub listen: Option<SocketAddr>,
    /// `allow_non_loopback` (default false): let `listen` name an address other hosts can
    /// reach (every request but `/ping` still needs the token; a warning is logged at start).
    pub allow_non_loopback: bool,
    /// `max_conn_per_peer` (default half of `max_conn`, at least 1; 1..=`max_conn`): most
    /// connections one peer (the Unix uid owning a loopback client's socket, else the
    /// client's IP address) may hold open without having presented a valid token; more are
    /// closed at once.
    pub max_conn_per_peer: usize,
    /// `token_reserved_conn` (default a quarter of `max_conn`; below `max_conn`): connection
    /// slots kept for requests that present a valid token. Connections that have not yet
    /// presented one are closed at once past `max_conn - token_reserved_conn`, and a request
    /// without one is answered 429 (and its connection closed) when no more than the reserved
    /// slots are left.
    pub token_reserved_conn: usize,
    /// `write_timeout_seconds` (default 10): a connection whose client does not take its
    /// answer (a write that cannot complete) for this long is dropped.
    pub write_timeout: Duration,
    /// `max_pipelined_requests` (default 16, 1..=1024): most requests one connection may
    /// send ahead of reading its answers (arriving in one read); the next is answered 429 and
    /// the connection closed.
    pub max_pipelined_requests: usize,
    /// `endpoint_url`: a custom AWS endpoint for both services (an emulator). Default: the
    /// SDK's (`AWS_ENDPOINT_URL` is honoured).
    pub endpoint_url: Option<String>,
    /// `ssm_ttl_seconds`: TTL of SSM parameters (default: `ttl_seconds`; at most 3600; 0
    /// disables caching of parameters).
    pub ssm_ttl: Duration,
    /// `prefetch_secrets`: Secrets Manager ids (names or ARNs) read at start.
    pub prefetch_secrets: Vec<String>,
    /// `prefetch_parameters`: SSM parameter names read at start (with decryption).
    pub prefetch_parameters: Vec<String>,
    /// `request_timeout_seconds` (default 10): an upstream read taking longer answers 504.
    pub request_timeout: Duration,
    /// The same for SSM reads (default: `request_timeout`); in Lambda extension mode from
    /// `SSM_PARAMETER_STORE_TIMEOUT_MILLIS` while `request_timeout` is from
    /// `SECRETS_MANAGER_TIMEOUT_MILLIS`. `Duration::MAX` (the variables' 0): no timeout.
    pub ssm_request_timeout: Duration,
    /// Most connections open to each AWS service at once (Lambda extension mode:
    /// `PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS`); `None`: no limit, as the agent.
    pub max_upstream_connections: Option<usize>,
    /// `header_read_timeout_seconds` (default 10): a client that does not finish its request
    /// headers in time is disconnected.
    pub header_read_timeout: Duration,
    /// `max_headers` (default 64): requests with more headers are refused.
    pub max_headers: usize,
    /// `metrics` (default true): serve `GET /metrics` (token required).
    pub metrics: bool,
    /// The offline fallback: a sealed store (and the manifest it is synced from), when
    /// `store` is set.
    pub offline: Option<OfflineSettings>,
    /// `consumers`: a consumers file (lockbox-resources' format); when set, every request but
    /// `/ping` is identified (consumer token or peer uid) and authorised per resource.
    pub consumers: Option<PathBuf>,
}

/// The sealed store `serve` syncs and falls back to (keys `manifest`, `store`, `key_file`,
/// `sync_interval_seconds` of `[lockbox]`, named as `lockbox sync`'s flags).
#[derive(Clone, Debug, PartialEq)]
pub struct OfflineSettings {
    /// `manifest`: the Greengrass-style manifest (v2 `cloudSecrets` or a v1 resource
    /// definition). Without it, `serve` does not sync and reads a store another process
    /// (`lockbox sync --interval`) keeps up to date.
    pub manifest: Option<PathBuf>,
    /// `store`: the store directory (holding `secrets.sealed`).
    pub store: PathBuf,
    /// `key_file`: the store key file (default `<store>.key`, as `lockbox sync`).
    pub key_file: Option<PathBuf>,
    /// `sync_interval_seconds`: how often to sync (and re-read the store). Default: the
    /// manifest's `periodicRefreshIntervalMin`, else 3600 s; 0 syncs only at start.
    pub sync_interval: Option<Duration>,
}

impl ServeConfig {
    /// The defaults (an empty file).
    pub fn defaults() -> Self {
        Self::from_toml("").expect("the empty config is valid")
    }

    /// Reads and validates the file at `path`, or the defaults when `None`.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::defaults());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_config(path.display(), format!("cannot read the config file: {e}"))
        })?;
        Self::from_toml(&text)
            .map_err(|e| Error::invalid_config(path.display(), e.message().to_owned()))
    }

    /// Parses and validates TOML text. Unknown keys are refused by name.
    pub fn from_toml(text: &str) -> Result<Self> {
        let file: FileConfig = toml::from_str(text)
            .map_err(|e| Error::invalid_config("serve config", e.message().to_owned()))?;
        file.validate()
    }

    /// The address to bind.
    pub fn listen_addr(&self) -> SocketAddr {
        self.lockbox
            .listen
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, self.http_port)))
    }
}

/// Loopback: `127.0.0.0/8`, `::1`, or an IPv4-mapped loopback address (`::ffff:127.0.0.1`).
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// A number the agent accepts as an integer or as a string (its config library coerces both).
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum Num {
    Int(i64),
    Str(String),
}

impl Num {
    fn value<T: std::str::FromStr + TryFrom<i64>>(&self, msg: &str) -> Result<T> {
        let parsed = match self {
            Self::Int(i) => T::try_from(*i).ok(),
            Self::Str(s) => s.trim().parse::<T>().ok(),
        };
        parsed.ok_or_else(|| bad(msg))
    }
}

fn bad(msg: &str) -> Error {
    Error::invalid_config("serve config", msg)
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    log_level: Option<String>,
    log_to_file: Option<bool>,
    http_port: Option<Num>,
    ttl_seconds: Option<Num>,
    cache_size: Option<Num>,
    max_conn: Option<Num>,
    region: Option<String>,
    path_prefix: Option<String>,
    ssrf_headers: Option<Vec<String>>,
    ssrf_env_variables: Option<Vec<String>>,
    ignore_transient_errors: Option<bool>,
    validate_credentials: Option<bool>,
    credentials_file_path: Option<PathBuf>,
    lockbox: Option<LockboxFile>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct LockboxFile {
    listen: Option<String>,
    allow_non_loopback: Option<bool>,
    max_conn_per_peer: Option<usize>,
    token_reserved_conn: Option<usize>,
    write_timeout_seconds: Option<u64>,
    max_pipelined_requests: Option<usize>,
    endpoint_url: Option<String>,
    ssm_ttl_seconds: Option<Num>,
    prefetch_secrets: Option<Vec<String>>,
    prefetch_parameters: Option<Vec<String>>,
    request_timeout_seconds: Option<u64>,
    header_read_timeout_seconds: Option<u64>,
    max_headers: Option<usize>,
    metrics: Option<bool>,
    manifest: Option<PathBuf>,
    store: Option<PathBuf>,
    key_file: Option<PathBuf>,
    sync_interval_seconds: Option<u64>,
    consumers: Option<PathBuf>,
}

impl FileConfig {
    fn validate(self) -> Result<ServeConfig> {
        let log_level = match self
            .log_level
            .as_deref()
            .unwrap_or("info")
            .to_lowercase()
            .as_str()
        {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "none" => LogLevel::None,
            _ => return Err(bad(BAD_LOG_LEVEL)),
        };
        let http_port: u16 = match &self.http_port {
            Some(n) => n.value(BAD_HTTP_PORT)?,
            None => DEFAULT_HTTP_PORT,
        };
        if http_port < 1024 {
            return Err(bad(BAD_HTTP_PORT));
        }
        let ttl_seconds: u64 = match &self.ttl_seconds {
            Some(n) => n.value(BAD_TTL)?,
            None => DEFAULT_TTL_SECONDS,
        };
        if ttl_seconds > 3600 {
            return Err(bad(BAD_TTL));
        }
        let cache_size: usize = match &self.cache_size {
            Some(n) => n.value(BAD_CACHE_SIZE)?,
            None => DEFAULT_CACHE_SIZE,
        };
        if !(1..=1000).contains(&cache_size) {
            return Err(bad(BAD_CACHE_SIZE));
        }
        let max_conn: usize = match &self.max_conn {
            Some(n) => n.value(BAD_MAX_CONN)?,
            None => DEFAULT_MAX_CONN,
        };
        if !(1..=1000).contains(&max_conn) {
            return Err(bad(BAD_MAX_CONN));
        }
        let ssrf_headers = self
            .ssrf_headers
            .unwrap_or_else(|| DEFAULT_SSRF_HEADERS.map(String::from).to_vec());
        if ssrf_headers.is_empty() {
            return Err(bad(EMPTY_SSRF_LIST));
        }
        for h in &ssrf_headers {
            if hyper::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(bad(&format!(
                    "ssrf_headers: {h:?} is not a valid header name"
                )));
            }
        }
        let ssrf_env_variables = self
            .ssrf_env_variables
            .unwrap_or_else(|| DEFAULT_SSRF_ENV_VARIABLES.map(String::from).to_vec());
        if ssrf_env_variables.is_empty() {
            return Err(bad(EMPTY_ENV_LIST));
        }
        let path_prefix = self
            .path_prefix
            .unwrap_or_else(|| DEFAULT_PATH_PREFIX.to_owned());
        if !path_prefix.starts_with('/') {
            return Err(bad(BAD_PREFIX));
        }
        let lb = self.lockbox.unwrap_or_default();
        let listen = match &lb.listen {
            Some(s) => Some(s.parse::<SocketAddr>().map_err(|e| {
                bad(&format!(
                    "lockbox.listen: {s:?} is not an address:port ({e})"
                ))
            })?),
            None => None,
        };
        let allow_non_loopback = lb.allow_non_loopback.unwrap_or(false);
        if let Some(addr) = listen
            && !is_loopback(addr.ip())
            && !allow_non_loopback
        {
            return Err(bad(&format!(
                "lockbox.listen = \"{addr}\" is not a loopback address: other hosts could \
                 connect; set lockbox.allow_non_loopback = true to listen there anyway"
            )));
        }
        let max_conn_per_peer = lb.max_conn_per_peer.unwrap_or((max_conn / 2).max(1));
        if !(1..=max_conn).contains(&max_conn_per_peer) {
            return Err(bad(&format!(
                "lockbox.max_conn_per_peer must be from 1 to max_conn ({max_conn})"
            )));
        }
        let token_reserved_conn = lb.token_reserved_conn.unwrap_or(max_conn / 4);
        if token_reserved_conn >= max_conn {
            return Err(bad(&format!(
                "lockbox.token_reserved_conn must be below max_conn ({max_conn})"
            )));
        }
        let max_pipelined_requests = lb
            .max_pipelined_requests
            .unwrap_or(DEFAULT_MAX_PIPELINED_REQUESTS);
        if !(1..=1024).contains(&max_pipelined_requests) {
            return Err(bad("lockbox.max_pipelined_requests must be from 1 to 1024"));
        }
        let ssm_ttl_seconds: u64 = match &lb.ssm_ttl_seconds {
            Some(n) => n.value("lockbox.ssm_ttl_seconds must be a number from 0 to 3600")?,
            None => ttl_seconds,
        };
        if ssm_ttl_seconds > 3600 {
            return Err(bad(
                "lockbox.ssm_ttl_seconds must be a number from 0 to 3600",
            ));
        }
        let positive = |v: Option<u64>, default: u64, key: &str| -> Result<Duration> {
            match v.unwrap_or(default) {
                0 => Err(bad(&format!("lockbox.{key} must be at least 1"))),
                n => Ok(Duration::from_secs(n)),
            }
        };
        let offline = match (lb.store, lb.manifest, lb.key_file, lb.sync_interval_seconds) {
            (Some(store), manifest, key_file, interval) => Some(OfflineSettings {
                manifest,
                store,
                key_file,
                sync_interval: interval.map(Duration::from_secs),
            }),
            (None, None, None, None) => None,
            (None, ..) => {
                return Err(bad(
                    "lockbox.store is required with lockbox.manifest, lockbox.key_file or \
                     lockbox.sync_interval_seconds (the store directory the manifest is synced into)",
                ));
            }
        };
        if lb.consumers.is_some() && offline.is_none() {
            return Err(bad(
                "lockbox.consumers needs lockbox.store: consumers are authorised per resource \
                 of the sealed store",
            ));
        }
        let max_headers = lb.max_headers.unwrap_or(64);
        if !(8..=1024).contains(&max_headers) {
            return Err(bad("lockbox.max_headers must be from 8 to 1024"));
        }
        let request_timeout = positive(lb.request_timeout_seconds, 10, "request_timeout_seconds")?;
        Ok(ServeConfig {
            log_level,
            log_to_file: self.log_to_file.unwrap_or(true),
            http_port,
            ttl: Duration::from_secs(ttl_seconds),
            cache_size,
            max_conn,
            region: self.region.filter(|r| !r.is_empty()),
            path_prefix,
            ssrf_headers,
            ssrf_env_variables,
            ignore_transient_errors: self.ignore_transient_errors.unwrap_or(true),
            validate_credentials: self.validate_credentials.unwrap_or(true),
            credentials_file_path: self.credentials_file_path,
            lockbox: LockboxSettings {
                listen,
                allow_non_loopback,
                max_conn_per_peer,
                token_reserved_conn,
                write_timeout: positive(
                    lb.write_timeout_seconds,
                    DEFAULT_WRITE_TIMEOUT_SECONDS,
                    "write_timeout_seconds",
                )?,
                max_pipelined_requests,
                endpoint_url: lb.endpoint_url.filter(|u| !u.is_empty()),
                ssm_ttl: Duration::from_secs(ssm_ttl_seconds),
                prefetch_secrets: lb.prefetch_secrets.unwrap_or_default(),
                prefetch_parameters: lb.prefetch_parameters.unwrap_or_default(),
                request_timeout,
                ssm_request_timeout: request_timeout,
                max_upstream_connections: None,
                header_read_timeout: positive(
                    lb.header_read_timeout_seconds,
                    DEFAULT_WRITE_TIMEOUT_SECONDS,
                    "header_read_timeout_seconds",
                )?,
                max_headers,
                metrics: lb.metrics.unwrap_or(true),
                offline,
                consumers: lb.consumers,
            },
        })
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
