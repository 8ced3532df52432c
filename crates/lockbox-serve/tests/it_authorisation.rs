//! Issue 23 item 3, "authorisation as the README states it", and item 5's dual-stack uid:
//! with `consumers`, only secrets the store holds are anyone's resource, a read fetches the
//! ARN of the stored secret it was authorised for, and every denial is one 403 naming only
//! the id asked. Against the AWS emulator (skipped without LOCKBOX_IT_ENDPOINT).

mod common;

use std::path::Path;

use aws_sdk_ssm::types::ParameterType;
use common::{Running, denial, own_uid, start, token};
use lockbox_testkit::aws::{aws_sdk_secretsmanager, aws_sdk_ssm, setup_config};
use lockbox_testkit::{emulator, prefix};

const APP_TOKEN: &str = "app-token-0123456789abcdef";

/// `[lockbox]` keys for a store synced from `stored` (v2 `cloudSecrets`) and a consumers file
/// with `consumers` (owner-only).
fn keys(dir: &Path, stored: &[&str], consumers: serde_json::Value) -> String {
    let manifest = dir.join("manifest.json");
    let entries: Vec<_> = stored
        .iter()
        .map(|n| serde_json::json!({"arn": n}))
        .collect();
    std::fs::write(
        &manifest,
        serde_json::json!({ "cloudSecrets": entries }).to_string(),
    )
    .unwrap();
    let file = dir.join("consumers.json");
    std::fs::write(
        &file,
        serde_json::json!({ "Consumers": consumers }).to_string(),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    format!(
        "manifest = \"{}\"\nstore = \"{}\"\nsync_interval_seconds = 0\nconsumers = \"{}\"\n",
        manifest.display(),
        dir.join("store").display(),
        file.display()
    )
}

fn policies(ids: &[&str]) -> serde_json::Value {
    ids.iter()
        .map(|id| serde_json::json!({"ResourceId": id, "Permission": "ro"}))
        .collect()
}

async fn get(s: &Running, path: &str, token: &str) -> (u16, String) {
    s.get_once(path, Some(token)).await.expect("an answer")
}

/// The attacks: a consumer reads an SSM parameter its policy names (was 200), a secret its
/// policy names that the store does not hold (was 200), and learns from denials which names
/// are in the store, their resource ids, ARNs and account id (the words differed). And a
/// stored secret deleted and re-created under the same name in the cloud was read by name,
/// handing the consumer the new secret (the cloud resolved the name again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_read_only_stored_secrets_by_their_stored_arn_and_denials_are_alike() {
    let Some(ep) = emulator("serve authorisation") else {
        return;
    };
    let sm = aws_sdk_secretsmanager::Client::new(&setup_config(&ep));
    let ssm = aws_sdk_ssm::Client::new(&setup_config(&ep));
    let [kept, other, outside] =
        ["kept", "other", "outside"].map(|n| prefix(&format!("serve-authz-{n}")));
    for name in [&kept, &other, &outside] {
        sm.create_secret()
            .name(name)
            .secret_string(format!("{name}-value"))
            .send()
            .await
            .unwrap();
    }
    let param = format!("/{}", prefix("serve-authz-param"));
    ssm.put_parameter()
        .name(&param)
        .value("param-value")
        .r#type(ParameterType::String)
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let consumers = serde_json::json!([{
        "Name": "app", "Token": APP_TOKEN,
        "ResourceAccessPolicies": policies(&[&kept, &outside, &param]),
    }]);
    let s = start(&ep, "", &keys(dir.path(), &[&kept, &other], consumers)).await;

    let (status, body) = get(&s, &format!("/v1/{kept}"), APP_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("{kept}-value")), "{body}");

    // Listed in the policy but not in the store, an SSM parameter, a stored secret the
    // policy does not list, a name nobody has: one and the same 403, naming the id asked.
    let arn_of_other = sm
        .describe_secret()
        .secret_id(&other)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let param_path = format!("/systemsmanager/parameters/get?name={param}");
    let nobody = format!("{kept}-nobody");
    for (path, asked) in [
        (format!("/v1/{outside}"), outside.as_str()),
        (param_path.clone(), param.as_str()),
        (format!("/v1/{other}"), other.as_str()),
        (
            format!("/secretsmanager/get?secretId={nobody}"),
            nobody.as_str(),
        ),
        (
            format!("/secretsmanager/get?secretId={arn_of_other}"),
            arn_of_other.as_str(),
        ),
    ] {
        let (status, body) = get(&s, &path, APP_TOKEN).await;
        assert_eq!(
            (status, body.as_str()),
            (403, denial(asked).as_str()),
            "{path}"
        );
        assert!(!body.contains("-value"), "{body}");
    }
    // Asked by name, nothing in a denial names an ARN or the account.
    let (_, body) = get(&s, &format!("/v1/{other}"), APP_TOKEN).await;
    assert!(
        !body.contains("arn:") && !body.contains("123456789012"),
        "{body}"
    );

    // The stored secret is deleted in the cloud and another is created under its name: the
    // consumer was authorised for the stored one (its ARN), so it never gets the new one.
    sm.delete_secret()
        .secret_id(&kept)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name(&kept)
        .secret_string("impostor-value")
        .send()
        .await
        .unwrap();
    let (status, body) = get(&s, &format!("/v1/{kept}?refreshNow=true"), APP_TOKEN).await;
    assert!(!body.contains("impostor-value"), "{status} {body}");
    assert_ne!(status, 200, "{body}");
    // The SSRF token alone does not bypass it either (no consumer has this uid).
    let (status, body) = get(&s, &param_path, &token()).await;
    assert_eq!((status, body), (403, denial(&param)));
    s.stop().await;
}

/// Item 5: on a dual-stack `[::]` listener an IPv4 client's socket is listed in
/// `/proc/net/tcp` while the server sees `::ffff:127.0.0.1`; its uid is found and it is the
/// consumer with that uid. Before: only tcp6 was read, no uid was found, and it got 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv4_client_of_a_dual_stack_listener_is_its_uids_consumer() {
    let Some(ep) = emulator("serve dual-stack uid") else {
        return;
    };
    if std::net::TcpListener::bind("[::]:0").is_err() {
        eprintln!("skipped: no IPv6 here");
        return;
    }
    let sm = aws_sdk_secretsmanager::Client::new(&setup_config(&ep));
    let name = prefix("serve-dualstack");
    sm.create_secret()
        .name(&name)
        .secret_string("dual-value")
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let consumers = serde_json::json!([{
        "Name": "local", "Uid": own_uid(),
        "ResourceAccessPolicies": policies(&[&name]),
    }]);
    let lockbox = format!(
        "listen = \"[::]:0\"\nallow_non_loopback = true\n{}",
        keys(dir.path(), &[&name], consumers)
    );
    let s = start(&ep, "", &lockbox).await;
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], s.addr.port()));
    let mut c = common::Client(tokio::net::TcpStream::connect(v4).await.unwrap());
    let (status, body) = c.get(&format!("/v1/{name}"), Some(&token())).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("dual-value"), "{body}");
    s.stop().await;
}
