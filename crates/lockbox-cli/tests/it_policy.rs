//! `lockbox policy` under moto's IAM enforcement, on a PRIVATE moto server.
//!
//! Turning on enforcement (`/moto-api/reset-auth`) is global to a server, so these tests never
//! touch the shared emulator other tests run against: each starts its own moto server from the
//! executable named by `LOCKBOX_IT_MOTO_SERVER` (skipped with a note when unset), creates IAM
//! users holding a generated policy, turns enforcement on and runs `lockbox` as those users.
//!
//! moto authorises SSM and Secrets Manager calls against the resource `*`: it checks actions
//! but cannot match resource ARNs (a policy scoped to ARNs is denied everything there). So the
//! users hold the generated statements with their actions exactly as generated and `Resource`
//! set to `*`; the resources are checked by lockbox-policy's unit and property tests.
//!
//! Run by hand:
//! `python3 -m venv /tmp/pol-venv && /tmp/pol-venv/bin/pip install -q 'moto[server]==5.2.5'`
//! then `LOCKBOX_IT_MOTO_SERVER=/tmp/pol-venv/bin/moto_server cargo test -p lockbox-cli --test it_policy`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lockbox_testkit::cli::{stderr, workspace_root};
use lockbox_testkit::moto::{self, PrivateMoto, free_port};

use lockbox_testkit::cli::output_of_init;
use lockbox_testkit::tag;
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012"; // moto's default account
const REGION: &str = "us-east-1";

fn moto_executable(test: &str) -> Option<PathBuf> {
    moto::executable(
        test,
        "These tests need a private moto server because they turn on IAM enforcement.",
    )
}

/// A private moto server on 127.0.0.1 with IAM calls; killed when dropped.
struct MotoServer(PrivateMoto);

impl MotoServer {
    fn start(exe: &Path) -> MotoServer {
        let probe =
            |m: &PrivateMoto| matches!(try_iam(m.port(), &[("Action", "ListUsers")]), Ok((200, _)));
        MotoServer(PrivateMoto::start(exe, &[], probe))
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.0.port())
    }

    fn iam(&self, params: &[(&str, &str)]) -> String {
        let (status, body) = try_iam(self.0.port(), params).unwrap();
        assert_eq!(status, 200, "IAM {params:?}: {body}");
        body
    }

    /// A user holding exactly `policy` inline, and its access key (id, secret).
    fn user_with_policy(&self, user: &str, policy: &Value) -> (String, String) {
        self.iam(&[("Action", "CreateUser"), ("UserName", user)]);
        let key = self.iam(&[("Action", "CreateAccessKey"), ("UserName", user)]);
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", user),
            ("PolicyName", "lockbox"),
            ("PolicyDocument", &policy.to_string()),
        ]);
        (
            xml_text(&key, "AccessKeyId"),
            xml_text(&key, "SecretAccessKey"),
        )
    }

    /// A Secrets Manager secret, created before enforcement is on; returns its ARN.
    fn create_secret(&self, name: &str, value: &str) -> String {
        let body = json!({"Name": name, "SecretString": value}).to_string();
        let (status, answer) = http(
            self.0.port(),
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "secretsmanager.CreateSecret"),
                ("Authorization", &authorization("secretsmanager")),
            ],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(status, 200, "CreateSecret {name}: {answer}");
        let v: Value = serde_json::from_str(&answer).unwrap();
        v["ARN"].as_str().unwrap().to_owned()
    }

    /// An SSM String parameter, created before enforcement is on.
    fn put_parameter(&self, name: &str, value: &str) {
        let body = json!({"Name": name, "Value": value, "Type": "String"}).to_string();
        let (status, answer) = http(
            self.0.port(),
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Target", "AmazonSSM.PutParameter"),
                ("Authorization", &authorization("ssm")),
            ],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(status, 200, "PutParameter {name}: {answer}");
    }

    /// Turns IAM enforcement on: every later call is checked.
    fn enforce(&self) {
        let (status, body) = http(
            self.0.port(),
            "POST",
            "/moto-api/reset-auth",
            &[("Content-Type", "text/plain")],
            b"0",
        )
        .unwrap();
        assert_eq!(status, 200, "reset-auth: {body}");
    }
}

/// One IAM query-API call (moto accepts any signature; the credential scope names the
/// service).
fn try_iam(port: u16, params: &[(&str, &str)]) -> std::io::Result<(u16, String)> {
    let mut body = String::from("Version=2010-05-08");
    for (k, v) in params {
        body.push('&');
        body.push_str(&form_encode(k));
        body.push('=');
        body.push_str(&form_encode(v));
    }
    http(
        port,
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &authorization("iam")),
        ],
        body.as_bytes(),
    )
}

fn authorization(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=test/20250101/{REGION}/{service}/aws4_request, \
         SignedHeaders=host, Signature=0000"
    )
}

fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn xml_text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>")).unwrap();
    xml[start..end].to_owned()
}

/// A minimal HTTP/1.1 exchange (`Connection: close`); returns status and body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_owned()
        },
    ))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Runs `lockbox`; `creds` are the access key to act as (none: the caller's environment minus
/// AWS settings, for commands that make no AWS call).
fn lockbox(args: &[&str], creds: Option<&(String, String)>) -> Output {
    lockbox_with(args, creds, &[])
}

fn lockbox_with(args: &[&str], creds: Option<&(String, String)>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockbox"));
    cmd.current_dir(workspace_root())
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ACCOUNT_ID")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", REGION)
        .stdin(Stdio::null());
    match creds {
        Some((id, secret)) => cmd
            .env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret),
        None => cmd
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test"),
    };
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Asserts a failure with exit 1 and a permission error that names `action`.
fn denied(o: &Output, action: &str) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected a failure; stderr: {err}"
    );
    assert!(
        err.contains("permission denied") && err.contains(action),
        "expected a permission error naming {action}; stderr: {err}"
    );
}

/// `lockbox policy ARGS` as JSON.
fn generated(args: &[&str]) -> Value {
    let mut all = vec!["policy", "--account", ACCOUNT];
    all.extend_from_slice(args);
    ok(&lockbox(&all, None))
}

/// The generated statements as moto can enforce them: actions exactly as generated (less
/// `remove`), `Resource` `*`, no condition. Asserts `remove` was there to remove.
fn actions_only(policy: &Value, remove: Option<&str>) -> Value {
    let mut policy = policy.clone();
    let mut removed = false;
    for st in policy["Statement"].as_array_mut().unwrap() {
        let st = st.as_object_mut().unwrap();
        st.insert("Resource".into(), json!("*"));
        st.remove("Condition");
        let actions = st["Action"].as_array_mut().unwrap();
        let before = actions.len();
        actions.retain(|a| Some(a.as_str().unwrap()) != remove);
        removed |= actions.len() != before;
    }
    if let Some(action) = remove {
        assert!(removed, "{action} is not in the generated policy");
    }
    policy["Statement"]
        .as_array_mut()
        .unwrap()
        .retain(|st| !st["Action"].as_array().unwrap().is_empty());
    policy
}

fn actions(policy: &Value) -> Vec<String> {
    let mut all: Vec<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    all.sort();
    all
}

fn write_config(dir: &Path, file: &str, config: Value) -> String {
    let path = dir.join(file);
    std::fs::write(&path, config.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn it_policy_ssm_generated_actions_are_enough_and_each_one_counts() {
    let Some(exe) =
        moto_executable("it_policy_ssm_generated_actions_are_enough_and_each_one_counts")
    else {
        return;
    };
    let moto = MotoServer::start(&exe);
    let tmp = tempfile::tempdir().unwrap();
    let path = format!("/lockbox-it/policy-{}", tag());
    let config = |name: &str| {
        write_config(
            tmp.path(),
            &format!("{name}.json"),
            json!({"type": "aws-ssm", "name": name, "server_url": moto.endpoint(),
                   "extra": {"region": REGION, "ssm-parameter-path": path}}),
        )
    };
    let (node1, node2, node3) = (config("node1"), config("node2"), config("node3"));

    let read_write = generated(&["--config", &node1]);
    let read_only = generated(&["--config", &node1, "--read-only"]);
    // That these are exactly lockbox_ssm::ACTIONS (or its reads) is pinned by lockbox-policy's
    // tests; here they meet the emulator.
    assert!(
        actions(&read_only)
            .iter()
            .all(|a| actions(&read_write).contains(a))
    );
    let rw = moto.user_with_policy("rw", &actions_only(&read_write, None));
    let ro = moto.user_with_policy("ro", &actions_only(&read_only, None));
    let no_put = moto.user_with_policy(
        "no-put",
        &actions_only(&read_write, Some("ssm:PutParameter")),
    );
    let no_get = moto.user_with_policy(
        "no-get",
        &actions_only(&read_write, Some("ssm:GetParameter")),
    );
    moto.enforce();

    // The generated actions are enough for init and output.
    let init = ok(&lockbox(&["init", "--config", &node1, "--json"], Some(&rw)));
    let output = ok(&lockbox(
        &["output", "--config", &node1, "--json"],
        Some(&rw),
    ));
    assert_eq!(output_of_init(&init), output);
    // Read-only is enough for output, not for init.
    let output = ok(&lockbox(
        &["output", "--config", &node1, "--json"],
        Some(&ro),
    ));
    assert_eq!(output_of_init(&init), output);
    denied(
        &lockbox(&["init", "--config", &node2, "--json"], Some(&ro)),
        "ssm:PutParameter",
    );
    // One action less and the command that needs it fails, naming it.
    denied(
        &lockbox(&["init", "--config", &node3], Some(&no_put)),
        "ssm:PutParameter",
    );
    denied(
        &lockbox(&["output", "--config", &node1], Some(&no_get)),
        "ssm:GetParameter",
    );
    // Enforcement is really on: unknown credentials are refused.
    let o = lockbox(&["output", "--config", &node1], None);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
}

#[test]
fn it_policy_secretsmanager_generated_actions_are_enough_and_each_one_counts() {
    let Some(exe) = moto_executable(
        "it_policy_secretsmanager_generated_actions_are_enough_and_each_one_counts",
    ) else {
        return;
    };
    let moto = MotoServer::start(&exe);
    let tmp = tempfile::tempdir().unwrap();
    let path = format!("lockbox-it/policy-{}", tag());
    let config = |name: &str| {
        write_config(
            tmp.path(),
            &format!("{name}.json"),
            json!({"type": "aws-secretsmanager", "name": name, "server_url": moto.endpoint(),
                   "extra": {"region": REGION, "secrets-manager-path": path}}),
        )
    };
    let (node1, node2, node3) = (config("node1"), config("node2"), config("node3"));

    let read_write = generated(&["--config", &node1]);
    let read_only = generated(&["--config", &node1, "--read-only"]);
    let rw = moto.user_with_policy("rw", &actions_only(&read_write, None));
    let ro = moto.user_with_policy("ro", &actions_only(&read_only, None));
    let no_create = moto.user_with_policy(
        "no-create",
        &actions_only(&read_write, Some("secretsmanager:CreateSecret")),
    );
    let no_get = moto.user_with_policy(
        "no-get",
        &actions_only(&read_write, Some("secretsmanager:GetSecretValue")),
    );
    moto.enforce();

    let init = ok(&lockbox(&["init", "--config", &node1, "--json"], Some(&rw)));
    let output = ok(&lockbox(
        &["output", "--config", &node1, "--json"],
        Some(&rw),
    ));
    assert_eq!(output_of_init(&init), output);
    let output = ok(&lockbox(
        &["output", "--config", &node1, "--json"],
        Some(&ro),
    ));
    assert_eq!(output_of_init(&init), output);
    denied(
        &lockbox(&["init", "--config", &node2], Some(&ro)),
        "secretsmanager:CreateSecret",
    );
    denied(
        &lockbox(&["init", "--config", &node3], Some(&no_create)),
        "secretsmanager:CreateSecret",
    );
    denied(
        &lockbox(&["output", "--config", &node1], Some(&no_get)),
        "secretsmanager:GetSecretValue",
    );
}

#[test]
fn it_policy_sync_manifest_generated_actions_are_enough_and_each_one_counts() {
    let Some(exe) =
        moto_executable("it_policy_sync_manifest_generated_actions_are_enough_and_each_one_counts")
    else {
        return;
    };
    let moto = MotoServer::start(&exe);
    let tmp = tempfile::tempdir().unwrap();
    let prefix = format!("lockbox-it/policy-{}", tag());
    let by_name = format!("{prefix}/api-token");
    moto.create_secret(&by_name, "token-value");
    let arn = moto.create_secret(&format!("{prefix}/tls-key"), "key-value");
    let manifest = tmp.path().join("manifest.json");
    std::fs::write(
        &manifest,
        json!({"cloudSecrets": [{"arn": arn, "labels": []}, {"arn": by_name, "labels": []}]})
            .to_string(),
    )
    .unwrap();
    let manifest = manifest.to_str().unwrap();

    let policy = generated(&["--manifest", manifest, "--region", REGION]);
    assert_eq!(actions(&policy), ["secretsmanager:GetSecretValue"]);
    let resources = policy["Statement"][0]["Resource"].clone();
    assert_eq!(
        resources,
        json!([
            format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{by_name}-??????"),
            arn
        ])
    );
    let reader = moto.user_with_policy("reader", &actions_only(&policy, None));
    // A user with a policy that holds nothing the sync needs (a real, unrelated action).
    let nothing = moto.user_with_policy(
        "nothing",
        &json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["secretsmanager:DescribeSecret"], "Resource": "*"}]}),
    );
    moto.enforce();

    let endpoint = moto.endpoint();
    let store = tmp.path().join("store");
    let sync = |creds: &(String, String)| {
        lockbox(
            &[
                "sync",
                "--manifest",
                manifest,
                "--store",
                store.to_str().unwrap(),
                "--region",
                REGION,
                "--endpoint-url",
                &endpoint,
            ],
            Some(creds),
        )
    };
    let o = sync(&reader);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let read = lockbox(
        &[
            "read",
            "--store",
            store.to_str().unwrap(),
            "--secret-id",
            &by_name,
        ],
        None,
    );
    assert_eq!(read.status.code(), Some(0), "stderr: {}", stderr(&read));
    assert_eq!(read.stdout, b"token-value");
    denied(&sync(&nothing), "secretsmanager:GetSecretValue");
}

/// `lockbox serve` on a free port with `config` (TOML without `http_port`) as the IAM user
/// `creds`; killed when dropped.
struct Serve {
    child: Child,
    port: u16,
}

const SERVE_TOKEN: &str = "it-policy-serve-token";

impl Serve {
    fn start(dir: &Path, config: &str, creds: &(String, String)) -> Serve {
        let port = free_port();
        let path = dir.join(format!("serve-{port}.toml"));
        std::fs::write(&path, format!("http_port = {port}\n{config}")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockbox"));
        // The agent-style log file (./logs/) goes to the test's directory, not the crate's.
        cmd.args(["serve", "--config", path.to_str().unwrap()])
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_TOKEN", SERVE_TOKEN)
            .env("AWS_ACCESS_KEY_ID", &creds.0)
            .env("AWS_SECRET_ACCESS_KEY", &creds.1)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut serve = Serve {
            child: cmd.spawn().unwrap(),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("lockbox serve exited at start: {status}");
            }
            if let Ok((200, _)) = http(port, "GET", "/ping", &[], b"") {
                return serve;
            }
            assert!(
                Instant::now() < deadline,
                "lockbox serve did not answer /ping"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        http(
            self.port,
            "GET",
            path,
            &[("X-Aws-Parameters-Secrets-Token", SERVE_TOKEN)],
            b"",
        )
        .unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn it_policy_serve_generated_actions_are_enough_and_each_one_counts() {
    let Some(exe) =
        moto_executable("it_policy_serve_generated_actions_are_enough_and_each_one_counts")
    else {
        return;
    };
    let moto = MotoServer::start(&exe);
    let tmp = tempfile::tempdir().unwrap();
    let prefix = format!("lockbox-it/policy-{}", tag());
    let secret = format!("{prefix}/serve-secret");
    let parameter = format!("/{prefix}/serve-parameter");
    moto.create_secret(&secret, "secret-value");
    moto.put_parameter(&parameter, "parameter-value");
    // Read on request only (not prefetched): GetParameter.
    let on_request = format!("/{prefix}/serve-on-request");
    moto.put_parameter(&on_request, "on-request-value");
    // The prefetch lists are what the policy covers; serve also reads them at start.
    let config = format!(
        "validate_credentials = false\nregion = \"{REGION}\"\n\n[lockbox]\n\
         endpoint_url = \"{}\"\nprefetch_secrets = [\"{secret}\"]\n\
         prefetch_parameters = [\"{parameter}\"]\n",
        moto.endpoint()
    );
    let config_path = tmp.path().join("serve.toml");
    std::fs::write(&config_path, format!("http_port = 2773\n{config}")).unwrap();

    // The serve config's region is used for names.
    let policy = generated(&["--serve-config", config_path.to_str().unwrap()]);
    assert_eq!(
        actions(&policy),
        [
            "secretsmanager:GetSecretValue",
            "ssm:GetParameter",
            "ssm:GetParameters"
        ]
    );
    assert_eq!(
        policy["Statement"][0]["Resource"],
        json!([format!(
            "arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}-??????"
        )])
    );
    assert_eq!(
        policy["Statement"][1]["Resource"],
        json!([format!(
            "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{parameter}"
        )])
    );
    let reader = moto.user_with_policy("reader", &actions_only(&policy, None));
    let no_secret = moto.user_with_policy(
        "no-secret",
        &actions_only(&policy, Some("secretsmanager:GetSecretValue")),
    );
    let no_parameter = moto.user_with_policy(
        "no-parameter",
        &actions_only(&policy, Some("ssm:GetParameter")),
    );
    let no_parameters = moto.user_with_policy(
        "no-parameters",
        &actions_only(&policy, Some("ssm:GetParameters")),
    );
    moto.enforce();

    let secret_path = format!("/secretsmanager/get?secretId={secret}");
    let parameter_path = format!("/systemsmanager/parameters/get?name={parameter}");
    // The generated actions are enough for both services.
    let serve = Serve::start(tmp.path(), &config, &reader);
    let (status, body) = serve.get(&secret_path);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["SecretString"],
        "secret-value"
    );
    let (status, body) = serve.get(&parameter_path);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["Parameter"]["Value"],
        "parameter-value"
    );
    drop(serve);
    // One action less and the reads that need it fail, as a refusal (never an outage the
    // offline fallback would answer); the other service still answers.
    let serve = Serve::start(tmp.path(), &config, &no_secret);
    let (status, body) = serve.get(&secret_path);
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(body.contains("AccessDenied"), "{status} {body}");
    assert!(!body.contains("secret-value"), "{body}");
    assert_eq!(serve.get(&parameter_path).0, 200);
    drop(serve);
    // Without GetParameter a parameter read on request fails (the prefetched one came in
    // with GetParameters).
    let serve = Serve::start(tmp.path(), &config, &no_parameter);
    let (status, body) = serve.get(&format!("/systemsmanager/parameters/get?name={on_request}"));
    assert!(status >= 400, "{status} {body}");
    assert!(!body.contains("on-request-value"), "{body}");
    assert_eq!(serve.get(&secret_path).0, 200);
    drop(serve);
    // Without GetParameters the prefetch falls back to GetParameter: reads still answer.
    let serve = Serve::start(tmp.path(), &config, &no_parameters);
    let (status, body) = serve.get(&parameter_path);
    assert_eq!(status, 200, "{body}");
}

// Without an emulator: the command line itself.

#[test]
fn policy_serve_config_names_what_it_cannot_use() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let run = |args: &[&str]| {
        let mut all = vec!["policy", "--account", ACCOUNT];
        all.extend_from_slice(args);
        lockbox(&all, None)
    };
    let fails = |args: &[&str], message: &str| {
        let o = run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty());
    };
    let empty = write("empty.toml", "http_port = 2773\n");
    fails(
        &["--serve-config", &empty],
        "names no secrets or parameters",
    );
    let unknown = write("unknown.toml", "[lockbox]\nprefetch = [\"x\"]\n");
    fails(&["--serve-config", &unknown], "prefetch");
    let bad = write(
        "bad.toml",
        "region = \"us-east-1\"\n[lockbox]\nprefetch_parameters = [\"/a b\"]\n",
    );
    fails(
        &["--serve-config", &bad],
        "serve config prefetch_parameters[0]",
    );
    fails(
        &["--serve-config", "/nonexistent/serve.toml"],
        "/nonexistent/serve.toml",
    );
    // Parameters: kms:Decrypt is named on stderr, not granted.
    let good = write(
        "good.toml",
        "[lockbox]\nprefetch_parameters = [\"/app/url\"]\nprefetch_secrets = [\"app/db\"]\n",
    );
    let o = run(&["--serve-config", &good, "--region", "eu-west-1"]);
    let doc = ok(&o);
    assert!(
        stderr(&o).contains("left out kms:Decrypt"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        actions(&doc),
        [
            "secretsmanager:GetSecretValue",
            "ssm:GetParameter",
            "ssm:GetParameters"
        ]
    );
    assert!(doc.to_string().contains(&format!(
        "arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/app/url"
    )));
    // With a config: its statements and the serve config's, the config's region.
    let o = run(&[
        "--serve-config",
        &good,
        "--config",
        "fixtures/policies/inputs/configs/aws-ssm.json",
    ]);
    let doc = ok(&o);
    let sids: Vec<&str> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    assert!(sids.contains(&"SsmReadNodeParameters"), "{sids:?}");
    assert!(sids.contains(&"SsmReadServeParameters"), "{sids:?}");
    // The manifest serve syncs its offline store from: its secrets, one by one.
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gg/db-AbCdEf";
    let manifest = write(
        "manifest.json",
        &json!({"cloudSecrets": [{"arn": arn, "labels": ["AWSCURRENT"]}]}).to_string(),
    );
    let offline = write(
        "offline.toml",
        &format!(
            "[lockbox]\nmanifest = \"{manifest}\"\nstore = \"{}\"\n",
            tmp.path().join("store").display()
        ),
    );
    let o = run(&["--serve-config", &offline, "--region", "eu-west-1"]);
    let doc = ok(&o);
    assert_eq!(actions(&doc), ["secretsmanager:GetSecretValue"]);
    assert_eq!(doc["Statement"][0]["Resource"], json!([arn]));
    assert!(
        stderr(&o).contains("left out secretsmanager:BatchGetSecretValue"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn policy_prints_every_example_policy_byte_for_byte() {
    let root = workspace_root();
    let cases = std::fs::read_to_string(root.join("fixtures/policies/cases.txt")).unwrap();
    let mut checked = 0;
    for line in cases.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (output, args) = line.split_once(" = ").unwrap();
        let mut all = vec!["policy"];
        all.extend(args.split_whitespace());
        let o = lockbox(&all, None);
        assert_eq!(o.status.code(), Some(0), "{line}: {}", stderr(&o));
        let expected = std::fs::read(root.join("fixtures/policies").join(output.trim())).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&expected),
            "{output} is stale: run `cargo xtask gen-policy --update`"
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} cases");
}

#[test]
fn policy_reads_the_account_from_the_environment_and_names_bad_fields() {
    let config = "fixtures/policies/inputs/configs/aws-ssm.json";
    let from_env = lockbox_with(
        &["policy", "--config", config],
        None,
        &[("AWS_ACCOUNT_ID", "210987654321")],
    );
    let doc = ok(&from_env);
    assert!(
        doc.to_string()
            .contains(":210987654321:parameter/polygon-edge/nodes/node1/*")
    );

    let cases: [(&[&str], &str); 6] = [
        (
            &["--account", "12345"],
            "account: \"12345\" is not an AWS account id (12 digits)",
        ),
        (
            &["--account", ACCOUNT, "--region", "Mars"],
            "region: \"Mars\" is not an AWS region name",
        ),
        (
            &["--account", ACCOUNT, "--partition", "aws-cn"],
            "partition: aws-cn does not hold region \"us-east-1\"",
        ),
        (
            &[
                "--account",
                ACCOUNT,
                "--role-arn",
                "arn:aws:iam::123456789012:user/x",
            ],
            "role_arn: ",
        ),
        (
            &["--account", ACCOUNT, "--config", "/nonexistent/c.json"],
            "/nonexistent/c.json",
        ),
        (
            &["--account", ACCOUNT, "--manifest", "/nonexistent/m.json"],
            "/nonexistent/m.json",
        ),
    ];
    for (extra, message) in cases {
        let mut args = vec!["policy"];
        if !extra.contains(&"--config") && !extra.contains(&"--manifest") {
            args.extend(["--config", config]);
        }
        args.extend_from_slice(extra);
        let o = lockbox(&args, None);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty());
    }

    // --json errors are JSON too.
    let o = lockbox(
        &["policy", "--config", config, "--account", "x", "--json"],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert!(err["error"].as_str().unwrap().contains("account"), "{err}");

    // Usage errors: no source, no account, an unknown partition.
    for args in [
        vec!["policy", "--account", ACCOUNT],
        vec!["policy", "--config", config],
        vec![
            "policy",
            "--config",
            config,
            "--account",
            ACCOUNT,
            "--partition",
            "aws-mars",
        ],
    ] {
        let o = lockbox(&args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn policy_names_the_actions_it_cannot_scope() {
    let o = lockbox(
        &[
            "policy",
            "--config",
            "fixtures/policies/inputs/configs/aws-secretsmanager.json",
            "--account",
            ACCOUNT,
        ],
        None,
    );
    let doc = ok(&o);
    let err = stderr(&o);
    for action in [
        "secretsmanager:ListSecrets",
        "secretsmanager:BatchGetSecretValue",
    ] {
        assert!(err.contains(&format!("note: left out {action}")), "{err}");
        assert!(!doc.to_string().contains(action));
    }
    assert!(!doc.to_string().contains("\"*\""));
}
