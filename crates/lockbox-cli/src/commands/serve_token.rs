//! `lockbox serve --write-token FILE [--token-group GROUP]`: the SSRF token file the AWS
//! Secrets Manager Agent's install script creates (`/var/run/awssmatoken`, group
//! `awssmatokenreader`): 32 random bytes as hex, mode 0640, group-readable by a reader group
//! so only its members' programs can call the endpoint. An existing non-empty token is kept
//! (a restart must not lock out clients that already read it); its mode and group are fixed.
//! `lockbox serve` then reads it with `AWS_TOKEN=file://FILE`. The path is not trusted: a
//! symbolic link, a FIFO, a file others can write, or a directory others can write is refused
//! (naming the fix), and the group and mode are set on the open file, not through the path.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use rand::RngCore;

use lockbox_fs::Readers;

use crate::report::{Note, Report};

/// Mode of the token file: the owner writes, the reader group reads.
const TOKEN_MODE: u32 = 0o640;
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Most bytes an existing token file may hold to be kept.
const MAX_TOKEN_LEN: u64 = 4096;

/// `--write-token` and `--token-group`.
#[derive(Args)]
pub struct TokenArgs {
    /// Create the SSRF token file FILE (random, mode 0640) and exit, as the AWS agent's
    /// install script does; an existing token is kept. Serve with AWS_TOKEN=file://FILE.
    #[arg(long, value_name = "FILE")]
    pub write_token: Option<PathBuf>,
    /// With --write-token: the group that may read the token (name or number); the caller
    /// must be a member. Default: the caller's group.
    #[arg(long, value_name = "GROUP", requires = "write_token")]
    pub token_group: Option<String>,
}

/// Written by hand, not derived: the fields name where the token goes and who may read it,
/// never the token itself, and that is all Debug shows.
impl std::fmt::Debug for TokenArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenArgs")
            .field("token_file", &self.write_token)
            .field("reader_group", &self.token_group)
            .finish()
    }
}

/// The token file written (or kept): its path and group.
pub struct TokenWritten {
    path: PathBuf,
    created: bool,
    group: Option<String>,
}

impl Report for TokenWritten {
    fn write_text(&self, _: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }
    fn json(&self) -> anyhow::Result<Option<String>> {
        Ok(Some(
            serde_json::json!({
                "token_file": self.path,
                "created": self.created,
                "group": self.group,
            })
            .to_string(),
        ))
    }
    fn notes(&self) -> Vec<Note> {
        let what = if self.created {
            "wrote a new"
        } else {
            "kept the"
        };
        let group = match &self.group {
            Some(g) => format!(", readable by group {g}"),
            None => String::new(),
        };
        vec![Note::Info(format!(
            "{what} token in {} (mode 0640{group}); serve with AWS_TOKEN=file://{}",
            self.path.display(),
            self.path.display()
        ))]
    }
}

/// The group id of `group` (a name, or a number).
fn group_id(group: &str) -> anyhow::Result<nix::unistd::Gid> {
    if let Ok(n) = group.parse::<u32>() {
        return Ok(nix::unistd::Gid::from_raw(n));
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => anyhow::bail!("--token-group: no group named {group:?}"),
        Err(e) => anyhow::bail!("--token-group: cannot look up group {group:?}: {e}"),
    }
}

/// Opens the token file at `path` without trusting the path: its directory must be owned by
/// this user or root and not writable by group or others (else another user could swap the
/// file between our checks), and the file itself must be a regular file (no symbolic link, no
/// FIFO) owned by this user or root that group and others cannot write. `None` when nothing is
/// there yet.
fn open_token_file(path: &Path) -> anyhow::Result<Option<std::fs::File>> {
    match lockbox_fs::open_protected(path, MAX_TOKEN_LEN, Readers::Anyone) {
        Ok(file) => Ok(Some(file.into_file())),
        Err(e) if e.is_not_found() && !parent_missing_or_unsafe(path)? => Ok(None),
        Err(e) => {
            let fix = e.fix().map(|f| format!(" (fix: {f})")).unwrap_or_default();
            Err(anyhow::anyhow!(
                "--write-token: refusing the token file {}: {e}{fix}",
                path.display()
            ))
        }
    }
}

/// Whether the "not found" came from the directory rather than the file: a missing directory
/// is refused (systemd's `RuntimeDirectory=` or the installer creates it with the right owner;
/// lockbox does not guess one).
fn parent_missing_or_unsafe(path: &Path) -> anyhow::Result<bool> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::symlink_metadata(dir) {
        Ok(_) => Ok(false),
        Err(e) => anyhow::bail!(
            "--write-token: the directory {} of the token file: {e}",
            dir.display()
        ),
    }
}

/// Whether `file` already holds a token to keep (non-empty after trimming).
fn holds_token(file: &std::fs::File, path: &Path) -> anyhow::Result<bool> {
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    file.take(MAX_TOKEN_LEN + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    Ok(!String::from_utf8_lossy(&bytes).trim().is_empty())
}

/// Creates (or keeps) the token file; sets its group and mode 0640 on the open file, never
/// through the path, so nothing swapped in between is changed.
pub fn write_token(args: &TokenArgs) -> anyhow::Result<TokenWritten> {
    let path = args
        .write_token
        .clone()
        .context("--write-token FILE is required")?;
    let gid = args.token_group.as_deref().map(group_id).transpose()?;
    let existing = open_token_file(&path)?;
    let created = match &existing {
        Some(file) => !holds_token(file, &path)?,
        None => true,
    };
    let file = if created {
        drop(existing);
        let mut bytes = zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
        rand::rngs::OsRng.fill_bytes(&mut bytes[..]);
        let token = zeroize::Zeroizing::new(hex::encode(&bytes[..]));
        // Written 0600 first (a new file replaces whatever name was there, never writes through
        // a link); opened to the group only once the group is right.
        lockbox_fs::write_file_atomic(&path, token.as_bytes(), lockbox_core::PutMode::Overwrite)
            .with_context(|| format!("cannot write the token file {}", path.display()))?;
        open_token_file(&path)?
            .with_context(|| format!("the token file {} vanished", path.display()))?
    } else {
        existing.context("an existing token file is open")?
    };
    if let Some(gid) = gid {
        std::os::unix::fs::fchown(&file, None, Some(gid.as_raw())).with_context(|| {
            format!(
                "cannot give {} to group {} (is this user a member?)",
                path.display(),
                args.token_group.as_deref().unwrap_or_default()
            )
        })?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(TOKEN_MODE))
        .with_context(|| format!("cannot chmod 640 {}", path.display()))?;
    Ok(TokenWritten {
        path,
        created,
        group: args.token_group.clone(),
    })
}
