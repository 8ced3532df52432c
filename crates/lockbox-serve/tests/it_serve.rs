//! lockbox serve against the AWS emulator: every endpoint, both services, versions, stages,
//! labels, binary secrets, refreshNow, TTL expiry, every refusal and its status, and clients
//! that send huge bodies or never finish their headers.
//!
//! The in-process servers read their SSRF token from `CARGO_MANIFEST_DIR` (cargo sets it for
//! test runs), since tests cannot set environment variables without `unsafe`.

use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_ssm::types::ParameterType;
use lockbox_serve::{ServeConfig, Server};
use lockbox_testkit::aws::{aws_sdk_secretsmanager, aws_sdk_ssm};
use lockbox_testkit::{emulator, prefix};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;

use common::{config, denial, metric, own_uid, running, start, token};

fn sm(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&lockbox_testkit::aws::setup_config(endpoint))
}

fn ssm(endpoint: &str) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&lockbox_testkit::aws::setup_config(endpoint))
}

/// A secret with two versions: returns (name, first version id, second version id).
async fn two_versions(endpoint: &str) -> (String, String, String) {
    let name = prefix("serve");
    let c = sm(endpoint);
    let v1 = c
        .create_secret()
        .name(&name)
        .secret_string("first-value")
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap();
    let v2 = c
        .put_secret_value()
        .secret_id(&name)
        .secret_string("second-value")
        .send()
        .await
        .unwrap()
        .version_id
        .unwrap();
    (name, v1, v2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_by_query_and_path_with_versions_stages_and_the_agents_json() {
    let Some(ep) = emulator("serve secrets") else {
        return;
    };
    let (name, v1, v2) = two_versions(&ep).await;
    let s = start(&ep, "", "").await;

    let (status, body) = s.get("/ping").await;
    assert_eq!((status, body.as_str()), (200, "healthy"));

    let j = s
        .json(&format!("/secretsmanager/get?secretId={name}"))
        .await;
    assert_eq!(j["SecretString"], "second-value");
    assert_eq!(j["Name"], name.as_str());
    assert_eq!(j["VersionId"], v2.as_str());
    assert!(
        j["ARN"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:secretsmanager:")
    );
    assert!(
        j["VersionStages"]
            .as_array()
            .unwrap()
            .contains(&"AWSCURRENT".into())
    );
    let created = j["CreatedDate"].as_str().expect("CreatedDate is a string");
    assert!(created.parse::<f64>().unwrap() > 1.0e9, "{created}");
    assert!(
        j.get("SecretBinary").is_none(),
        "absent fields are left out: {j}"
    );
    let (_, raw) = s.get(&format!("/secretsmanager/get?secretId={name}")).await;
    let at: Vec<usize> = [
        "ARN",
        "Name",
        "VersionId",
        "SecretString",
        "VersionStages",
        "CreatedDate",
    ]
    .iter()
    .map(|k| raw.find(&format!("\"{k}\":")).expect(k))
    .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "the agent's key order: {at:?}"
    );
    assert_eq!(j.as_object().unwrap().len(), 6);

    let by_path = s.json(&format!("/v1/{name}")).await;
    assert_eq!(by_path["SecretString"], "second-value");
    let prev = s
        .json(&format!("/v1/{name}?versionStage=AWSPREVIOUS"))
        .await;
    assert_eq!(prev["SecretString"], "first-value");
    assert_eq!(prev["VersionId"], v1.as_str());
    let by_id = s
        .json(&format!(
            "/secretsmanager/get?secretId={name}&versionId={v1}"
        ))
        .await;
    assert_eq!(by_id["SecretString"], "first-value");
    let arn = j["ARN"].as_str().unwrap();
    let by_arn = s
        .json(&format!("/secretsmanager/get?secretId={}", percent(arn)))
        .await;
    assert_eq!(by_arn["SecretString"], "second-value");

    // A missing secret: the upstream code and message, with the upstream status.
    let (status, body) = s
        .get(&format!("/secretsmanager/get?secretId={name}-missing"))
        .await;
    // The upstream status passes through (AWS says 400; the emulator may say otherwise).
    let upstream = sm(&ep)
        .get_secret_value()
        .secret_id(format!("{name}-missing"))
        .send()
        .await
        .unwrap_err()
        .raw_response()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, upstream, "{body}");
    let e: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(e["__type"], "ResourceNotFoundException");
    assert!(e["message"].is_string());
    s.stop().await;
}

fn percent(s: &str) -> String {
    form_encode(s)
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_secrets_are_base64_secret_binary() {
    let Some(ep) = emulator("serve binary") else {
        return;
    };
    let name = prefix("serve-bin");
    let bytes = vec![0u8, 159, 146, 150, 255, 10];
    sm(&ep)
        .create_secret()
        .name(&name)
        .secret_binary(Blob::new(bytes.clone()))
        .send()
        .await
        .unwrap();
    let s = start(&ep, "", "").await;
    let j = s.json(&format!("/v1/{name}")).await;
    use base64::Engine;
    let got = base64::engine::general_purpose::STANDARD
        .decode(j["SecretBinary"].as_str().unwrap())
        .unwrap();
    assert_eq!(got, bytes);
    assert!(j.get("SecretString").is_none());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_until_refresh_now_or_ttl_expiry() {
    let Some(ep) = emulator("serve cache") else {
        return;
    };
    let (name, _, _) = two_versions(&ep).await;
    let s = start(&ep, "ttl_seconds = 2", "").await;
    let path = format!("/secretsmanager/get?secretId={name}");
    assert_eq!(s.json(&path).await["SecretString"], "second-value");
    sm(&ep)
        .put_secret_value()
        .secret_id(&name)
        .secret_string("third-value")
        .send()
        .await
        .unwrap();
    assert_eq!(
        s.json(&path).await["SecretString"],
        "second-value",
        "a hit within the TTL"
    );
    assert_eq!(
        s.json(&format!("{path}&refreshNow=true")).await["SecretString"],
        "third-value",
        "refreshNow goes to AWS"
    );
    sm(&ep)
        .put_secret_value()
        .secret_id(&name)
        .secret_string("fourth-value")
        .send()
        .await
        .unwrap();
    assert_eq!(s.json(&path).await["SecretString"], "third-value");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        s.json(&path).await["SecretString"],
        "fourth-value",
        "read again after the TTL"
    );

    // ttl_seconds = 0: no caching at all.
    let s0 = start(&ep, "ttl_seconds = 0", "").await;
    assert_eq!(s0.json(&path).await["SecretString"], "fourth-value");
    sm(&ep)
        .put_secret_value()
        .secret_id(&name)
        .secret_string("fifth-value")
        .send()
        .await
        .unwrap();
    assert_eq!(s0.json(&path).await["SecretString"], "fifth-value");

    // The metrics saw hits, misses and AWS calls.
    let (status, m) = s.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        m.contains("lockbox_serve_cache_hits_total{service=\"secretsmanager\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("lockbox_serve_requests_total{path=\"/secretsmanager/get\",status=\"200\"} 5"),
        "{m}"
    );
    assert!(
        m.contains("lockbox_serve_request_duration_seconds_count"),
        "{m}"
    );
    assert!(!m.contains("-value"), "no secret values in metrics");
    s.stop().await;
    s0.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssm_parameters_with_versions_labels_and_decryption() {
    let Some(ep) = emulator("serve ssm") else {
        return;
    };
    let base = format!("/{}", prefix("serve"));
    let plain = format!("{base}/plain");
    let secure = format!("{base}/secure");
    let c = ssm(&ep);
    for (value, overwrite) in [("one", false), ("two", true)] {
        c.put_parameter()
            .name(&plain)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(overwrite)
            .send()
            .await
            .unwrap();
    }
    c.label_parameter_version()
        .name(&plain)
        .parameter_version(1)
        .labels("old")
        .send()
        .await
        .unwrap();
    c.put_parameter()
        .name(&secure)
        .value("s3cret-param")
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let s = start(&ep, "", "").await;
    let get = "/systemsmanager/parameters/get";

    let j = s.json(&format!("{get}?name={}", percent(&plain))).await;
    let p = &j["Parameter"];
    assert_eq!(p["Value"], "two");
    assert_eq!(p["Version"], 2);
    assert_eq!(p["Name"], plain.as_str());
    assert_eq!(p["Type"], "String");
    assert!(j["ResultMetadata"].is_object());
    let keys: Vec<_> = p.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "ARN",
            "DataType",
            "LastModifiedDate",
            "Name",
            "Selector",
            "SourceResult",
            "Type",
            "Value",
            "Version"
        ]
    );
    let v1 = s
        .json(&format!("{get}?name={}&version=1", percent(&plain)))
        .await;
    assert_eq!(v1["Parameter"]["Value"], "one");
    let old = s
        .json(&format!("{get}?name={}&label=old", percent(&plain)))
        .await;
    assert_eq!(old["Parameter"]["Value"], "one");

    let dec = s
        .json(&format!(
            "{get}?name={}&withDecryption=true",
            percent(&secure)
        ))
        .await;
    assert_eq!(dec["Parameter"]["Value"], "s3cret-param");
    assert_eq!(dec["Parameter"]["Type"], "SecureString");
    let enc = s.json(&format!("{get}?name={}", percent(&secure))).await;
    assert_ne!(
        enc["Parameter"]["Value"], "s3cret-param",
        "not decrypted unless asked"
    );

    let (status, body) = s.get(&format!("{get}?name={base}/missing")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"__type\":\"ParameterNotFound\""), "{body}");
    for (q, words) in [
        ("version=1", "missing parameter name"),
        ("name=a&version=1&label=x", "both"),
        ("name=a&version=x", "invalid version"),
        ("name=a&withDecryption=maybe", "invalid withDecryption"),
        ("name=a&secretId=b", "unknown parameter: secretId"),
    ] {
        let (status, body) = s.get(&format!("{get}?{q}")).await;
        assert_eq!(status, 400, "{q}");
        assert!(body.contains(words), "{q}: {body}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_the_agents_status_codes() {
    let Some(ep) = emulator("serve refusals") else {
        return;
    };
    let (name, _, _) = two_versions(&ep).await;
    let s = start(&ep, "", "").await;
    let url = s.url(&format!("/secretsmanager/get?secretId={name}"));
    let http = &s.http;
    let send = |rb: reqwest::RequestBuilder| async move {
        let r = rb.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(send(http.get(&url)).await, (403, "Bad Token".into()));
    assert_eq!(
        send(
            http.get(&url)
                .header("X-Aws-Parameters-Secrets-Token", "wrong")
        )
        .await,
        (403, "Bad Token".into())
    );
    let ok = send(http.get(&url).header("X-Vault-Token", token())).await;
    assert_eq!(ok.0, 200, "X-Vault-Token is accepted too");
    assert!(ok.1.contains("second-value"));
    assert_eq!(
        send(
            http.get(&url)
                .header("X-Aws-Parameters-Secrets-Token", token())
                .header("X-Forwarded-For", "10.0.0.1")
        )
        .await,
        (400, "Forwarded".into())
    );
    assert_eq!(
        send(
            http.post(&url)
                .header("X-Aws-Parameters-Secrets-Token", token())
        )
        .await,
        (405, "Not allowed".into())
    );
    assert_eq!(
        send(http.get(s.url("/metrics"))).await.0,
        403,
        "metrics need the token"
    );
    assert_eq!(
        send(http.get(s.url("/ping"))).await,
        (200, "healthy".into())
    );
    for (path, status, body) in [
        (
            format!("/secretsmanager/get?secretId={name}&foo=1"),
            400,
            "unknown parameter: foo",
        ),
        (
            "/secretsmanager/get?versionStage=AWSCURRENT".into(),
            400,
            "missing parameter secretId",
        ),
        ("/v1/".into(), 400, "missing secret ID"),
        (
            format!("/v1/{name}?refreshNow=perhaps"),
            400,
            "invalid refreshNow value",
        ),
        ("/nowhere".into(), 404, "Not found"),
    ] {
        assert_eq!(s.get(&path).await, (status, body.to_string()), "{path}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_conn_is_429() {
    let Some(ep) = emulator("serve max_conn") else {
        return;
    };
    let s = start(&ep, "max_conn = 2", "").await;
    // Two idle keep-alive connections of a token holder use up the limit.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(
            format!(
                "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {}\r\n\r\n",
                token()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    let (status, body) = s.get("/secretsmanager/get?secretId=x").await;
    assert_eq!((status, body.as_str()), (429, "Connection limit exceeded"));
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = reqwest::Client::new();
    let r = fresh
        .get(s.url("/secretsmanager/get?secretId=x"))
        .header("X-Aws-Parameters-Secrets-Token", token())
        .send()
        .await
        .unwrap();
    assert_ne!(r.status().as_u16(), 429, "room again once they close");
    s.stop().await;
}

/// `max_headers` holds whether it is below hyper's own cap of 100 (checked by the router)
/// or above it (handed to hyper): one header line more is 431, the limit itself is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_headers_than_max_headers_is_431() {
    let Some(ep) = emulator("serve max_headers") else {
        return;
    };
    for limit in [16usize, 150] {
        let s = start(&ep, "", &format!("max_headers = {limit}")).await;
        let send = |extra: usize| {
            let mut r = s
                .http
                .get(s.url("/ping"))
                .header("X-Aws-Parameters-Secrets-Token", token());
            for i in 0..extra {
                r = r.header(format!("x-extra-{i}"), "1");
            }
            async move { r.send().await.map(|r| r.status().as_u16()) }
        };
        // reqwest adds `accept` and `host`; with the token that is three lines.
        assert_eq!(send(limit - 3).await.unwrap(), 200, "{limit}");
        assert_eq!(send(limit - 2).await.unwrap(), 431, "{limit}");
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_huge_clients_do_not_hurt_others() {
    let Some(ep) = emulator("serve slow clients") else {
        return;
    };
    let (name, _, _) = two_versions(&ep).await;
    let s = start(&ep, "", "header_read_timeout_seconds = 1").await;
    let path = format!("/v1/{name}");
    assert_eq!(s.json(&path).await["SecretString"], "second-value");

    // Never finishes its headers: dropped after the header timeout.
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();

    // Sends a 100 MB body with a POST.
    let addr = s.addr;
    let huge = tokio::spawn(async move {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /secretsmanager/get?secretId=x HTTP/1.1\r\nHost: x\r\nX-Aws-Parameters-Secrets-Token: {}\r\nContent-Length: {}\r\n\r\n",
            token(),
            100 * 1024 * 1024
        );
        c.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'a'; 1024 * 1024];
        let mut sent = 0usize;
        for _ in 0..100 {
            if c.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut answer)).await;
        (sent, String::from_utf8_lossy(&answer).into_owned())
    });

    // Meanwhile others are answered promptly.
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(s.json(&path).await["SecretString"], "second-value");
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
    let (_, answer) = huge.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer:.80}");

    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the slow client is disconnected");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_makes_the_first_read_a_hit_and_unreachable_is_502() {
    let Some(ep) = emulator("serve prefetch") else {
        return;
    };
    let (name, _, _) = two_versions(&ep).await;
    let s = start(&ep, "", &format!("prefetch_secrets = [\"{name}\"]")).await;
    assert_eq!(
        s.json(&format!("/v1/{name}")).await["SecretString"],
        "second-value"
    );
    let (_, m) = s.get("/metrics").await;
    assert!(
        m.contains("lockbox_serve_cache_hits_total{service=\"secretsmanager\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("lockbox_serve_cache_misses_total{service=\"secretsmanager\"} 1"),
        "{m}"
    );
    s.stop().await;

    let down = start("http://127.0.0.1:1", "", "").await;
    let (status, body) = down.get("/v1/anything").await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body,
        "{\"__type\":\"ConnectionError\", \"message\":\"Read Error\"}"
    );
    down.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_without_a_token() {
    let Some(ep) = emulator("serve no token") else {
        return;
    };
    let c = ServeConfig::from_toml(
        "validate_credentials = false\nssrf_env_variables = [\"LOCKBOX_SERVE_IT_SURELY_UNSET\"]\n[lockbox]\nlisten = \"127.0.0.1:0\"",
    )
    .unwrap();
    let sdk = lockbox_testkit::aws::sdk_config(&ep, Duration::from_secs(5));
    let e = Server::start_with_sdk(c, &sdk)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("no SSRF token") && e.contains("LOCKBOX_SERVE_IT_SURELY_UNSET"),
        "{e}"
    );
}

/// A TCP forwarder to the emulator that can be cut: AWS "going away" for this server only.
async fn forwarder(target: &str) -> (String, tokio::task::JoinHandle<()>) {
    let target = target
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            conns.spawn(async move {
                if let Ok(mut out) = TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_values_are_served_while_aws_is_unreachable_only_with_ignore_transient_errors() {
    let Some(ep) = emulator("serve stale") else {
        return;
    };
    let (name, _, _) = two_versions(&ep).await;
    let path = format!("/v1/{name}");
    for ignore in [true, false] {
        let (via, cut) = forwarder(&ep).await;
        let s = start(
            &via,
            &format!("ttl_seconds = 1\nignore_transient_errors = {ignore}"),
            "",
        )
        .await;
        assert_eq!(s.json(&path).await["SecretString"], "second-value");
        cut.abort();
        let _ = cut.await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let (status, body) = s.get(&path).await;
        if ignore {
            assert_eq!(status, 200, "{body}");
            assert!(body.contains("second-value"));
            let (_, m) = s.get("/metrics").await;
            assert!(
                m.contains("lockbox_serve_stale_served_total{service=\"secretsmanager\"} 1"),
                "{m}"
            );
        } else {
            assert_eq!(status, 502, "{body}");
            assert!(body.contains("ConnectionError"), "{body}");
        }
        s.stop().await;
    }
}

/// A sealed-store config: `manifest` names the secrets, the store lives in `dir`.
fn offline_keys(dir: &std::path::Path, manifest: &serde_json::Value, extra: &str) -> String {
    let path = dir.join("manifest.json");
    std::fs::write(&path, manifest.to_string()).unwrap();
    format!(
        "manifest = \"{}\"\nstore = \"{}\"\nsync_interval_seconds = 0\n{extra}",
        path.display(),
        dir.join("store").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_fallback_answers_from_the_sealed_store_but_never_a_deleted_secret() {
    let Some(ep) = emulator("serve offline") else {
        return;
    };
    let (name, v1, v2) = two_versions(&ep).await;
    let binary = prefix("serve-offline-bin");
    let doomed = prefix("serve-offline-doomed");
    let c = sm(&ep);
    c.create_secret()
        .name(&binary)
        .secret_binary(Blob::new(vec![0u8, 1, 254, 255]))
        .send()
        .await
        .unwrap();
    c.create_secret()
        .name(&doomed)
        .secret_string("doomed-value")
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = serde_json::json!({"cloudSecrets": [
        {"arn": name, "labels": ["AWSPREVIOUS"]},
        {"arn": binary},
        {"arn": doomed},
    ]});
    // No cache, so every read asks the cloud first.
    let keys = offline_keys(dir.path(), &manifest, "");
    let (via, cut) = forwarder(&ep).await;
    let s = start(&via, "ttl_seconds = 0", &keys).await;
    assert!(dir.path().join("store/secrets.sealed").exists());
    let online = s
        .json(&format!("/secretsmanager/get?secretId={name}"))
        .await;
    assert_eq!(online["SecretString"], "second-value");

    // Deleted in the cloud (scheduled for deletion): the cloud's answer, not the store's copy.
    c.delete_secret().secret_id(&doomed).send().await.unwrap();
    let (status, gone) = s.get(&format!("/v1/{doomed}")).await;
    assert_ne!(status, 200, "{gone}");
    assert!(
        gone.contains("InvalidRequestException") && gone.contains("delet"),
        "{gone}"
    );
    assert!(!gone.contains("doomed-value"), "{gone}");

    // The cloud goes away: reads keep working from the store, with the agent's JSON.
    cut.abort();
    let _ = cut.await;
    for path in [
        format!("/secretsmanager/get?secretId={name}"),
        format!("/v1/{name}"),
        format!("/v1/{}", online["ARN"].as_str().unwrap()),
    ] {
        let j = s.json(&path).await;
        for k in ["ARN", "Name", "VersionId", "SecretString"] {
            assert_eq!(j[k], online[k], "{path}: {k}");
        }
        assert_eq!(j["VersionId"], v2.as_str());
        let stages = j["VersionStages"].as_array().unwrap();
        assert!(stages.contains(&"AWSCURRENT".into()), "{j}");
        let created = j["CreatedDate"].as_str().unwrap().parse::<f64>().unwrap();
        let online_created = online["CreatedDate"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap();
        assert!((created - online_created).abs() < 1.0, "{j}");
    }
    let prev = s
        .json(&format!("/v1/{name}?versionStage=AWSPREVIOUS"))
        .await;
    assert_eq!(prev["SecretString"], "first-value");
    assert_eq!(prev["VersionId"], v1.as_str());
    let by_id = s.json(&format!("/v1/{name}?versionId={v1}")).await;
    assert_eq!(by_id["SecretString"], "first-value");
    let bin = s.json(&format!("/v1/{binary}")).await;
    assert_eq!(bin["SecretBinary"], "AAH+/w==");
    assert!(bin.get("SecretString").is_none(), "{bin}");
    // The deleted secret stays deleted, offline too: the cloud's last answer.
    let (status2, gone2) = s.get(&format!("/v1/{doomed}")).await;
    assert_eq!((status2, gone2.as_str()), (status, gone.as_str()));
    // Not in the store: the cloud's error (unreachable).
    let (status, body) = s.get(&format!("/v1/{name}-not-synced")).await;
    assert_eq!(status, 502, "{body}");
    let (_, m) = s.get("/metrics").await;
    assert_eq!(metric(&m, "lockbox_serve_fallback_served_total"), 6, "{m}");
    assert_eq!(
        metric(&m, "lockbox_serve_store_syncs_total{result=\"ok\"}"),
        1,
        "{m}"
    );
    s.stop().await;

    // Restarted while the cloud is away: the start sync fails, a warning only; the store
    // answers.
    let s = start("http://127.0.0.1:1", "ttl_seconds = 0", &keys).await;
    assert_eq!(
        s.json(&format!("/v1/{name}")).await["SecretString"],
        "second-value"
    );
    let (_, m) = s.get("/metrics").await;
    assert_eq!(
        metric(&m, "lockbox_serve_store_syncs_total{result=\"failed\"}"),
        1,
        "{m}"
    );
    s.stop().await;

    // Without a store yet, a failed first sync is fatal.
    let empty = tempfile::tempdir().unwrap();
    let keys = offline_keys(empty.path(), &manifest, "");
    let sdk = lockbox_testkit::aws::sdk_config("http://127.0.0.1:1", Duration::from_secs(5));
    let e = Server::start_with_sdk(config("", &keys), &sdk)
        .await
        .err()
        .expect("no store and no cloud: refused")
        .to_string();
    assert!(e.contains("first sync"), "{e}");
}

/// The one 403 body every denial has (issue 23 item 3): the id asked, nothing else.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_read_only_their_resources() {
    let Some(ep) = emulator("serve consumers") else {
        return;
    };
    let c = sm(&ep);
    let [billing, metrics, local] =
        ["billing", "metrics", "local"].map(|n| prefix(&format!("serve-{n}")));
    for name in [&billing, &metrics, &local] {
        c.create_secret()
            .name(name)
            .secret_string(format!("{name}-value"))
            .send()
            .await
            .unwrap();
    }
    let arn_of_local = c
        .describe_secret()
        .secret_id(&local)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A v1 resource definition for two of them (resource ids), a v2 entry would do the same.
    let manifest = serde_json::json!({"Resources": [
        {"Id": "billing-db", "Name": "BillingDb", "ResourceDataContainer": {
            "SecretsManagerSecretResourceData": {"ARN": billing}}},
        {"Id": "metrics-api", "Name": "MetricsApi", "ResourceDataContainer": {
            "SecretsManagerSecretResourceData": {"ARN": metrics}}},
        {"Id": "local-key", "Name": "LocalKey", "ResourceDataContainer": {
            "SecretsManagerSecretResourceData": {"ARN": arn_of_local}}},
    ]});
    let (billing_token, metrics_token) = (
        "billing-token-0123456789abcdef",
        "metrics-token-0123456789abcdef",
    );
    let consumers = dir.path().join("consumers.json");
    std::fs::write(
        &consumers,
        serde_json::json!({"Consumers": [
            {"Name": "billing", "Token": billing_token,
             "ResourceAccessPolicies": [{"ResourceId": "billing-db", "Permission": "ro"}]},
            {"Name": "metrics", "Token": metrics_token,
             "ResourceAccessPolicies": [{"ResourceId": "metrics-api", "Permission": "ro"}]},
            {"Name": "local", "Uid": own_uid(),
             "ResourceAccessPolicies": [{"ResourceId": "local-key", "Permission": "ro"}]},
        ]})
        .to_string(),
    )
    .unwrap();
    std::fs::set_permissions(
        &consumers,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let keys = offline_keys(
        dir.path(),
        &manifest,
        &format!("consumers = \"{}\"", consumers.display()),
    );
    let s = start(&ep, "", &keys).await;

    // Each consumer reads its own resource, by name or by resource id...
    let (status, body) = s.get_as(&format!("/v1/{billing}"), billing_token).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("{billing}-value")));
    let (status, body) = s
        .get_as("/secretsmanager/get?secretId=metrics-api", metrics_token)
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("{metrics}-value")));
    // ...and gets the one 403, naming only the id asked, never not-found.
    let (status, body) = s.get_as(&format!("/v1/{metrics}"), billing_token).await;
    assert_eq!((status, body), (403, denial(&metrics)));
    let (status, body) = s.get_as(&format!("/v1/{billing}"), metrics_token).await;
    assert_eq!((status, body), (403, denial(&billing)));
    // A secret outside the store is nobody's resource: the same 403, not a cloud read.
    let other = format!("{billing}-other");
    let (status, body) = s.get_as(&format!("/v1/{other}"), billing_token).await;
    assert_eq!((status, body), (403, denial(&other)));
    // An unknown token: 403.
    let (status, body) = s
        .get_as(&format!("/v1/{billing}"), "nobody-0123456789abcdef")
        .await;
    assert_eq!((status, body.as_str()), (403, "Bad Token"));
    // The SSRF token: identified by this process's uid (from /proc/net/tcp) as `local`.
    let (status, body) = s.get(&format!("/v1/{local}")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.get(&format!("/v1/{billing}")).await;
    assert_eq!((status, body), (403, denial(&billing)));
    // Asked by resource id or ARN: the answer names that id, never the resource behind it.
    let (status, body) = s.get("/v1/billing-db").await;
    assert_eq!((status, body), (403, denial("billing-db")));
    // SSM parameters are no consumer's resource.
    let (status, _) = s
        .get_as("/systemsmanager/parameters/get?name=/x", billing_token)
        .await;
    assert_eq!(status, 403);
    // /metrics takes the SSRF token, not a consumer's.
    assert_eq!(s.get_as("/metrics", billing_token).await.0, 403);
    assert_eq!(s.get("/metrics").await.0, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_is_batched_and_the_first_reads_are_hits() {
    let Some(ep) = emulator("serve batched prefetch") else {
        return;
    };
    let base = prefix("serve-batch");
    let c = sm(&ep);
    let secrets: Vec<String> = (0..3).map(|i| format!("{base}-s{i}")).collect();
    for name in &secrets {
        c.create_secret()
            .name(name)
            .secret_string(format!("{name}-value"))
            .send()
            .await
            .unwrap();
    }
    let p = ssm(&ep);
    let params: Vec<String> = (0..12).map(|i| format!("/{base}/p{i}")).collect();
    for name in &params {
        p.put_parameter()
            .name(name)
            .value(format!("{name}-value"))
            .r#type(ParameterType::SecureString)
            .send()
            .await
            .unwrap();
    }
    let list = |v: &[String]| {
        v.iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let s = start(
        &ep,
        "",
        &format!(
            "prefetch_secrets = [{}]\nprefetch_parameters = [{}]",
            list(&secrets),
            list(&params)
        ),
    )
    .await;
    let (_, m) = s.get("/metrics").await;
    // One BatchGetSecretValue, two GetParameters (10 + 2).
    assert_eq!(metric(&m, "lockbox_serve_backend_calls_total"), 3, "{m}");
    for name in &secrets {
        let j = s.json(&format!("/v1/{name}")).await;
        assert_eq!(j["SecretString"], format!("{name}-value"));
        assert!(
            j["VersionStages"]
                .as_array()
                .unwrap()
                .contains(&"AWSCURRENT".into())
        );
    }
    for name in &params {
        let j = s
            .json(&format!(
                "/systemsmanager/parameters/get?name={name}&withDecryption=true"
            ))
            .await;
        assert_eq!(j["Parameter"]["Value"], format!("{name}-value"));
        assert_eq!(j["Parameter"]["Name"], name.as_str());
    }
    let (_, m) = s.get("/metrics").await;
    assert_eq!(metric(&m, "lockbox_serve_backend_calls_total"), 3, "{m}");
    assert_eq!(
        metric(
            &m,
            "lockbox_serve_cache_hits_total{service=\"secretsmanager\"}"
        ),
        3,
        "{m}"
    );
    assert_eq!(
        metric(&m, "lockbox_serve_cache_hits_total{service=\"ssm\"}"),
        12,
        "{m}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_file_path_signs_with_the_files_keys_and_a_missing_file_still_starts() {
    let Some(ep) = emulator("serve credentials_file_path") else {
        return;
    };
    let name = prefix("serve-credfile");
    sm(&ep)
        .create_secret()
        .name(&name)
        .secret_string("from-file-creds")
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        "[default]\naws_access_key_id=AKIDFILE\naws_secret_access_key=file-secret\n",
    )
    .unwrap();
    let with = |path: &std::path::Path| {
        config(
            &format!(
                "region = \"us-east-1\"\ncredentials_file_path = \"{}\"",
                path.display()
            ),
            &format!("endpoint_url = \"{ep}\""),
        )
    };
    // Server::start builds the SDK itself, with the file's credentials.
    let start_own =
        |config: ServeConfig| async move { running(Server::start(config).await.unwrap()) };
    let s = start_own(with(&file)).await;
    let j = s.json(&format!("/v1/{name}")).await;
    assert_eq!(j["SecretString"], "from-file-creds");
    s.stop().await;
    // No file: serve starts, and reads answer InternalFailure (as the agent) until one appears.
    let s = start_own(with(&dir.path().join("missing"))).await;
    let (status, body) = s.get_as(&format!("/v1/{name}"), &token()).await;
    assert_ne!(status, 200, "{body}");
    assert!(body.contains("InternalFailure"), "{body}");
    assert!(!body.contains("from-file-creds"));
    s.stop().await;
}
