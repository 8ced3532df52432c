//! Tests of the serve config: the agent's defaults and limits, lockbox's keys.

use super::*;

#[test]
fn defaults_are_the_agents() {
    let c = ServeConfig::defaults();
    assert_eq!(c.http_port, 2773);
    assert_eq!(c.ttl, Duration::from_secs(300));
    assert_eq!(c.cache_size, 1000);
    assert_eq!(c.max_conn, 800);
    assert_eq!(c.path_prefix, "/v1/");
    assert_eq!(
        c.ssrf_headers,
        DEFAULT_SSRF_HEADERS.map(String::from).to_vec()
    );
    assert_eq!(
        c.ssrf_env_variables,
        DEFAULT_SSRF_ENV_VARIABLES.map(String::from).to_vec()
    );
    assert!(c.ignore_transient_errors && c.validate_credentials);
    assert_eq!(c.log_level, LogLevel::Info);
    assert_eq!(c.listen_addr().to_string(), "127.0.0.1:2773");
    let lb = &c.lockbox;
    assert!(!lb.allow_non_loopback);
    assert_eq!((lb.max_conn_per_peer, lb.token_reserved_conn), (400, 200));
    assert_eq!(lb.write_timeout, Duration::from_secs(10));
    assert_eq!(lb.max_pipelined_requests, 16);
    // The shares follow max_conn.
    let c = ServeConfig::from_toml("max_conn = 1").unwrap();
    assert_eq!(
        (c.lockbox.max_conn_per_peer, c.lockbox.token_reserved_conn),
        (1, 0)
    );
}

/// Issue 23 item 5: an address other hosts can reach needs the opt-in key.
#[test]
fn a_non_loopback_listen_needs_the_opt_in() {
    for addr in ["0.0.0.0:2773", "[::]:2773", "192.0.2.1:2773"] {
        let e = ServeConfig::from_toml(&format!("[lockbox]\nlisten = \"{addr}\""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lockbox.listen") && e.contains("lockbox.allow_non_loopback = true"),
            "{e}"
        );
        let c = ServeConfig::from_toml(&format!(
            "[lockbox]\nlisten = \"{addr}\"\nallow_non_loopback = true"
        ))
        .unwrap();
        assert!(c.lockbox.allow_non_loopback);
    }
    for addr in [
        "127.0.0.1:1",
        "127.1.2.3:1",
        "[::1]:1",
        "[::ffff:127.0.0.1]:1",
    ] {
        assert!(
            ServeConfig::from_toml(&format!("[lockbox]\nlisten = \"{addr}\"")).is_ok(),
            "{addr}"
        );
    }
}

#[test]
fn the_agents_own_valid_file_parses() {
    // aws-secretsmanager-agent/tests/resources/configs/config_file_valid.toml, same keys.
    let c = ServeConfig::from_toml(
        r#"
log_level = "DEBUG"
http_port = "65535"
ttl_seconds = "300"
cache_size = "1000"
ssrf_headers = ["X-Aws-Parameters-Secrets-Token", "X-Vault-Token"]
ssrf_env_variables = ["AWS_TOKEN", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN"]
path_prefix = "/other"
max_conn = "10"
region = "us-west-2"
ignore_transient_errors = false
validate_credentials = false
"#,
    )
    .unwrap();
    assert_eq!(c.http_port, 65535);
    assert_eq!(c.max_conn, 10);
    assert_eq!(c.path_prefix, "/other");
    assert_eq!(c.region.as_deref(), Some("us-west-2"));
    assert!(!c.ignore_transient_errors);
    let c = ServeConfig::from_toml("http_port = 3000\nttl_seconds = 0").unwrap();
    assert_eq!((c.http_port, c.ttl), (3000, Duration::ZERO));
}

#[test]
fn the_store_keys_are_the_sync_flags() {
    let c = ServeConfig::from_toml(
        "[lockbox]\nmanifest = \"/etc/m.json\"\nstore = \"/var/lib/s\"\n\
         key_file = \"/k\"\nsync_interval_seconds = 30\nconsumers = \"/c.json\"",
    )
    .unwrap();
    let o = c.lockbox.offline.unwrap();
    assert_eq!(o.manifest.as_deref(), Some(Path::new("/etc/m.json")));
    assert_eq!(o.store, Path::new("/var/lib/s"));
    assert_eq!(o.key_file.as_deref(), Some(Path::new("/k")));
    assert_eq!(o.sync_interval, Some(Duration::from_secs(30)));
    assert_eq!(c.lockbox.consumers.as_deref(), Some(Path::new("/c.json")));
    assert!(ServeConfig::defaults().lockbox.offline.is_none());
}

#[test]
fn limits_and_unknown_keys_are_refused_by_name() {
    for (text, words) in [
        ("http_port = 80", "HTTP port"),
        ("ttl_seconds = 3601", "TTL"),
        ("cache_size = 0", "cache size"),
        ("cache_size = 1001", "cache size"),
        ("max_conn = 1001", "maximum number of connections"),
        ("log_level = \"loud\"", "log level"),
        ("path_prefix = \"v1\"", "must begin with /"),
        ("ssrf_headers = []", "SSRF headers"),
        ("ssrf_env_variables = []", "SSRF environment"),
        ("htp_port = 2773", "htp_port"),
        ("[lockbox]\nlisten_on = \"x\"", "listen_on"),
        ("[lockbox]\nlisten = \"nowhere\"", "lockbox.listen"),
        (
            "max_conn = 10\n[lockbox]\nmax_conn_per_peer = 11",
            "lockbox.max_conn_per_peer must be from 1 to max_conn (10)",
        ),
        (
            "[lockbox]\nmax_conn_per_peer = 0",
            "lockbox.max_conn_per_peer",
        ),
        (
            "max_conn = 10\n[lockbox]\ntoken_reserved_conn = 10",
            "lockbox.token_reserved_conn must be below max_conn (10)",
        ),
        (
            "[lockbox]\nwrite_timeout_seconds = 0",
            "lockbox.write_timeout_seconds",
        ),
        (
            "[lockbox]\nmax_pipelined_requests = 0",
            "lockbox.max_pipelined_requests",
        ),
        (
            "[lockbox]\nmax_pipelined_requests = 1025",
            "lockbox.max_pipelined_requests",
        ),
        (
            "[lockbox]\nmanifest = \"m.json\"",
            "lockbox.store is required",
        ),
        (
            "[lockbox]\nconsumers = \"c.json\"",
            "lockbox.consumers needs",
        ),
    ] {
        let e = ServeConfig::from_toml(text).unwrap_err().to_string();
        assert!(e.contains(words), "{text}: {e}");
    }
}
