//! `lockbox` on HashiCorp Vault (OpenBao in dev mode, started by `cargo xtask`): Polygon Edge's
//! `generate` / `init` / `output` flow, the values at Polygon Edge's paths, the refusal of a
//! second init, and the Vault policy `lockbox policy` prints, proven with a token that holds only
//! it.

use std::path::Path;
use std::process::Output;

use lockbox_testkit::cli::{aws_command, ok_json as ok, output_of_init, stderr};
use lockbox_testkit::{tag, vault_server};
use serde_json::{Value, json};

/// The built binary with `args`, with no Vault token in its environment but `env`.
fn lockbox(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = aws_command(env!("CARGO_BIN_EXE_lockbox"), args);
    cmd.env_remove("LOCKBOX_TOKEN")
        .env_remove("VAULT_TOKEN")
        .env_remove("VAULT_CACERT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `lockbox generate --type hashicorp-vault` for node `name` into `dir`; the token (if any)
/// comes from `LOCKBOX_TOKEN`, never argv.
fn generate(dir: &Path, addr: &str, name: &str, token: Option<&str>) -> String {
    let cfg = dir.join(format!("{name}.json"));
    let c = cfg.to_str().unwrap();
    let args = [
        "generate",
        "--type",
        "hashicorp-vault",
        "--name",
        name,
        "--dir",
        c,
        "--server-url",
        addr,
    ];
    let env: Vec<(&str, &str)> = match token {
        Some(t) => vec![("LOCKBOX_TOKEN", t)],
        // A config without a token is valid when the environment carries one.
        None => vec![("VAULT_TOKEN", "placeholder")],
    };
    let o = lockbox(&args, &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    c.to_owned()
}

/// A raw Vault HTTP call with `token`.
async fn raw(
    addr: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{addr}/v1/{path}"),
        )
        .header("X-Vault-Token", token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The KV v2 `data` of node `node`'s secret `secret`, read with the root token (`Null` when
/// the read fails).
async fn stored(addr: &str, root: &str, node: &str, secret: &str) -> Value {
    let path = format!("secret/data/{node}/{secret}");
    let (status, body) = raw(addr, root, "GET", &path, None).await;
    assert_eq!(status, 200, "{path}: {body}");
    body["data"]["data"].clone()
}

#[tokio::test]
async fn it_init_then_output_on_vault_at_polygon_edge_paths() {
    let Some((addr, root)) = vault_server("it_init_then_output_on_vault_at_polygon_edge_paths")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let node = format!("node-{}", tag());
    let c = generate(tmp.path(), &addr, &node, Some(&root));
    let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(&c).unwrap()).unwrap();
    assert_eq!(on_disk["type"], "hashicorp-vault");

    let init = ok(&lockbox(&["init", "--config", &c, "--json"], &[]));
    let output = ok(&lockbox(&["output", "--config", &c, "--json"], &[]));
    assert_eq!(output, output_of_init(&init));

    // Every key is where Polygon Edge keeps it, in its shape.
    for secret in ["validator-key", "validator-bls-key", "network-key"] {
        let data = stored(&addr, &root, &node, secret).await;
        let data = data.as_object().unwrap();
        assert_eq!(data.len(), 1, "{secret}: {{\"{secret}\": value}} only");
        assert!(data[secret].is_string(), "{secret}");
    }
    let before = stored(&addr, &root, &node, "validator-key").await;
    let hex = before["validator-key"].as_str().unwrap();
    let key = lockbox_keys::ValidatorKey::decode(&hex.into()).unwrap();
    assert_eq!(key.address().to_string(), init["address"].as_str().unwrap());

    // A second init refuses, names the secret, and changes nothing.
    let o = lockbox(&["init", "--config", &c], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("validator-key"), "{}", stderr(&o));
    assert_eq!(
        ok(&lockbox(&["output", "--config", &c, "--json"], &[])),
        output
    );
    assert_eq!(stored(&addr, &root, &node, "validator-key").await, before);
    assert!(!stderr(&o).contains(&root), "the token never appears");
}

#[tokio::test]
async fn it_the_printed_vault_policy_is_enough_for_init_and_output_and_no_more() {
    let Some((addr, root)) =
        vault_server("it_the_printed_vault_policy_is_enough_for_init_and_output_and_no_more")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let node = format!("pol-{}", tag());
    let other = format!("other-{}", tag());
    // The node's config carries no token: init and output take it from VAULT_TOKEN.
    let c = generate(tmp.path(), &addr, &node, None);
    let c_other = generate(tmp.path(), &addr, &other, None);

    let mut tokens = Vec::new();
    for read_only in [false, true] {
        let mut args = vec!["policy", "--config", &c, "--json"];
        if read_only {
            args.push("--read-only");
        }
        // The operator writing policies holds a token; the config itself has none.
        let hcl = ok(&lockbox(&args, &[("VAULT_TOKEN", &root)]))["hcl"]
            .as_str()
            .unwrap()
            .to_owned();
        let policy = format!("{node}-{read_only}");
        let (status, _) = raw(
            &addr,
            &root,
            "PUT",
            &format!("sys/policies/acl/{policy}"),
            Some(json!({ "policy": hcl })),
        )
        .await;
        assert_eq!(status, 204);
        let (status, body) = raw(
            &addr,
            &root,
            "POST",
            "auth/token/create",
            Some(json!({ "policies": [policy], "no_default_policy": true, "ttl": "10m" })),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        tokens.push(body["auth"]["client_token"].as_str().unwrap().to_owned());
    }
    let (read_write, read_only) = (tokens[0].as_str(), tokens[1].as_str());

    // Read-only is not enough for init, and nothing is written.
    let o = lockbox(&["init", "--config", &c], &[("VAULT_TOKEN", read_only)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));
    // The read-write policy is enough for init; read-only for output.
    let init = ok(&lockbox(
        &["init", "--config", &c, "--json"],
        &[("VAULT_TOKEN", read_write)],
    ));
    let output = ok(&lockbox(
        &["output", "--config", &c, "--json"],
        &[("VAULT_TOKEN", read_only)],
    ));
    assert_eq!(output, output_of_init(&init));
    // Outside the node's path the same token is denied, named, never "not found".
    let o = lockbox(
        &["init", "--config", &c_other],
        &[("VAULT_TOKEN", read_write)],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("permission denied") && err.contains(&other),
        "{err}"
    );
    assert!(!err.contains("not found"), "{err}");
    let o = lockbox(
        &["output", "--config", &c_other],
        &[("VAULT_TOKEN", read_only)],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));
    // Without any token, a clear error naming where a token may come from.
    let o = lockbox(&["output", "--config", &c], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("VAULT_TOKEN"), "{}", stderr(&o));
}
