//! lockbox-secretsmanager: secrets in AWS Secrets Manager, with versions, staging labels and
//! binary values.
//!
//! A secret `validator-key` of node `node1` under `secrets-manager-path` `polygon-edge/nodes`
//! is the Secrets Manager secret `polygon-edge/nodes/node1/validator-key`. The path is
//! normalised first ([`normalize_path`]): no leading, trailing or doubled `/`, so
//! `/polygon-edge/nodes/` (as an aws-ssm config would write it) names the same secrets.
//! Names are checked against AWS's rules before any call.
//!
//! [`SmBackend`] implements [`lockbox_core::SecretsManager`] for node secrets; [`SmClient`]
//! reads and writes any secret by name or ARN, every version, for Greengrass-style sync.
//! Every Secrets Manager action either calls is listed in [`ACTIONS`].
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod backend;
mod client;
mod errors;
mod names;

pub use backend::{SmBackend, SmSettings};
pub use client::{ACTIONS, Action, BACKEND, SecretVersion, SmClient};
pub use names::{MAX_NAME_CHARS, MAX_VALUE_BYTES, normalize_path, secret_prefix};
