//! The SDK's HTTP client, with its TLS side built on the first `https` request.
//!
//! The SDK's default client (aws-smithy-http-client on hyper, rustls) builds a
//! connector that speaks both `http` and `https`, and building it loads the system's root
//! certificates (every file under the system's certificate paths): milliseconds a command
//! pays even when it only talks to a plain-HTTP emulator. [`LazyTlsClient`] sends `http://`
//! requests through a connector without TLS and builds the default TLS client only when a
//! request to another scheme comes. Both honour the proxy environment variables as the
//! default client does.

use std::sync::{Arc, OnceLock};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{Builder, ConnectorBuilder, tls};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// lockbox's HTTP client for the SDK: plain HTTP for `http://` endpoints, rustls (with ring and
/// the system's roots) built on the first `https://` request. Every config
/// [`crate::SdkOptions`] loads has it; a config built by hand needs it too, since lockbox
/// builds aws-config without the SDK's default client.
pub fn http_client() -> SharedHttpClient {
    SharedHttpClient::new(LazyTlsClient {
        plain: Builder::new().build_with_connector_fn(|settings, components| {
            connector_builder(settings, components).build_http()
        }),
        tls: Arc::default(),
    })
}

/// An HTTP client whose TLS connector (and root certificates) is built on first use.
#[derive(Clone, Debug)]
struct LazyTlsClient {
    plain: SharedHttpClient,
    tls: Arc<OnceLock<SharedHttpClient>>,
}

impl LazyTlsClient {
    /// The client for `uri`: plain for `http://`, else the TLS one (built now if needed).
    fn client_for(&self, uri: &str) -> &SharedHttpClient {
        let plain = uri
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
        if plain {
            &self.plain
        } else {
            self.tls.get_or_init(tls_client)
        }
    }
}

/// What the SDK's default client sets on each connector: its settings (timeouts), the
/// runtime's sleep, and proxies from the environment.
fn connector_builder(
    settings: Option<&HttpConnectorSettings>,
    components: Option<&RuntimeComponents>,
) -> ConnectorBuilder {
    let mut builder = ConnectorBuilder::default();
    builder.set_connector_settings(settings.cloned());
    if let Some(components) = components {
        builder.set_sleep_impl(components.sleep_impl());
    }
    builder.set_proxy_config(Some(ProxyConfig::from_env()));
    builder
}

/// The SDK's HTTPS client: rustls with ring and the system's roots. ring, not the SDK's
/// default aws-lc: ring is already in the tree (aws-config's SSO, reqwest), and one crypto
/// library instead of two keeps the shipped binary smaller and its start shorter (aws-lc
/// probes the CPU in a constructor every process runs).
fn tls_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        connector_builder(settings, components)
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build()
    })
}

impl HttpClient for LazyTlsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(SchemeConnector {
            client: self.clone(),
            settings: settings.clone(),
            components: components.clone(),
        })
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.plain.connector_metadata()
    }
}

/// Picks the plain or the TLS connector by each request's scheme. The clients cache their
/// connectors by settings, so each call is a lookup.
#[derive(Debug)]
struct SchemeConnector {
    client: LazyTlsClient,
    settings: HttpConnectorSettings,
    components: RuntimeComponents,
}

impl HttpConnector for SchemeConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.client
            .client_for(request.uri())
            .http_connector(&self.settings, &self.components)
            .call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_goes_plain_and_tls_is_built_only_for_other_schemes() {
        let client = LazyTlsClient {
            plain: Builder::new().build_with_connector_fn(|settings, components| {
                connector_builder(settings, components).build_http()
            }),
            tls: Arc::default(),
        };
        assert!(std::ptr::eq(
            client.client_for("http://127.0.0.1:5000/"),
            &client.plain
        ));
        assert!(std::ptr::eq(client.client_for("HTTP://x/"), &client.plain));
        assert!(client.tls.get().is_none(), "no TLS for plain HTTP");
        client.client_for("https://ssm.us-east-1.amazonaws.com/");
        assert!(client.tls.get().is_some());
    }
}
