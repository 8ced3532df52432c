//! `lockbox init`: create a node's keys, as `polygon-edge secrets init` does: the validator
//! (ECDSA) key, the BLS validator key and the network key, chosen by `--ecdsa`, `--bls` and
//! `--network`; `--num N` initialises N local nodes at once.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{ArgAction, Args};
use lockbox_core::{Error, ErrorKind, SecretName, SecretsManager};
use lockbox_keys::{
    InitRepair, NETWORK_KEY, NodeKeys, NodePublicKeys, VALIDATOR_BLS_KEY, VALIDATOR_KEY,
};
use serde_json::{Map, Value};

use crate::arg_error::ArgError;
use crate::backend::BackendArgs;
use crate::commands::output::write_block;
use crate::report::{Note, Report, to_json};

/// Whether `lockbox init` creates the BLS key when `--bls` is not given: yes, as Polygon Edge
/// does (IBFT's default validator type is BLS, and genesis needs each validator's BLS key).
const BLS_BY_DEFAULT: bool = true;

/// The most nodes one `--num` creates (Polygon Edge's limit).
const MAX_NUM: u8 = 30;

/// Arguments of `lockbox init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Create the validator (ECDSA) key, `validator-key` (`--ecdsa=false` skips it).
    #[arg(long, value_name = "BOOL", default_value = "true", num_args = 0..=1,
          default_missing_value = "true", value_parser = go_bool, action = ArgAction::Set)]
    ecdsa: bool,
    /// Create the BLS validator key, `validator-bls-key` (`--bls=false` skips it).
    #[arg(long, value_name = "BOOL", default_value_t = BLS_BY_DEFAULT, num_args = 0..=1,
          default_missing_value = "true", value_parser = go_bool, action = ArgAction::Set)]
    bls: bool,
    /// Create the network (libp2p) key, `network-key` (`--network=false` skips it).
    #[arg(long, value_name = "BOOL", default_value = "true", num_args = 0..=1,
          default_missing_value = "true", value_parser = go_bool, action = ArgAction::Set)]
    network: bool,
    /// Initialise N local nodes (1-30): `--data-dir node- --num 4` creates node-1 .. node-4,
    /// all or none. Not with --config.
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "config",
          value_parser = clap::value_parser!(u8).range(1..=MAX_NUM as i64))]
    num: u8,
    /// Accepted for scripts written for Polygon Edge; no effect (local keys are always stored
    /// unencrypted, and a warning says so).
    #[arg(long)]
    insecure: bool,
}

/// A boolean as Go's `strconv.ParseBool` (Polygon Edge's flags) reads it.
fn go_bool(s: &str) -> Result<bool, ArgError> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ArgError::NotABool(s.to_owned())),
    }
}

/// One initialised node: its data directory (with `--num` above 1), its public keys, and the
/// half node of an interrupted earlier init this run rolled back first.
struct Node {
    data_dir: Option<PathBuf>,
    keys: NodePublicKeys,
    repaired: Option<InitRepair>,
}

/// The keys created, node by node, and the warnings for stderr.
pub struct Initialised {
    nodes: Vec<Node>,
    warnings: Vec<String>,
}

/// Creates the requested keys; refuses if any of them exists (in any node, with `--num`).
pub async fn run(args: InitArgs) -> anyhow::Result<Initialised> {
    let keys = NodeKeys {
        ecdsa: args.ecdsa,
        bls: args.bls,
        network: args.network,
    };
    let mut warnings = Vec::new();
    let nodes = if args.num == 1 {
        let backend = args.backend.open().await?;
        let (keys, repaired) = init_one(backend.as_ref(), keys, &mut warnings).await?;
        if backend.backend() == "local" {
            warnings.push(unencrypted(
                args.backend.data_dir.as_ref().map(|d| d.display()),
            ));
        }
        vec![Node {
            data_dir: None,
            keys,
            repaired,
        }]
    } else {
        let prefix = args
            .backend
            .data_dir
            .expect("clap: --num conflicts with --config");
        let dirs = numbered_dirs(prefix, args.num);
        let nodes = init_many(&dirs, keys, &mut warnings).await?;
        let (first, last) = (&dirs[0], &dirs[dirs.len() - 1]);
        warnings.push(unencrypted(Some(format_args!(
            "{} .. {}",
            first.display(),
            last.display()
        ))));
        nodes
    };
    Ok(Initialised { nodes, warnings })
}

/// `prefix1` .. `prefixN`, as Polygon Edge names them (`node-` gives `node-1`, ...).
fn numbered_dirs(prefix: PathBuf, num: u8) -> Vec<PathBuf> {
    (1..=num)
        .map(|i| {
            let mut dir = OsString::from(prefix.as_os_str());
            dir.push(i.to_string());
            PathBuf::from(dir)
        })
        .collect()
}

/// Initialises one node and returns its public keys: the ones created, and when this run left
/// out the validator or network key (adding a key to an existing node), the node's other keys
/// too, as Polygon Edge reports them. Failing to read those is a warning: the keys were made.
/// Also returns what it repaired of an interrupted earlier init.
async fn init_one(
    backend: &dyn SecretsManager,
    keys: NodeKeys,
    warnings: &mut Vec<String>,
) -> lockbox_core::Result<(NodePublicKeys, Option<InitRepair>)> {
    let init = lockbox_keys::init_node_with_repair(backend, keys).await?;
    let (created, repaired) = (init.keys, init.repaired);
    if keys.ecdsa && keys.network {
        return Ok((created, repaired));
    }
    match lockbox_keys::read_public_keys(backend).await {
        Ok(all) => Ok((
            NodePublicKeys {
                address: created.address.or(all.address),
                bls_public_key: created.bls_public_key.or(all.bls_public_key),
                node_id: created.node_id.or(all.node_id),
            },
            repaired,
        )),
        Err(e) => {
            warnings.push(format!(
                "the keys were created, but reading the node's other keys failed: {e}"
            ));
            Ok((created, repaired))
        }
    }
}

/// Initialises every node in `dirs`, all or none: refuses before writing anything if any
/// requested key exists in any of them, and if a node fails, removes the keys written in the
/// nodes before it (the failing node rolls itself back).
async fn init_many(
    dirs: &[PathBuf],
    keys: NodeKeys,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<Node>> {
    let names = requested(keys)?;
    let backends: Vec<Arc<dyn SecretsManager>> = dirs
        .iter()
        .map(|d| lockbox_config::open_data_dir(d))
        .collect();

    // Half nodes of an interrupted earlier init are rolled back before the check.
    let mut repairs = Vec::with_capacity(dirs.len());
    for backend in &backends {
        repairs.push(lockbox_keys::repair_interrupted_init(backend.as_ref()).await?);
    }

    let mut existing = Vec::new();
    for (dir, backend) in dirs.iter().zip(&backends) {
        for name in &names {
            if backend.has(name).await? {
                existing.push(format!("{name} in {}", dir.display()));
            }
        }
    }
    if !existing.is_empty() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            "local",
            format!(
                "refusing to initialise {}: {} already exist; nothing was written",
                crate::report::plural(dirs.len(), "node", "nodes"),
                existing.join(", ")
            ),
        )
        .into());
    }

    let mut nodes = Vec::with_capacity(dirs.len());
    for (i, ((dir, backend), repaired)) in dirs.iter().zip(&backends).zip(repairs).enumerate() {
        match init_one(backend.as_ref(), keys, warnings).await {
            Ok((public, again)) => nodes.push(Node {
                data_dir: Some(dir.clone()),
                keys: public,
                repaired: repaired.or(again),
            }),
            Err(err) => {
                let undone = roll_back(&dirs[..i], &backends[..i], &names).await;
                anyhow::bail!("initialising {} failed: {err}; {undone}", dir.display());
            }
        }
    }
    Ok(nodes)
}

/// The secret names `keys` asks for.
fn requested(keys: NodeKeys) -> lockbox_core::Result<Vec<SecretName>> {
    [
        (keys.ecdsa, VALIDATOR_KEY),
        (keys.bls, VALIDATOR_BLS_KEY),
        (keys.network, NETWORK_KEY),
    ]
    .into_iter()
    .filter(|(wanted, _)| *wanted)
    .map(|(_, name)| SecretName::new(name))
    .collect()
}

/// Deletes `names` in the nodes this run already initialised; says what became of them.
async fn roll_back(
    dirs: &[PathBuf],
    backends: &[Arc<dyn SecretsManager>],
    names: &[SecretName],
) -> String {
    if dirs.is_empty() {
        return "no other node was written".to_owned();
    }
    let mut left = Vec::new();
    for (dir, backend) in dirs.iter().zip(backends) {
        for name in names {
            match backend.delete(name).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => left.push(format!("{name} in {} ({e})", dir.display())),
            }
        }
    }
    let done: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    if left.is_empty() {
        format!("removed the keys this run wrote in {}", done.join(", "))
    } else {
        format!(
            "removing the keys this run wrote in {} failed for {}: remove them before \
             initialising again",
            done.join(", "),
            left.join(", ")
        )
    }
}

/// The warning that local keys are stored unencrypted (`where_`: the data directory).
fn unencrypted(where_: Option<impl std::fmt::Display>) -> String {
    let where_ = where_.map(|d| format!(" under {d}")).unwrap_or_default();
    format!(
        "local keys are stored unencrypted{where_}; anyone with this user's rights can read them"
    )
}

/// The JSON object of one node: `address`, `bls_pubkey`, `node_id` (Polygon Edge's names), each
/// only when known, and `repaired` only when an interrupted earlier init was rolled back.
fn node_json(node: &Node) -> Map<String, Value> {
    let mut map = keys_json(&node.keys);
    if let Some(repair) = &node.repaired {
        map.insert("repaired".into(), repair_json(repair).into());
    }
    map
}

/// `{"removed": [...], "kept": [...], "message": "..."}`: the keys of the interrupted init that
/// were removed, those left because it had not written them, and the sentence saying so.
fn repair_json(repair: &InitRepair) -> Map<String, Value> {
    let names = |v: &[SecretName]| -> Value { v.iter().map(|n| n.to_string()).collect() };
    let mut map = Map::new();
    map.insert("removed".into(), names(&repair.removed));
    map.insert("kept".into(), names(&repair.kept));
    map.insert("message".into(), repair.to_string().into());
    map
}

/// `address`, `bls_pubkey`, `node_id`, each only when known.
fn keys_json(keys: &NodePublicKeys) -> Map<String, Value> {
    let mut map = Map::new();
    if let Some(address) = &keys.address {
        map.insert("address".into(), address.to_string().into());
    }
    if let Some(bls) = &keys.bls_public_key {
        map.insert("bls_pubkey".into(), bls.to_string().into());
    }
    if let Some(node_id) = &keys.node_id {
        map.insert("node_id".into(), node_id.clone().into());
    }
    map
}

impl Report for Initialised {
    /// One `[SECRETS INIT]` block per node, in order, as Polygon Edge prints them.
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        for node in &self.nodes {
            let keys = &node.keys;
            let mut lines = Vec::new();
            if let Some(address) = &keys.address {
                lines.push(("Public key (address)", address.to_string()));
            }
            if let Some(bls) = &keys.bls_public_key {
                lines.push(("BLS Public key", bls.to_string()));
            }
            if let Some(node_id) = &keys.node_id {
                lines.push(("Node ID", node_id.clone()));
            }
            write_block(out, "SECRETS INIT", &lines)?;
        }
        Ok(())
    }

    /// One node: an object (`{"address", "bls_pubkey", "node_id"}`); with `--num` above 1, an
    /// array of them, each also with its `data_dir`.
    fn json(&self) -> anyhow::Result<Option<String>> {
        match &self.nodes[..] {
            [one] if one.data_dir.is_none() => to_json(&node_json(one)),
            nodes => to_json(
                &nodes
                    .iter()
                    .map(|node| {
                        let mut map = Map::new();
                        if let Some(dir) = &node.data_dir {
                            map.insert("data_dir".into(), dir.display().to_string().into());
                        }
                        map.extend(node_json(node));
                        map
                    })
                    .collect::<Vec<_>>(),
            ),
        }
    }

    /// A note per repaired node (`repaired: an interrupted init was rolled back: ...`), then
    /// the warnings.
    fn notes(&self) -> Vec<Note> {
        let repairs = self.nodes.iter().filter_map(|node| {
            let repair = node.repaired.as_ref()?;
            Some(Note::Info(match &node.data_dir {
                Some(dir) => format!("repaired {}: {repair}", dir.display()),
                None => format!("repaired: {repair}"),
            }))
        });
        repairs
            .chain(self.warnings.iter().cloned().map(Note::Warning))
            .collect()
    }
}
