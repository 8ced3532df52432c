//! Helpers the tasks share: the HTTP client ([`http`]), free ports and the port of an
//! endpoint, owner-only files, log tails, and the `lockbox` binary in a clean AWS environment.

pub mod http;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::paths;

// The one `aws_command`, owned by the test kit (see the file's docs for why it is compiled in
// here rather than depended on).
#[path = "../../crates/lockbox-testkit/src/cli/aws_command.rs"]
mod aws_command;
pub use aws_command::aws_command;

/// Picks a free TCP port on 127.0.0.1 (bind port 0, read it, close).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The port of `http://127.0.0.1:PORT` (a trailing `/` allowed).
pub fn port_of(endpoint: &str) -> Option<u16> {
    endpoint
        .rsplit(':')
        .next()?
        .trim_end_matches('/')
        .parse()
        .ok()
}

/// Writes `text` to `path` as a new owner-only (0600) file, replacing any file there.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    let _ = fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A message section with the last `n` lines of the log at `path`.
pub fn tail_section(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => format!(
            "\n--- last {n} lines of {} ---\n{}\n---",
            paths::show(path),
            last_lines(&String::from_utf8_lossy(&bytes), n)
        ),
        Err(err) => format!("\n(no log at {}: {err})", paths::show(path)),
    }
}

/// For a test that needs an emulator: the port of the endpoint in the environment variable
/// `var`, or `None` after printing `SKIPPED: <var> is not set` (the test then returns).
#[cfg(test)]
pub fn port_or_skip(var: &str) -> Option<u16> {
    let port = std::env::var(var).ok().as_deref().and_then(port_of);
    if port.is_none() {
        eprintln!("SKIPPED: {var} is not set");
    }
    port
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_of_reads_the_last_colon() {
        assert_eq!(port_of("http://127.0.0.1:4566"), Some(4566));
        assert_eq!(port_of("http://127.0.0.1:4566/"), Some(4566));
        assert_eq!(port_of("http://127.0.0.1"), None);
        assert_eq!(port_of(""), None);
    }

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(last_lines("a", 5), "a");
    }

    #[test]
    fn write_private_replaces_with_an_owner_only_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("xtask-util-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        fs::write(&path, "old, longer text").unwrap();
        write_private(&path, "new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }
}
