//! The init intent record: what an `init` is about to write, stored before its first key so
//! that the next `init` can roll back a half node that run left behind when it was killed,
//! touching only keys it can prove that run wrote.
//!
//! The record is a secret of its own ([`INIT_INTENT`]) in the same backend as the keys (an
//! owner-only file in the local backend), written with `PutMode::Create` and removed when the
//! run ends. It holds no key: for each key it names, a SHA3-256 digest of a random run id, the
//! name and the value. A key whose stored value matches its digest was written by that run;
//! anything else was not, and is never touched.

use std::fmt;

use lockbox_core::{Error, ErrorKind, PutMode, SecretName, SecretValue, SecretsManager};
use rand::RngCore;
use sha3::{Digest, Sha3_256};

/// Secret name of the init intent record (see [`init_node_with_repair`](crate::init_node_with_repair)).
/// It exists only while an `init` runs, or after one was killed.
pub const INIT_INTENT: &str = "lockbox-init-intent";

/// First line of the record.
const HEADER: &str = "lockbox init intent v1";

/// What the next `init` found and undid of an `init` that was killed or failed part way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitRepair {
    /// Keys that run had written (proven by their digests), now removed.
    pub removed: Vec<SecretName>,
    /// Keys it meant to write that are there with a value it did not write: left as they are.
    pub kept: Vec<SecretName>,
}

impl fmt::Display for InitRepair {
    /// `an interrupted init was rolled back: removed validator-key, which it had written`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an interrupted init was rolled back: ")?;
        if self.removed.is_empty() {
            f.write_str("it had written no key")?;
        } else {
            let verb = if self.removed.len() == 1 { "" } else { "s" };
            write!(
                f,
                "removed {}, the key{verb} it had written",
                join(&self.removed)
            )?;
        }
        if !self.kept.is_empty() {
            write!(
                f,
                "; left {} as it was (not written by that init)",
                join(&self.kept)
            )?;
        }
        Ok(())
    }
}

/// The record of one run, as stored.
pub(crate) struct Intent {
    run: [u8; 16],
    process: Option<ProcessId>,
    keys: Vec<(SecretName, String)>,
}

/// A process on one boot of one machine: Linux boot id, pid and start time (clock ticks
/// after boot), so a recycled pid is not taken for the same process.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ProcessId {
    boot: String,
    pid: u32,
    start: u64,
}

impl Intent {
    /// The record for writing `writes` in this process.
    pub(crate) fn new(writes: &[(SecretName, SecretValue)]) -> Self {
        let mut run = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut run);
        let keys = writes
            .iter()
            .map(|(name, value)| (name.clone(), digest(&run, name, value)))
            .collect();
        Self {
            run,
            process: ProcessId::current(),
            keys,
        }
    }

    pub(crate) fn encode(&self) -> SecretValue {
        let mut text = format!("{HEADER}\nrun {}\n", hex::encode(self.run));
        if let Some(p) = &self.process {
            text.push_str(&format!("process {} {} {}\n", p.boot, p.pid, p.start));
        }
        for (name, digest) in &self.keys {
            text.push_str(&format!("key {name} {digest}\n"));
        }
        SecretValue::from(text)
    }

    fn decode(value: &SecretValue) -> Option<Self> {
        let text = value.expose_str()?;
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let run_hex = lines.next()?.strip_prefix("run ")?;
        let mut run = [0u8; 16];
        hex::decode_to_slice(run_hex, &mut run).ok()?;
        let mut process = None;
        let mut keys = Vec::new();
        for line in lines {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields[..] {
                ["process", boot, pid, start] => {
                    process = Some(ProcessId {
                        boot: boot.to_owned(),
                        pid: pid.parse().ok()?,
                        start: start.parse().ok()?,
                    });
                }
                ["key", name, digest] if digest.len() == 64 => {
                    keys.push((SecretName::new(name).ok()?, digest.to_owned()));
                }
                _ => return None,
            }
        }
        Some(Self { run, process, keys })
    }

    /// Whether `value` stored as `name` is the one this run wrote.
    fn wrote(&self, name: &SecretName, value: &SecretValue) -> bool {
        self.keys
            .iter()
            .any(|(n, d)| n == name && *d == digest(&self.run, name, value))
    }
}

/// SHA3-256 of the run id, the name, a zero byte and the value, in hex.
fn digest(run: &[u8; 16], name: &SecretName, value: &SecretValue) -> String {
    let mut h = Sha3_256::new();
    h.update(run);
    h.update(name.as_str().as_bytes());
    h.update([0u8]);
    h.update(value.expose_bytes());
    hex::encode(h.finalize())
}

impl ProcessId {
    /// This process, on Linux; `None` elsewhere (then a record is always taken as stale).
    fn current() -> Option<Self> {
        let pid = std::process::id();
        Some(Self {
            boot: boot_id()?,
            pid,
            start: start_time(pid)?,
        })
    }

    /// Whether this is a process other than the current one that is still running.
    fn is_another_live_process(&self) -> bool {
        if self.pid == std::process::id() {
            return false;
        }
        boot_id().is_some_and(|b| b == self.boot) && start_time(self.pid) == Some(self.start)
    }
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| id.to_owned())
}

/// The start time of a running (not zombie) process, from `/proc/<pid>/stat`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); start time is field 22.
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// If a record of an earlier init is in `backend`, rolls that init back: removes every key
/// it proves that init wrote, leaves every other one, then removes the record. Refuses while
/// the process that wrote the record is still running on this machine.
pub(crate) async fn repair(backend: &dyn SecretsManager) -> Result<Option<InitRepair>, Error> {
    let record_name = SecretName::new(INIT_INTENT)?;
    // `has` first: a node without a record costs no read of a secret.
    if !backend.has(&record_name).await? {
        return Ok(None);
    }
    let Some(stored) = get_optional(backend, &record_name).await? else {
        return Ok(None);
    };
    let Some(intent) = Intent::decode(&stored) else {
        return Err(Error::new(
            ErrorKind::Corrupt,
            backend.backend(),
            format!(
                "{INIT_INTENT} (at {}) is not an init intent record lockbox wrote, so lockbox \
                 cannot tell which keys an interrupted init left; check the node's keys and \
                 remove {INIT_INTENT} (`lockbox delete {INIT_INTENT}`) to initialise",
                backend.location(&record_name)
            ),
        )
        .with_secret(&record_name));
    };
    if let Some(p) = intent
        .process
        .as_ref()
        .filter(|p| p.is_another_live_process())
    {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            backend.backend(),
            format!(
                "another lockbox init (process {}) is initialising this node right now; \
                 nothing was written",
                p.pid
            ),
        )
        .with_secret(&record_name));
    }
    let mut repair = InitRepair::default();
    for (name, _) in &intent.keys {
        match get_optional(backend, name).await? {
            Some(value) if intent.wrote(name, &value) => {
                match backend.delete(name).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
                repair.removed.push(name.clone());
            }
            Some(_) => repair.kept.push(name.clone()),
            None => {}
        }
    }
    match backend.delete(&record_name).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    Ok(Some(repair))
}

/// Writes the record for this run (never replacing one).
pub(crate) async fn record(backend: &dyn SecretsManager, intent: &Intent) -> Result<(), Error> {
    let name = SecretName::new(INIT_INTENT)?;
    backend
        .put(&name, &intent.encode(), PutMode::Create)
        .await
        .map_err(|e| {
            if e.kind() == ErrorKind::AlreadyExists {
                Error::new(
                    ErrorKind::AlreadyExists,
                    backend.backend(),
                    "another lockbox init started initialising this node meanwhile; nothing \
                     was written",
                )
                .with_secret(&name)
                .with_source(e)
            } else {
                e
            }
        })
}

/// Removes this run's record.
pub(crate) async fn clear(backend: &dyn SecretsManager) -> Result<(), Error> {
    let name = SecretName::new(INIT_INTENT)?;
    match backend.delete(&name).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

async fn get_optional(
    backend: &dyn SecretsManager,
    name: &SecretName,
) -> Result<Option<SecretValue>, Error> {
    match backend.get(name).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join(names: &[SecretName]) -> String {
    match names {
        [] => String::new(),
        [only] => only.to_string(),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| n.to_string()).collect();
            format!("{} and {last}", init.join(", "))
        }
    }
}
