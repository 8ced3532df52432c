//! The Secrets Manager backend against a real AWS emulator (moto or LocalStack) that
//! `cargo xtask` starts. Every test works under its own random node name.

use std::time::Duration;

use lockbox_core::{
    ErrorKind, PutMode, SecretName, SecretValue, SecretsManager, SecretsManagerExt, Version,
};
use lockbox_secretsmanager::{FetchManyOptions, MAX_VALUE_BYTES, SecretsManagerBackend};
use lockbox_testkit::aws::{
    emulator_subject, secretsmanager_backend, secretsmanager_client, secretsmanager_settings,
};
use lockbox_testkit::conformance::Capabilities;
use lockbox_testkit::{emulator, prefix, tag};

fn n(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

lockbox_testkit::conformance_tests!(
    |test| async move { emulator_subject(test, secretsmanager_backend) },
    Capabilities {
        binary_values: true,
        ..Default::default()
    }
);

#[tokio::test]
async fn it_secrets_live_at_documented_names() {
    let Some(endpoint) = emulator("it_secrets_live_at_documented_names") else {
        return;
    };
    let node = prefix("node");
    let backend = secretsmanager_backend(&endpoint, "/lockbox-it//nodes/", &node);
    backend
        .create(&n("validator-key"), &SecretValue::from("abc123"))
        .await
        .unwrap();

    let raw = secretsmanager_client(&endpoint, Duration::from_secs(10));
    let expected = format!("lockbox-it/nodes/{node}/validator-key");
    let out = raw
        .get_secret_value()
        .secret_id(&expected)
        .send()
        .await
        .unwrap();
    assert_eq!(out.secret_string(), Some("abc123"));
    assert_eq!(out.name(), Some(expected.as_str()));
    assert!(out.version_stages().iter().any(|s| s == "AWSCURRENT"));
    assert_eq!(
        backend.location(&n("validator-key")),
        format!("Secrets Manager secret {expected}")
    );
    assert_eq!(backend.secret_id(&n("validator-key")).unwrap(), expected);

    // The same path spelt without slashes reaches the same secret.
    let other = secretsmanager_backend(&endpoint, "lockbox-it/nodes", &node);
    assert_eq!(
        other.get(&n("validator-key")).await.unwrap().expose_str(),
        Some("abc123")
    );
    backend.delete(&n("validator-key")).await.unwrap();
}

#[tokio::test]
async fn it_versions_and_staging_labels() {
    let Some(endpoint) = emulator("it_versions_and_staging_labels") else {
        return;
    };
    let backend = secretsmanager_backend(&endpoint, "/lockbox-it", &prefix("ver"));
    let name = n("app/token");
    let id = backend.secret_id(&name).unwrap();
    let client = backend.client();
    backend
        .create(&name, &SecretValue::from("one"))
        .await
        .unwrap();
    let v1 = client.fetch_version(&id, &Version::Current).await.unwrap();
    assert_eq!(v1.value.expose_str(), Some("one"));
    assert!(!v1.binary);
    assert_eq!(v1.name, id);
    assert!(v1.arn.contains(&format!(":secret:{id}-")), "{}", v1.arn);
    assert!(v1.version_stages.contains(&"AWSCURRENT".to_string()));
    assert!(v1.created_date.is_some());

    // A put without stages makes the new version AWSCURRENT; the old one becomes AWSPREVIOUS.
    backend
        .put(&name, &SecretValue::from("two"), PutMode::Overwrite)
        .await
        .unwrap();
    let v2 = client.fetch_version(&id, &Version::Current).await.unwrap();
    assert_eq!(v2.value.expose_str(), Some("two"));
    assert_ne!(v2.version_id, v1.version_id);
    let prev = client
        .fetch_version(&id, &Version::Label("AWSPREVIOUS".into()))
        .await
        .unwrap();
    assert_eq!(prev.version_id, v1.version_id);
    assert_eq!(prev.value.expose_str(), Some("one"));

    // A custom label leaves AWSCURRENT where it is.
    let v3_id = client
        .put_version(&id, &SecretValue::from("three"), &["staged".into()])
        .await
        .unwrap();
    assert_eq!(
        backend.get(&name).await.unwrap().expose_str(),
        Some("two"),
        "a version put with only a custom label must not become current"
    );
    let staged = client
        .fetch_version(&id, &Version::Label("staged".into()))
        .await
        .unwrap();
    assert_eq!(staged.version_id, v3_id);
    assert_eq!(staged.version_stages, ["staged"]);

    // Moving AWSCURRENT explicitly moves AWSPREVIOUS to the version that was current.
    let v4_id = client
        .put_version(&id, &SecretValue::from("four"), &["AWSCURRENT".into()])
        .await
        .unwrap();
    let current = client.fetch_version(&id, &Version::Current).await.unwrap();
    assert_eq!(current.version_id, v4_id);
    assert_eq!(current.value.expose_str(), Some("four"));
    let prev = client
        .fetch_version(&id, &Version::Label("AWSPREVIOUS".into()))
        .await
        .unwrap();
    assert_eq!(prev.version_id, v2.version_id);

    // Read by version id, through the trait too.
    let get = |v: Version| {
        let backend = backend.clone();
        let name = name.clone();
        async move { backend.get_version(&name, &v).await }
    };
    assert_eq!(
        get(Version::Id(v1.version_id.clone()))
            .await
            .unwrap()
            .expose_str(),
        Some("one")
    );
    assert_eq!(
        get(Version::Id(v3_id)).await.unwrap().expose_str(),
        Some("three")
    );
    assert_eq!(
        get(Version::Label("staged".into()))
            .await
            .unwrap()
            .expose_str(),
        Some("three")
    );
    let e = get(Version::Label("no-such-label".into()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.secret(), Some("app/token"));
    assert!(e.to_string().contains("no-such-label"), "{e}");
    let e = get(Version::Id("00000000-0000-0000-0000-000000000000".into()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let e = get(Version::Number(1)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    backend.delete(&name).await.unwrap();
}

#[tokio::test]
async fn it_binary_values_round_trip_as_secret_binary() {
    let Some(endpoint) = emulator("it_binary_values_round_trip") else {
        return;
    };
    let backend = secretsmanager_backend(&endpoint, "/lockbox-it", &prefix("bin"));
    let bytes: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
    let name = n("blob");
    backend
        .create(&name, &SecretValue::new(bytes.clone()))
        .await
        .unwrap();
    assert_eq!(backend.get(&name).await.unwrap().expose_bytes(), &bytes[..]);
    let id = backend.secret_id(&name).unwrap();
    let v = backend
        .client()
        .fetch_version(&id, &Version::Current)
        .await
        .unwrap();
    assert!(v.binary);
    let raw = secretsmanager_client(&endpoint, Duration::from_secs(10))
        .get_secret_value()
        .secret_id(&id)
        .send()
        .await
        .unwrap();
    assert!(raw.secret_string().is_none());
    assert_eq!(raw.secret_binary().unwrap().as_ref(), &bytes[..]);

    // Overwriting with text turns it back into a SecretString.
    backend
        .put(&name, &SecretValue::from("text now"), PutMode::Overwrite)
        .await
        .unwrap();
    let v = backend
        .client()
        .fetch_version(&id, &Version::Current)
        .await
        .unwrap();
    assert!(!v.binary);
    assert_eq!(v.value.expose_str(), Some("text now"));

    // The largest value AWS takes goes through; one byte more is refused before any call.
    let max = n("max");
    backend
        .create(&max, &SecretValue::new(vec![b'x'; MAX_VALUE_BYTES]))
        .await
        .unwrap();
    assert_eq!(backend.get(&max).await.unwrap().len(), MAX_VALUE_BYTES);
    let e = backend
        .create(
            &n("over"),
            &SecretValue::new(vec![b'x'; MAX_VALUE_BYTES + 1]),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    assert!(
        e.to_string().contains("65537 bytes") && e.to_string().contains("65536"),
        "{e}"
    );
    assert!(!backend.has(&n("over")).await.unwrap());
    for n in [name, max] {
        backend.delete(&n).await.unwrap();
    }
}

#[tokio::test]
async fn it_fetch_many_reports_a_missing_secret_among_25() {
    let Some(endpoint) = emulator("it_fetch_many_reports_a_missing_secret") else {
        return;
    };
    let backend = secretsmanager_backend(&endpoint, "/lockbox-it", &prefix("many"));
    let mut names = Vec::new();
    for i in 0..25 {
        let name = n(&format!("k{i:02}"));
        if i != 13 {
            backend
                .create(&name, &SecretValue::from(format!("v{i}")))
                .await
                .unwrap();
        }
        names.push(name);
    }
    let got = backend.get_many(&names).await;
    assert_eq!(got.len(), 25);
    for (i, r) in got.iter().enumerate() {
        if i == 13 {
            let e = r.as_ref().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound, "k13: {e}");
            assert_eq!(e.secret(), Some("k13"));
        } else {
            assert_eq!(
                r.as_ref().unwrap().expose_str(),
                Some(format!("v{i}").as_str()),
                "k{i}"
            );
        }
    }

    // The raw client takes names and ARNs alike, in any mix.
    let client = backend.client();
    let first = backend.secret_id(&names[0]).unwrap();
    let arn = client
        .fetch_version(&first, &Version::Current)
        .await
        .unwrap()
        .arn;
    let ids = vec![
        arn.clone(),
        backend.secret_id(&names[13]).unwrap(),
        backend.secret_id(&names[24]).unwrap(),
    ];
    let got = client
        .fetch_many(&ids, &FetchManyOptions::default())
        .await
        .results;
    let v0 = got[0].as_ref().unwrap();
    assert_eq!(
        (v0.arn.as_str(), v0.value.expose_str()),
        (arn.as_str(), Some("v0"))
    );
    assert!(v0.version_stages.contains(&"AWSCURRENT".to_string()));
    assert_eq!(got[1].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(got[2].as_ref().unwrap().value.expose_str(), Some("v24"));

    let listed = backend.list("k1").await.unwrap();
    assert_eq!(listed.len(), 9, "k10..k19 minus k13: {listed:?}");
    for name in names {
        backend.delete_if_exists(&name).await.unwrap();
    }
}

#[tokio::test]
async fn it_scheduled_for_deletion_still_holds_the_name() {
    let Some(endpoint) = emulator("it_scheduled_for_deletion") else {
        return;
    };
    let backend = secretsmanager_backend(&endpoint, "/lockbox-it", &prefix("sched"));
    let name = n("validator-key");
    let id = backend.secret_id(&name).unwrap();
    backend
        .create(&name, &SecretValue::from("old"))
        .await
        .unwrap();
    // Scheduled for deletion the way the console or the CLI does it by default.
    let raw = secretsmanager_client(&endpoint, Duration::from_secs(10));
    raw.delete_secret()
        .secret_id(&id)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();

    assert!(
        backend.has(&name).await.unwrap(),
        "a secret scheduled for deletion blocks a create of its name, so it exists"
    );
    let e = backend
        .create(&name, &SecretValue::from("new"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("scheduled for deletion") && msg.contains("RestoreSecret"),
        "{msg}"
    );
    let e = backend.get(&name).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(e.to_string().contains("scheduled for deletion"), "{e}");
    assert!(
        backend.list("").await.unwrap().is_empty(),
        "list leaves out secrets scheduled for deletion"
    );

    // init refuses, naming the secret, and writes nothing.
    let e = lockbox_keys::init_node(&backend).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert!(!backend.has(&n("network-key")).await.unwrap());

    // delete removes it for good, at once, and the name can be used again.
    backend.delete(&name).await.unwrap();
    assert!(!backend.has(&name).await.unwrap());
    backend
        .create(&name, &SecretValue::from("new"))
        .await
        .unwrap();
    assert_eq!(backend.get(&name).await.unwrap().expose_str(), Some("new"));
    backend.delete(&name).await.unwrap();
    assert_eq!(
        backend.delete(&name).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn it_init_node_and_read_back() {
    let Some(endpoint) = emulator("it_init_node_and_read_back") else {
        return;
    };
    let backend = secretsmanager_backend(&endpoint, "/lockbox-it", &prefix("init"));
    let identity = lockbox_keys::init_node(&backend).await.unwrap();
    assert_eq!(
        lockbox_keys::read_address(&backend).await.unwrap(),
        identity.address
    );
    assert_eq!(
        lockbox_keys::read_node_id(&backend).await.unwrap(),
        identity.node_id
    );
    let e = lockbox_keys::init_node(&backend).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    for name in ["validator-key", "network-key"] {
        backend.delete(&n(name)).await.unwrap();
    }
}

#[tokio::test]
async fn it_list_is_exact_about_prefixes_and_nodes() {
    let Some(endpoint) = emulator("it_list_is_exact") else {
        return;
    };
    let tag = tag();
    let one = secretsmanager_backend(&endpoint, "/lockbox-it", &format!("n{tag}"));
    let ten = secretsmanager_backend(&endpoint, "/lockbox-it", &format!("n{tag}0"));
    for (b, name) in [
        (&one, "ab/y"),
        (&one, "Ab/x"),
        (&one, "abc"),
        (&ten, "ab/z"),
    ] {
        b.create(&n(name), &SecretValue::from("v")).await.unwrap();
    }
    assert_eq!(one.list("ab").await.unwrap(), [n("ab/y"), n("abc")]);
    assert_eq!(one.list("ab/").await.unwrap(), [n("ab/y")]);
    assert_eq!(one.list("A").await.unwrap(), [n("Ab/x")]);
    assert_eq!(one.list("").await.unwrap().len(), 3, "not node n{tag}0's");
    assert_eq!(ten.list("").await.unwrap(), [n("ab/z")]);
    for (b, name) in [
        (&one, "ab/y"),
        (&one, "Ab/x"),
        (&one, "abc"),
        (&ten, "ab/z"),
    ] {
        b.delete(&n(name)).await.unwrap();
    }
}

#[tokio::test]
async fn it_bad_settings_are_refused_before_any_call() {
    let Some(endpoint) = emulator("it_bad_settings_are_refused") else {
        return;
    };
    let e = SecretsManagerBackend::with_client(
        secretsmanager_client(&endpoint, Duration::from_secs(5)),
        secretsmanager_settings("/lockbox-it", "node/with/slashes"),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("must not contain '/'"), "{e}");
}
