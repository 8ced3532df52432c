//! `lockbox output`: print the node's public identity (address, BLS public key, node ID), as
//! `polygon-edge secrets output` does, or one value of it bare.

use std::io::{self, Write};

use clap::Args;
use lockbox_core::{SecretName, SecretsManager};
use lockbox_keys::NodeIdentity;
use serde_json::{Map, Value, json};

use crate::backend::BackendArgs;
use crate::report::{Report, to_json};

/// Arguments of `lockbox output`.
#[derive(Args, Debug)]
pub struct OutputArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Print only the validator address (reads only the validator key).
    #[arg(long, conflicts_with_all = ["node_id", "bls", "ibft_validator"])]
    validator: bool,
    /// Print only the node ID (reads only the network key).
    #[arg(long, conflicts_with_all = ["bls", "ibft_validator"])]
    node_id: bool,
    /// Print only the BLS public key (reads only the BLS key).
    #[arg(long, conflicts_with = "ibft_validator")]
    bls: bool,
    /// Print only the `0xADDRESS:0xBLS_PUBKEY` string `polygon-edge genesis --ibft-validator`
    /// takes for this node (reads the validator and BLS keys).
    #[arg(long)]
    ibft_validator: bool,
}

/// A node's identity, whole or one value of it.
pub enum Identity {
    /// The whole node, under `[SECRETS OUTPUT]` in the text form.
    Node(NodeIdentity),
    /// One value, printed bare; `{key: value}` as JSON.
    Bare {
        /// The JSON key: `address`, `node_id`, `bls` or `ibft_validator`.
        key: &'static str,
        /// The value.
        value: String,
    },
}

/// Reads what `args` ask for, and only the keys that needs. A key missing from a node an
/// interrupted init left half-written says so, and that `lockbox init` repairs it.
pub async fn run(args: OutputArgs) -> lockbox_core::Result<Identity> {
    let backend = args.backend.open().await?;
    let backend = backend.as_ref();
    match read(&args, backend).await {
        Err(e) if e.is_not_found() => {
            let intent = SecretName::new(lockbox_keys::INIT_INTENT)?;
            if backend.has(&intent).await.unwrap_or(false) {
                let hint = "an interrupted `lockbox init` left this node half-written: run \
                            `lockbox init` again to roll it back and initialise it";
                let message = match e.message() {
                    "" => hint.to_owned(),
                    m => format!("{m}; {hint}"),
                };
                return Err(e.with_message(message));
            }
            Err(e)
        }
        other => other,
    }
}

async fn read(args: &OutputArgs, backend: &dyn SecretsManager) -> lockbox_core::Result<Identity> {
    let bare = |key, value| Ok(Identity::Bare { key, value });
    if args.validator {
        return bare(
            "address",
            lockbox_keys::read_address(backend).await?.to_string(),
        );
    }
    if args.node_id {
        return bare("node_id", lockbox_keys::read_node_id(backend).await?);
    }
    if args.bls {
        let bls = lockbox_keys::read_bls_public_key(backend).await?;
        return bare("bls", bls.to_string());
    }
    if args.ibft_validator {
        let address = lockbox_keys::read_address(backend).await?;
        let bls = lockbox_keys::read_bls_public_key(backend).await?;
        return bare(
            "ibft_validator",
            lockbox_keys::genesis_validator(&address, &bls),
        );
    }
    Ok(Identity::Node(lockbox_keys::read_identity(backend).await?))
}

/// Writes `\n[heading]\n`, one `label = value` line per entry with the labels padded to the
/// longest (Polygon Edge's layout), then an empty line.
pub fn write_block(out: &mut dyn Write, heading: &str, lines: &[(&str, String)]) -> io::Result<()> {
    let width = lines
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    writeln!(out, "\n[{heading}]")?;
    for (label, value) in lines {
        writeln!(out, "{label:<width$} = {value}")?;
    }
    writeln!(out)
}

impl Report for Identity {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Identity::Node(id) => {
                // Polygon Edge prints `<none>` for an absent BLS key.
                let bls = id
                    .bls_public_key
                    .map_or_else(|| "<none>".to_owned(), |bls| bls.to_string());
                let lines = [
                    ("Public key (address)", id.address.to_string()),
                    ("BLS Public key", bls),
                    ("Node ID", id.node_id.clone()),
                ];
                write_block(out, "SECRETS OUTPUT", &lines)
            }
            Identity::Bare { value, .. } => writeln!(out, "{value}"),
        }
    }

    /// `{"address", "bls", "ibft_validator", "node_id"}`; `bls` and `ibft_validator` only when
    /// the node has a BLS key.
    fn json(&self) -> anyhow::Result<Option<String>> {
        match self {
            Identity::Node(id) => {
                let mut map = Map::new();
                map.insert("address".into(), id.address.to_string().into());
                if let (Some(bls), Some(validator)) = (&id.bls_public_key, id.genesis_validator()) {
                    map.insert("bls".into(), bls.to_string().into());
                    map.insert("ibft_validator".into(), validator.into());
                }
                map.insert("node_id".into(), Value::from(id.node_id.clone()));
                to_json(&map)
            }
            Identity::Bare { key, value } => to_json(&json!({ *key: value })),
        }
    }
}
