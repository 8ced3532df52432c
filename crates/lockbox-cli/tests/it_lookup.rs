//! `lockbox lookup`: Airflow-compatible lookups, run as the built binary. The tests marked
//! with the emulator read LOCKBOX_IT_ENDPOINT and skip (saying so) without it.

use lockbox_testkit::aws::{aws_sdk_secretsmanager, aws_sdk_ssm};
use std::process::Output;

use lockbox_testkit::aws::setup_config;
use lockbox_testkit::cli::aws_command;
use lockbox_testkit::{emulator, tag};
use serde_json::{Value, json};

const SSM_CLASS: &str =
    "airflow.providers.amazon.aws.secrets.systems_manager.SystemsManagerParameterStoreBackend";
const SM_CLASS: &str = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend";

/// Runs `lockbox` with a clean Airflow/AWS environment plus `env`.
fn lockbox(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = aws_command(env!("CARGO_BIN_EXE_lockbox"), args);
    cmd.env_remove("AWS_REGION")
        .env_remove("AIRFLOW__SECRETS__BACKEND")
        .env_remove("AIRFLOW__SECRETS__BACKEND_KWARGS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

/// Found: exit 0 and exactly `expected` on stdout.
fn found(o: &Output, expected: &str) {
    assert_eq!(code(o), 0, "stderr: {}", err(o));
    assert_eq!(out(o), expected);
}

/// Absent: exit 3, nothing on stdout, a note on stderr.
fn absent(o: &Output) {
    assert_eq!(code(o), 3, "stdout: {} stderr: {}", out(o), err(o));
    assert_eq!(out(o), "");
    assert!(err(o).contains("not"), "stderr: {}", err(o));
}

fn kwargs(endpoint: &str, extra: Value) -> String {
    let mut k = json!({"region_name": "us-east-1", "endpoint_url": endpoint});
    for (key, v) in extra.as_object().unwrap() {
        k[key] = v.clone();
    }
    k.to_string()
}

async fn put_parameter(endpoint: &str, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(&setup_config(endpoint))
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
}

#[test]
fn backend_is_required_and_checked() {
    let o = lockbox(&["lookup", "variable", "x"], &[]);
    assert_eq!(code(&o), 2, "{}", err(&o));
    assert!(err(&o).contains("--backend"), "{}", err(&o));
    let o = lockbox(
        &["lookup", "variable", "x"],
        &[(
            "AIRFLOW__SECRETS__BACKEND",
            "airflow.secrets.local_filesystem.LocalFilesystemBackend",
        )],
    );
    assert_eq!(code(&o), 2, "{}", err(&o));
    assert!(err(&o).contains(SSM_CLASS), "{}", err(&o));
    let o = lockbox(&["lookup", "secret", "x", "--backend", "aws-ssm"], &[]);
    assert_eq!(code(&o), 2, "{}", err(&o));
}

/// Airflow's own environment variables alone; a null prefix answers "absent" without any
/// AWS call (the endpoint is a closed port).
#[test]
fn airflow_env_and_null_prefixes() {
    for class in [SSM_CLASS, SM_CLASS] {
        let kw = kwargs(
            "http://127.0.0.1:1",
            json!({"connections_prefix": null, "variables_prefix": null, "config_prefix": null}),
        );
        let env = [
            ("AIRFLOW__SECRETS__BACKEND", class),
            ("AIRFLOW__SECRETS__BACKEND_KWARGS", kw.as_str()),
        ];
        for kind in ["connection", "variable", "config"] {
            let o = lockbox(&["lookup", kind, "anything"], &env);
            absent(&o);
            assert!(err(&o).starts_with("note: "), "{}", err(&o));
            assert!(err(&o).contains("_prefix is null"), "{}", err(&o));
            let o = lockbox(&["--json", "lookup", kind, "anything"], &env);
            absent(&o);
            let note: Value = serde_json::from_str(err(&o).trim()).unwrap();
            assert!(
                note["absent"].as_str().unwrap().contains("is null"),
                "{note}"
            );
        }
        // ...and an enabled kind on that closed port is an error, not "absent".
        let kw = kwargs("http://127.0.0.1:1", json!({}));
        let o = lockbox(
            &["lookup", "variable", "x"],
            &[
                ("AIRFLOW__SECRETS__BACKEND", class),
                ("AIRFLOW__SECRETS__BACKEND_KWARGS", kw.as_str()),
            ],
        );
        assert_eq!(code(&o), 1, "{}", err(&o));
        assert_eq!(out(&o), "");
        assert!(
            err(&o).lines().last().unwrap().starts_with("error: "),
            "{}",
            err(&o)
        );
    }
}

/// A pattern the id does not match is "absent" without a call.
#[test]
fn patterns_skip_without_a_call() {
    let kw = kwargs(
        "http://127.0.0.1:1",
        json!({"variables_lookup_pattern": "^airflow_"}),
    );
    let o = lockbox(
        &[
            "lookup",
            "variable",
            "other",
            "--backend",
            "aws-ssm",
            "--backend-kwargs",
            &kw,
        ],
        &[],
    );
    absent(&o);
    assert!(err(&o).contains("variables_lookup_pattern"), "{}", err(&o));
}

#[test]
fn bad_kwargs_are_errors() {
    let o = lockbox(
        &[
            "lookup",
            "variable",
            "x",
            "--backend",
            "aws-ssm",
            "--backend-kwargs",
            "{nope",
        ],
        &[],
    );
    assert_eq!(code(&o), 1, "{}", err(&o));
    assert!(err(&o).starts_with("error: "), "{}", err(&o));
    let o = lockbox(
        &[
            "--json",
            "lookup",
            "variable",
            "x",
            "--backend",
            "aws-ssm",
            "--backend-kwargs",
            "[]",
        ],
        &[],
    );
    assert_eq!(code(&o), 1, "{}", err(&o));
    let e: Value = serde_json::from_str(err(&o).trim()).unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("backend_kwargs"),
        "{e}"
    );
}

/// The SSM backend configured exactly as Airflow is, through its two environment variables.
#[tokio::test]
async fn ssm_through_airflow_env() {
    let Some(ep) = emulator("ssm_through_airflow_env") else {
        return;
    };
    let t = tag();
    let uri = "postgresql://my-login:my%40pass@my-host:5432/my-schema?param1=val1";
    put_parameter(&ep, &format!("/{t}/connections/test_postgres"), uri).await;
    put_parameter(&ep, &format!("/{t}/variables/hello"), "world").await;
    put_parameter(
        &ep,
        &format!("/{t}/config/sql_alchemy_conn"),
        "sqlite:///x.db",
    )
    .await;
    // Prefixes without the leading slash: Airflow adds it.
    let kw = kwargs(
        &ep,
        json!({
            "connections_prefix": format!("{t}/connections"),
            "variables_prefix": format!("{t}/variables/"),
            "config_prefix": format!("/{t}/config"),
        }),
    );
    let env = [
        ("AIRFLOW__SECRETS__BACKEND", SSM_CLASS),
        ("AIRFLOW__SECRETS__BACKEND_KWARGS", kw.as_str()),
    ];
    found(
        &lockbox(&["lookup", "connection", "test_postgres"], &env),
        uri,
    );
    let o = lockbox(&["--json", "lookup", "connection", "test_postgres"], &env);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let conn: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(
        conn,
        json!({"conn_type": "postgres", "login": "my-login", "password": "my@pass", "host": "my-host",
               "port": 5432, "schema": "my-schema", "extra": {"param1": "val1"}})
    );
    found(&lockbox(&["lookup", "variable", "hello"], &env), "world");
    let o = lockbox(&["--json", "lookup", "variable", "hello"], &env);
    let v: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["value"], "world");
    found(
        &lockbox(&["lookup", "config", "sql_alchemy_conn"], &env),
        "sqlite:///x.db",
    );
    let o = lockbox(&["lookup", "connection", "test_mysql"], &env);
    absent(&o);
    assert!(
        err(&o).contains(&format!("/{t}/connections/test_mysql"))
            && err(&o).contains("ParameterNotFound"),
        "{}",
        err(&o)
    );
    absent(&lockbox(&["lookup", "variable", "nope"], &env));
    // Flags override the environment.
    let kw2 = kwargs(&ep, json!({"variables_prefix": null}));
    absent(&lockbox(
        &["lookup", "variable", "hello", "--backend-kwargs", &kw2],
        &env,
    ));
}

/// Secrets Manager with a JSON connection using Airflow's aliases, a binary secret (absent),
/// and a missing one.
#[tokio::test]
async fn secrets_manager_json_aliases_and_binary() {
    let Some(ep) = emulator("secrets_manager_json_aliases_and_binary") else {
        return;
    };
    let t = tag();
    let stored = json!({"username": "u", "password": "p", "remote_host": "h", "port": "3306",
                        "schema": "db", "engine": "mysql", "extra": {"charset": "utf8"}})
    .to_string();
    let client = aws_sdk_secretsmanager::Client::new(&setup_config(&ep));
    client
        .create_secret()
        .name(format!("{t}/connections/my_db"))
        .secret_string(&stored)
        .send()
        .await
        .unwrap();
    client
        .create_secret()
        .name(format!("{t}/variables/blob"))
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![1, 2, 3]))
        .send()
        .await
        .unwrap();
    let kw = kwargs(
        &ep,
        json!({"connections_prefix": format!("{t}/connections"), "variables_prefix": format!("{t}/variables")}),
    );
    let base = [
        "--backend",
        "aws-secretsmanager",
        "--backend-kwargs",
        kw.as_str(),
    ];
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(base);
        lockbox(&all, &[])
    };
    found(&run(&["lookup", "connection", "my_db"]), &stored);
    let o = run(&["--json", "lookup", "connection", "my_db"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let conn: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(
        conn,
        json!({"conn_type": "mysql", "login": "u", "password": "p", "host": "h", "port": 3306,
               "schema": "db", "extra": {"charset": "utf8"}})
    );
    let o = run(&["lookup", "variable", "blob"]);
    absent(&o);
    assert!(err(&o).contains("binary"), "{}", err(&o));
    let o = run(&["lookup", "connection", "missing"]);
    absent(&o);
    assert!(err(&o).contains("ResourceNotFoundException"), "{}", err(&o));
}

/// role_arn through the CLI: STS on the emulator (service_config.sts.endpoint_url, as in
/// Airflow). A role in the default account sees the parameter; one in another account does
/// not, so the assumed credentials are what the read used.
#[tokio::test]
async fn role_assumption() {
    let Some(ep) = emulator("role_assumption") else {
        return;
    };
    let t = tag();
    put_parameter(&ep, &format!("/airflow/variables/{t}"), "from-role").await;
    // The account the test credentials' data lives in: moto's default, or LocalStack's
    // (derived from the access key `test`).
    let home = match std::env::var("LOCKBOX_IT_EMULATOR").as_deref() {
        Ok("localstack") => "000000000000",
        _ => "123456789012",
    };
    for (account, expect_found) in [(home, true), ("210987654321", false)] {
        let kw = kwargs(
            &ep,
            json!({
                "role_arn": format!("arn:aws:iam::{account}:role/airflow-{t}"),
                "service_config": {"sts": {"endpoint_url": ep}},
            }),
        );
        let o = lockbox(
            &["lookup", "variable", &t],
            &[
                ("AIRFLOW__SECRETS__BACKEND", SSM_CLASS),
                ("AIRFLOW__SECRETS__BACKEND_KWARGS", kw.as_str()),
            ],
        );
        if expect_found {
            found(&o, "from-role");
        } else {
            absent(&o);
        }
    }
}
