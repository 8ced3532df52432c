//! `lockbox env`: the secrets as `export NAME='value'` lines for a POSIX shell (chamber's
//! `env`): `eval "$(lockbox env --config app.json)"`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use clap::Args;
use lockbox_core::{Error, ErrorKind};
use lockbox_env::shell_quote;

use crate::commands::sources::{SourceArgs, ValueArgs};
use crate::report::{Report, to_json};

/// Arguments of `lockbox env`.
#[derive(Args, Debug)]
pub struct EnvArgs {
    #[command(flatten)]
    sources: SourceArgs,
    #[command(flatten)]
    values: ValueArgs,
}

/// The variables: `export NAME='value'` lines as text, `{"NAME": "value"}` as JSON.
pub struct Variables(BTreeMap<String, String>);

/// Reads every source and maps names to variables.
pub async fn run(args: EnvArgs) -> lockbox_core::Result<Variables> {
    let sources = args.sources.open().await?;
    let loaded = lockbox_env::load(&sources).await?;
    let vars = args.values.variables(&loaded)?;
    if let Some((var, _)) = vars.iter().find(|(_, v)| v.contains('\0')) {
        return Err(Error::input(
            ErrorKind::Unsupported,
            format!(
                "the value for {var} holds a NUL byte, which no shell variable can hold; ask \
                 for it base64-encoded (--binary=base64)"
            ),
        ));
    }
    Ok(Variables(vars))
}

impl Report for Variables {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        for (k, v) in &self.0 {
            writeln!(out, "export {k}={}", shell_quote(v))?;
        }
        Ok(())
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        to_json(&self.0)
    }
}
