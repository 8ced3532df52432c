//! `lockbox import`: store every entry of a JSON, YAML or dotenv file (chamber's `import`).
//!
//! The whole file is read and every entry checked against the backend's rules first: a file
//! with one bad entry writes nothing. Without `--overwrite`, an entry whose secret exists
//! already stops the import before any write too. If the backend fails midway, the error
//! says exactly which entries were stored and which were not.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use lockbox_core::{PutMode, SecretName, SecretsManager};
use lockbox_env::{ImportFormat, check_import, parse_import};
use serde_json::json;

use crate::commands::sources::OneSourceArgs;
use crate::report::{Note, Report, plural, to_json};

/// Arguments of `lockbox import`.
#[derive(Args, Debug)]
#[command(override_usage = "lockbox import [OPTIONS] [SERVICE] <FILE>")]
pub struct ImportArgs {
    #[command(flatten)]
    sources: OneSourceArgs,
    /// `FILE` (`-` for stdin), or `SERVICE FILE` to import into a chamber service (as
    /// `chamber import SERVICE FILE`).
    #[arg(value_name = "FILE", num_args = 1..=2, required = true)]
    positionals: Vec<String>,
    /// json, yaml or dotenv [default: from FILE's extension: .json, .yaml/.yml, .env; into a
    /// SERVICE, yaml (which reads JSON too), as chamber does].
    #[arg(long, short = 'f', value_name = "FORMAT")]
    format: Option<ImportFormat>,
    /// Replace secrets that exist (by default import refuses to, before writing anything).
    #[arg(long)]
    overwrite: bool,
    /// Lower-case every key before storing it, as `chamber write` (and chamber's import with
    /// the same flag) does; without it keys are stored as the file spells them.
    #[arg(long)]
    normalize_keys: bool,
}

/// The names stored: a note on stderr as text, `{"stored": [...]}` as JSON.
pub struct Imported(Vec<SecretName>);

/// Reads, checks, then stores every entry.
pub async fn run(args: ImportArgs) -> anyhow::Result<Imported> {
    let (source, file) = args.sources.split("import", &args.positionals)?;
    let source = &source;
    let file = PathBuf::from(file);
    let Some(backend) = source.backend().await? else {
        bail!(
            "import writes to a --config or --data-dir; a sealed store is written only by `lockbox sync`"
        );
    };
    let format = match args.format {
        Some(f) => f,
        None => match format_of(&file) {
            Ok(f) => f,
            // chamber decodes every import as YAML, JSON included.
            Err(_) if source.is_service() => ImportFormat::Yaml,
            Err(e) => return Err(e),
        },
    };
    let text = read_file(&file)?;
    let mut entries =
        parse_import(format, &text).with_context(|| format!("import {}", file.display()))?;
    drop(text);
    if args.normalize_keys {
        for entry in &mut entries {
            entry.name = crate::chamber::normalize_key(&entry.name);
        }
    }
    let entries = check_import(backend.as_ref(), entries)?;
    if !args.overwrite {
        let existing = existing(backend.as_ref(), &entries).await?;
        if !existing.is_empty() {
            bail!(
                "{} already exist{}, so nothing was written (use --overwrite to replace them): {}",
                if existing.len() == 1 {
                    "1 secret"
                } else {
                    "these secrets"
                },
                if existing.len() == 1 { "s" } else { "" },
                existing.join(", ")
            );
        }
    }
    let mode = if args.overwrite {
        PutMode::Overwrite
    } else {
        PutMode::Create
    };
    let mut stored: Vec<SecretName> = Vec::with_capacity(entries.len());
    for (i, (name, value)) in entries.iter().enumerate() {
        if let Err(e) = backend.put(name, value, mode).await {
            let names = |list: &[SecretName]| -> String {
                if list.is_empty() {
                    "none".into()
                } else {
                    list.iter()
                        .map(SecretName::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            let not_stored: Vec<SecretName> =
                entries[i + 1..].iter().map(|(n, _)| n.clone()).collect();
            return Err(anyhow!(
                "{e}; stored before the failure: {}; not stored: {} and {}",
                names(&stored),
                name,
                names(&not_stored)
            ));
        }
        stored.push(name.clone());
    }
    Ok(Imported(stored))
}

/// The names among `entries` that exist already: one listing, or `has` for each name when
/// the backend cannot list.
async fn existing(
    backend: &dyn SecretsManager,
    entries: &[(SecretName, lockbox_core::SecretValue)],
) -> lockbox_core::Result<Vec<String>> {
    let mut out = Vec::new();
    match backend.list("").await {
        Ok(all) => {
            for (name, _) in entries {
                if all.binary_search(name).is_ok() {
                    out.push(name.to_string());
                }
            }
        }
        Err(_) => {
            for (name, _) in entries {
                if backend.has(name).await? {
                    out.push(name.to_string());
                }
            }
        }
    }
    Ok(out)
}

fn format_of(file: &Path) -> anyhow::Result<ImportFormat> {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    Ok(match ext {
        "json" => ImportFormat::Json,
        "yaml" | "yml" => ImportFormat::Yaml,
        "env" => ImportFormat::Dotenv,
        _ if name == ".env" => ImportFormat::Dotenv,
        _ => bail!(
            "cannot tell the format of {}: give --format json|yaml|dotenv",
            file.display()
        ),
    })
}

fn read_file(file: &Path) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    if file == Path::new("-") {
        io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("reading stdin")?;
    } else {
        bytes = std::fs::read(file).with_context(|| format!("import {}", file.display()))?;
    }
    String::from_utf8(bytes)
        .map_err(|_| anyhow!("import {}: the file is not UTF-8 text", file.display()))
}

impl Report for Imported {
    fn write_text(&self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        let names: Vec<&str> = self.0.iter().map(SecretName::as_str).collect();
        to_json(&json!({ "stored": names }))
    }

    fn notes(&self) -> Vec<Note> {
        vec![Note::Info(format!(
            "stored {}",
            plural(self.0.len(), "secret", "secrets")
        ))]
    }
}
