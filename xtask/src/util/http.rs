//! One small blocking HTTP/1.1 client for xtask's few requests to loopback servers (an
//! emulator's readiness probe and seeding, OpenBao's health check, the load run's warm-up):
//! one request per connection (`Connection: close`), no TLS, no SDK.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result};

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The most of an answer that is read; the rest is dropped.
const MAX_RESPONSE: usize = 1024 * 1024;

/// A server at `host:port`, and the read/write timeout of each request to it.
#[derive(Clone, Debug)]
pub struct Client {
    host: String,
    port: u16,
    timeout: Duration,
}

/// An answer: its status line and its body (the bytes after the headers, as text).
#[derive(Clone, Debug)]
pub struct Response {
    /// E.g. `HTTP/1.1 200 OK`; empty when the server sent nothing.
    pub status_line: String,
    /// Everything after the blank line that ends the headers.
    pub body: String,
}

impl Response {
    /// The status code of the status line, if it has one.
    pub fn status(&self) -> Option<u16> {
        self.status_line.split_whitespace().nth(1)?.parse().ok()
    }

    /// True for status 200.
    pub fn is_ok(&self) -> bool {
        self.status() == Some(200)
    }
}

impl Client {
    /// A client of `127.0.0.1:port` with a 5 s read/write timeout.
    pub fn loopback(port: u16) -> Client {
        Client::new("127.0.0.1", port)
    }

    /// A client of `host:port` with a 5 s read/write timeout.
    pub fn new(host: &str, port: u16) -> Client {
        Client {
            host: host.to_owned(),
            port,
            timeout: Duration::from_secs(5),
        }
    }

    /// The same client with another read/write timeout.
    pub fn timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// `GET path` with extra `headers`.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
        self.send("GET", path, headers, "")
    }

    /// An AWS JSON-protocol call (`POST /` with `X-Amz-Target: target`) to an emulator. Emulators
    /// accept any signature, so the Authorization header only has to look like SigV4: they read
    /// the access key, region and service from its credential scope.
    pub fn aws_json(
        &self,
        access_key: &str,
        region: &str,
        service: &str,
        target: &str,
        body: &str,
    ) -> Result<Response> {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={access_key}/20250101/{region}/{service}/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-target, Signature=00"
        );
        self.send(
            "POST",
            "/",
            &[
                ("X-Amz-Target", target),
                ("Content-Type", "application/x-amz-json-1.1"),
                ("X-Amz-Date", "20250101T000000Z"),
                ("Authorization", &authorization),
            ],
            body,
        )
    }

    /// One request on a fresh connection; reads the answer until the server closes it.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Response> {
        let (host, port) = (self.host.as_str(), self.port);
        let addr: SocketAddr = (host, port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if method != "GET" || !body.is_empty() {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("Connection: close\r\n\r\n");
        request.push_str(body);
        stream
            .write_all(request.as_bytes())
            .with_context(|| format!("sending {method} {path} to {addr}"))?;
        let mut response = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    response.extend_from_slice(&buf[..n]);
                    if response.len() > MAX_RESPONSE {
                        break;
                    }
                }
                Err(err) if response.is_empty() => {
                    return Err(err).context("reading the answer");
                }
                // Part of an answer is still an answer (its status line is in).
                Err(_) => break,
            }
        }
        let text = String::from_utf8_lossy(&response);
        Ok(Response {
            status_line: text.lines().next().unwrap_or_default().to_owned(),
            body: text
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_owned())
                .unwrap_or_default(),
        })
    }
}

/// One Secrets Manager call (`secretsmanager.ACTION`) on the emulator at 127.0.0.1:`port`, as
/// its test user, with a 10 s timeout: the answer's JSON, or an error naming the action, the
/// status line and the start of the answer.
pub fn secrets_manager_call(
    port: u16,
    action: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value> {
    let answer = Client::loopback(port)
        .timeout(Duration::from_secs(10))
        .aws_json(
            "testing",
            crate::REGION,
            "secretsmanager",
            &format!("secretsmanager.{action}"),
            &body.to_string(),
        )?;
    if !answer.is_ok() {
        anyhow::bail!(
            "{action} on the emulator failed: {} {}",
            answer.status_line,
            answer.body.chars().take(200).collect::<String>()
        );
    }
    serde_json::from_str(&answer.body).with_context(|| format!("{action} answered no JSON"))
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// A one-shot loopback server that answers `answer` and returns the request it read.
    fn serve_once(answer: &'static str) -> (u16, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.strip_prefix("Content-Length: ") {
                    length = v.trim().parse().unwrap();
                }
                request.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            request.push_str(&String::from_utf8(body).unwrap());
            stream.write_all(answer.as_bytes()).unwrap();
            request
        });
        (port, handle)
    }

    #[test]
    fn get_sends_headers_and_reads_status_and_body() {
        let (port, server) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
        let response = Client::loopback(port)
            .get("/ping", &[("X-Token", "t")])
            .unwrap();
        assert_eq!(response.status(), Some(200));
        assert!(response.is_ok());
        assert_eq!(response.status_line, "HTTP/1.1 200 OK");
        assert_eq!(response.body, "hi");
        assert_eq!(
            server.join().unwrap(),
            format!(
                "GET /ping HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Token: t\r\n\
                 Connection: close\r\n\r\n"
            )
        );
    }

    #[test]
    fn aws_json_posts_the_target_and_a_sigv4_looking_header() {
        let (port, server) = serve_once("HTTP/1.1 400 Bad Request\r\n\r\n{\"x\":1}");
        let response = Client::loopback(port)
            .aws_json(
                "test",
                "us-east-1",
                "ssm",
                "AmazonSSM.DescribeParameters",
                "{}",
            )
            .unwrap();
        assert_eq!(response.status(), Some(400));
        assert!(!response.is_ok());
        assert_eq!(response.body, "{\"x\":1}");
        let request = server.join().unwrap();
        assert!(request.starts_with("POST / HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("X-Amz-Target: AmazonSSM.DescribeParameters\r\n"));
        assert!(request.contains(
            "Authorization: AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/ssm/aws4_request, "
        ));
        assert!(request.ends_with("Content-Length: 2\r\nConnection: close\r\n\r\n{}"));
    }

    #[test]
    fn a_closed_port_is_an_error_naming_it() {
        let port = crate::util::free_port().unwrap();
        let err = Client::loopback(port).get("/", &[]).unwrap_err();
        assert!(
            format!("{err:#}").contains(&format!("connecting to 127.0.0.1:{port}")),
            "{err:#}"
        );
    }
}
