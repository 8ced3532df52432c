//! The SSRF token: the first set variable of `ssrf_env_variables`; a `file://PATH` value is
//! read from that file (trimmed). The file is trusted as the AWS agent's `/var/run/awssmatoken`
//! is laid out ([`lockbox_fs::open_protected`]): a regular file (no symbolic link; a FIFO is
//! refused at once, not waited on), owned by the serve user or root, that others can neither
//! read nor write and its group cannot write (group read is the point: `lockbox serve
//! --write-token FILE --token-group G` makes it 0640 for a reader group), in a directory owned
//! by the serve user or root that group and others cannot write. A token file holding fewer
//! than [`MIN_TOKEN_LEN`] bytes is refused; a token that short given directly in the variable
//! is accepted with a warning, because the AWS agent accepts any token there and its own tests
//! (and users' scripts) start it with a 14-byte `AWS_TOKEN`.

use lockbox_core::{Error, ErrorKind, Result};
use std::os::unix::fs::MetadataExt;

use lockbox_fs::Readers;

/// Most bytes a token file may hold.
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// Fewest bytes an SSRF token may have (after trimming a file's whitespace).
pub const MIN_TOKEN_LEN: usize = 16;

fn refused(message: String) -> Error {
    Error::new(ErrorKind::InvalidConfig, "serve", message)
}

/// Reads the token; refuses when none of `vars` is set, or the value (or file) is empty,
/// untrusted or too short.
pub(crate) fn read_token(vars: &[String]) -> Result<String> {
    let Some((var, value)) = vars
        .iter()
        .find_map(|v| std::env::var(v).ok().map(|val| (v, val)))
    else {
        return Err(refused(format!(
            "no SSRF token: set one of {} (a value of file://PATH reads the token from PATH)",
            vars.join(", ")
        )));
    };
    token_from(var, value)
}

/// The token variable `var` gives with `value` (the token, or `file://PATH`).
fn token_from(var: &str, value: String) -> Result<String> {
    let (token, from_file) = match value.strip_prefix("file://") {
        None => (value, false),
        Some(path) => {
            let file = lockbox_fs::open_protected(path.as_ref(), MAX_TOKEN_FILE, Readers::Anyone)
                .map_err(|e| {
                let kind = match e.kind() {
                    ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                    _ => ErrorKind::InvalidConfig,
                };
                Error::new(kind, "serve", format!("{var}: SSRF token file: {e}"))
            })?;
            let mode = file.metadata().mode() & 0o777;
            if mode & 0o007 != 0 {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    "serve",
                    format!(
                        "{var}: SSRF token file: {path} has mode {mode:04o}, so others can \
                         access it (fix: chmod o-rwx {path})"
                    ),
                ));
            }
            let bytes = file.read_all().map_err(|e| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    "serve",
                    format!("{var}: SSRF token file: {e}"),
                )
            })?;
            let text = String::from_utf8(bytes).map_err(|_| {
                refused(format!(
                    "{var}: the SSRF token file {path} is not valid UTF-8"
                ))
            })?;
            (text.trim().to_owned(), true)
        }
    };
    if token.is_empty() {
        return Err(refused(format!("no SSRF token: {var} is set but empty")));
    }
    if token.len() < MIN_TOKEN_LEN {
        let rule = format!(
            "{var}: the SSRF token is {} bytes; at least {MIN_TOKEN_LEN} are needed (\
             `openssl rand -hex 32` prints a good one)",
            token.len()
        );
        if from_file {
            return Err(refused(rule));
        }
        tracing::warn!(
            "{rule}; accepted because it is given directly, as the AWS agent accepts it"
        );
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    const GOOD: &str = "a-token-of-32-bytes-0123456789ab";

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn from_file(p: &Path) -> Result<String> {
        token_from("AWS_TOKEN", format!("file://{}", p.display()))
    }

    #[test]
    fn a_token_from_the_environment_or_an_owner_only_file() {
        assert_eq!(token_from("AWS_TOKEN", GOOD.into()).unwrap(), GOOD);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, format!("{GOOD}\n")).unwrap();
        chmod(&file, 0o600);
        assert_eq!(from_file(&file).unwrap(), GOOD);
        chmod(&file, 0o400);
        assert_eq!(from_file(&file).unwrap(), GOOD);
        // The agent's layout (issue 25): readable by a reader group, as --write-token makes it.
        chmod(&file, 0o640);
        assert_eq!(from_file(&file).unwrap(), GOOD);
        chmod(&file, 0o440);
        assert_eq!(from_file(&file).unwrap(), GOOD);
    }

    /// Issue 23 item 4: a token file holding fewer than 16 bytes is refused at start, naming
    /// the variable and never the token; the same token given directly is accepted (the AWS
    /// agent's own tests use the 14-byte `test-token-123`), with a warning.
    #[test]
    fn a_short_token_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        for short in ["Zq", "0123456789abcde"] {
            std::fs::write(&file, short).unwrap();
            chmod(&file, 0o600);
            let e = from_file(&file).unwrap_err();
            let text = e.to_string();
            assert!(
                text.contains("AWS_TOKEN") && text.contains("at least 16"),
                "{text}"
            );
            assert!(!text.contains(short), "{text}");
            assert_eq!(token_from("AWS_TOKEN", short.into()).unwrap(), short);
        }
        let e = token_from("AWS_TOKEN", String::new()).unwrap_err();
        assert!(e.to_string().contains("set but empty"), "{e}");
        std::fs::write(&file, "0123456789abcdef").unwrap();
        assert!(from_file(&file).is_ok());
    }

    /// Issue 23 item 4: a token file others can read or write (or its group write), a symbolic
    /// link, a FIFO (which hung the start before) or a file in a directory others can write is
    /// refused.
    #[test]
    fn an_untrusted_token_file_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, GOOD).unwrap();
        for bad in [0o644, 0o604, 0o660, 0o666, 0o601] {
            chmod(&file, bad);
            let e = from_file(&file).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{bad:o}: {e}");
            assert!(e.to_string().contains("chmod"), "{e}");
            assert!(!e.to_string().contains(GOOD), "{e}");
        }
        chmod(&file, 0o600);
        chmod(dir.path(), 0o777);
        let e = from_file(&file).unwrap_err();
        assert!(e.to_string().contains("chmod go-w"), "{e}");
        chmod(dir.path(), 0o700);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let e = from_file(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // Before the fix, this read blocked until a writer opened the FIFO: wait for the
        // answer on another thread so a regression fails instead of hanging the run.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(from_file(&fifo).map_err(|e| e.to_string()));
        });
        let answer = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("reading a FIFO token file hung");
        let e = answer.unwrap_err();
        assert!(e.contains("FIFO"), "{e}");
    }
}
