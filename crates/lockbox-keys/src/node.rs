//! Creating and reading a node's secrets in any backend.

use lockbox_core::{Error, ErrorKind, PutMode, SecretName, SecretValue, SecretsManager};

use crate::{Address, KeyError, NETWORK_KEY, NetworkKey, VALIDATOR_KEY, ValidatorKey};

/// The public identity of a node: what operators share with other nodes (genesis validator
/// set, bootnode addresses). Holds no private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The validator address (from `validator-key`).
    pub address: Address,
    /// The libp2p node ID (from `network-key`).
    pub node_id: String,
}

/// Creates `validator-key` and `network-key` in `backend` and returns the node's identity.
///
/// Never overwrites and never leaves half a node behind:
/// - both names are checked first; if either exists nothing is written and the error
///   (`AlreadyExists`) names every secret that exists. An error from the check is returned
///   as it is: "cannot tell" is never taken as "absent".
/// - keys are written with [`PutMode::Create`] (validator first), so the backend itself refuses
///   to clobber a secret a concurrent writer created in between.
/// - if a write fails, every secret this run wrote is deleted again (never one it did not
///   write) and the error keeps the failing write's kind, names that secret and says what state
///   the node was left in, including any secret a failed clean-up left behind.
pub async fn init_node(backend: &dyn SecretsManager) -> Result<NodeIdentity, Error> {
    let names = [
        SecretName::new(VALIDATOR_KEY)?,
        SecretName::new(NETWORK_KEY)?,
    ];
    let mut existing = Vec::new();
    for name in &names {
        if backend.has(name).await? {
            existing.push(name);
        }
    }
    if !existing.is_empty() {
        return Err(refuse_existing(backend, &existing));
    }

    let validator = ValidatorKey::generate();
    let network = NetworkKey::generate();
    let identity = NodeIdentity {
        address: validator.address(),
        node_id: network.node_id(),
    };
    let writes = [
        (&names[0], validator.encode()),
        (&names[1], network.encode()),
    ];
    let mut written: Vec<&SecretName> = Vec::new();
    for (name, value) in &writes {
        if let Err(err) = backend.put(name, value, PutMode::Create).await {
            return Err(roll_back(backend, name, value, err, written).await);
        }
        written.push(name);
    }
    Ok(identity)
}

/// Reads `validator-key` (and nothing else) and returns its address. A stored value that is
/// not a valid key is a `Corrupt` error naming the secret; it never quotes the stored bytes.
pub async fn read_address(backend: &dyn SecretsManager) -> Result<Address, Error> {
    let name = SecretName::new(VALIDATOR_KEY)?;
    let value = backend.get(&name).await?;
    let key = ValidatorKey::decode(&value).map_err(|e| corrupt(backend, &name, &e))?;
    Ok(key.address())
}

/// Reads `network-key` (and nothing else) and returns the node ID. A stored value that is not
/// a valid key is a `Corrupt` error naming the secret; it never quotes the stored bytes.
pub async fn read_node_id(backend: &dyn SecretsManager) -> Result<String, Error> {
    let name = SecretName::new(NETWORK_KEY)?;
    let value = backend.get(&name).await?;
    let key = NetworkKey::decode(&value).map_err(|e| corrupt(backend, &name, &e))?;
    Ok(key.node_id())
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

/// Undoes this run's writes after writing `failed` went wrong, and builds the error to return.
async fn roll_back(
    backend: &dyn SecretsManager,
    failed: &SecretName,
    value: &SecretValue,
    err: Error,
    written: Vec<&SecretName>,
) -> Error {
    let mut ours = written;
    let mut unknown = None;
    // A create that reported an error may still have stored the value (a timeout after the
    // backend committed). Only our own random key counts as ours; `AlreadyExists` means the
    // secret there belongs to someone else.
    if err.kind() != ErrorKind::AlreadyExists {
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
    if left_behind.is_empty() && unknown.is_none() {
        message.push_str("; the node was left as it was");
    }
    Error::new(err.kind(), backend.backend(), message)
        .with_secret(failed)
        .with_source(err)
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
