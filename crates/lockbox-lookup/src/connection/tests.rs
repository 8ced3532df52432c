//! Tests of the connection parser and its URI round trips.

use super::*;
use serde_json::json;

fn uri(u: &str) -> Connection {
    Connection::from_uri(u).unwrap()
}

// The cases of Airflow's own `test_parse_from_uri`.
#[test]
fn airflow_uri_cases() {
    let c = uri("type://user:pass@host:100/schema");
    assert_eq!(c.conn_type.as_deref(), Some("type"));
    assert_eq!(c.host.as_deref(), Some("host"));
    assert_eq!(c.login.as_deref(), Some("user"));
    assert_eq!(c.password.as_deref(), Some("pass"));
    assert_eq!(c.port, Some(100));
    assert_eq!(c.schema.as_deref(), Some("schema"));
    assert!(c.extra.is_empty());

    let c = uri("type://user:pass@host/schema?param1=val1&param2=val2");
    assert_eq!(c.port, None);
    assert_eq!(
        c.extra,
        json!({"param1": "val1", "param2": "val2"})
            .as_object()
            .unwrap()
            .clone()
    );

    let c = uri("type://host");
    assert_eq!(c.host.as_deref(), Some("host"));
    assert_eq!(c.login, None);
    assert_eq!(c.password, None);
    assert_eq!(c.schema.as_deref(), Some(""));

    let c = uri(
        "spark://mysparkcluster.com:80?deploy-mode=cluster&spark_binary=command&namespace=kube+namespace",
    );
    assert_eq!(c.host.as_deref(), Some("mysparkcluster.com"));
    assert_eq!(c.port, Some(80));
    assert_eq!(
        Value::Object(c.extra),
        json!({"deploy-mode": "cluster", "spark_binary": "command", "namespace": "kube namespace"})
    );

    let c = uri("spark://k8s://100.68.0.1:443?deploy-mode=cluster");
    assert_eq!(c.conn_type.as_deref(), Some("spark"));
    assert_eq!(c.host.as_deref(), Some("k8s://100.68.0.1"));
    assert_eq!(c.port, Some(443));
    assert_eq!(c.schema.as_deref(), Some(""));

    let c = uri("type://protocol://user:pass@host:123?param=value");
    assert_eq!(c.host.as_deref(), Some("protocol://host"));
    assert_eq!(c.login.as_deref(), Some("user"));
    assert_eq!(c.password.as_deref(), Some("pass"));
    assert_eq!(c.port, Some(123));

    let e =
        Connection::from_uri("type://user:s3cr3t@protocol://host:port?param=value").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    assert!(!e.to_string().contains("s3cr3t"), "{e}");
}

#[test]
fn conn_type_normalisation() {
    assert_eq!(uri("postgresql://h").conn_type.as_deref(), Some("postgres"));
    assert_eq!(
        uri("google-cloud-platform://h").conn_type.as_deref(),
        Some("google_cloud_platform")
    );
    assert_eq!(uri("POSTGRESQL://h").conn_type.as_deref(), Some("postgres"));
    assert_eq!(normalize_conn_type("my-type"), "my_type");
}

#[test]
fn percent_decoding_and_paths_in_hosts() {
    let c = uri("scheme://user:password@host%2Flocation:1234/schema");
    assert_eq!(c.host.as_deref(), Some("host/location"));
    assert_eq!(c.port, Some(1234));
    let c = uri("scheme://user:password@host%2Flocation%3Ax%3Ay:1234/schema");
    assert_eq!(c.host.as_deref(), Some("host/location:x:y"));
    let c = uri("scheme://%2FTmP%2F:1234");
    assert_eq!(c.host.as_deref(), Some("/TmP/"));
    let c = uri("scheme://user%40domain:p%40ss%3Aw%2Frd@HOST:1/sch%2Fema");
    assert_eq!(c.login.as_deref(), Some("user@domain"));
    assert_eq!(c.password.as_deref(), Some("p@ss:w/rd"));
    assert_eq!(c.host.as_deref(), Some("host"));
    assert_eq!(c.schema.as_deref(), Some("sch/ema"));
    let c = uri("scheme://user:password@host%2Flocation:1234/schema?extra1=a%20value&extra2=");
    assert_eq!(
        Value::Object(c.extra),
        json!({"extra1": "a value", "extra2": ""})
    );
    // login and password are unquoted, not unquote_plus'd
    let c = uri("s://a+b:c+d@h");
    assert_eq!(c.login.as_deref(), Some("a+b"));
    assert_eq!(c.password.as_deref(), Some("c+d"));
}

#[test]
fn extra_key_holds_the_whole_extra() {
    let c = uri(
        "scheme://h?__extra__=%7B%22my_val%22%3A+%5B%22list%22%2C+%22of%22%5D%2C+%22n%22%3A+%7B%22j%22%3A+1%7D%7D",
    );
    assert_eq!(
        Value::Object(c.extra),
        json!({"my_val": ["list", "of"], "n": {"j": 1}})
    );
    let e = Connection::from_uri("scheme://h?__extra__=%5B1%5D").unwrap_err();
    assert!(e.to_string().contains("not an object"), "{e}");
}

#[test]
fn bad_ports_never_echo_the_uri() {
    // Without '@' after the ':' the password is read as a port.
    let e = Connection::from_uri("postgres://user:s3cr3t/word@host").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    assert!(!e.to_string().contains("s3cr3t"), "{e}");
}

#[test]
fn json_connections() {
    let c = Connection::from_json(
        r#"{"conn_type": "postgresql", "login": "my-login", "password": "my-pass", "host": "my-host",
            "port": "5432", "schema": "my-schema", "extra": {"param1": "val1"}, "description": "d"}"#,
    )
    .unwrap();
    assert_eq!(c.conn_type.as_deref(), Some("postgres"));
    assert_eq!(c.port, Some(5432));
    assert_eq!(c.description.as_deref(), Some("d"));
    assert_eq!(Value::Object(c.extra.clone()), json!({"param1": "val1"}));
    // extra as a JSON string, port as a number and a float
    let c = Connection::from_json(r#"{"extra": "{\"a\": 1}", "port": 80.9}"#).unwrap();
    assert_eq!(Value::Object(c.extra), json!({"a": 1}));
    assert_eq!(c.port, Some(80));
    // falsy fields are dropped
    let c = Connection::from_json(r#"{"extra": "", "port": 0, "conn_type": ""}"#).unwrap();
    assert!(c.extra.is_empty());
    assert_eq!(c.port, None);
    assert_eq!(c.conn_type, None);
    for bad in [
        r#"{"port": "abc"}"#,
        r#"{"port": 70000}"#,
        r#"{"extra": [1]}"#,
        r#"{"extra": "[1]"}"#,
        r#"{"unknown": 1}"#,
        r#"{"conn_id": "x"}"#,
        r#"{"uri": "s://h", "host": "x"}"#,
        r#"{"login": {"a": 1}}"#,
        r#"{"login": "x""#,
        r#"["x"]"#,
    ] {
        let e = Connection::from_json(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{bad}");
    }
    let c =
        Connection::from_json(r#"{"uri": "postgresql://u:p@h:1/s", "description": "d"}"#).unwrap();
    assert_eq!(c.conn_type.as_deref(), Some("postgres"));
    assert_eq!(c.description.as_deref(), Some("d"));
}

#[test]
fn secrets_manager_aliases() {
    let none = ExtraConnWords::new();
    let c = Connection::from_secrets_manager_json(
        r#"{"user_name": "u", "key": "k", "remote_host": "rh", "port": 5432, "database": "db",
            "engine": "postgresql", "extra": {"x": "y"}, "ignored": true}"#,
        &none,
    )
    .unwrap();
    assert_eq!(c.login.as_deref(), Some("u"));
    assert_eq!(c.password.as_deref(), Some("k"));
    assert_eq!(c.host.as_deref(), Some("rh"));
    assert_eq!(c.port, Some(5432));
    assert_eq!(c.schema.as_deref(), Some("db"));
    assert_eq!(c.conn_type.as_deref(), Some("postgres"));
    assert_eq!(Value::Object(c.extra), json!({"x": "y"}));
    // The first matching key in the secret's own order wins.
    let c =
        Connection::from_secrets_manager_json(r#"{"username": "first", "login": "second"}"#, &none)
            .unwrap();
    assert_eq!(c.login.as_deref(), Some("first"));
    // conn_id is an alias of conn_type
    let c = Connection::from_secrets_manager_json(r#"{"conn_id": "my-type"}"#, &none).unwrap();
    assert_eq!(c.conn_type.as_deref(), Some("my_type"));
    // extra words, with `user` meaning login
    let mut words = ExtraConnWords::new();
    words.insert("user".into(), vec!["principal".into()]);
    words.insert("host".into(), vec!["address".into()]);
    let c = Connection::from_secrets_manager_json(r#"{"principal": "p", "address": "a"}"#, &words)
        .unwrap();
    assert_eq!(c.login.as_deref(), Some("p"));
    assert_eq!(c.host.as_deref(), Some("a"));
    let mut bad = ExtraConnWords::new();
    bad.insert("nope".into(), vec![]);
    assert_eq!(
        Connection::from_secrets_manager_json("{}", &bad)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidConfig
    );
}

#[test]
fn deserialize_picks_json_or_uri() {
    let none = ExtraConnWords::new();
    let c = Connection::deserialize("  {\"user\": \"u\"}  ", BackendKind::SecretsManager, &none)
        .unwrap();
    assert_eq!(c.login.as_deref(), Some("u"));
    // SSM uses Airflow's core JSON: `user` is not a field there.
    assert!(Connection::deserialize("{\"user\": \"u\"}", BackendKind::Ssm, &none).is_err());
    let c = Connection::deserialize(" mysql://h ", BackendKind::Ssm, &none).unwrap();
    assert_eq!(c.conn_type.as_deref(), Some("mysql"));
    assert!(Connection::deserialize("   ", BackendKind::Ssm, &none).is_err());
}

#[test]
fn debug_redacts_password_and_extra_values() {
    let c = uri("s://user:hunter2@h?token=abc123");
    let d = format!("{c:?}");
    assert!(!d.contains("hunter2") && !d.contains("abc123"), "{d}");
    assert!(d.contains("token"), "{d}");
}

#[test]
fn to_json_has_the_seven_fields() {
    let v = uri("postgresql://u:p@h:5432/db?a=b").to_json();
    assert_eq!(
        v,
        json!({"conn_type": "postgres", "login": "u", "password": "p", "host": "h", "port": 5432,
               "schema": "db", "extra": {"a": "b"}})
    );
}
