//! Airflow's SSM Parameter Store backend behaviours, against the emulator `cargo xtask` starts.

mod common;

use common::{emulator, lookup, put_parameter, tag};
use lockbox_lookup::{Absence, BackendKind, LookupKind, Outcome};
use serde_json::{Value, json};

const URI: &str = "postgres://my-login:my-pass@my-host:5432/my-schema?param1=val1&param2=val2";

fn json_connection() -> String {
    json!({
        "conn_type": "postgres",
        "login": "my-login",
        "password": "my-pass",
        "host": "my-host",
        "port": 5432,
        "schema": "my-schema",
        "extra": {"param1": "val1", "param2": "val2"},
    })
    .to_string()
}

fn assert_test_postgres(c: &lockbox_lookup::Connection) {
    assert_eq!(c.conn_type.as_deref(), Some("postgres"));
    assert_eq!(c.login.as_deref(), Some("my-login"));
    assert_eq!(c.password.as_deref(), Some("my-pass"));
    assert_eq!(c.host.as_deref(), Some("my-host"));
    assert_eq!(c.port, Some(5432));
    assert_eq!(c.schema.as_deref(), Some("my-schema"));
    assert_eq!(
        Value::Object(c.extra.clone()),
        json!({"param1": "val1", "param2": "val2"})
    );
}

// test_get_conn_value (uri-connection and json-connection), as String and SecureString.
#[tokio::test]
async fn uri_and_json_connections() {
    let Some(ep) = emulator("uri_and_json_connections") else {
        return;
    };
    let t = tag();
    for (i, (value, secure)) in [
        (URI.to_string(), false),
        (json_connection(), false),
        (URI.to_string(), true),
        (json_connection(), true),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("test_postgres{i}");
        put_parameter(&ep, &format!("/{t}/connections/{id}"), &value, secure).await;
        let l = lookup(
            BackendKind::Ssm,
            &ep,
            json!({"connections_prefix": format!("/{t}/connections")}),
        );
        let raw = l.connection_value(&id).await.unwrap().unwrap();
        assert_eq!(raw.expose_str(), Some(value.as_str()));
        let c = l.connection(&id).await.unwrap().unwrap();
        assert_test_postgres(&c);
    }
}

// postgresql becomes postgres; percent-encoded login and password are decoded.
#[tokio::test]
async fn uri_normalisation() {
    let Some(ep) = emulator("uri_normalisation") else {
        return;
    };
    let t = tag();
    put_parameter(
        &ep,
        &format!("/{t}/connections/pg"),
        "postgresql://us%40er:p%2Fa%3As%20s@db.example:6543/sch%2Fema?sslmode=require&a=b+c",
        true,
    )
    .await;
    put_parameter(
        &ep,
        &format!("/{t}/connections/gcp"),
        "google-cloud-platform://?project=x",
        false,
    )
    .await;
    let l = lookup(
        BackendKind::Ssm,
        &ep,
        json!({"connections_prefix": format!("/{t}/connections")}),
    );
    let c = l.connection("pg").await.unwrap().unwrap();
    assert_eq!(c.conn_type.as_deref(), Some("postgres"));
    assert_eq!(c.login.as_deref(), Some("us@er"));
    assert_eq!(c.password.as_deref(), Some("p/a:s s"));
    assert_eq!(c.host.as_deref(), Some("db.example"));
    assert_eq!(c.port, Some(6543));
    assert_eq!(c.schema.as_deref(), Some("sch/ema"));
    assert_eq!(
        Value::Object(c.extra),
        json!({"sslmode": "require", "a": "b c"})
    );
    let c = l.connection("gcp").await.unwrap().unwrap();
    assert_eq!(c.conn_type.as_deref(), Some("google_cloud_platform"));
}

// test_get_conn_value_non_existent_key, test_get_variable_non_existent_key.
#[tokio::test]
async fn missing_ids_are_none() {
    let Some(ep) = emulator("missing_ids_are_none") else {
        return;
    };
    let t = tag();
    put_parameter(
        &ep,
        &format!("/{t}/connections/test_postgres"),
        "postgresql://airflow:airflow@host:5432/airflow",
        false,
    )
    .await;
    put_parameter(&ep, &format!("/{t}/variables/hello"), "world", false).await;
    let l = lookup(
        BackendKind::Ssm,
        &ep,
        json!({
            "connections_prefix": format!("/{t}/connections"),
            "variables_prefix": format!("/{t}/variables"),
            "config_prefix": format!("/{t}/config"),
        }),
    );
    assert!(l.connection_value("test_mysql").await.unwrap().is_none());
    assert!(l.connection("test_mysql").await.unwrap().is_none());
    assert!(l.variable("test_mysql").await.unwrap().is_none());
    assert!(l.config("test_mysql").await.unwrap().is_none());
    match l.lookup(LookupKind::Variable, "nope").await.unwrap() {
        Outcome::Absent(Absence::NotFound { name, code }) => {
            assert_eq!(name, format!("/{t}/variables/nope"));
            assert_eq!(code, "ParameterNotFound");
        }
        other => panic!("{other:?}"),
    }
}

// test_get_variable, test_get_variable_secret_string, test_get_config.
#[tokio::test]
async fn securestring_variables_and_config() {
    let Some(ep) = emulator("securestring_variables_and_config") else {
        return;
    };
    let t = tag();
    put_parameter(&ep, &format!("/{t}/variables/hello"), "world", false).await;
    put_parameter(&ep, &format!("/{t}/variables/secret"), "s3cr3t world", true).await;
    put_parameter(
        &ep,
        &format!("/{t}/config/sql_alchemy_conn"),
        "sqlite:///Users/test_user/airflow.db",
        true,
    )
    .await;
    let l = lookup(
        BackendKind::Ssm,
        &ep,
        json!({
            "variables_prefix": format!("/{t}/variables"),
            "config_prefix": format!("/{t}/config"),
        }),
    );
    assert_eq!(l.variable("hello").await.unwrap().as_deref(), Some("world"));
    // Read with decryption: the emulator would return ciphertext otherwise.
    assert_eq!(
        l.variable("secret").await.unwrap().as_deref(),
        Some("s3cr3t world")
    );
    assert_eq!(
        l.config("sql_alchemy_conn").await.unwrap().as_deref(),
        Some("sqlite:///Users/test_user/airflow.db")
    );
}

// test_*_prefix_with_no_leading_slash, plus trailing slashes.
#[tokio::test]
async fn prefixes_with_and_without_slashes() {
    let Some(ep) = emulator("prefixes_with_and_without_slashes") else {
        return;
    };
    let t = tag();
    put_parameter(&ep, &format!("/{t}/variables/hello"), "world", false).await;
    put_parameter(&ep, &format!("/{t}/config/key"), "value", false).await;
    put_parameter(&ep, &format!("/{t}/connections/c"), "mysql://h", false).await;
    for (lead, trail) in [("", ""), ("/", ""), ("/", "/"), ("", "//")] {
        let l = lookup(
            BackendKind::Ssm,
            &ep,
            json!({
                "connections_prefix": format!("{lead}{t}/connections{trail}"),
                "variables_prefix": format!("{lead}{t}/variables{trail}"),
                "config_prefix": format!("{lead}{t}/config{trail}"),
            }),
        );
        let case = format!("{lead:?} {trail:?}");
        assert_eq!(
            l.variable("hello").await.unwrap().as_deref(),
            Some("world"),
            "{case}"
        );
        assert_eq!(
            l.config("key").await.unwrap().as_deref(),
            Some("value"),
            "{case}"
        );
        let c = l.connection("c").await.unwrap();
        assert_eq!(c.unwrap().conn_type.as_deref(), Some("mysql"), "{case}");
    }
}

// test_*_prefix_none_value: the parameter exists, the kind is disabled.
#[tokio::test]
async fn null_prefixes_find_nothing() {
    let Some(ep) = emulator("null_prefixes_find_nothing") else {
        return;
    };
    let t = tag();
    put_parameter(&ep, &format!("/{t}/variables/hello"), "world", false).await;
    let l = lookup(
        BackendKind::Ssm,
        &ep,
        json!({"variables_prefix": null, "connections_prefix": null, "config_prefix": null}),
    );
    assert!(l.variable("hello").await.unwrap().is_none());
    assert!(l.connection("hello").await.unwrap().is_none());
    assert!(l.config("hello").await.unwrap().is_none());
    assert!(matches!(
        l.lookup(LookupKind::Variable, "hello").await.unwrap(),
        Outcome::Absent(Absence::Disabled)
    ));
}

// test_*_lookup_pattern, against stored values.
#[tokio::test]
async fn lookup_patterns_match_and_skip() {
    let Some(ep) = emulator("lookup_patterns_match_and_skip") else {
        return;
    };
    let t = tag();
    put_parameter(&ep, &format!("/{t}/variables/test"), "v", false).await;
    put_parameter(&ep, &format!("/{t}/connections/test"), "mysql://h", false).await;
    put_parameter(&ep, &format!("/{t}/config/test"), "c", false).await;
    for (pattern, found) in [
        ("test", true),
        (".*", true),
        ("T.*", true),
        ("TE", true),
        ("dummy-pattern", false),
        ("est", false),
    ] {
        let l = lookup(
            BackendKind::Ssm,
            &ep,
            json!({
                "connections_prefix": format!("/{t}/connections"),
                "variables_prefix": format!("/{t}/variables"),
                "config_prefix": format!("/{t}/config"),
                "connections_lookup_pattern": pattern,
                "variables_lookup_pattern": pattern,
                "config_lookup_pattern": pattern,
            }),
        );
        assert_eq!(
            l.variable("test").await.unwrap().is_some(),
            found,
            "{pattern}"
        );
        assert_eq!(
            l.connection("test").await.unwrap().is_some(),
            found,
            "{pattern}"
        );
        assert_eq!(
            l.config("test").await.unwrap().is_some(),
            found,
            "{pattern}"
        );
    }
}
