//! lockbox-secretsmanager: secrets in AWS Secrets Manager, with versions, staging labels and
//! binary values.
//!
//! A secret `validator-key` of node `node1` under `secrets-manager-path` `polygon-edge/nodes`
//! is the Secrets Manager secret `polygon-edge/nodes/node1/validator-key`. The path is
//! normalised first ([`normalize_path`]): no leading, trailing or doubled `/`, so
//! `/polygon-edge/nodes/` (as an aws-ssm config would write it) names the same secrets.
//! Names are checked against AWS's rules before any call.
//!
//! [`SecretsManagerBackend`] implements [`lockbox_core::SecretsManager`] for node secrets; [`SecretsManagerClient`]
//! reads and writes any secret by name or ARN, every version, for Greengrass-style sync.
//! Every Secrets Manager action either calls is listed in [`ACTIONS`].
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod actions;
#[cfg(feature = "client")]
mod backend;
#[cfg(feature = "client")]
mod batch;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod errors;
mod names;
mod version;

/// The backend's name in errors and logs.
pub const BACKEND: &str = "aws-secretsmanager";

pub use actions::{ACTIONS, Action, OPERATOR_ACTIONS};
#[cfg(feature = "client")]
pub use backend::{SecretsManagerBackend, SecretsManagerSettings};
#[cfg(feature = "client")]
pub use batch::FetchManyOptions;
#[cfg(feature = "client")]
pub use client::SecretsManagerClient;
#[cfg(feature = "client")]
pub use errors::{error_is_gone, error_kind, is_gone};
pub use names::{MAX_NAME_CHARS, MAX_VALUE_BYTES, normalize_path, secret_prefix};
pub use version::{FetchedMany, SecretVersion};
