//! Readiness probe: one real SSM call over plain HTTP/1.1, no SDK.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Picks a free TCP port on 127.0.0.1 (bind port 0, read it, close).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Sends `AmazonSSM.DescribeParameters` to `127.0.0.1:port` and succeeds on HTTP 200.
///
/// Emulators accept any signature, so the Authorization header only has to look like SigV4
/// (they read the access key and region from its credential scope).
pub fn ssm_answers(port: u16) -> Result<()> {
    ssm_answers_at("127.0.0.1", port)
}

/// Like [`ssm_answers`], at `host:port`.
pub fn ssm_answers_at(host: &str, port: u16) -> Result<()> {
    let addr = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let body = "{}";
    let request = format!(
        "POST / HTTP/1.1\r\n\
         Host: {host}:{port}\r\n\
         X-Amz-Target: AmazonSSM.DescribeParameters\r\n\
         Content-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Date: 20250101T000000Z\r\n\
         Authorization: AWS4-HMAC-SHA256 \
         Credential=test/20250101/us-east-1/ssm/aws4_request, \
         SignedHeaders=host;x-amz-date;x-amz-target, Signature=00\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n\
         \r\n\
         {body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    // Read until the server closes (Connection: close) or the status line is in.
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                if response.len() > 64 * 1024 {
                    break;
                }
            }
            Err(err) if response.is_empty() => return Err(err).context("reading the answer"),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        bail!("SSM DescribeParameters answered `{status_line}`: {body}");
    }
    Ok(())
}
