//! `lockbox exec --watch=1s` against the emulator: a Secrets Manager rotation (PutSecretValue
//! moving AWSCURRENT) and an SSM parameter change each give the test child exactly one SIGHUP,
//! polls that find nothing new give none, and an emulator that stops answering (a TCP relay
//! in front of it is shut) keeps the child running while lockbox warns naming the source.

mod watch_child;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use lockbox_testkit::aws::{aws_sdk_secretsmanager, aws_sdk_ssm, setup_config};
use lockbox_testkit::{emulator, tag};
use watch_child::{Supervisor, lockbox};

/// A config of node `app` under a fresh path, served at `endpoint`.
fn config(dir: &Path, endpoint: &str, kind: &str, path: &str) -> String {
    let path_key = if kind == "aws-ssm" {
        "ssm-parameter-path"
    } else {
        "secrets-manager-path"
    };
    let cfg = dir.join(format!("{kind}.json"));
    std::fs::write(
        &cfg,
        serde_json::json!({
            "type": kind,
            "name": "app",
            "server_url": endpoint,
            "extra": { "region": "us-east-1", path_key: path },
        })
        .to_string(),
    )
    .unwrap();
    cfg.to_str().unwrap().to_owned()
}

fn put(cfg: &str, name: &str, value: &str) {
    let mut c = lockbox()
        .args(["put", "--config", cfg, name])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Runs the SIGHUP-per-change check; `change` makes one change outside lockbox.
async fn one_hup_per_change(kind: &str, change: impl AsyncFn(&str, &str)) {
    let test = format!("it_exec_watch_{kind}");
    let Some(endpoint) = emulator(&test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = format!("/lockbox-it/watch-{}", tag());
    let cfg = config(dir.path(), &endpoint, kind, &path);
    put(&cfg, "db/password", "one");
    put(&cfg, "db/user", "admin");
    let node = dir.path().join("unused");
    let s = Supervisor::start_on(
        dir,
        node,
        &["--config".to_owned(), cfg.clone()],
        &["--watch=1s"],
        "trap",
    );
    assert!(s.log().contains("PASSWORD=one"), "{}", s.log());
    s.wait_polls(2);
    assert_eq!(s.log().matches("sig HUP").count(), 0, "{}", s.log());
    change(&path, "two").await;
    s.wait_for("one SIGHUP", |log, _| log.contains("sig HUP"));
    s.wait_polls(2);
    assert_eq!(s.log().matches("sig HUP").count(), 1, "{}", s.log());
    change(&path, "three").await;
    s.wait_for("a second SIGHUP", |log, _| {
        log.matches("sig HUP").count() == 2
    });
    s.wait_polls(2);
    assert_eq!(s.log().matches("sig HUP").count(), 2, "{}", s.log());
    assert_eq!(s.log().matches("start ").count(), 1);
}

#[tokio::test]
async fn it_exec_watch_signals_once_per_secrets_manager_rotation() {
    one_hup_per_change("aws-secretsmanager", async |path: &str, value: &str| {
        let Some(endpoint) = emulator("rotation") else {
            return;
        };
        let raw = aws_sdk_secretsmanager::Client::new(&setup_config(&endpoint));
        // PutSecretValue without stages: the new version becomes AWSCURRENT.
        raw.put_secret_value()
            .secret_id(format!("{}/app/db/password", path.trim_start_matches('/')))
            .secret_string(value)
            .send()
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn it_exec_watch_signals_once_per_ssm_change() {
    one_hup_per_change("aws-ssm", async |path: &str, value: &str| {
        let Some(endpoint) = emulator("change") else {
            return;
        };
        let raw = aws_sdk_ssm::Client::new(&setup_config(&endpoint));
        raw.put_parameter()
            .name(format!("{path}/app/db/password"))
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    })
    .await;
}

/// chamber's command line with --watch: `lockbox exec --watch=1s SERVICE -- CHILD` reads the
/// service's SSM parameters `/SERVICE/KEY` and signals the child once when one changes.
#[tokio::test]
async fn it_exec_watch_follows_a_chamber_service() {
    let Some(endpoint) = emulator("it_exec_watch_follows_a_chamber_service") else {
        return;
    };
    let raw = aws_sdk_ssm::Client::new(&setup_config(&endpoint));
    let service = format!("watchsvc{}", tag());
    let put = async |value: &str| {
        raw.put_parameter()
            .name(format!("/{service}/password"))
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    };
    put("one").await;
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("unused");
    let s = Supervisor::start_with_env(
        dir,
        node,
        std::slice::from_ref(&service),
        &["--watch=1s"],
        "trap",
        &[
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("CHAMBER_SECRET_BACKEND", "ssm"),
        ],
    );
    assert!(s.log().contains("PASSWORD=one"), "{}", s.log());
    s.wait_polls(2);
    assert_eq!(s.log().matches("sig HUP").count(), 0, "{}", s.log());
    put("two").await;
    s.wait_for("one SIGHUP", |log, _| log.contains("sig HUP"));
    s.wait_polls(2);
    assert_eq!(s.log().matches("sig HUP").count(), 1, "{}", s.log());
    assert_eq!(s.log().matches("start ").count(), 1);
}

/// A TCP relay to `target` on a free port of 127.0.0.1 that [`Relay::stop`] closes for good
/// (new connections refused, open ones reset): the emulator as seen when it stops.
struct Relay {
    port: u16,
    stopped: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stopped = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, o) = (stopped.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if s.load(Ordering::SeqCst) {
                    return; // dropping the listener: later connections are refused
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut list = o.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay {
            port,
            stopped,
            open,
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[test]
fn it_exec_watch_keeps_the_child_running_while_the_emulator_is_gone() {
    let Some(endpoint) =
        emulator("it_exec_watch_keeps_the_child_running_while_the_emulator_is_gone")
    else {
        return;
    };
    let target = endpoint.trim_start_matches("http://").to_owned();
    let relay = Relay::start(target);
    let dir = tempfile::tempdir().unwrap();
    let path = format!("/lockbox-it/watch-gone-{}", tag());
    let cfg = config(
        dir.path(),
        &format!("http://127.0.0.1:{}", relay.port),
        "aws-ssm",
        &path,
    );
    put(&cfg, "db/password", "one");
    let node = dir.path().join("unused");
    let s = Supervisor::start_on(
        dir,
        node,
        &["--config".to_owned(), cfg.clone()],
        &["--watch=1s", "--max-stale=2s"],
        "trap",
    );
    relay.stop();
    s.wait_for("a warning naming the source", |_, err| {
        err.contains(&format!("config {cfg}")) && err.contains("keeping the values read before")
    });
    s.wait_for("--max-stale to pass", |_, err| {
        err.contains("older than --max-stale")
    });
    // Still the first child, never signalled, and lockbox still runs.
    assert_eq!(s.log().matches("start ").count(), 1, "{}", s.log());
    assert!(!s.log().contains("sig "), "{}", s.log());
    assert!(!s.err().contains("one\n"), "{}", s.err());
}
