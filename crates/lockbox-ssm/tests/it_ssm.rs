//! The SSM backend against a real AWS emulator (moto or LocalStack) that `cargo xtask` starts.

use std::time::Duration;

use lockbox_core::{
    ErrorKind, PutMode, SecretName, SecretValue, SecretsManager, SecretsManagerExt, Version,
};
use lockbox_testkit::aws::{emulator_subject, ssm_backend, ssm_client, ssm_settings};
use lockbox_testkit::conformance::Capabilities;
use lockbox_testkit::{emulator, prefix};

fn n(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

lockbox_testkit::conformance_tests!(
    |test| async move { emulator_subject(test, ssm_backend) },
    Capabilities {
        binary_values: false,
        ..Default::default()
    }
);

#[tokio::test]
async fn it_parameters_live_at_documented_names_as_secure_strings() {
    let Some(endpoint) = emulator("it_parameters_live_at_documented_names") else {
        return;
    };
    let node = prefix("node");
    let backend = ssm_backend(&endpoint, "lockbox-it//nodes/", &node);
    backend
        .create(&n("validator-key"), &SecretValue::from("abc123"))
        .await
        .unwrap();

    let raw = ssm_client(&endpoint, Duration::from_secs(10));
    let expected = format!("/lockbox-it/nodes/{node}/validator-key");
    let out = raw
        .get_parameter()
        .name(&expected)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let p = out.parameter.unwrap();
    assert_eq!(p.value(), Some("abc123"));
    assert_eq!(p.r#type().map(|t| t.as_str()), Some("SecureString"));
    assert_eq!(
        backend.location(&n("validator-key")),
        format!("SSM parameter {expected}")
    );
}

#[tokio::test]
async fn it_reads_versions_and_labels() {
    let Some(endpoint) = emulator("it_reads_versions_and_labels") else {
        return;
    };
    let node = prefix("ver");
    let backend = ssm_backend(&endpoint, "/lockbox-it", &node);
    let name = n("app/token");
    backend
        .create(&name, &SecretValue::from("one"))
        .await
        .unwrap();
    backend
        .put(&name, &SecretValue::from("two"), PutMode::Overwrite)
        .await
        .unwrap();
    let raw = ssm_client(&endpoint, Duration::from_secs(10));
    raw.label_parameter_version()
        .name(backend.parameter_name(&name).unwrap())
        .parameter_version(1)
        .labels("stable")
        .send()
        .await
        .unwrap();
    let get = |v: Version| {
        let backend = backend.clone();
        let name = name.clone();
        async move { backend.get_version(&name, &v).await }
    };
    assert_eq!(
        get(Version::Current).await.unwrap().expose_str(),
        Some("two")
    );
    assert_eq!(
        get(Version::Number(1)).await.unwrap().expose_str(),
        Some("one")
    );
    assert_eq!(
        get(Version::from_selector("2")).await.unwrap().expose_str(),
        Some("two")
    );
    assert_eq!(
        get(Version::from_selector("stable"))
            .await
            .unwrap()
            .expose_str(),
        Some("one")
    );
    let e = get(Version::Number(9)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = get(Version::Id("abc".into())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert_eq!(
        e.message(),
        "SSM parameters have version numbers and labels, not version ids (\"abc\")"
    );
}

#[tokio::test]
async fn it_get_many_spans_batches_and_reports_missing_per_name() {
    let Some(endpoint) = emulator("it_get_many_spans_batches") else {
        return;
    };
    let node = prefix("many");
    let backend = ssm_backend(&endpoint, "/lockbox-it", &node);
    let mut names = Vec::new();
    for i in 0..23 {
        let name = n(&format!("k{i:02}"));
        if i % 5 != 0 {
            backend
                .create(&name, &SecretValue::from(format!("v{i}")))
                .await
                .unwrap();
        }
        names.push(name);
    }
    let got = backend.get_many(&names).await;
    assert_eq!(got.len(), 23);
    for (i, r) in got.iter().enumerate() {
        if i % 5 == 0 {
            assert_eq!(r.as_ref().unwrap_err().kind(), ErrorKind::NotFound, "k{i}");
        } else {
            assert_eq!(
                r.as_ref().unwrap().expose_str(),
                Some(format!("v{i}").as_str()),
                "k{i}"
            );
        }
    }
    let listed = backend.list("k1").await.unwrap();
    assert_eq!(listed.len(), 8, "k11..k19 minus k15: {listed:?}");
}

#[tokio::test]
async fn it_bad_input_is_refused_before_any_call() {
    let Some(endpoint) = emulator("it_bad_input_is_refused") else {
        return;
    };
    let node = prefix("bad");
    let backend = ssm_backend(&endpoint, "/lockbox-it", &node);
    let e = backend
        .create(&n("big"), &SecretValue::from("x".repeat(4097)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(
        e.to_string().contains("4097 bytes") && e.to_string().contains("4096"),
        "{e}"
    );
    let e = backend
        .create(&n("a@b"), &SecretValue::from("v"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidName);
    assert!(e.to_string().contains("'@'"), "{e}");
    let e = backend
        .create(&n("bin"), &SecretValue::new(vec![0xff, 0xfe]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(!backend.has(&n("big")).await.unwrap());

    let e = lockbox_ssm::SsmBackend::with_client(
        ssm_client(&endpoint, Duration::from_secs(5)),
        ssm_settings("/aws/reserved", "n"),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("extra.ssm-parameter-path") && e.to_string().contains("'aws'"),
        "{e}"
    );
}
