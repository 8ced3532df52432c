//! lockbox-serve: a loopback secrets endpoint that drops in for the AWS Secrets Manager Agent
//! and the AWS Parameters and Secrets Lambda extension.
//!
//! - The agent's config file (its TOML keys, defaults and limits; unknown keys refused by
//!   name) plus lockbox's own keys under `[lockbox]`: [`ServeConfig`].
//! - The agent's API: `GET /ping`, `GET /secretsmanager/get?secretId=&versionId=&versionStage=&refreshNow=`,
//!   `GET <path_prefix><secretId>`, with the agent's JSON, error bodies and status codes.
//! - The extension's SSM API: `GET /systemsmanager/parameters/get?name=&version=|&label=&withDecryption=`
//!   with the GetParameter response shape.
//! - The agent's security: loopback only (else `allow_non_loopback`), IP TTL 1 and IPv6 hop
//!   limit 1, an SSRF token from the environment (or a `file://` it names) required in
//!   `X-Aws-Parameters-Secrets-Token` or `X-Vault-Token` and compared in constant time,
//!   `X-Forwarded-For` refused, GET only, `max_conn`, bounded request heads and header counts,
//!   slow clients timed out.
//! - Connection admission: connections without a token capped per peer uid and kept out of a
//!   share of `max_conn` reserved for token holders, stalled writes timed out, pipelining
//!   capped (the serve README's "Connections" rules).
//! - One lockbox-cache per service (single-flight, stale-if-error with
//!   `ignore_transient_errors`), prefetch at start, `GET /metrics` in Prometheus text, and a
//!   graceful shutdown.
//!
//! ```no_run
//! # async fn demo() -> lockbox_core::Result<()> {
//! let config = lockbox_serve::ServeConfig::load(None)?;
//! let server = lockbox_serve::Server::start(config).await?;
//! server.run(lockbox_serve::shutdown_signal()).await
//! # }
//! ```
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod accept;
mod admission;
mod config;
mod conn_io;
mod credentials;
pub mod extension_env;
mod lambda;
mod logging;
mod metrics;
mod offline;
mod peer;
mod query;
mod read;
mod rejection;
mod request;
mod routes;
mod server;
mod state;
mod token;
mod upstream;

/// The backend name lockbox errors made by serve carry.
pub(crate) const BACKEND: &str = "serve";

pub use config::{
    DEFAULT_CACHE_SIZE, DEFAULT_HTTP_PORT, DEFAULT_MAX_CONN, DEFAULT_PATH_PREFIX,
    DEFAULT_SSRF_ENV_VARIABLES, DEFAULT_SSRF_HEADERS, DEFAULT_TTL_SECONDS, LockboxSettings,
    LogLevel, OfflineSettings, ServeConfig,
};
pub use lambda::{
    DEFAULT_EXTENSION_NAME, LambdaOptions, RUNTIME_API_VAR, run_extension, run_extension_blocking,
};
pub use logging::{LOG_FILE, LossyStderr, RollingLog};
pub use server::Server;
pub use upstream::UpstreamError;

use lockbox_core::{Error, ErrorKind, Result};

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    wait_for_shutdown(listen_for_shutdown()).await
}

type Signals = (
    Option<tokio::signal::unix::Signal>,
    Option<tokio::signal::unix::Signal>,
);

/// Starts listening for SIGTERM and SIGINT now (a signal sent from here on is caught, not
/// fatal). Must run inside a Tokio runtime.
fn listen_for_shutdown() -> Signals {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind, name: &str| match signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot watch {name} ({e})");
            None
        }
    };
    (
        listen(SignalKind::terminate(), "SIGTERM"),
        listen(SignalKind::interrupt(), "SIGINT"),
    )
}

async fn wait_for_shutdown((term, int): Signals) {
    async fn recv(s: Option<tokio::signal::unix::Signal>) {
        match s {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    tokio::select! {
        () = recv(term) => {}
        () = recv(int) => {}
    }
    tracing::info!("shutting down: no new connections, finishing requests in flight");
}

/// Starts the endpoint on its own multi-threaded runtime and serves until SIGTERM or SIGINT.
/// `on_listening` is called with the bound address once the server accepts connections.
/// Blocks the calling thread, which must not be inside a Tokio runtime.
pub fn run_blocking(
    config: ServeConfig,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                BACKEND,
                format!("cannot start the runtime: {e}"),
            )
        })?;
    runtime.block_on(async move {
        let server = Server::start(config).await?;
        // Caught from before the caller learns the address, so a SIGTERM sent as soon as it
        // is printed stops the server cleanly.
        let signals = listen_for_shutdown();
        on_listening(server.local_addr());
        server.run(wait_for_shutdown(signals)).await
    })
}
