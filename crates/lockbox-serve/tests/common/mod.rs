//! What the issue-23 serve tests share: an in-process server and raw HTTP/1.1 connections
//! (so a test decides when a connection opens, what it sends and whether it reads).
//!
//! The servers read their SSRF token from `CARGO_MANIFEST_DIR` (cargo sets it for test
//! runs), since tests cannot set environment variables without `unsafe`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use lockbox_serve::{ServeConfig, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

pub const TOKEN_VAR: &str = "CARGO_MANIFEST_DIR";

/// The SSRF token the servers read.
pub fn token() -> String {
    std::env::var(TOKEN_VAR).expect("cargo sets CARGO_MANIFEST_DIR for tests")
}

/// A config with the test token, no credential check, an ephemeral loopback port (unless
/// `lockbox` sets `listen`), then `top` and `lockbox` keys.
pub fn config(top: &str, lockbox: &str) -> ServeConfig {
    let listen = if lockbox.contains("listen =") {
        ""
    } else {
        "listen = \"127.0.0.1:0\"\n"
    };
    ServeConfig::from_toml(&format!(
        "validate_credentials = false\nssrf_env_variables = [\"{TOKEN_VAR}\"]\n{top}\n\
         [lockbox]\n{listen}{lockbox}\n"
    ))
    .unwrap()
}

/// A server running in the background until [`Running::stop`].
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<lockbox_core::Result<()>>,
    /// A keep-alive client for [`Running::get`] and [`Running::json`].
    pub http: reqwest::Client,
}

/// Starts a server for `endpoint` (an emulator, or an unreachable address when the test
/// reads nothing from AWS).
pub async fn start(endpoint: &str, top: &str, lockbox: &str) -> Running {
    start_at(endpoint, config(top, lockbox)).await
}

/// Starts a server with `config` for `endpoint`.
pub async fn start_at(endpoint: &str, config: ServeConfig) -> Running {
    let sdk = lockbox_testkit::aws::sdk_config(endpoint, Duration::from_secs(5));
    running(Server::start_with_sdk(config, &sdk).await.unwrap())
}

/// Serves `server` in the background until [`Running::stop`].
pub fn running(server: Server) -> Running {
    let addr = server.local_addr();
    let (tx, rx) = oneshot::channel();
    let done = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        done,
        http: reqwest::Client::new(),
    }
}

impl Running {
    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET path` with the test token: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        self.get_as(path, &token()).await
    }

    /// `GET path` with `token` in the SSRF header (a consumer's own token, or the SSRF
    /// token): (status, body).
    pub async fn get_as(&self, path: &str, token: &str) -> (u16, String) {
        let r = self
            .http
            .get(self.url(path))
            .header("X-Aws-Parameters-Secrets-Token", token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// `GET path` with the test token, which must answer 200: its body as JSON.
    pub async fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Stops the server and waits until it has stopped cleanly.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.await.unwrap().unwrap();
    }

    /// A new keep-alive connection.
    pub async fn connect(&self) -> Client {
        Client(TcpStream::connect(self.addr).await.unwrap())
    }

    /// `GET path` on a new connection, with `token` when given: (status, body), or `None`
    /// when the connection was closed without an answer.
    pub async fn get_once(&self, path: &str, token: Option<&str>) -> Option<(u16, String)> {
        let mut c = Client(TcpStream::connect(self.addr).await.ok()?);
        c.get(path, token).await
    }
}

/// The request head of `GET path`, with the token header when given.
pub fn request(path: &str, token: Option<&str>) -> String {
    let token = token
        .map(|t| format!("X-Aws-Parameters-Secrets-Token: {t}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{token}\r\n")
}

/// One HTTP/1.1 connection, a request at a time.
pub struct Client(pub TcpStream);

impl Client {
    /// Sends `GET path` and reads the answer: (status, body), or `None` when the server
    /// closed the connection instead.
    pub async fn get(&mut self, path: &str, token: Option<&str>) -> Option<(u16, String)> {
        self.0
            .write_all(request(path, token).as_bytes())
            .await
            .ok()?;
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            if self.0.read(&mut byte).await.ok()? == 0 {
                return None;
            }
            buf.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&buf).into_owned();
        let status = head.get(9..12)?.parse().ok()?;
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.0.read_exact(&mut body).await.ok()?;
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// Whether the server has closed this connection: reads (and drops) what it sent, until
    /// end of stream or a reset (closed) or `within` passes (still open).
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let mut sink = vec![0u8; 64 * 1024];
        tokio::time::timeout(within, async {
            loop {
                match self.0.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }
}

/// The one 403 body every denial has: the id asked, nothing else.
pub fn denial(asked: &str) -> String {
    format!(
        "{{\"__type\":\"AccessDeniedException\", \"message\":\"Not authorized to read {asked}\"}}"
    )
}

/// This process's real uid, from `/proc/self/status`.
pub fn own_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// The value of the metric line starting with `line` in a `/metrics` text.
pub fn metric(m: &str, line: &str) -> u64 {
    m.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in {m}"))
}

/// How many of the connections from the client ports `clients` the server still holds open
/// (its socket ESTABLISHED), from `/proc/net/tcp`, without reading from them. A connection
/// the server dropped is past ESTABLISHED on its side at once, even while its unread answers
/// keep the client's side open.
pub fn server_holds(s: &Running, clients: &[u16]) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!("0100007F:{:04X}", s.addr.port());
    let remotes: Vec<String> = clients
        .iter()
        .map(|c| format!("0100007F:{c:04X}"))
        .collect();
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| {
            f.len() > 3 && f[1] == local && f[3] == "01" && remotes.iter().any(|r| r == f[2])
        })
        .count()
}
