//! Creating and reading a node's secrets in any backend.

use lockbox_core::{
    Error, ErrorKind, PutMode, SecretName, SecretValue, SecretsManager, SecretsManagerExt,
};

use crate::intent::{self, INIT_INTENT, InitRepair, Intent};
use crate::{
    Address, BlsKey, BlsPublicKey, KeyError, NETWORK_KEY, NetworkKey, VALIDATOR_BLS_KEY,
    VALIDATOR_KEY, ValidatorKey, genesis_validator,
};

/// The public identity of a node: what operators share with other nodes (genesis validator
/// set, bootnode addresses). Holds no private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The validator address (from `validator-key`).
    pub address: Address,
    /// The libp2p node ID (from `network-key`).
    pub node_id: String,
    /// The BLS public key (from `validator-bls-key`), when the node has one.
    pub bls_public_key: Option<BlsPublicKey>,
}

impl NodeIdentity {
    /// The string Polygon Edge's `genesis --ibft-validator` takes for this node as a BLS
    /// validator (`<0xADDRESS>:<0xBLS_PUBKEY>`, see [`genesis_validator`]); `None` without a
    /// BLS key (an ECDSA validator is given by its address alone).
    pub fn genesis_validator(&self) -> Option<String> {
        self.bls_public_key
            .as_ref()
            .map(|bls| genesis_validator(&self.address, bls))
    }
}

/// Which node keys [`init_node_with`] creates, like the `--ecdsa`, `--bls` and `--network`
/// flags of `polygon-edge secrets init`. The default is all three, as there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeKeys {
    /// `validator-key`, the secp256k1 (ECDSA) validator key.
    pub ecdsa: bool,
    /// `validator-bls-key`, the BLS12-381 validator key.
    pub bls: bool,
    /// `network-key`, the libp2p network key.
    pub network: bool,
}

impl NodeKeys {
    /// All three keys: Polygon Edge's default.
    pub const ALL: Self = Self {
        ecdsa: true,
        bls: true,
        network: true,
    };
    /// The validator and network keys, no BLS key: what [`init_node`] creates.
    pub const ECDSA_AND_NETWORK: Self = Self {
        ecdsa: true,
        bls: false,
        network: true,
    };
    /// The BLS key alone: what [`add_bls_key`] creates.
    pub const BLS_ONLY: Self = Self {
        ecdsa: false,
        bls: true,
        network: false,
    };
}

impl Default for NodeKeys {
    fn default() -> Self {
        Self::ALL
    }
}

/// The public identities of some of a node's keys, each `None` when that key was not created
/// ([`init_node_with`]) or is absent ([`read_public_keys`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodePublicKeys {
    /// The validator address (from `validator-key`).
    pub address: Option<Address>,
    /// The BLS public key (from `validator-bls-key`).
    pub bls_public_key: Option<BlsPublicKey>,
    /// The libp2p node ID (from `network-key`).
    pub node_id: Option<String>,
}

impl NodePublicKeys {
    /// The `genesis --ibft-validator` string of a BLS validator, when both the address and the
    /// BLS public key are known (see [`genesis_validator`]).
    pub fn genesis_validator(&self) -> Option<String> {
        match (&self.address, &self.bls_public_key) {
            (Some(address), Some(bls)) => Some(genesis_validator(address, bls)),
            _ => None,
        }
    }
}

/// Creates `validator-key` and `network-key` (no BLS key) in `backend` and returns the node's
/// identity. Same as [`init_node_with`] and [`NodeKeys::ECDSA_AND_NETWORK`]; Polygon Edge's
/// default also creates the BLS key: `init_node_with(backend, NodeKeys::ALL)`.
pub async fn init_node(backend: &dyn SecretsManager) -> Result<NodeIdentity, Error> {
    let created = init_node_with(backend, NodeKeys::ECDSA_AND_NETWORK).await?;
    Ok(NodeIdentity {
        address: created.address.expect("validator-key was created"),
        node_id: created.node_id.expect("network-key was created"),
        bls_public_key: None,
    })
}

/// What [`init_node_with_repair`] did: the keys it created, and what it repaired first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInit {
    /// The public identities of the keys created (as [`init_node_with`] returns them).
    pub keys: NodePublicKeys,
    /// The half node an earlier, interrupted init left behind and this run rolled back first,
    /// if there was one.
    pub repaired: Option<InitRepair>,
}

/// Creates the keys `keys` asks for in `backend` (in Polygon Edge's order: `validator-key`,
/// `validator-bls-key`, `network-key`) and returns their public identities. Keys not asked for
/// are neither written nor read, so this also adds a missing key to an existing node (see
/// [`add_bls_key`]). Asking for no key is an `InvalidConfig` error. Same as
/// [`init_node_with_repair`], without saying what was repaired.
pub async fn init_node_with(
    backend: &dyn SecretsManager,
    keys: NodeKeys,
) -> Result<NodePublicKeys, Error> {
    Ok(init_node_with_repair(backend, keys).await?.keys)
}

/// [`init_node_with`], also returning what it repaired.
///
/// Never overwrites and never leaves half a node behind, even when killed at any point:
/// - an [`INIT_INTENT`] record left by an earlier init that was killed (or whose clean-up
///   failed) is handled first: every key that init proves it wrote (by a digest of its value
///   in the record) is removed, every other key is left as it is, then the record is removed;
///   [`NodeInit::repaired`] says what was done. While the process that wrote the record still
///   runs on this machine, this refuses (`AlreadyExists`) instead.
/// - every requested name is checked next; if any exists nothing is written and the error
///   (`AlreadyExists`) names every requested secret that exists. An error from the check is
///   returned as it is: "cannot tell" is never taken as "absent".
/// - this run's own record is written (with [`PutMode::Create`]) before its first key and
///   removed after its last, so a kill in between is repaired by the next init.
/// - keys are written with [`PutMode::Create`], so the backend itself refuses to clobber a
///   secret a concurrent writer created in between.
/// - if a write fails, every secret this run wrote is deleted again (never one it did not
///   write) and the error keeps the failing write's kind, names that secret and says what state
///   the node was left in, including any secret a failed clean-up left behind (the record is
///   then kept, so the next init removes it).
pub async fn init_node_with_repair(
    backend: &dyn SecretsManager,
    keys: NodeKeys,
) -> Result<NodeInit, Error> {
    let mut created = NodePublicKeys::default();
    let mut writes: Vec<(SecretName, SecretValue)> = Vec::with_capacity(3);
    if keys.ecdsa {
        let key = ValidatorKey::generate();
        created.address = Some(key.address());
        writes.push((SecretName::new(VALIDATOR_KEY)?, key.encode()));
    }
    if keys.bls {
        let key = BlsKey::generate();
        created.bls_public_key = Some(key.public_key());
        writes.push((SecretName::new(VALIDATOR_BLS_KEY)?, key.encode()));
    }
    if keys.network {
        let key = NetworkKey::generate();
        created.node_id = Some(key.node_id());
        writes.push((SecretName::new(NETWORK_KEY)?, key.encode()));
    }
    if writes.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            backend.backend(),
            "nothing to initialise: the validator, BLS and network keys were all left out",
        ));
    }

    let repaired = intent::repair(backend).await?;

    let mut existing = Vec::new();
    for (name, _) in &writes {
        if backend.has(name).await? {
            existing.push(name);
        }
    }
    if !existing.is_empty() {
        return Err(refuse_existing(backend, &existing));
    }

    let record = Intent::new(&writes);
    intent::record(backend, &record).await?;
    lockbox_fs::crash_point("recorded the init intent");

    let mut written: Vec<&SecretName> = Vec::new();
    for (name, value) in &writes {
        if let Err(err) = backend.put(name, value, PutMode::Create).await {
            let (err, clean) = roll_back(backend, name, value, err, written).await;
            if clean {
                // Nothing of this run is left; a record that outlives a failed removal only
                // makes the next init find nothing to repair.
                let _ = intent::clear(backend).await;
            }
            return Err(err);
        }
        lockbox_fs::crash_point("wrote a key");
        written.push(name);
    }
    if let Err(e) = intent::clear(backend).await {
        return Err(Error::new(
            e.kind(),
            backend.backend(),
            format!(
                "the keys were written, but removing the init intent record {INIT_INTENT} \
                 failed: {}; run `lockbox init` again: it removes this run's keys and starts \
                 over",
                describe(&e)
            ),
        )
        .with_source(e));
    }
    lockbox_fs::crash_point("removed the init intent");
    Ok(NodeInit {
        keys: created,
        repaired,
    })
}

/// Rolls back the half node an earlier, interrupted init left in `backend`, as
/// [`init_node_with_repair`] does first: `None` when there is no [`INIT_INTENT`] record.
/// Callers that check for existing keys themselves before initialising (several nodes at
/// once) call this first.
pub async fn repair_interrupted_init(
    backend: &dyn SecretsManager,
) -> Result<Option<InitRepair>, Error> {
    intent::repair(backend).await
}

/// Gives a node a BLS key without touching its other secrets: creates `validator-bls-key`
/// alone (as `polygon-edge secrets init --ecdsa=false --network=false` does) and returns its
/// public key. `AlreadyExists` if the node has one; nothing is overwritten.
pub async fn add_bls_key(backend: &dyn SecretsManager) -> Result<BlsPublicKey, Error> {
    let created = init_node_with(backend, NodeKeys::BLS_ONLY).await?;
    Ok(created
        .bls_public_key
        .expect("validator-bls-key was created"))
}

/// Reads `validator-key` (and nothing else) and returns its address. A stored value that is
/// not a valid key is a `Corrupt` error naming the secret; it never quotes the stored bytes.
pub async fn read_address(backend: &dyn SecretsManager) -> Result<Address, Error> {
    let name = SecretName::new(VALIDATOR_KEY)?;
    let value = backend.get(&name).await?;
    Ok(decode_validator(backend, &name, &value)?.address())
}

/// Reads `network-key` (and nothing else) and returns the node ID. A stored value that is not
/// a valid key is a `Corrupt` error naming the secret; it never quotes the stored bytes.
pub async fn read_node_id(backend: &dyn SecretsManager) -> Result<String, Error> {
    let name = SecretName::new(NETWORK_KEY)?;
    let value = backend.get(&name).await?;
    Ok(decode_network(backend, &name, &value)?.node_id())
}

/// Reads `validator-bls-key` (and nothing else) and returns its public key. `NotFound` when
/// the node has none; a stored value that is not a valid key is a `Corrupt` error naming the
/// secret (and its file or parameter); it never quotes the stored bytes.
pub async fn read_bls_public_key(backend: &dyn SecretsManager) -> Result<BlsPublicKey, Error> {
    let name = SecretName::new(VALIDATOR_BLS_KEY)?;
    let value = backend.get(&name).await?;
    Ok(decode_bls(backend, &name, &value)?.public_key())
}

/// Reads the node's identity: `validator-key` and `network-key`, which must exist, and
/// `validator-bls-key` when it exists (`bls_public_key` is `None` when it does not).
pub async fn read_identity(backend: &dyn SecretsManager) -> Result<NodeIdentity, Error> {
    let address = read_address(backend).await?;
    let name = SecretName::new(VALIDATOR_BLS_KEY)?;
    let bls_public_key = match backend.get_optional(&name).await? {
        Some(value) => Some(decode_bls(backend, &name, &value)?.public_key()),
        None => None,
    };
    let node_id = read_node_id(backend).await?;
    Ok(NodeIdentity {
        address,
        node_id,
        bls_public_key,
    })
}

/// Reads whichever of the three keys exist and returns their public identities, as Polygon
/// Edge's `secrets init` reports a node after creating some of its keys. An absent key is
/// `None`; any other failure, or a key that does not decode, is an error.
pub async fn read_public_keys(backend: &dyn SecretsManager) -> Result<NodePublicKeys, Error> {
    let validator = SecretName::new(VALIDATOR_KEY)?;
    let bls = SecretName::new(VALIDATOR_BLS_KEY)?;
    let network = SecretName::new(NETWORK_KEY)?;
    let mut out = NodePublicKeys::default();
    if let Some(value) = backend.get_optional(&validator).await? {
        out.address = Some(decode_validator(backend, &validator, &value)?.address());
    }
    if let Some(value) = backend.get_optional(&bls).await? {
        out.bls_public_key = Some(decode_bls(backend, &bls, &value)?.public_key());
    }
    if let Some(value) = backend.get_optional(&network).await? {
        out.node_id = Some(decode_network(backend, &network, &value)?.node_id());
    }
    Ok(out)
}

fn decode_validator(
    backend: &dyn SecretsManager,
    name: &SecretName,
    value: &SecretValue,
) -> Result<ValidatorKey, Error> {
    ValidatorKey::decode(value).map_err(|e| corrupt(backend, name, &e))
}

fn decode_bls(
    backend: &dyn SecretsManager,
    name: &SecretName,
    value: &SecretValue,
) -> Result<BlsKey, Error> {
    BlsKey::decode(value).map_err(|e| corrupt(backend, name, &e))
}

fn decode_network(
    backend: &dyn SecretsManager,
    name: &SecretName,
    value: &SecretValue,
) -> Result<NetworkKey, Error> {
    NetworkKey::decode(value).map_err(|e| corrupt(backend, name, &e))
}

/// `Corrupt` for a stored key that does not decode, with where it is stored when that says
/// more than its name (a file path, a parameter name).
fn corrupt(backend: &dyn SecretsManager, name: &SecretName, err: &KeyError) -> Error {
    let location = backend.location(name);
    let message = if location == name.as_str() {
        err.to_string()
    } else {
        format!("{err} (stored at {location})")
    };
    Error::new(ErrorKind::Corrupt, backend.backend(), message).with_secret(name)
}

/// `AlreadyExists` naming every node secret that is already there.
fn refuse_existing(backend: &dyn SecretsManager, existing: &[&SecretName]) -> Error {
    let verb = if existing.len() == 1 {
        "already exists"
    } else {
        "already exist"
    };
    let message = format!(
        "refusing to initialise: {} {verb}; nothing was written",
        join(existing)
    );
    let err = Error::new(ErrorKind::AlreadyExists, backend.backend(), message);
    match existing {
        [only] => err.with_secret(only),
        _ => err,
    }
}

/// Undoes this run's writes after writing `failed` went wrong, and builds the error to return;
/// `true` when nothing this run wrote is left (or may be left).
async fn roll_back(
    backend: &dyn SecretsManager,
    failed: &SecretName,
    value: &SecretValue,
    err: Error,
    written: Vec<&SecretName>,
) -> (Error, bool) {
    let mut ours = written;
    let mut unknown = None;
    // A create that reported an error may still have stored the value (a timeout after the
    // backend committed), so only an unavailable or unclassified backend leaves that open;
    // a refusal (already exists, denied, invalid, something in the way) wrote nothing. Only
    // our own random key counts as ours.
    if matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Backend) {
        match backend.get(failed).await {
            Ok(stored) if stored.expose_bytes() == value.expose_bytes() => ours.push(failed),
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => unknown = Some(e),
        }
    }

    let mut removed = Vec::new();
    let mut left_behind = Vec::new();
    for name in ours.iter().rev() {
        match backend.delete(name).await {
            Ok(()) => removed.push(*name),
            // Already gone: the node is as it was before this run either way.
            Err(e) if e.is_not_found() => {}
            Err(e) => left_behind.push((*name, e)),
        }
    }
    removed.reverse();
    left_behind.reverse();

    let mut message = format!("writing {failed} failed: {}", describe(&err));
    if removed.is_empty() {
        message.push_str("; nothing else was written by this run");
    } else {
        message.push_str(&format!("; removed {} written by this run", join(&removed)));
    }
    for (name, e) in &left_behind {
        message.push_str(&format!(
            "; removing {name} written by this run also failed ({}): {name} was left behind \
             and must be removed before initialising again",
            describe(e)
        ));
    }
    if let Some(e) = &unknown {
        message.push_str(&format!(
            "; could not check whether {failed} was stored despite the error ({}): check it \
             before initialising again",
            describe(e)
        ));
    }
    let clean = left_behind.is_empty() && unknown.is_none();
    if clean {
        message.push_str("; the node was left as it was");
    } else {
        message.push_str(&format!(
            "; the init intent record {INIT_INTENT} was kept, so the next `lockbox init` \
             removes what this run left"
        ));
    }
    let err = Error::new(err.kind(), backend.backend(), message)
        .with_secret(failed)
        .with_source(err);
    (err, clean)
}

/// An error's own message, or its full text when it has none.
fn describe(err: &Error) -> String {
    if err.message().is_empty() {
        err.to_string()
    } else {
        err.message().to_owned()
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join(names: &[&SecretName]) -> String {
    match names {
        [] => String::new(),
        [only] => only.to_string(),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| n.to_string()).collect();
            format!("{} and {last}", init.join(", "))
        }
    }
}
