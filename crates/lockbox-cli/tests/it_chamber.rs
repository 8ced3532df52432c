//! chamber's own command lines, typed verbatim with `lockbox` for `chamber`, against the
//! emulator `cargo xtask` starts (skipped with a note without it): services as positional
//! sources, read one level deep, chosen by chamber's environment variables.

use std::io::Write;
use std::process::{Output, Stdio};

use lockbox_testkit::aws::{aws_sdk_secretsmanager, aws_sdk_ssm, setup_config};
use lockbox_testkit::cli::{aws_command, code, json, stderr, stdout};
use lockbox_testkit::{emulator, tag};

fn lockbox(endpoint: &str, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut cmd = aws_command(env!("CARGO_BIN_EXE_lockbox"), args);
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env_remove("CHAMBER_SECRET_BACKEND")
        .env_remove("CHAMBER_KMS_KEY_ALIAS")
        .env_remove("CHAMBER_AWS_REGION")
        .env_remove("CHAMBER_AWS_SSM_ENDPOINT")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(o: Output) -> Output {
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    o
}

async fn put(endpoint: &str, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(&setup_config(endpoint))
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn chamber_command_lines_work_verbatim() {
    let Some(endpoint) = emulator("chamber_command_lines_work_verbatim") else {
        return;
    };
    let e = endpoint.as_str();
    let app = format!("app{}", tag());
    let other = format!("other{}", tag());
    let nested = format!("{app}/prod");
    // The service's own keys, one of a nested service `app/prod`, and another service.
    put(e, &format!("/{app}/token"), "app-token").await;
    put(e, &format!("/{app}/db-password"), "app-db").await;
    put(e, &format!("/{nested}/token"), "prod-token").await;
    put(e, &format!("/{other}/token"), "other-token").await;

    // chamber env myapp: one level, so /app/prod/token does not collide with /app/token.
    let o = ok(lockbox(e, &["env", &app], &[], None));
    assert_eq!(
        stdout(&o),
        "export DB_PASSWORD='app-db'\nexport TOKEN='app-token'\n"
    );
    // Services are lower-cased, as chamber does; nested services are paths.
    let upper = app.to_uppercase();
    let o = ok(lockbox(e, &["env", &upper], &[], None));
    assert!(stdout(&o).contains("TOKEN='app-token'"));
    let o = ok(lockbox(e, &["env", &nested], &[], None));
    assert_eq!(stdout(&o), "export TOKEN='prod-token'\n");

    // chamber exec myapp other -- cmd: the later service wins.
    let o = ok(lockbox(
        e,
        &[
            "exec",
            &app,
            &other,
            "--",
            "sh",
            "-c",
            "echo $TOKEN $DB_PASSWORD",
        ],
        &[],
        None,
    ));
    assert_eq!(stdout(&o), "other-token app-db\n");

    // chamber export myapp: JSON keyed by key.
    let o = ok(lockbox(e, &["export", &app], &[], None));
    assert_eq!(
        json(&stdout(&o)),
        serde_json::json!({"db-password": "app-db", "token": "app-token"})
    );

    // A recursive read stays available, and then the nested key collides.
    let o = lockbox(e, &["env", "--recursive", &app], &[], None);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("both map to the environment variable TOKEN"),
        "{}",
        stderr(&o)
    );

    // chamber import myapp FILE (and `-`: JSON read as YAML), then chamber history myapp KEY.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    std::fs::write(&file, r#"{"api_key": "k1"}"#).unwrap();
    let fresh = format!("imp{}", tag());
    let o = ok(lockbox(
        e,
        &["import", &fresh, file.to_str().unwrap()],
        &[("CHAMBER_KMS_KEY_ALIAS", "mykey")],
        None,
    ));
    assert_eq!(stderr(&o), "note: stored 1 secret\n");
    ok(lockbox(
        e,
        &["import", &fresh, "-"],
        &[],
        Some(r#"{"region": "eu", "zone": "a"}"#),
    ));
    let o = ok(lockbox(e, &["env", &fresh], &[], None));
    assert_eq!(
        stdout(&o),
        "export API_KEY='k1'\nexport REGION='eu'\nexport ZONE='a'\n"
    );
    // chamber's flags: import --normalize-keys, env -p, export -o / --output-file.
    ok(lockbox(
        e,
        &["import", "--normalize-keys", &fresh, "-"],
        &[],
        Some("Mixed_Case: m"),
    ));
    let o = ok(lockbox(e, &["env", "-p", &fresh], &[], None));
    assert!(
        stdout(&o).contains("export mixed_case='m'\n"),
        "{}",
        stdout(&o)
    );
    let out = dir.path().join("out.env");
    ok(lockbox(
        e,
        &[
            "export",
            "-f",
            "dotenv",
            "--output-file",
            out.to_str().unwrap(),
            &fresh,
        ],
        &[],
        None,
    ));
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("MIXED_CASE=\"m\""),
        "the dotenv dialect python-dotenv and npm dotenv share"
    );
    let described = aws_sdk_ssm::Client::new(&setup_config(e))
        .describe_parameters()
        .parameter_filters(
            aws_sdk_ssm::types::ParameterStringFilter::builder()
                .key("Name")
                .values(format!("/{fresh}/api_key"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.parameters()[0].key_id(),
        Some("alias/mykey"),
        "CHAMBER_KMS_KEY_ALIAS without alias/ gets it, as in chamber"
    );
    let o = ok(lockbox(
        e,
        &["--json", "history", &fresh, "API_KEY"],
        &[],
        None,
    ));
    let h = json(&stdout(&o));
    assert_eq!(h["name"], "api_key", "keys are lower-cased as chamber does");
    assert_eq!(h["versions"][0]["version"], "1");
}

#[tokio::test]
async fn chamber_environment_and_misuse() {
    let Some(endpoint) = emulator("chamber_environment_and_misuse") else {
        return;
    };
    let e = endpoint.as_str();
    let app = format!("app{}", tag());
    put(e, &format!("/{app}/token"), "t").await;

    // CHAMBER_SECRET_BACKEND=ssm (any case) is the default; S3 is refused by name.
    ok(lockbox(
        e,
        &["env", &app],
        &[("CHAMBER_SECRET_BACKEND", "SSM")],
        None,
    ));
    let o = lockbox(e, &["env", &app], &[("CHAMBER_SECRET_BACKEND", "s3")], None);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains(
            "CHAMBER_SECRET_BACKEND=s3: lockbox reads chamber services from SSM Parameter Store \
             and Secrets Manager only"
        ),
        "{}",
        stderr(&o)
    );
    // secretsmanager: one secret per service, a JSON object, read as chamber reads it.
    let sm_service = format!("sm{}", tag());
    aws_sdk_secretsmanager::Client::new(&setup_config(e))
        .create_secret()
        .name(&sm_service)
        .secret_string(
            r#"{"token": "sm-token", "port": 5432, "_chamber_metadata": "{\"token\": {}}"}"#,
        )
        .send()
        .await
        .unwrap();
    let sm = [("CHAMBER_SECRET_BACKEND", "secretsmanager")];
    let o = ok(lockbox(e, &["env", &sm_service], &sm, None));
    assert_eq!(stdout(&o), "export PORT='5432'\nexport TOKEN='sm-token'\n");
    let o = ok(lockbox(
        e,
        &["exec", &sm_service, "--", "sh", "-c", "echo $TOKEN"],
        &sm,
        None,
    ));
    assert_eq!(stdout(&o), "sm-token\n");
    // Writing it is refused before anything is written.
    let o = lockbox(e, &["import", &sm_service, "-"], &sm, Some("x: y"));
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o)
            .contains("lockbox reads chamber's Secrets Manager services but does not write them"),
        "{}",
        stderr(&o)
    );
    // CHAMBER_AWS_REGION wins over the chain; no region at all is an error that says what to set.
    ok(lockbox(
        e,
        &["env", &app],
        &[("CHAMBER_AWS_REGION", "us-east-1")],
        None,
    ));
    let mut cmd = aws_command(env!("CARGO_BIN_EXE_lockbox"), &["env", &app]);
    let o = cmd
        .env("AWS_ENDPOINT_URL", e)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains(&format!(
            "no AWS region for service {app}: set AWS_REGION (or CHAMBER_AWS_REGION"
        )),
        "{}",
        stderr(&o)
    );
    // A service chamber would refuse is a usage error.
    let o = lockbox(e, &["env", "bad service"], &[], None);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("service \"bad service\": a chamber service is"));
    // import and history take one source.
    let o = lockbox(
        e,
        &["--json", "history", "--config", "x.json", &app, "token"],
        &[],
        None,
    );
    assert_eq!(code(&o), 2);
    assert_eq!(
        json(&stderr(&o))["error"],
        "history takes one source (SERVICE, --config, --data-dir or --store), not 2"
    );
    // A missing service key is absent, never mistaken.
    let o = lockbox(e, &["history", &app, "nope"], &[], None);
    assert_eq!(code(&o), 1);
}
