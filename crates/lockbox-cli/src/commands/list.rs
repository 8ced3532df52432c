//! `lockbox list`: list secret names.

use std::io::{self, Write};

use clap::Args;
use lockbox_core::SecretName;

use crate::backend::BackendArgs;
use crate::report::{Report, to_json};

/// Arguments of `lockbox list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Only names starting with this.
    #[arg(default_value = "")]
    prefix: String,
}

/// The names: one a line as text, an array as JSON.
pub struct Names(Vec<SecretName>);

/// Lists the names starting with `PREFIX`.
pub async fn run(args: ListArgs) -> lockbox_core::Result<Names> {
    let backend = args.backend.open().await?;
    Ok(Names(backend.list(&args.prefix).await?))
}

impl Report for Names {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        self.0
            .iter()
            .try_for_each(|n| writeln!(out, "{}", n.as_str()))
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        let names: Vec<&str> = self.0.iter().map(SecretName::as_str).collect();
        to_json(&names)
    }
}
