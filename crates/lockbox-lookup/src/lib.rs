//! lockbox-lookup: read Apache Airflow's connections, variables and config values from AWS SSM
//! Parameter Store or Secrets Manager exactly as Airflow's secrets backends do, with the same
//! settings (the JSON Airflow takes as `[secrets] backend_kwargs`), so Rust services and
//! scripts share an existing Airflow setup without running Airflow.
//!
//! ```no_run
//! # async fn demo() -> lockbox_core::Result<()> {
//! use lockbox_lookup::{BackendKind, Lookup, LookupSettings};
//!
//! let settings = LookupSettings::from_backend_kwargs(
//!     BackendKind::Ssm,
//!     r#"{"connections_prefix": "/airflow/connections", "region_name": "eu-west-1"}"#,
//! )?;
//! let lookup = Lookup::new(settings);
//! if let Some(conn) = lookup.connection("my_postgres").await? {
//!     println!("{:?} on {:?}", conn.conn_type, conn.host);
//! }
//! # Ok(()) }
//! ```
//!
//! Rules, as in Airflow's `SystemsManagerParameterStoreBackend` and `SecretsManagerBackend`:
//! a null prefix disables a kind with no AWS call; a lookup pattern is a Python regular
//! expression matched as `re.match(pattern, id, re.IGNORECASE)` (Python's syntax and meaning,
//! compiled only when a lookup of that kind needs it); SSM names are
//! `<prefix without trailing '/'>/<id>` with a leading `/` ensured, read with decryption, and
//! only ParameterNotFound means absent (a missing `name:version` is an error); Secrets Manager
//! names are `<prefix><sep><id>`, only string values count, and ResourceNotFoundException,
//! InvalidParameterException, InvalidRequestException, DecryptionFailure and
//! InternalServiceError mean absent. Every other failure is an error. Connection values are
//! read with Python's rules too: `str.strip()` whitespace, `urlsplit`'s refusals, and JSON
//! numbers as `json.loads` reads them. `cargo xtask airflow-diff` checks all of this against
//! Airflow itself; the workspace README lists where lockbox deliberately refuses Airflow's bugs.
//!
//! Like Airflow, nothing is cached by default; [`Lookup::with_cache`] puts lockbox-cache in
//! front of the reads (a DecryptionFailure or InternalServiceError is never cached as absent).
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod connection;
mod lookup;
mod pyre;
mod pyurl;
mod settings;

pub use lockbox_cache::CacheConfig;

pub use connection::{
    Connection, EXTRA_KEY, ExtraConnWords, is_py_space, normalize_conn_type, py_strip,
};
pub use lookup::{
    Absence, Lookup, Outcome, SECRETS_MANAGER_ABSENT_CODES, TRANSIENT_ABSENT_CODES, sdk_config,
    secrets_manager_absent_code,
};
pub use settings::{
    AssumeRoleOptions, AwsSettings, BackendKind, ENV_BACKEND, ENV_BACKEND_KWARGS, LookupKind,
    LookupPattern, LookupSettings, Resolution, SECRETS_MANAGER_BACKEND_CLASS, SSM_BACKEND_CLASS,
    StaticCredentials,
};
