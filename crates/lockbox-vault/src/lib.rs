//! lockbox-vault: node secrets in a HashiCorp Vault or OpenBao KV version 2 engine, exactly where
//! Polygon Edge's `hashicorp-vault` secrets manager keeps them.
//!
//! Secret `validator-key` of node `node1` is the KV v2 secret `secret/data/node1/validator-key`
//! (mount `secret`), holding `{"validator-key": "<value>"}`. Unlike Polygon Edge, a create never
//! overwrites: it writes with check-and-set `cas = 0`. Values are strings in Vault, so a value
//! that is not UTF-8 is refused on `put` (encode it as hex or base64 first).
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod backend;
mod errors;
mod policy;
mod settings;

pub use backend::VaultBackend;
pub use policy::node_policy_hcl;
pub use settings::{DEFAULT_MOUNT, ENV_CACERT, TOKEN_ENV_VARS, VaultSettings, token_from_env};
