//! lockbox-env: secrets into programs.
//!
//! What `lockbox exec`, `env`, `export` and `import` do, as a library, so a Rust service can
//! load its environment the same way at start-up without a wrapper process:
//!
//! - [`load`] reads every secret of one or more [`Source`]s (a backend under a prefix, read in
//!   batches with [`SecretsManager::read_prefix`](lockbox_core::SecretsManager::read_prefix),
//!   or the sealed store `lockbox sync` writes), later sources winning, as with chamber.
//! - [`variable_name`] maps a secret name to an environment variable (last path segment,
//!   upper-cased, characters outside `[A-Za-z0-9_]` become `_`, a leading digit gets `_`);
//!   [`Loaded::variables`] refuses two names of one source that map to the same variable.
//! - [`child_environment`] builds a child's environment (`--pristine`, `--keep-env`,
//!   `--strict` with a sentinel).
//! - [`Format`] writes the name/value map as JSON, YAML, dotenv, tfvars, Java properties, CSV
//!   or TSV with each format's escaping; [`shell_quote`] quotes for POSIX shells.
//! - [`parse_import`] reads JSON, YAML or dotenv files, and [`check_import`] validates every
//!   entry against a backend's rules before anything is written.
//!
//! - [`Watcher`] re-reads the sources every interval (jittered by up to 10%) and hands out
//!   the map each time it changes, keeping the last one while reads fail ([`Health`]);
//!   `lockbox exec --watch` and `lockbox render --watch` are built on it. Its polls go
//!   through a [`Poller`], which lists version tags where the backend can
//!   ([`SecretsManager::version_tags`](lockbox_core::SecretsManager::version_tags)) and reads
//!   only the values whose tag changed.
//!
//! Values stay in [`SecretValue`](lockbox_core::SecretValue)s until they are written out; no
//! error message holds a value.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod child;
mod duration;
mod format;
mod import;
mod name;
mod poll;
mod source;
mod watch;

pub use child::{ChildOptions, DEFAULT_SENTINEL, child_environment};
pub use duration::parse_duration;
pub use format::{Binary, Format, dotenv_quote, shell_quote, yaml_quote};
pub use import::{ImportEntry, ImportFormat, NotAString, check_import, parse_import};
pub use name::variable_name;
pub use poll::Poller;
pub use source::{Entry, Layer, Loaded, Source, load, variables};
pub use watch::{Health, WatchOptions, Watcher};
