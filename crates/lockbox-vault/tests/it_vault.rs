//! The Vault backend against a real Vault-compatible server (OpenBao in dev mode, started by
//! `cargo xtask`): its address and root token come from `LOCKBOX_IT_VAULT_ADDR` and
//! `LOCKBOX_IT_VAULT_TOKEN`. Without them every test says it was skipped.

use lockbox_core::{ErrorKind, PutMode, SecretName, SecretValue, SecretsManager};
use lockbox_testkit::conformance::{Capabilities, Subject};
use lockbox_testkit::{tag, vault_server as server};
use lockbox_vault::{VaultBackend, VaultSettings, node_policy_hcl};
use serde_json::{Value, json};

fn n(s: &str) -> SecretName {
    SecretName::new(s).unwrap()
}

fn backend(addr: &str, token: &str, node: &str) -> VaultBackend {
    VaultBackend::connect(VaultSettings::new(addr, node).token(token)).unwrap()
}

/// Raw Vault HTTP API calls, to look behind the backend's back.
struct Raw {
    http: reqwest::Client,
    addr: String,
    token: String,
    namespace: Option<String>,
}

impl Raw {
    fn new(addr: &str, token: &str) -> Self {
        // Trust what the backend trusts: a TLS dev server's CA comes through VAULT_CACERT.
        let mut http = reqwest::Client::builder();
        if let Some(path) = std::env::var_os("VAULT_CACERT").filter(|p| !p.is_empty()) {
            let pem = std::fs::read(path).expect("reading VAULT_CACERT");
            for cert in reqwest::Certificate::from_pem_bundle(&pem).unwrap() {
                http = http.add_root_certificate(cert);
            }
        }
        Self {
            http: http.build().unwrap(),
            addr: addr.trim_end_matches('/').into(),
            token: token.into(),
            namespace: None,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token);
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("raw Vault request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates an ACL policy from `hcl` and a token that holds only it.
    async fn token_with_policy(&self, policy: &str, hcl: &str) -> String {
        let (status, _) = self
            .call(
                "PUT",
                &format!("sys/policies/acl/{policy}"),
                Some(json!({ "policy": hcl })),
            )
            .await;
        assert_eq!(status, 204, "creating policy {policy}");
        let (status, body) = self
            .call(
                "POST",
                "auth/token/create",
                Some(json!({ "policies": [policy], "no_default_policy": true, "ttl": "10m" })),
            )
            .await;
        assert_eq!(status, 200, "creating a token: {body}");
        body["auth"]["client_token"].as_str().unwrap().to_owned()
    }
}

lockbox_testkit::conformance_tests!(
    |test| async move {
        let (addr, token) = server(test)?;
        Some(Subject::new(backend(
            &addr,
            &token,
            &format!("conf-{}", tag()),
        )))
    },
    Capabilities {
        binary_values: false,
        ..Default::default()
    }
);

#[tokio::test]
async fn it_secrets_live_at_polygon_edges_path_in_its_shape() {
    let Some((addr, token)) = server("it_secrets_live_at_polygon_edges_path_in_its_shape") else {
        return;
    };
    let node = format!("pe-{}", tag());
    let b = backend(&addr, &token, &node);
    b.put(
        &n("validator-key"),
        &SecretValue::from("abc123"),
        PutMode::Create,
    )
    .await
    .unwrap();
    let raw = Raw::new(&addr, &token);
    let (status, body) = raw
        .call("GET", &format!("secret/data/{node}/validator-key"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["data"], json!({ "validator-key": "abc123" }));
    assert_eq!(
        b.location(&n("validator-key")),
        format!("Vault path secret/data/{node}/validator-key")
    );

    // What Polygon Edge writes (no check-and-set), the backend reads.
    let (status, _) = raw
        .call(
            "POST",
            &format!("secret/data/{node}/network-key"),
            Some(json!({ "data": { "network-key": "0802122000" } })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        b.get(&n("network-key")).await.unwrap().expose_str(),
        Some("0802122000")
    );
    assert_eq!(
        b.list("").await.unwrap(),
        vec![n("network-key"), n("validator-key")]
    );
}

#[tokio::test]
async fn it_a_refused_create_leaves_the_value_and_its_version() {
    let Some((addr, token)) = server("it_a_refused_create_leaves_the_value_and_its_version") else {
        return;
    };
    let node = format!("cas-{}", tag());
    let b = backend(&addr, &token, &node);
    let name = n("validator-key");
    b.put(&name, &SecretValue::from("first"), PutMode::Create)
        .await
        .unwrap();
    let e = b
        .put(&name, &SecretValue::from("second"), PutMode::Create)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains(&b.data_path(&name)), "{e}");
    assert_eq!(b.get(&name).await.unwrap().expose_bytes(), b"first");
    let raw = Raw::new(&addr, &token);
    let (_, meta) = raw
        .call(
            "GET",
            &format!("secret/metadata/{node}/validator-key"),
            None,
        )
        .await;
    assert_eq!(meta["data"]["current_version"], 1, "no second version");

    // delete removes every version, so a retried init can create the name again.
    b.put(&name, &SecretValue::from("third"), PutMode::Overwrite)
        .await
        .unwrap();
    b.delete(&name).await.unwrap();
    let (status, _) = raw
        .call(
            "GET",
            &format!("secret/metadata/{node}/validator-key"),
            None,
        )
        .await;
    assert_eq!(status, 404, "metadata gone after delete");
    b.put(&name, &SecretValue::from("again"), PutMode::Create)
        .await
        .unwrap();
    b.delete(&name).await.unwrap();
}

#[tokio::test]
async fn it_a_token_without_rights_is_denied_naming_the_path() {
    let Some((addr, token)) = server("it_a_token_without_rights_is_denied_naming_the_path") else {
        return;
    };
    let tag = tag();
    let node = format!("deny-{tag}");
    let root = backend(&addr, &token, &node);
    root.put(
        &n("validator-key"),
        &SecretValue::from("v"),
        PutMode::Create,
    )
    .await
    .unwrap();
    let raw = Raw::new(&addr, &token);
    // Rights on another node's paths only.
    let weak = raw
        .token_with_policy(
            &format!("lockbox-it-other-{tag}"),
            &node_policy_hcl("secret", &format!("other-{tag}"), false),
        )
        .await;
    let b = backend(&addr, &weak, &node);
    let name = n("validator-key");
    let path = format!("secret/data/{node}/validator-key");
    for e in [
        b.get(&name).await.unwrap_err(),
        b.has(&name).await.unwrap_err(),
        b.put(&name, &SecretValue::from("x"), PutMode::Create)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        let text = e.to_string();
        assert!(text.contains(&path), "{text}");
        assert!(!text.contains("not found"), "{text}");
        assert!(!text.contains(&weak) && !format!("{e:?}").contains(&weak));
    }
    let e = b.list("").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(
        e.to_string().contains(&format!("secret/metadata/{node}/")),
        "{e}"
    );
    assert_eq!(root.get(&name).await.unwrap().expose_bytes(), b"v");
    root.delete(&name).await.unwrap();
}

#[tokio::test]
async fn it_a_wrong_token_is_refused_and_never_shown() {
    let Some((addr, _)) = server("it_a_wrong_token_is_refused_and_never_shown") else {
        return;
    };
    let wrong = "s.lockbox-wrong-token-XYZ";
    let b = backend(&addr, wrong, "node1");
    let e = b.get(&n("validator-key")).await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::PermissionDenied | ErrorKind::Unauthenticated
        ),
        "{e}"
    );
    assert!(!e.is_retryable());
    assert!(!e.to_string().contains(wrong) && !format!("{e:?}").contains(wrong));
    assert!(!format!("{b:?}").contains(wrong));
}

#[tokio::test]
async fn it_a_value_that_is_not_a_string_is_corrupt() {
    let Some((addr, token)) = server("it_a_value_that_is_not_a_string_is_corrupt") else {
        return;
    };
    let node = format!("corrupt-{}", tag());
    let raw = Raw::new(&addr, &token);
    for (secret, data) in [
        ("number", json!({ "number": 5 })),
        ("object", json!({ "object": { "k": "hidden-value" } })),
        ("other-key", json!({ "something-else": "hidden-value" })),
    ] {
        let (status, _) = raw
            .call(
                "POST",
                &format!("secret/data/{node}/{secret}"),
                Some(json!({ "data": data })),
            )
            .await;
        assert_eq!(status, 200);
    }
    let b = backend(&addr, &token, &node);
    for secret in ["number", "object", "other-key"] {
        let e = b.get(&n(secret)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        let text = e.to_string();
        assert!(
            text.contains(&format!("secret/data/{node}/{secret}")),
            "{text}"
        );
        assert!(!text.contains("hidden-value"), "{text}");
        b.delete(&n(secret)).await.unwrap();
    }
}

#[tokio::test]
async fn it_the_namespace_header_selects_the_namespace() {
    let Some((addr, token)) = server("it_the_namespace_header_selects_the_namespace") else {
        return;
    };
    let tag = tag();
    let ns = format!("lockbox-it-{tag}");
    let mut raw = Raw::new(&addr, &token);
    let (status, body) = raw
        .call("POST", &format!("sys/namespaces/{ns}"), None)
        .await;
    assert_eq!(status, 200, "creating namespace {ns}: {body}");
    raw.namespace = Some(ns.clone());
    let (status, body) = raw
        .call(
            "POST",
            "sys/mounts/secret",
            Some(json!({ "type": "kv", "options": { "version": "2" } })),
        )
        .await;
    assert_eq!(status, 204, "mounting kv-v2 in {ns}: {body}");

    let node = format!("ns-{tag}");
    let b = VaultBackend::connect(
        VaultSettings::new(&addr, &node)
            .token(&token)
            .namespace(Some(ns.clone())),
    )
    .unwrap();
    assert_eq!(b.namespace(), Some(ns.as_str()));
    b.put(
        &n("validator-key"),
        &SecretValue::from("in-ns"),
        PutMode::Create,
    )
    .await
    .unwrap();
    let path = format!("secret/data/{node}/validator-key");
    let (status, body) = raw.call("GET", &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["data"]["validator-key"], "in-ns");
    raw.namespace = None;
    let (status, _) = raw.call("GET", &path, None).await;
    assert_eq!(status, 404, "the secret is in the namespace, not the root");
    assert!(
        backend(&addr, &token, &node)
            .get(&n("validator-key"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    // Best-effort cleanup.
    raw.namespace = Some(ns.clone());
    raw.call("DELETE", "sys/mounts/secret", None).await;
    raw.namespace = None;
    raw.call("DELETE", &format!("sys/namespaces/{ns}"), None)
        .await;
}

#[tokio::test]
async fn it_the_node_policy_allows_its_own_paths_and_nothing_else() {
    let Some((addr, token)) = server("it_the_node_policy_allows_its_own_paths_and_nothing_else")
    else {
        return;
    };
    let tag = tag();
    let node = format!("pol-{tag}");
    let other = format!("pol-other-{tag}");
    let raw = Raw::new(&addr, &token);
    let rw = raw
        .token_with_policy(
            &format!("lockbox-it-rw-{tag}"),
            &node_policy_hcl("secret", &node, false),
        )
        .await;
    let ro = raw
        .token_with_policy(
            &format!("lockbox-it-ro-{tag}"),
            &node_policy_hcl("secret", &node, true),
        )
        .await;
    let root_other = backend(&addr, &token, &other);
    root_other
        .put(
            &n("validator-key"),
            &SecretValue::from("o"),
            PutMode::Create,
        )
        .await
        .unwrap();

    // Read-write: what init does (create, check, read, roll back) and output reads.
    let b = backend(&addr, &rw, &node);
    for key in ["validator-key", "validator-bls-key", "network-key"] {
        assert!(!b.has(&n(key)).await.unwrap());
        b.put(&n(key), &SecretValue::from(key), PutMode::Create)
            .await
            .unwrap();
        assert_eq!(b.get(&n(key)).await.unwrap().expose_str(), Some(key));
    }
    let e = b
        .put(&n("network-key"), &SecretValue::from("x"), PutMode::Create)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert_eq!(b.list("").await.unwrap().len(), 3);
    b.delete(&n("network-key")).await.unwrap();

    // Read-only: output works, writing does not.
    let r = backend(&addr, &ro, &node);
    assert_eq!(
        r.get(&n("validator-key")).await.unwrap().expose_str(),
        Some("validator-key")
    );
    assert_eq!(r.list("").await.unwrap().len(), 2);
    let e = r
        .put(&n("network-key"), &SecretValue::from("x"), PutMode::Create)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let e = r.delete(&n("validator-key")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");

    // Outside the node's path: denied for both.
    for t in [&rw, &ro] {
        let outside = backend(&addr, t, &other);
        let e = outside.get(&n("validator-key")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert!(
            e.to_string().contains(&format!("secret/data/{other}/")),
            "{e}"
        );
        let e = outside
            .put(&n("x"), &SecretValue::from("x"), PutMode::Create)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    }
    // The write policy never overwrites.
    let e = b
        .put(
            &n("validator-key"),
            &SecretValue::from("x"),
            PutMode::Overwrite,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");

    for key in ["validator-key", "validator-bls-key"] {
        b.delete(&n(key)).await.unwrap();
    }
    root_other.delete(&n("validator-key")).await.unwrap();
}
