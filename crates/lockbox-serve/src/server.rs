//! Start-up: the token, AWS settings, the offline store, consumers, the listener and the
//! prefetch. Serving is in `accept.rs`, each request in `routes.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderName;
use lockbox_core::{Error, ErrorKind, Result};
use lockbox_resources::Consumers;
use tokio::net::TcpListener;

use crate::BACKEND;
use crate::admission::Admission;
use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::offline::Offline;
use crate::request::Request;
use crate::state::{ServiceCache, State};
use crate::upstream::Upstream;

/// A bound, ready endpoint. [`Server::run`] serves until the shutdown future completes.
pub struct Server {
    pub(crate) listener: TcpListener,
    pub(crate) state: Arc<State>,
    pub(crate) header_read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) max_headers: usize,
    pub(crate) refresh: Option<tokio::task::AbortHandle>,
}

impl Server {
    /// Reads the SSRF token, loads AWS settings, binds the listener and prefetches the
    /// configured names. Fails (and nothing listens) without a token, with an address that
    /// cannot be bound, or, with `validate_credentials`, when no AWS credentials resolve.
    pub async fn start(config: ServeConfig) -> Result<Self> {
        let file_credentials = match &config.credentials_file_path {
            Some(path) => Some(crate::credentials::FileCredentials::watch(path.clone()).await),
            None => None,
        };
        let options = lockbox_aws::SdkOptions {
            region: config.region.clone(),
            endpoint_url: config.lockbox.endpoint_url.clone(),
            credentials: file_credentials
                .clone()
                .map(aws_credential_types::provider::SharedCredentialsProvider::new),
            ..lockbox_aws::SdkOptions::default()
        };
        let sdk = options.load().await;
        let server = Self::start_with_sdk(config, &sdk).await?;
        if let Some(f) = &file_credentials {
            f.log_start();
        }
        Ok(server)
    }

    /// [`Server::start`] with an SDK config the caller built (custom credentials, tests);
    /// the config's `region` and `[lockbox] endpoint_url` are not applied to it.
    pub async fn start_with_sdk(config: ServeConfig, sdk: &lockbox_aws::SdkConfig) -> Result<Self> {
        let token = crate::token::read_token(&config.ssrf_env_variables)?;
        // A credentials file may appear or be fixed later (the agent starts anyway too).
        if config.validate_credentials && config.credentials_file_path.is_none() {
            check_credentials(sdk).await?;
        }
        let metrics = Arc::new(Metrics::default());
        let upstream = Upstream::new(
            sdk,
            metrics.clone(),
            config.lockbox.max_upstream_connections,
        );
        let offline = match &config.lockbox.offline {
            Some(settings) => Some(Offline::start(settings, sdk, metrics.clone()).await?),
            None => None,
        };
        let consumers = match &config.lockbox.consumers {
            Some(path) => {
                let consumers = Consumers::read(path)?;
                if let Some(offline) = &offline {
                    for (consumer, resource) in consumers.unknown_resources(|id| {
                        offline
                            .find(id)
                            .is_some_and(|s| lockbox_resources::resource_key(&s) == id)
                    }) {
                        tracing::warn!(
                            "consumer {consumer} may read resource {resource}, which is not in the store"
                        );
                    }
                }
                Some(consumers)
            }
            None => None,
        };
        let addr = config.listen_addr();
        if !crate::config::is_loopback(addr.ip()) {
            // Only with allow_non_loopback = true (the config refuses it otherwise).
            tracing::warn!(
                "lockbox serve listens on {addr}, reachable from other hosts (allow_non_loopback = true); every request but /ping still needs the SSRF token"
            );
        }
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                BACKEND,
                format!("cannot listen on {addr}: {e}"),
            )
        })?;
        // Its SYN-ACKs, and what accepted sockets inherit, make no network hops either.
        let _ = crate::accept::no_hops(socket2::SockRef::from(&listener), addr.is_ipv6());
        let state = Arc::new(State {
            secrets: ServiceCache::new(
                &upstream,
                config.ttl,
                config.lockbox.request_timeout,
                &config,
            ),
            parameters: ServiceCache::new(
                &upstream,
                config.lockbox.ssm_ttl,
                config.lockbox.ssm_request_timeout,
                &config,
            ),
            upstream,
            metrics,
            token: token.as_bytes().into(),
            ssrf_headers: config
                .ssrf_headers
                .iter()
                .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                .collect(),
            path_prefix: config.path_prefix.clone(),
            max_headers: config.lockbox.max_headers,
            conns: Arc::new(Admission::new(
                config.max_conn,
                config.lockbox.max_conn_per_peer,
                config.lockbox.token_reserved_conn,
            )),
            max_pipelined: config.lockbox.max_pipelined_requests,
            metrics_enabled: config.lockbox.metrics,
            offline,
            consumers,
        });
        drop(token);
        prefetch(&state, &config).await;
        let refresh = state.offline.as_ref().and_then(|o| {
            tracing::info!(
                "offline fallback: answering from the sealed store in {} when Secrets Manager cannot be reached",
                o.store_dir().display()
            );
            o.spawn_refresh()
        });
        tracing::info!(
            "lockbox serve listening on {}",
            listener.local_addr().unwrap_or(addr)
        );
        Ok(Self {
            listener,
            state,
            header_read_timeout: config.lockbox.header_read_timeout,
            write_timeout: config.lockbox.write_timeout,
            max_headers: config.lockbox.max_headers,
            refresh,
        })
    }

    /// The address it listens on (the port is the one bound, also when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }
}

async fn check_credentials(sdk: &lockbox_aws::SdkConfig) -> Result<()> {
    use aws_credential_types::provider::ProvideCredentials;
    let unauthenticated = |detail: String| {
        Error::new(
            ErrorKind::Unauthenticated,
            BACKEND,
            format!(
                "no usable AWS credentials ({detail}); set validate_credentials = false to start anyway"
            ),
        )
    };
    let provider = sdk
        .credentials_provider()
        .ok_or_else(|| unauthenticated("no credentials provider".into()))?;
    provider
        .provide_credentials()
        .await
        .map(|_| ())
        .map_err(|e| unauthenticated(e.to_string()))
}

async fn prefetch(state: &State, config: &ServeConfig) {
    let secrets = config
        .lockbox
        .prefetch_secrets
        .iter()
        .map(|id| Request::Secret {
            id: id.as_str().into(),
            version_id: None,
            stage: None,
        })
        .collect::<Vec<_>>();
    let parameters = config
        .lockbox
        .prefetch_parameters
        .iter()
        .map(|name| Request::Parameter {
            name: name.as_str().into(),
            selector: None,
            decrypt: true,
        })
        .collect::<Vec<_>>();
    for (service, requests) in [(&state.secrets, secrets), (&state.parameters, parameters)] {
        let Some(cache) = &service.cache else {
            continue;
        };
        for (req, result) in requests.iter().zip(cache.get_many(&requests).await) {
            if let Err(e) = result {
                tracing::warn!("prefetch of {} failed: {e}", req.target());
            }
        }
    }
}
