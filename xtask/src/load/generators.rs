//! The load generators: wrk with a Lua script (the token header, one machine-readable result
//! line), or, without wrk, a small blocking keep-alive generator of xtask's own.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Point, TOKEN_HEADER};

/// True if `wrk` runs.
pub(crate) fn wrk_available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The Lua script: the token header, and one machine-readable line at the end.
pub(crate) fn lua_script(token: &str) -> String {
    format!(
        r#"wrk.headers["{TOKEN_HEADER}"] = "{token}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("LOCKBOX_LOAD requests=%d duration_us=%d p50_us=%f p99_us=%f errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"#
    )
}

/// One point measured with wrk and the Lua `script` (at most 2 threads), and wrk's whole
/// standard output for callers that read more of it. `extra` goes to wrk before the script
/// (`load` passes none; `soak` passes `--timeout 10s`).
pub(crate) fn run_wrk(
    port: u16,
    path: &str,
    script: &Path,
    connections: usize,
    seconds: u64,
    extra: &[&str],
) -> Result<(Point, String)> {
    let threads = connections.min(2);
    let output = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .args(extra)
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .stdin(Stdio::null())
        .output()
        .context("running wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let point = parse_wrk(&stdout)
        .with_context(|| format!("no LOCKBOX_LOAD line in wrk's output:\n{stdout}"))?;
    Ok((point, stdout))
}

/// Reads the script's `LOCKBOX_LOAD ...` line.
pub(crate) fn parse_wrk(stdout: &str) -> Option<Point> {
    let line = stdout.lines().find(|l| l.starts_with("LOCKBOX_LOAD "))?;
    let fields: BTreeMap<&str, f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k, v.parse().ok()?))
        })
        .collect();
    let duration_s = fields.get("duration_us")? / 1e6;
    Some(Point {
        rps: fields.get("requests")? / duration_s,
        p50_ms: fields.get("p50_us")? / 1e3,
        p99_ms: fields.get("p99_us")? / 1e3,
        errors: *fields.get("errors")? as u64,
    })
}

/// The fallback generator: one thread per connection, one blocking keep-alive request at a time.
pub(super) fn run_builtin(
    port: u16,
    path: &str,
    token: &str,
    connections: usize,
    seconds: u64,
) -> Result<Point> {
    let request = Arc::new(format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{TOKEN_HEADER}: {token}\r\n\r\n"
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let request = Arc::clone(&request);
            let stop = Arc::clone(&stop);
            thread::spawn(move || -> Result<(Vec<u32>, u64)> {
                let mut stream = TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut latencies = Vec::new();
                let mut errors = 0;
                let mut line = String::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    stream.write_all(request.as_bytes())?;
                    let mut length = 0usize;
                    let mut status_ok = false;
                    let mut first = true;
                    loop {
                        line.clear();
                        if reader.read_line(&mut line)? == 0 {
                            bail!("the server closed the connection");
                        }
                        if first {
                            status_ok = line.split_whitespace().nth(1) == Some("200");
                            first = false;
                        } else if line == "\r\n" {
                            break;
                        } else if let Some((k, v)) = line.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; length];
                    reader.read_exact(&mut body)?;
                    latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                    if !status_ok {
                        errors += 1;
                    }
                }
                Ok((latencies, errors))
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (latencies, e) = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        all.extend(latencies);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return f64::NAN;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        f64::from(all[i]) / 1e3
    };
    Ok(Point {
        rps: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wrk_line() {
        let out = "Running 5s test\nLOCKBOX_LOAD requests=50000 duration_us=5000000 \
                   p50_us=120.5 p99_us=2000 errors=3\n";
        let p = parse_wrk(out).unwrap();
        assert_eq!(p.rps, 10000.0);
        assert_eq!(p.p50_ms, 0.1205);
        assert_eq!(p.p99_ms, 2.0);
        assert_eq!(p.errors, 3);
        assert!(parse_wrk("nothing").is_none());
    }
}
