//! Issue 23 item 1, "no token, no resources": the attacks of a local process that holds,
//! reopens, pipelines or does not read connections, each a test that failed before the fix.
//! Small limits and timeouts keep them fast; each waits for a condition, never for a time.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Running, metric, request, start, token};
use lockbox_testkit::aws::aws_sdk_secretsmanager;
use lockbox_testkit::{emulator, prefix};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// No AWS is read by these tests' requests.
const NO_AWS: &str = "http://127.0.0.1:9";

/// Polls `ok` every 50 ms until it holds or `within` passes.
async fn eventually(within: Duration, mut ok: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if ok().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection whose client takes almost nothing of what it is sent (a 4 KiB receive
/// buffer), as a client that never reads fills it at once.
async fn non_reader(s: &Running) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(s.addr).await.unwrap()
}

/// Sends `bursts` writes of `n` pipelined requests `one` on `c`, 10 ms apart (in the
/// background: a write may block once the server stops reading), and keeps the connection
/// open, never reading.
fn pipeline(
    c: TcpStream,
    one: String,
    bursts: usize,
    n: usize,
) -> tokio::task::JoinHandle<TcpStream> {
    let burst = one.repeat(n);
    tokio::spawn(async move {
        let mut c = c;
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            for _ in 0..bursts {
                if c.write_all(burst.as_bytes()).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        c
    })
}

/// 80 sockets without the token, reconnecting as soon as they are closed: half send a
/// token-less read of `path` and then hold the connection, half only hold it. Abort the
/// tasks to stop.
fn flood(addr: std::net::SocketAddr, path: String) -> Vec<tokio::task::JoinHandle<()>> {
    (0..80)
        .map(|i| {
            let path = path.clone();
            tokio::spawn(async move {
                loop {
                    let Ok(c) = TcpStream::connect(addr).await else {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    };
                    let mut c = Client(c);
                    if i % 2 == 0 {
                        let _ = c.get(&path, None).await;
                    }
                    // Hold it until the server closes it.
                    let _ = c.closed_within(Duration::from_secs(5)).await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect()
}

/// The attack: 80 sockets of a process without the token, reconnecting as soon as they are
/// closed (half send a token-less read and then hold the connection, half only hold it).
/// Before: with max_conn 20 every legitimate read got 429. After: the flood holds at most
/// max_conn_per_peer slots (here the same uid as the test, so its share is shared), its
/// requests get 429 once only the reserved share is left, and the token holder's 40 reads on
/// its connection are all answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_less_reconnecting_sockets_do_not_fail_token_reads() {
    let Some(ep) = emulator("serve token-less flood") else {
        return;
    };
    let name = prefix("serve-flood");
    let sm = aws_sdk_secretsmanager::Client::new(&lockbox_testkit::aws::setup_config(&ep));
    sm.create_secret()
        .name(&name)
        .secret_string("flood-value")
        .send()
        .await
        .unwrap();
    let s = start(&ep, "max_conn = 20", "header_read_timeout_seconds = 1").await;
    let path = format!("/secretsmanager/get?secretId={name}");
    let mut legit = s.connect().await;
    let (status, body) = legit.get(&path, Some(&token())).await.unwrap();
    assert_eq!(status, 200, "{body}");

    let flood = flood(s.addr, path.clone());
    // Let the flood take every slot it can.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut failed = Vec::new();
    for i in 0..40 {
        match legit.get(&path, Some(&token())).await {
            Some((200, body)) if body.contains("flood-value") => {}
            other => failed.push((i, other)),
        }
    }
    for f in flood {
        f.abort();
    }
    assert!(
        failed.is_empty(),
        "{} of 40 reads failed: {failed:?}",
        failed.len()
    );
    s.stop().await;
}

/// Run by `another_users_flood_leaves_new_connections_served` in a child process as another
/// uid: floods `LOCKBOX_FLOOD_ADDR` until killed. Does nothing when run otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a helper: another test runs it as another uid"]
async fn flood_helper() {
    let Ok(addr) = std::env::var("LOCKBOX_FLOOD_ADDR") else {
        return;
    };
    let _flood = flood(
        addr.parse().unwrap(),
        "/secretsmanager/get?secretId=x".into(),
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
}

/// The same flood from another user (uid 65534, so the test needs root to start it): its
/// token-less connections are capped per uid, so the token holder is served also on a new
/// connection for each read. Before: 429 for every read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_flood_leaves_new_connections_served() {
    let Some(ep) = emulator("serve another user's flood") else {
        return;
    };
    if !std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    {
        eprintln!("skipped: starting a flood as another uid needs root");
        return;
    }
    let name = prefix("serve-other-uid");
    let sm = aws_sdk_secretsmanager::Client::new(&lockbox_testkit::aws::setup_config(&ep));
    sm.create_secret()
        .name(&name)
        .secret_string("other-uid-value")
        .send()
        .await
        .unwrap();
    let s = start(&ep, "max_conn = 20", "header_read_timeout_seconds = 1").await;
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["flood_helper", "--exact", "--ignored", "--test-threads=1"])
        .env("LOCKBOX_FLOOD_ADDR", s.addr.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .uid(65534)
        .gid(65534)
        .spawn()
        .unwrap();
    // Wait until the other user holds its whole share (max_conn_per_peer = 10).
    let full = eventually(Duration::from_secs(10), async || {
        s.get_once("/metrics", Some(&token()))
            .await
            .is_some_and(|(_, m)| {
                m.lines().any(|l| {
                    l.strip_prefix("lockbox_serve_connections_dropped_total{reason=\"peer_limit\"}")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .is_some_and(|n| n > 0)
                })
            })
    })
    .await;
    let path = format!("/v1/{name}");
    let mut failed = Vec::new();
    for i in 0..40 {
        match s.get_once(&path, Some(&token())).await {
            Some((200, body)) if body.contains("other-uid-value") => {}
            other => failed.push((i, other)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        failed.is_empty(),
        "{} of 40 reads failed: {failed:?}",
        failed.len()
    );
    assert!(full, "the other user's flood never reached its cap");
    s.stop().await;
}

/// The attack: 73 connections pipelining requests and never reading the answers. Before: with
/// max_conn 64 they held their slots for ever (hyper has no write timeout) and /ping got 429
/// throughout. After: past max_pipelined_requests in one burst a connection gets 429 and is
/// closed, so all are dropped at once and /ping answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelining_non_readers_are_dropped_and_ping_answers() {
    let s = start(
        NO_AWS,
        "max_conn = 64",
        "header_read_timeout_seconds = 1\nwrite_timeout_seconds = 1",
    )
    .await;
    let mut writers = Vec::new();
    for _ in 0..73 {
        writers.push(pipeline(
            non_reader(&s).await,
            request("/ping", None),
            1,
            2000,
        ));
    }
    let mut held = Vec::new();
    for w in writers {
        held.push(w.await.unwrap());
    }
    let ports: Vec<u16> = held
        .iter()
        .map(|c| c.local_addr().unwrap().port())
        .collect();
    let dropped = eventually(Duration::from_secs(5), async || {
        common::server_holds(&s, &ports) == 0
    })
    .await;
    let still = common::server_holds(&s, &ports);
    assert!(
        dropped,
        "{still} of 73 non-readers still hold their connection"
    );
    let ping = eventually(Duration::from_secs(2), async || {
        s.get_once("/ping", None).await == Some((200, "healthy".into()))
    })
    .await;
    assert!(ping, "/ping did not answer");
    let m = s.get_once("/metrics", Some(&token())).await.unwrap().1;
    let by_limit = metric(
        &m,
        "lockbox_serve_connections_dropped_total{reason=\"pipelined\"}",
    ) + metric(
        &m,
        "lockbox_serve_connections_dropped_total{reason=\"peer_limit\"}",
    ) + metric(
        &m,
        "lockbox_serve_connections_dropped_total{reason=\"token_reserve\"}",
    );
    assert!(by_limit >= 73, "{m}");
    drop(held);
    s.stop().await;
}

/// The attack: a client with the token that pipelines within the limit and never reads, so
/// the answers back up and hyper's write waits for ever. Before: held until the client went away. After: the
/// write that cannot complete for write_timeout_seconds drops the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_its_answers_is_dropped_after_write_timeout() {
    let s = start(
        NO_AWS,
        "",
        "write_timeout_seconds = 1\nmax_pipelined_requests = 1024\nheader_read_timeout_seconds = 30",
    )
    .await;
    // Answers of some 5 KB each, more than the socket buffers hold (4 MiB at most).
    let metrics = request("/metrics", Some(&token()));
    let c = pipeline(non_reader(&s).await, metrics, 10, 100)
        .await
        .unwrap();
    let port = c.local_addr().unwrap().port();
    let dropped = eventually(Duration::from_secs(5), async || {
        common::server_holds(&s, &[port]) == 0
    })
    .await;
    if !dropped {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let m = s.get_once("/metrics", Some(&token())).await.unwrap().1;
        panic!("a client that does not read still holds its connection {port:04X}\n{table}\n{m}");
    }
    let m = s.get_once("/metrics", Some(&token())).await.unwrap().1;
    assert_eq!(
        metric(
            &m,
            "lockbox_serve_connections_dropped_total{reason=\"write_timeout\"}"
        ),
        1,
        "{m}"
    );
    drop(c);
    s.stop().await;
}

/// hyper's header_read_timeout, checked where hyper 1 had gaps: a connection that sends
/// nothing, an idle keep-alive connection after an answer, and a head sent a byte at a time
/// (slow loris: the deadline is for the whole head, not each byte) are all dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_idle_and_slow_heads_are_dropped_after_header_read_timeout() {
    let s = start(NO_AWS, "", "header_read_timeout_seconds = 1").await;
    let mut silent = s.connect().await;
    let mut idle = s.connect().await;
    assert_eq!(idle.get("/ping", None).await.unwrap().0, 200);
    let mut slow = s.connect().await.0;
    let started = Instant::now();
    let loris = tokio::spawn(async move {
        let head = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        for b in head {
            if slow.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
        started.elapsed()
    });
    assert!(silent.closed_within(Duration::from_secs(4)).await, "silent");
    assert!(
        idle.closed_within(Duration::from_secs(4)).await,
        "idle keep-alive"
    );
    let took = loris.await.unwrap();
    assert!(took < Duration::from_secs(4), "slow loris held {took:?}");
    s.stop().await;
}
