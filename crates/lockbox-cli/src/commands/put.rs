//! `lockbox put`: store a secret read from stdin or a file.

use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use lockbox_core::{PutMode, SecretName, SecretValue};
use serde_json::json;

use crate::backend::BackendArgs;
use crate::report::{Report, to_json};

/// Arguments of `lockbox put`.
#[derive(Args, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Secret name.
    name: String,
    /// Read the value from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    from_file: Option<PathBuf>,
    /// Replace an existing secret (by default put refuses to).
    #[arg(long)]
    overwrite: bool,
}

/// The secret stored: nothing as text, `{"name", "stored": true}` as JSON.
pub struct Stored {
    name: SecretName,
}

/// Stores the value; refuses to replace one without `--overwrite`.
pub async fn run(args: PutArgs) -> anyhow::Result<Stored> {
    let backend = args.backend.open().await?;
    let name = SecretName::new(args.name)?;
    let value = read_value(args.from_file.as_deref())?;
    let mode = if args.overwrite {
        PutMode::Overwrite
    } else {
        PutMode::Create
    };
    backend.put(&name, &value, mode).await?;
    Ok(Stored { name })
}

/// The value: a file, or all of stdin (refused when stdin is a terminal, so a forgotten pipe
/// does not hang or store what was typed by accident).
fn read_value(from_file: Option<&Path>) -> anyhow::Result<SecretValue> {
    if let Some(path) = from_file {
        let bytes =
            std::fs::read(path).with_context(|| format!("--from-file {}", path.display()))?;
        return Ok(SecretValue::new(bytes));
    }
    let stdin = io::stdin();
    if stdin.is_terminal() {
        bail!("put reads the value from stdin or --from-file, and stdin is a terminal");
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .read_to_end(&mut bytes)
        .context("reading stdin")?;
    Ok(SecretValue::new(bytes))
}

impl Report for Stored {
    fn write_text(&self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        to_json(&json!({ "name": self.name.as_str(), "stored": true }))
    }
}
