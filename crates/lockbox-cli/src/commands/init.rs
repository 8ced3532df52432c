//! `lockbox init`: create the node's validator key and network key.

use std::io::{self, Write};

use lockbox_core::SecretsManager;

use crate::backend::BackendArgs;
use crate::commands::output::Identity;
use crate::report::{Note, Report};

/// The keys created: the node's identity, and a warning when they are stored unencrypted.
pub struct Initialised {
    identity: Identity,
    warning: Option<String>,
}

/// Creates both keys; refuses if either exists.
pub async fn run(args: BackendArgs) -> lockbox_core::Result<Initialised> {
    let backend = args.open().await?;
    let id = lockbox_keys::init_node(backend.as_ref()).await?;
    Ok(Initialised {
        identity: Identity::Both {
            address: id.address.to_string(),
            node_id: id.node_id,
            heading: "SECRETS INIT",
        },
        warning: unencrypted_warning(backend.as_ref(), &args),
    })
}

fn unencrypted_warning(backend: &dyn SecretsManager, args: &BackendArgs) -> Option<String> {
    (backend.backend() == "local").then(|| {
        let where_ = args
            .data_dir
            .as_deref()
            .map(|d| format!(" under {}", d.display()))
            .unwrap_or_default();
        format!(
            "local keys are stored unencrypted{where_}; anyone with this user's rights can read them"
        )
    })
}

impl Report for Initialised {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        self.identity.write_text(out)
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        self.identity.json()
    }

    fn notes(&self) -> Vec<Note> {
        self.warning.iter().cloned().map(Note::Warning).collect()
    }
}
