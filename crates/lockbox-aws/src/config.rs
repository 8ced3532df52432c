//! The one SDK config loader.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::http::http_client;

/// How long a connection attempt may take, so an unreachable endpoint fails instead of hanging.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one call attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// aws-config's provider settings with lockbox's HTTP client, for providers built outside
/// [`SdkOptions::loader`] (the region chain, a credentials file that assumes a role): lockbox
/// builds aws-config without the SDK's default HTTP client, so a provider given no client
/// could not reach instance metadata or STS.
pub fn provider_config() -> ProviderConfig {
    ProviderConfig::default().with_http_client(http_client())
}

/// aws-config's region chain: AWS_REGION, AWS_DEFAULT_REGION, the profile's `region` in the
/// AWS config files, instance metadata (through [`provider_config`]'s client). `None` when
/// none of them names a region.
pub async fn region_from_chain() -> Option<String> {
    use aws_config::meta::region::RegionProviderChain;
    let config = provider_config();
    let chain = RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(
        aws_config::profile::ProfileFileRegionProvider::builder()
            .configure(&config)
            .build(),
    )
    .or_else(
        aws_config::imds::region::ImdsRegionProvider::builder()
            .configure(&config)
            .build(),
    );
    chain
        .region()
        .await
        .filter(|r| !r.as_ref().is_empty())
        .map(|r| r.to_string())
}

/// Where and as whom to reach AWS. Whatever is `None` comes from aws-config's default chains
/// (environment, profile, SSO, web identity, IMDS; `AWS_ENDPOINT_URL` for the endpoint).
#[derive(Clone, Default)]
pub struct SdkOptions {
    /// AWS region, such as `us-east-1`.
    pub region: Option<String>,
    /// Custom endpoint (an emulator).
    pub endpoint_url: Option<String>,
    /// Named profile of the shared config files.
    pub profile: Option<String>,
    /// Credentials to use instead of the default chain (static keys, an assumed role).
    pub credentials: Option<SharedCredentialsProvider>,
    /// Leave retries to the SDK (aws-config's chain: standard mode, `AWS_MAX_ATTEMPTS`, the
    /// profile) instead of turning them off. Only for clients that mimic another tool's
    /// behaviour (Airflow's boto3 clients retry); backends wrapped in `lockbox_core::Retry`
    /// keep this false.
    pub sdk_retries: bool,
}

/// Names whether explicit credentials are set, never what they are.
impl std::fmt::Debug for SdkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkOptions")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .field("profile", &self.profile)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "[REDACTED]"),
            )
            .field("sdk_retries", &self.sdk_retries)
            .finish()
    }
}

impl SdkOptions {
    /// Options for `region` and, when given, a custom endpoint.
    pub fn new(region: impl Into<String>, endpoint_url: Option<&str>) -> Self {
        Self {
            region: Some(region.into()),
            endpoint_url: endpoint_url.map(str::to_owned),
            ..Self::default()
        }
    }

    /// aws-config's loader with these options, the SDK's own retries off unless
    /// [`SdkOptions::sdk_retries`] (wrap backends in `lockbox_core::Retry` so attempts are
    /// counted once) and the [`CONNECT_TIMEOUT`] and [`ATTEMPT_TIMEOUT`] timeouts. Its HTTP
    /// client is the SDK's default one (rustls, with ring; the system's roots; proxies from
    /// the environment), except that the TLS side, and so the system's root certificates, is
    /// loaded only when a request goes to an `https` URL: a command against a plain-HTTP
    /// endpoint (an emulator) never reads them.
    pub fn loader(&self) -> ConfigLoader {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .http_client(http_client());
        if !self.sdk_retries {
            loader = loader.retry_config(RetryConfig::disabled());
        }
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(credentials) = &self.credentials {
            loader = loader.credentials_provider(credentials.clone());
        } else if keys_in_environment() {
            // aws-config's default chain tries the environment first and stops there when it
            // holds keys: naming that provider gives the same credentials without building
            // the rest of the chain (its STS, SSO, ECS and instance-metadata clients).
            loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
        }
        loader
    }

    /// Loads the SDK config [`SdkOptions::loader`] describes.
    pub async fn load(&self) -> SdkConfig {
        self.loader().load().await
    }

    /// Loads the SDK config for `region` and, when given, a custom endpoint: what each service
    /// client's `connect` does. `InvalidConfig` naming `region` when it is empty.
    pub async fn load_for(
        region: &str,
        endpoint_url: Option<&str>,
    ) -> lockbox_core::Result<SdkConfig> {
        if region.is_empty() {
            return Err(lockbox_core::Error::invalid_config(
                "region",
                "must not be empty",
            ));
        }
        Ok(Self::new(region, endpoint_url).load().await)
    }
}

/// Whether the environment holds the keys aws-config's environment provider reads: a
/// non-blank `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (or its older name
/// `SECRET_ACCESS_KEY`), as that provider checks them.
fn keys_in_environment() -> bool {
    let set = |name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    set("AWS_ACCESS_KEY_ID") && (set("AWS_SECRET_ACCESS_KEY") || set("SECRET_ACCESS_KEY"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_loader_sets_region_endpoint_timeouts_and_no_retries() {
        let sdk = SdkOptions::new("eu-west-1", Some("http://127.0.0.1:1"))
            .load()
            .await;
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:1"));
        assert_eq!(sdk.retry_config().map(|r| r.max_attempts()), Some(1));
        let t = sdk.timeout_config().unwrap();
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(t.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        let sdk = SdkOptions {
            sdk_retries: true,
            ..SdkOptions::new("eu-west-1", None)
        }
        .load()
        .await;
        assert!(sdk.retry_config().is_some_and(|r| r.max_attempts() > 1));
    }

    #[tokio::test]
    async fn an_empty_region_is_refused_before_loading() {
        let e = SdkOptions::load_for("", None).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration: region: must not be empty"
        );
        let sdk = SdkOptions::load_for("eu-west-1", Some("http://127.0.0.1:1"))
            .await
            .unwrap();
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:1"));
    }
}
