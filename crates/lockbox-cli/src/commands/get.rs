//! `lockbox get`: print a secret's value.

use std::io::{self, Write};

use clap::Args;
use lockbox_core::{SecretName, SecretValue, Version};
use serde::Serialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::backend::BackendArgs;
use crate::report::{Report, base64, to_json};

/// Arguments of `lockbox get` and `lockbox delete`.
#[derive(Args, Debug)]
pub struct NameArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Secret name, such as validator-key or app/db-password.
    pub name: String,
}

/// A secret's value: raw bytes as text, `{"name", "value"}` (or `"value_base64"` when not
/// UTF-8) as JSON.
pub struct Got {
    name: SecretName,
    value: SecretValue,
}

/// Reads `NAME`, `NAME:3` (an SSM version) or `NAME:label`.
pub async fn run(args: NameArgs) -> lockbox_core::Result<Got> {
    let backend = args.backend.open().await?;
    let (name, version) = match args.name.split_once(':') {
        Some((name, selector)) if !selector.is_empty() => (name, Version::from_selector(selector)),
        _ => (args.name.as_str(), Version::Current),
    };
    let name = SecretName::new(name)?;
    let value = backend.get_version(&name, &version).await?;
    Ok(Got { name, value })
}

impl Report for Got {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.value.expose_bytes())
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        // Rendered from borrowed fields (no intermediate JSON value holding a copy); the
        // rendered line is freed, and zeroed, once printed.
        #[derive(Serialize)]
        struct Text<'a> {
            name: &'a str,
            value: &'a str,
        }
        let name = self.name.as_str();
        match self.value.expose_str() {
            Some(value) => to_json(&Text { name, value }),
            None => {
                let encoded = Zeroizing::new(base64(self.value.expose_bytes()));
                to_json(&json!({ "name": name, "value_base64": encoded.as_str() }))
            }
        }
    }
}
