//! `lockbox export`: the name/value map as JSON, YAML, dotenv, tfvars, Java properties, CSV or
//! TSV (chamber's `export`), on stdout or into a file written atomically with mode 0600.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use lockbox_core::PutMode;
use lockbox_env::Format;
use serde_json::json;

use crate::commands::sources::{SourceArgs, ValueArgs};
use crate::report::{Note, Report, to_json};

/// Arguments of `lockbox export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    sources: SourceArgs,
    #[command(flatten)]
    values: ValueArgs,
    /// json, yaml, dotenv (the python-dotenv / npm dotenv dialect), tfvars, java-properties, csv
    /// or tsv. dotenv and tfvars are keyed by variable name (as `exec` sets them), the others by
    /// secret name.
    #[arg(long, short = 'f', value_name = "FORMAT", default_value = "json")]
    format: Format,
    /// Write to FILE (atomically, mode 0600) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE", visible_alias = "output-file")]
    output: Option<PathBuf>,
    /// With -o, replace FILE if it exists (by default export refuses to).
    #[arg(long, requires = "output")]
    force: bool,
}

/// The document on stdout (with `--json`: a json document as it is, any other format as
/// `{"format", "document"}`), or, with `-o`, nothing on stdout as text and `{"file", "format",
/// "count"}` as JSON.
pub enum Exported {
    /// Printed, and its format.
    Document(String, Format),
    /// Written to a file.
    File {
        /// The file.
        path: PathBuf,
        /// Its format.
        format: Format,
        /// How many entries.
        count: usize,
    },
}

/// Reads every source and renders (and writes) the document.
pub async fn run(args: ExportArgs) -> anyhow::Result<Exported> {
    let sources = args.sources.open().await?;
    let loaded = lockbox_env::load(&sources).await?;
    let document = args
        .format
        .render(&loaded, args.values.preserve_case, args.values.binary())?;
    let Some(path) = args.output else {
        return Ok(Exported::Document(document, args.format));
    };
    let count = if args.format.keyed_by_variable() {
        loaded.variables(args.values.preserve_case)?.len()
    } else {
        loaded.len()
    };
    let mode = if args.force {
        PutMode::Overwrite
    } else {
        PutMode::Create
    };
    lockbox_fs::write_file_atomic(&path, document.as_bytes(), mode).with_context(|| {
        if mode == PutMode::Create {
            format!("export -o {} (use --force to replace it)", path.display())
        } else {
            format!("export -o {}", path.display())
        }
    })?;
    Ok(Exported::File {
        path,
        format: args.format,
        count,
    })
}

impl Report for Exported {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Exported::Document(d, _) => out.write_all(d.as_bytes()),
            Exported::File { .. } => Ok(()),
        }
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        match self {
            Exported::Document(d, Format::Json) => {
                Ok(Some(d.strip_suffix('\n').unwrap_or(d).to_owned()))
            }
            Exported::Document(d, format) => {
                to_json(&json!({ "format": format.name(), "document": d }))
            }
            Exported::File {
                path,
                format,
                count,
            } => to_json(&json!({
                "file": path.display().to_string(),
                "format": format.name(),
                "count": count,
            })),
        }
    }

    fn notes(&self) -> Vec<Note> {
        match self {
            Exported::File {
                path,
                format,
                count,
            } => vec![Note::Info(format!(
                "wrote {} as {format} to {}",
                crate::report::plural(*count, "entry", "entries"),
                path.display()
            ))],
            Exported::Document(..) => Vec::new(),
        }
    }
}
