//! The AWS Parameters and Secrets Lambda Extension's configuration: its environment variables,
//! defaults and limits, read into a [`ServeConfig`] for Lambda extension mode.
//!
//! Names, defaults and limits as AWS documents them:
//! <https://docs.aws.amazon.com/systems-manager/latest/userguide/ps-integration-lambda-extensions.html>
//! (its table of the extension's environment variables),
//! <https://docs.aws.amazon.com/lambda/latest/dg/with-secrets-manager.html> (300 s and 1,000
//! secrets by default) and the CDK's `ParamsAndSecretsOptions`
//! (<https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_lambda.ParamsAndSecretsOptions.html>:
//! cache size 0 to 1000 with 0 no caching, ports 1 to 65535, at least 1 connection, no
//! maximum). The 300 s TTL cap and its clamping with a warning are the extension's own
//! (`WARN SECRETS_MANAGER_TTL exceeds max limit. Setting Secrets Manger TTL to 5m0s.`,
//! aws-samples/aws-lambda-extensions#104). Out-of-range numbers are clamped to the
//! nearest limit and unreadable values replaced by the default, each with one warning naming
//! the variable, as the extension does. The SSRF token is `AWS_SESSION_TOKEN`, sent in
//! `X-Aws-Parameters-Secrets-Token`.

use std::time::Duration;

use crate::{LogLevel, ServeConfig};

/// `true` (default) or `false`: whether secrets and parameters are cached.
pub const CACHE_ENABLED: &str = "PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED";
/// 0 to 1000 (default 1000): most items cached; 0 disables the cache.
pub const CACHE_SIZE: &str = "PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE";
/// 1 to 65535 (default 2773): the local HTTP port.
pub const HTTP_PORT: &str = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT";
/// `debug`, `info` (default), `warn`, `error` or `none`.
pub const LOG_LEVEL: &str = "PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL";
/// At least 1 (default 3): outbound connections per AWS client.
pub const MAX_CONNECTIONS: &str = "PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS";
/// Milliseconds (default 0 = no timeout) for a Secrets Manager read.
pub const SECRETS_MANAGER_TIMEOUT_MILLIS: &str = "SECRETS_MANAGER_TIMEOUT_MILLIS";
/// Seconds, 0 to 300 (default 300): how long a secret is cached; 0 disables it.
pub const SECRETS_MANAGER_TTL: &str = "SECRETS_MANAGER_TTL";
/// Milliseconds (default 0 = no timeout) for an SSM read.
pub const SSM_PARAMETER_STORE_TIMEOUT_MILLIS: &str = "SSM_PARAMETER_STORE_TIMEOUT_MILLIS";
/// Seconds, 0 to 300 (default 300): how long a parameter is cached; 0 disables it.
pub const SSM_PARAMETER_STORE_TTL: &str = "SSM_PARAMETER_STORE_TTL";

/// Every variable the extension reads, in the order of AWS's table.
pub const VARIABLES: [&str; 9] = [
    CACHE_ENABLED,
    CACHE_SIZE,
    HTTP_PORT,
    LOG_LEVEL,
    MAX_CONNECTIONS,
    SECRETS_MANAGER_TIMEOUT_MILLIS,
    SECRETS_MANAGER_TTL,
    SSM_PARAMETER_STORE_TIMEOUT_MILLIS,
    SSM_PARAMETER_STORE_TTL,
];

/// The extension's token variable and header.
pub const TOKEN_VARIABLE: &str = "AWS_SESSION_TOKEN";
/// The header the extension's callers send the token in.
pub const TOKEN_HEADER: &str = "X-Aws-Parameters-Secrets-Token";

/// The extension's largest TTL, in seconds.
pub const MAX_TTL_SECONDS: i64 = 300;
/// The extension's largest cache size.
pub const MAX_CACHE_SIZE: i64 = 1000;
/// The extension's default outbound connections per client.
pub const DEFAULT_MAX_CONNECTIONS: usize = 3;

/// A config read from the extension's variables, and a warning for every value that was
/// clamped or replaced (to log once the logger runs).
#[derive(Clone, Debug, PartialEq)]
pub struct ExtensionConfig {
    /// The resulting config: the agent's defaults, changed as the variables say.
    pub config: ServeConfig,
    /// One message per variable that was out of range or unreadable.
    pub warnings: Vec<String>,
}

/// The extension's variables that are set (and not empty), looked up with `env`.
pub fn variables_set(env: impl Fn(&str) -> Option<String>) -> Vec<&'static str> {
    VARIABLES
        .into_iter()
        .filter(|v| env(v).is_some_and(|s| !s.trim().is_empty()))
        .collect()
}

/// Reads the extension's variables (looked up with `env`, e.g. `|v| std::env::var(v).ok()`)
/// into a config; unset or empty variables keep the extension's defaults.
pub fn from_env(env: impl Fn(&str) -> Option<String>) -> ExtensionConfig {
    let mut warnings = Vec::new();
    let get = |name: &str| {
        env(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut config = ServeConfig::defaults();
    config.ssrf_env_variables = vec![TOKEN_VARIABLE.to_owned()];
    config.ssrf_headers = vec![TOKEN_HEADER.to_owned()];
    // Lambda's file system is read-only but /tmp, and the extension logs to CloudWatch
    // through its standard streams.
    config.log_to_file = false;

    let cache_enabled = match get(CACHE_ENABLED) {
        None => true,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                warnings.push(format!(
                    "{CACHE_ENABLED}={v:?} is not true or false: the cache stays enabled"
                ));
                true
            }
        },
    };
    let cache_size = number(
        &get,
        CACHE_SIZE,
        1000,
        0,
        Some(MAX_CACHE_SIZE),
        &mut warnings,
    );
    config.cache_size = cache_size.max(1) as usize;

    config.http_port = match get(HTTP_PORT) {
        None => crate::DEFAULT_HTTP_PORT,
        Some(v) => match v.parse::<u16>() {
            Ok(port) if port >= 1 => port,
            _ => {
                warnings.push(format!(
                    "{HTTP_PORT}={v:?} is not a port from 1 to 65535: using {}",
                    crate::DEFAULT_HTTP_PORT
                ));
                crate::DEFAULT_HTTP_PORT
            }
        },
    };

    config.log_level = match get(LOG_LEVEL) {
        None => LogLevel::Info,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "none" => LogLevel::None,
            _ => {
                warnings.push(format!(
                    "{LOG_LEVEL}={v:?} is not debug, info, warn, error or none: using info"
                ));
                LogLevel::Info
            }
        },
    };

    let max_connections = number(
        &get,
        MAX_CONNECTIONS,
        DEFAULT_MAX_CONNECTIONS as i64,
        1,
        None,
        &mut warnings,
    );
    config.lockbox.max_upstream_connections = Some(max_connections as usize);

    let timeout = |millis: i64| match millis {
        0 => Duration::MAX,
        ms => Duration::from_millis(ms as u64),
    };
    let sm_timeout = number(
        &get,
        SECRETS_MANAGER_TIMEOUT_MILLIS,
        0,
        0,
        None,
        &mut warnings,
    );
    let ssm_timeout = number(
        &get,
        SSM_PARAMETER_STORE_TIMEOUT_MILLIS,
        0,
        0,
        None,
        &mut warnings,
    );
    config.lockbox.request_timeout = timeout(sm_timeout);
    config.lockbox.ssm_request_timeout = timeout(ssm_timeout);

    let sm_ttl = number(
        &get,
        SECRETS_MANAGER_TTL,
        300,
        0,
        Some(MAX_TTL_SECONDS),
        &mut warnings,
    );
    let ssm_ttl = number(
        &get,
        SSM_PARAMETER_STORE_TTL,
        300,
        0,
        Some(MAX_TTL_SECONDS),
        &mut warnings,
    );
    let cached = cache_enabled && cache_size > 0;
    let ttl = |s: i64| Duration::from_secs(if cached { s as u64 } else { 0 });
    config.ttl = ttl(sm_ttl);
    config.lockbox.ssm_ttl = ttl(ssm_ttl);
    ExtensionConfig { config, warnings }
}

/// An integer variable: `default` when unset, clamped into `min..=max` (with a warning), the
/// default (with a warning) when it is not an integer.
fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: i64,
    min: i64,
    max: Option<i64>,
    warnings: &mut Vec<String>,
) -> i64 {
    let Some(v) = get(name) else {
        return default;
    };
    let Ok(n) = v.parse::<i64>() else {
        warnings.push(format!(
            "{name}={v:?} is not a whole number: using {default}"
        ));
        return default;
    };
    if n < min {
        warnings.push(format!("{name}={n} is below the minimum: using {min}"));
        return min;
    }
    match max {
        Some(max) if n > max => {
            warnings.push(format!("{name}={n} exceeds the maximum: using {max}"));
            max
        }
        _ => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> ExtensionConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        from_env(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_the_extensions() {
        let ExtensionConfig { config, warnings } = read(&[]);
        assert!(warnings.is_empty());
        assert_eq!(config.http_port, 2773);
        assert_eq!(config.cache_size, 1000);
        assert_eq!(config.ttl, Duration::from_secs(300));
        assert_eq!(config.lockbox.ssm_ttl, Duration::from_secs(300));
        assert_eq!(config.log_level, LogLevel::Info);
        assert_eq!(config.lockbox.max_upstream_connections, Some(3));
        assert_eq!(config.lockbox.request_timeout, Duration::MAX);
        assert_eq!(config.lockbox.ssm_request_timeout, Duration::MAX);
        assert_eq!(config.ssrf_env_variables, ["AWS_SESSION_TOKEN"]);
        assert_eq!(config.ssrf_headers, ["X-Aws-Parameters-Secrets-Token"]);
        assert_eq!(config.listen_addr().to_string(), "127.0.0.1:2773");
    }

    #[test]
    fn every_variable_is_applied() {
        let ExtensionConfig { config, warnings } = read(&[
            (CACHE_SIZE, "10"),
            (HTTP_PORT, "8080"),
            (LOG_LEVEL, "DEBUG"),
            (MAX_CONNECTIONS, "7"),
            (SECRETS_MANAGER_TIMEOUT_MILLIS, "1500"),
            (SECRETS_MANAGER_TTL, "60"),
            (SSM_PARAMETER_STORE_TIMEOUT_MILLIS, "250"),
            (SSM_PARAMETER_STORE_TTL, "0"),
        ]);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.cache_size, 10);
        assert_eq!(config.http_port, 8080);
        assert_eq!(config.log_level, LogLevel::Debug);
        assert_eq!(config.lockbox.max_upstream_connections, Some(7));
        assert_eq!(config.lockbox.request_timeout, Duration::from_millis(1500));
        assert_eq!(
            config.lockbox.ssm_request_timeout,
            Duration::from_millis(250)
        );
        assert_eq!(config.ttl, Duration::from_secs(60));
        assert_eq!(config.lockbox.ssm_ttl, Duration::ZERO);
    }

    #[test]
    fn a_disabled_or_empty_cache_caches_nothing() {
        for vars in [[(CACHE_ENABLED, "false")], [(CACHE_SIZE, "0")]] {
            let c = read(&vars).config;
            assert_eq!((c.ttl, c.lockbox.ssm_ttl), (Duration::ZERO, Duration::ZERO));
        }
        let c = read(&[(CACHE_ENABLED, "TRUE")]).config;
        assert_eq!(c.ttl, Duration::from_secs(300));
    }

    #[test]
    fn out_of_range_values_are_clamped_with_one_warning_naming_the_variable() {
        for (name, value, check) in [
            (SECRETS_MANAGER_TTL, "3600", 300u64),
            (SSM_PARAMETER_STORE_TTL, "301", 300),
            (CACHE_SIZE, "5000", 1000),
            (MAX_CONNECTIONS, "0", 1),
            (SECRETS_MANAGER_TTL, "-5", 0),
        ] {
            let ExtensionConfig { config, warnings } = read(&[(name, value)]);
            assert_eq!(warnings.len(), 1, "{name}={value}: {warnings:?}");
            assert!(warnings[0].starts_with(name), "{warnings:?}");
            let got = match name {
                SECRETS_MANAGER_TTL => config.ttl.as_secs(),
                SSM_PARAMETER_STORE_TTL => config.lockbox.ssm_ttl.as_secs(),
                CACHE_SIZE => config.cache_size as u64,
                _ => config.lockbox.max_upstream_connections.unwrap() as u64,
            };
            assert_eq!(got, check, "{name}={value}");
        }
    }

    #[test]
    fn unreadable_values_keep_the_default_with_a_warning() {
        for (name, value) in [
            (CACHE_ENABLED, "yes"),
            (HTTP_PORT, "0"),
            (HTTP_PORT, "70000"),
            (LOG_LEVEL, "loud"),
            (SECRETS_MANAGER_TIMEOUT_MILLIS, "1s"),
        ] {
            let ExtensionConfig { config, warnings } = read(&[(name, value)]);
            assert_eq!(warnings.len(), 1, "{name}={value}: {warnings:?}");
            assert!(warnings[0].starts_with(name), "{warnings:?}");
            assert_eq!(config, read(&[]).config, "{name}={value}");
        }
    }

    #[test]
    fn variables_set_names_only_the_extensions() {
        let set = variables_set(|v| (v == HTTP_PORT || v == "AWS_REGION").then(|| "1".into()));
        assert_eq!(set, [HTTP_PORT]);
    }
}
