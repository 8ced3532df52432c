//! `lockbox output`: print the node's address and node ID.

use std::io::{self, Write};

use clap::Args;
use serde_json::json;

use crate::backend::BackendArgs;
use crate::report::{Report, to_json};

/// Arguments of `lockbox output`.
#[derive(Args, Debug)]
pub struct OutputArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Print only the validator address (reads only the validator key).
    #[arg(long, conflicts_with = "node_id")]
    validator: bool,
    /// Print only the node ID (reads only the network key).
    #[arg(long)]
    node_id: bool,
}

/// A node's identity, whole or one half.
pub enum Identity {
    /// Address and node ID, under a `[heading]` in the text form.
    Both {
        /// The validator address.
        address: String,
        /// The libp2p node ID.
        node_id: String,
        /// `SECRETS INIT` or `SECRETS OUTPUT`.
        heading: &'static str,
    },
    /// Only the address (printed bare).
    Address(String),
    /// Only the node ID (printed bare).
    NodeId(String),
}

/// Reads what `args` ask for, and only the keys that needs.
pub async fn run(args: OutputArgs) -> lockbox_core::Result<Identity> {
    let backend = args.backend.open().await?;
    let backend = backend.as_ref();
    if args.validator {
        let address = lockbox_keys::read_address(backend).await?;
        return Ok(Identity::Address(address.to_string()));
    }
    if args.node_id {
        return Ok(Identity::NodeId(lockbox_keys::read_node_id(backend).await?));
    }
    Ok(Identity::Both {
        address: lockbox_keys::read_address(backend).await?.to_string(),
        node_id: lockbox_keys::read_node_id(backend).await?,
        heading: "SECRETS OUTPUT",
    })
}

impl Report for Identity {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Identity::Both {
                address,
                node_id,
                heading,
            } => writeln!(
                out,
                "\n[{heading}]\nPublic key (address) = {address}\nNode ID              = {node_id}\n"
            ),
            Identity::Address(bare) | Identity::NodeId(bare) => writeln!(out, "{bare}"),
        }
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        to_json(&match self {
            Identity::Both {
                address, node_id, ..
            } => json!({ "address": address, "node_id": node_id }),
            Identity::Address(address) => json!({ "address": address }),
            Identity::NodeId(node_id) => json!({ "node_id": node_id }),
        })
    }
}
