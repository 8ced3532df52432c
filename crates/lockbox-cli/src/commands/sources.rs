//! `SERVICE | --config FILE | --data-dir DIR | --store DIR`, each repeatable and in order, with
//! `--prefix P`, `--key-file FILE` and `--recursive`: the sources `exec`, `env`, `export`,
//! `import` and `history` read. Later sources win.
//!
//! A positional `SERVICE` is a chamber service, read as chamber reads it (see
//! [`crate::chamber`]): `lockbox exec myapp other -- cmd` is `chamber exec myapp other -- cmd`.
//!
//! `--prefix P` narrows the source given just before it; a `--prefix` before every source
//! narrows each source that has none of its own. `--key-file FILE` names the key of the
//! `--store` just before it (default: `<store dir>.key`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches, value_parser};
use lockbox_core::SecretsManager;
use lockbox_env::Source;
use lockbox_resources::Store;

use crate::backend::BackendArgs;

/// Where one source's secrets are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// A secretsManagerConfig.json (its node prefix `<path>/<name>/` is the set).
    Config(PathBuf),
    /// A local data directory.
    DataDir(PathBuf),
    /// A sealed store, read offline, with its key file when given.
    Store(PathBuf, Option<PathBuf>),
    /// A chamber service (normalised): SSM parameters `/<service>/<key>`.
    Service(String),
}

/// One source and its prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    /// Where.
    pub place: Place,
    /// Only names starting with this.
    pub prefix: String,
    /// For a service: read its sub-paths too (`--recursive`).
    pub recursive: bool,
}

/// The sources, in the order given.
#[derive(Clone, Debug, Default)]
pub struct SourceArgs {
    /// At least one.
    pub sources: Vec<SourceSpec>,
}

/// A misuse of the command line found after parsing: exit 2, like clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl SourceSpec {
    /// What messages call this source.
    pub fn label(&self) -> String {
        match &self.place {
            Place::Config(p) => format!("config {}", p.display()),
            Place::DataDir(p) => format!("data dir {}", p.display()),
            Place::Store(p, _) => format!("store {}", p.display()),
            Place::Service(s) => format!("service {s}"),
        }
    }

    /// True for a chamber service.
    pub fn is_service(&self) -> bool {
        matches!(self.place, Place::Service(_))
    }

    /// The backend of a config or data dir; `None` for a store.
    pub async fn backend(&self) -> lockbox_core::Result<Option<Arc<dyn SecretsManager>>> {
        let args = match &self.place {
            Place::Config(p) => BackendArgs {
                data_dir: None,
                config: Some(p.clone()),
            },
            Place::DataDir(d) => BackendArgs {
                data_dir: Some(d.clone()),
                config: None,
            },
            Place::Store(..) => return Ok(None),
            Place::Service(s) => return crate::chamber::open(s, self.recursive).await.map(Some),
        };
        args.open().await.map(Some)
    }

    /// The sealed store of a `--store` source; `None` for the others.
    pub fn store(&self) -> lockbox_core::Result<Option<Store>> {
        let Place::Store(dir, key) = &self.place else {
            return Ok(None);
        };
        let key = crate::commands::read::key_file(dir, key.as_deref())?;
        Store::open(dir, &key).map(Some)
    }

    /// Opens the source for reading.
    pub async fn open(&self) -> lockbox_core::Result<Source> {
        let label = self.label();
        let prefix = self.prefix.clone();
        if let Some(store) = self.store()? {
            return Ok(Source::Store {
                store: Box::new(store),
                prefix,
                label,
            });
        }
        let backend = self.backend().await?.expect("not a store");
        Ok(Source::Backend {
            backend,
            prefix,
            label,
        })
    }
}

impl SourceArgs {
    /// Opens every source, in order.
    pub async fn open(&self) -> lockbox_core::Result<Vec<Source>> {
        let mut out = Vec::with_capacity(self.sources.len());
        for s in &self.sources {
            out.push(s.open().await?);
        }
        Ok(out)
    }

    /// The one source a command that takes a single source (`import`, `history`) was given.
    /// A usage error (exit 2) for more than one.
    pub fn one(&self, command: &str) -> Result<&SourceSpec, UsageError> {
        match self.sources.as_slice() {
            [one] => Ok(one),
            many => Err(UsageError(format!(
                "{command} takes one source (SERVICE, --config, --data-dir or --store), not {}",
                many.len()
            ))),
        }
    }
}

/// The flags naming a path source.
const KINDS: [&str; 3] = ["config", "data_dir", "store"];

/// What `--help` says of a SERVICE.
pub const SERVICE_HELP: &str = "A chamber service: the SSM parameters /SERVICE/KEY, one level deep \
     (see --recursive); CHAMBER_SECRET_BACKEND, CHAMBER_KMS_KEY_ALIAS and CHAMBER_AWS_REGION \
     apply as in chamber";

/// The help of the source flags; `repeatable` is false for `import` and `history`, which take
/// one source.
fn source_args(cmd: Command, repeatable: bool) -> Command {
    let more = |s: &str| {
        if repeatable {
            format!("{s} (repeatable; later sources win)")
        } else {
            s.to_owned()
        }
    };
    let cmd = if repeatable {
        cmd.arg(
            Arg::new("service")
                .value_name("SERVICE")
                .num_args(0..)
                .action(ArgAction::Append)
                .help(more(SERVICE_HELP)),
        )
    } else {
        // `import` and `history` take `[SERVICE] OPERAND` as one positional list (clap allows no
        // optional positional before a required one): see [`OneSourceArgs::split`].
        cmd
    };
    cmd.arg(
        Arg::new("config")
            .long("config")
            .value_name("FILE")
            .action(ArgAction::Append)
            .value_parser(value_parser!(PathBuf))
            .help(more("A secretsManagerConfig.json: its node's secrets")),
    )
    .arg(
        Arg::new("data_dir")
            .long("data-dir")
            .value_name("DIR")
            .action(ArgAction::Append)
            .value_parser(value_parser!(PathBuf))
            .help(more("A local data directory (Polygon Edge layout)")),
    )
    .arg(
        Arg::new("store")
            .long("store")
            .value_name("DIR")
            .action(ArgAction::Append)
            .value_parser(value_parser!(PathBuf))
            .help(more("A sealed store written by `lockbox sync`, read offline")),
    )
    .arg(
        Arg::new("key_file")
            .long("key-file")
            .value_name("FILE")
            .action(ArgAction::Append)
            .value_parser(value_parser!(PathBuf))
            .help("Key of the --store just before it [default: DIR.key]"),
    )
    .arg(
        Arg::new("prefix")
            .long("prefix")
            .value_name("P")
            .action(ArgAction::Append)
            .help(if repeatable {
                "Only names starting with P, for the source just before it (before every source: for all)"
            } else {
                "Only names starting with P"
            }),
    )
    .arg(
        Arg::new("recursive")
            .long("recursive")
            .action(ArgAction::SetTrue)
            .help("Read a SERVICE's sub-paths too (/SERVICE/a/KEY), which chamber never reads"),
    )
}

impl Args for SourceArgs {
    fn augment_args(cmd: Command) -> Command {
        source_args(cmd, true)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

/// The sources of `import` and `history`: the same flags as [`SourceArgs`], whose help does
/// not call them repeatable (these commands take one source).
#[derive(Clone, Debug, Default)]
pub struct OneSourceArgs(pub SourceArgs);

impl Args for OneSourceArgs {
    fn augment_args(cmd: Command) -> Command {
        source_args(cmd, false)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl OneSourceArgs {
    /// The one source and the operand (FILE, NAME) of `[SERVICE] OPERAND`: with two
    /// positionals the first is a chamber service, and it must be the only source. Misuse is a
    /// [`UsageError`].
    pub fn split(
        &self,
        command: &str,
        positionals: &[String],
    ) -> Result<(SourceSpec, String), UsageError> {
        let mut sources = self.0.sources.clone();
        let operand = match positionals {
            [operand] => operand.clone(),
            [service, operand] => {
                let service = crate::chamber::normalize_service(service)
                    .map_err(|e| UsageError(e.message().to_string()))?;
                let recursive = sources.first().is_some_and(|s| s.recursive);
                sources.push(SourceSpec {
                    place: Place::Service(service),
                    prefix: String::new(),
                    recursive,
                });
                operand.clone()
            }
            _ => {
                return Err(UsageError(format!(
                    "{command} takes [SERVICE] and one operand, not {} values",
                    positionals.len()
                )));
            }
        };
        if sources.is_empty() {
            return Err(UsageError(
                "give one source: a chamber SERVICE, --config FILE, --data-dir DIR or --store DIR"
                    .into(),
            ));
        }
        let one = SourceArgs { sources }.one(command)?.clone();
        Ok((one, operand))
    }
}

impl FromArgMatches for OneSourceArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        parse(m, false).map(Self)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

impl FromArgMatches for SourceArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        parse(m, true)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

/// The sources in `m`, in order. `repeatable` (not `import` and `history`, whose SERVICE
/// comes apart, see [`OneSourceArgs::split`]): at least one (a usage error otherwise).
fn parse(m: &ArgMatches, repeatable: bool) -> Result<SourceArgs, clap::Error> {
    let usage =
        |msg: String| clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, msg + "\n");
    let mut given: Vec<(usize, Place)> = Vec::new();
    let services = if repeatable {
        m.indices_of("service").zip(m.get_many::<String>("service"))
    } else {
        None
    };
    if let Some((indices, values)) = services {
        for (i, v) in indices.zip(values) {
            let service =
                crate::chamber::normalize_service(v).map_err(|e| usage(e.message().to_string()))?;
            given.push((i, Place::Service(service)));
        }
    }
    for kind in KINDS {
        let (Some(indices), Some(values)) = (m.indices_of(kind), m.get_many::<PathBuf>(kind))
        else {
            continue;
        };
        for (i, v) in indices.zip(values) {
            let place = match kind {
                "config" => Place::Config(v.clone()),
                "data_dir" => Place::DataDir(v.clone()),
                _ => Place::Store(v.clone(), None),
            };
            given.push((i, place));
        }
    }
    if given.is_empty() && repeatable {
        return Err(clap::Error::raw(
            clap::error::ErrorKind::MissingRequiredArgument,
            "give at least one source: a chamber SERVICE, --config FILE, --data-dir DIR or \
                 --store DIR\n",
        ));
    }
    let recursive = m.get_flag("recursive");
    given.sort_by_key(|(i, _)| *i);
    let starts: Vec<usize> = given.iter().map(|(i, _)| *i).collect();
    let before = |i: usize| starts.iter().rposition(|j| *j < i);
    let mut prefixes: Vec<Option<String>> = vec![None; given.len()];
    let mut default_prefix: Option<String> = None;
    if let (Some(indices), Some(values)) = (m.indices_of("prefix"), m.get_many::<String>("prefix"))
    {
        for (i, p) in indices.zip(values) {
            let slot = match before(i) {
                Some(s) => &mut prefixes[s],
                None => &mut default_prefix,
            };
            if slot.replace(p.clone()).is_some() {
                return Err(usage(format!(
                    "--prefix {p:?}: that source already has a --prefix"
                )));
            }
        }
    }
    if let (Some(indices), Some(values)) =
        (m.indices_of("key_file"), m.get_many::<PathBuf>("key_file"))
    {
        for (i, k) in indices.zip(values) {
            match before(i).map(|s| &mut given[s].1) {
                Some(Place::Store(_, key @ None)) => *key = Some(k.clone()),
                _ => {
                    return Err(usage(format!(
                        "--key-file {}: it names the key of the --store DIR just before it",
                        k.display()
                    )));
                }
            }
        }
    }
    let sources = given
        .into_iter()
        .zip(prefixes)
        .map(|((_, place), prefix)| SourceSpec {
            place,
            prefix: prefix
                .or_else(|| default_prefix.clone())
                .unwrap_or_default(),
            recursive,
        })
        .collect();
    Ok(SourceArgs { sources })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(flatten)]
        s: SourceArgs,
    }

    fn parse(args: &[&str]) -> Result<Vec<SourceSpec>, clap::Error> {
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|t| t.s.sources)
    }

    fn spec(place: Place, prefix: &str) -> SourceSpec {
        SourceSpec {
            place,
            prefix: prefix.into(),
            recursive: false,
        }
    }

    #[test]
    fn sources_keep_their_order_and_prefixes() {
        let got = parse(&[
            "--prefix",
            "all/",
            "--store",
            "s",
            "--key-file",
            "k",
            "--config",
            "a.json",
            "--prefix",
            "db/",
            "--data-dir",
            "d",
        ])
        .unwrap();
        assert_eq!(
            got,
            [
                spec(Place::Store("s".into(), Some("k".into())), "all/"),
                spec(Place::Config("a.json".into()), "db/"),
                spec(Place::DataDir("d".into()), "all/"),
            ]
        );
        assert_eq!(
            parse(&["--config", "b", "--config", "a"]).unwrap(),
            [
                spec(Place::Config("b".into()), ""),
                spec(Place::Config("a".into()), "")
            ]
        );
    }

    #[test]
    fn misuse_is_a_usage_error() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--config", "a", "--prefix", "x", "--prefix", "y"]).is_err());
        assert!(parse(&["--config", "a", "--key-file", "k"]).is_err());
    }
}

/// How names become variables and what happens to binary values: `--preserve-case`,
/// `--binary=base64`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ValueArgs {
    /// Keep the case of secret names in variable names (default: upper-case them).
    #[arg(long, short = 'p')]
    pub preserve_case: bool,
    /// Pass binary (non-UTF-8) values base64-encoded; without it they are refused.
    #[arg(long, value_name = "ENCODING", value_parser = ["base64"], require_equals = true)]
    pub binary: Option<String>,
}

impl ValueArgs {
    /// What to do with binary values.
    pub fn binary(&self) -> lockbox_env::Binary {
        match self.binary.as_deref() {
            Some("base64") => lockbox_env::Binary::Base64,
            _ => lockbox_env::Binary::Refuse,
        }
    }

    /// Variable -> value text over every layer (collisions within a source are errors; later
    /// sources win).
    pub fn variables(
        &self,
        loaded: &lockbox_env::Loaded,
    ) -> lockbox_core::Result<std::collections::BTreeMap<String, String>> {
        loaded
            .variables(self.preserve_case)?
            .into_iter()
            .map(|(var, entry)| Ok((var, entry.text(self.binary())?.into_owned())))
            .collect()
    }
}
