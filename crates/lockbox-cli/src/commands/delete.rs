//! `lockbox delete`: delete a secret.

use std::io::{self, Write};

use lockbox_core::SecretName;
use serde_json::json;

use crate::commands::get::NameArgs;
use crate::report::{Report, to_json};

/// The secret deleted: nothing as text, `{"name", "deleted": true}` as JSON.
pub struct Deleted {
    name: SecretName,
}

/// Deletes `NAME`.
pub async fn run(args: NameArgs) -> lockbox_core::Result<Deleted> {
    let backend = args.backend.open().await?;
    let name = SecretName::new(args.name)?;
    backend.delete(&name).await?;
    Ok(Deleted { name })
}

impl Report for Deleted {
    fn write_text(&self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        to_json(&json!({ "name": self.name.as_str(), "deleted": true }))
    }
}
