//! Airflow's Secrets Manager backend behaviours, against the emulator `cargo xtask` starts.

mod common;

use common::{create_binary_secret, create_secret, emulator, lookup, sm_client, tag};
use lockbox_lookup::{Absence, BackendKind, LookupKind, Outcome};
use serde_json::{Value, json};

// test_get_conn_value_full_url_mode
#[tokio::test]
async fn uri_connections() {
    let Some(ep) = emulator("uri_connections") else {
        return;
    };
    let t = tag();
    let uri = "postgresql://airflow:air%2Fflow@host:5432/airflow?sslmode=disable";
    create_secret(&ep, &format!("{t}/connections/test_postgres"), uri).await;
    let l = lookup(
        BackendKind::SecretsManager,
        &ep,
        json!({"connections_prefix": format!("{t}/connections")}),
    );
    let raw = l.connection_value("test_postgres").await.unwrap().unwrap();
    assert_eq!(raw.expose_str(), Some(uri));
    let c = l.connection("test_postgres").await.unwrap().unwrap();
    assert_eq!(c.conn_type.as_deref(), Some("postgres"));
    assert_eq!(c.login.as_deref(), Some("airflow"));
    assert_eq!(c.password.as_deref(), Some("air/flow"));
    assert_eq!(c.host.as_deref(), Some("host"));
    assert_eq!(c.port, Some(5432));
    assert_eq!(c.schema.as_deref(), Some("airflow"));
    assert_eq!(Value::Object(c.extra), json!({"sslmode": "disable"}));
}

// JSON secrets with Airflow's aliases, plus extra_conn_words.
#[tokio::test]
async fn json_connections_with_aliases() {
    let Some(ep) = emulator("json_connections_with_aliases") else {
        return;
    };
    let t = tag();
    create_secret(
        &ep,
        &format!("{t}/connections/aliased"),
        &json!({
            "user": "my-login",
            "pass": "my-pass",
            "server": "my-host",
            "port": "5432",
            "database": "my-schema",
            "engine": "postgresql",
            "extra": {"param1": "val1"},
            "unrelated": "dropped",
        })
        .to_string(),
    )
    .await;
    create_secret(
        &ep,
        &format!("{t}/connections/words"),
        &json!({"principal": "p", "secret_word": "s", "conn_type": "my-type"}).to_string(),
    )
    .await;
    let l = lookup(
        BackendKind::SecretsManager,
        &ep,
        json!({
            "connections_prefix": format!("{t}/connections"),
            "extra_conn_words": {"user": ["principal"], "password": ["secret_word"]},
        }),
    );
    let c = l.connection("aliased").await.unwrap().unwrap();
    assert_eq!(c.conn_type.as_deref(), Some("postgres"));
    assert_eq!(c.login.as_deref(), Some("my-login"));
    assert_eq!(c.password.as_deref(), Some("my-pass"));
    assert_eq!(c.host.as_deref(), Some("my-host"));
    assert_eq!(c.port, Some(5432));
    assert_eq!(c.schema.as_deref(), Some("my-schema"));
    assert_eq!(Value::Object(c.extra), json!({"param1": "val1"}));
    let c = l.connection("words").await.unwrap().unwrap();
    assert_eq!(c.login.as_deref(), Some("p"));
    assert_eq!(c.password.as_deref(), Some("s"));
    assert_eq!(c.conn_type.as_deref(), Some("my_type"));
}

// test_get_conn_value_non_existent_key, test_get_variable_non_existent_key,
// test_get_config_non_existent_key.
#[tokio::test]
async fn missing_ids_are_none() {
    let Some(ep) = emulator("missing_ids_are_none") else {
        return;
    };
    let t = tag();
    create_secret(&ep, &format!("{t}/variables/hello"), "world").await;
    create_secret(&ep, &format!("{t}/config/hello"), "world").await;
    let l = lookup(
        BackendKind::SecretsManager,
        &ep,
        json!({
            "connections_prefix": format!("{t}/connections"),
            "variables_prefix": format!("{t}/variables"),
            "config_prefix": format!("{t}/config"),
        }),
    );
    assert!(l.connection("test_mysql").await.unwrap().is_none());
    assert!(l.variable("test_mysql").await.unwrap().is_none());
    assert!(l.config("test").await.unwrap().is_none());
    assert_eq!(l.variable("hello").await.unwrap().as_deref(), Some("world"));
    assert_eq!(l.config("hello").await.unwrap().as_deref(), Some("world"));
    match l.lookup(LookupKind::Connection, "nope").await.unwrap() {
        Outcome::Absent(Absence::NotFound { name, code }) => {
            assert_eq!(name, format!("{t}/connections/nope"));
            assert_eq!(code, "ResourceNotFoundException");
        }
        other => panic!("{other:?}"),
    }
}

// Only SecretString counts: a binary secret is absent.
#[tokio::test]
async fn binary_values_are_absent() {
    let Some(ep) = emulator("binary_values_are_absent") else {
        return;
    };
    let t = tag();
    create_binary_secret(&ep, &format!("{t}/variables/bin"), &[0xff, 0x00, 0x01]).await;
    let l = lookup(
        BackendKind::SecretsManager,
        &ep,
        json!({"variables_prefix": format!("{t}/variables")}),
    );
    assert!(l.variable("bin").await.unwrap().is_none());
    assert!(matches!(
        l.lookup(LookupKind::Variable, "bin").await.unwrap(),
        Outcome::Absent(Absence::Binary { .. })
    ));
}

// A secret scheduled for deletion answers InvalidRequestException, which Airflow treats as
// absent.
#[tokio::test]
async fn secrets_scheduled_for_deletion_are_absent() {
    let Some(ep) = emulator("secrets_scheduled_for_deletion_are_absent") else {
        return;
    };
    let t = tag();
    let name = format!("{t}/variables/gone");
    create_secret(&ep, &name, "x").await;
    sm_client(&ep)
        .delete_secret()
        .secret_id(&name)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let l = lookup(
        BackendKind::SecretsManager,
        &ep,
        json!({"variables_prefix": format!("{t}/variables")}),
    );
    match l.lookup(LookupKind::Variable, "gone").await.unwrap() {
        Outcome::Absent(Absence::NotFound { code, .. }) => {
            assert_eq!(code, "InvalidRequestException")
        }
        other => panic!("{other:?}"),
    }
}

// Prefixes with and without trailing separators, an empty prefix, a custom sep.
#[tokio::test]
async fn prefixes_and_sep() {
    let Some(ep) = emulator("prefixes_and_sep") else {
        return;
    };
    let t = tag();
    create_secret(&ep, &format!("{t}/variables/hello"), "slash").await;
    create_secret(&ep, &format!("/{t}/variables/hello"), "leading").await;
    create_secret(&ep, &format!("{t}_variables_hello"), "underscore").await;
    create_secret(&ep, &format!("{t}-bare"), "bare").await;
    for (kwargs, id, expected) in [
        (
            json!({"variables_prefix": format!("{t}/variables")}),
            "hello",
            "slash",
        ),
        (
            json!({"variables_prefix": format!("{t}/variables/")}),
            "hello",
            "slash",
        ),
        (
            json!({"variables_prefix": format!("{t}/variables//")}),
            "hello",
            "slash",
        ),
        // Secrets Manager keeps a leading slash: it is another secret.
        (
            json!({"variables_prefix": format!("/{t}/variables")}),
            "hello",
            "leading",
        ),
        (
            json!({"variables_prefix": format!("{t}_variables"), "sep": "_"}),
            "hello",
            "underscore",
        ),
        (
            json!({"variables_prefix": ""}),
            &format!("{t}-bare"),
            "bare",
        ),
    ] {
        let l = lookup(BackendKind::SecretsManager, &ep, kwargs.clone());
        assert_eq!(
            l.variable(id).await.unwrap().as_deref(),
            Some(expected),
            "{kwargs}"
        );
    }
}

// Patterns and null prefixes, against stored secrets.
#[tokio::test]
async fn patterns_and_null_prefixes() {
    let Some(ep) = emulator("patterns_and_null_prefixes") else {
        return;
    };
    let t = tag();
    create_secret(&ep, &format!("{t}/variables/test"), "v").await;
    for (kwargs, found) in [
        (json!({"variables_lookup_pattern": "T.*"}), true),
        (json!({"variables_lookup_pattern": "dummy-pattern"}), false),
    ] {
        let mut kwargs = kwargs;
        kwargs["variables_prefix"] = json!(format!("{t}/variables"));
        let l = lookup(BackendKind::SecretsManager, &ep, kwargs.clone());
        assert_eq!(
            l.variable("test").await.unwrap().is_some(),
            found,
            "{kwargs}"
        );
    }
    let l = lookup(
        BackendKind::SecretsManager,
        &ep,
        json!({"variables_prefix": null}),
    );
    assert!(l.variable("test").await.unwrap().is_none());
}
