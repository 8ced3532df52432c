//! lockbox-keys: the node secrets of a Polygon Edge compatible node.
//!
//! A node has a secp256k1 validator key (its public identity is an Ethereum-style
//! [`Address`]), a BLS12-381 validator key for IBFT's BLS validators (its public identity is a
//! [`BlsPublicKey`]) and a libp2p secp256k1 network key (its public identity is a libp2p node
//! ID).
//! This crate encodes and decodes them exactly as Polygon Edge stores them, derives their public
//! identities, and creates them in any [`lockbox_core::SecretsManager`] without ever
//! overwriting or half-writing a node's secrets ([`init_node`]), even when killed part way:
//! the next init rolls back what it can prove the killed one wrote ([`init_node_with_repair`]).
//!
//! Key types redact themselves in `Debug`, and [`KeyError`] never quotes the bytes it rejects,
//! so neither can leak a private key into logs.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod address;
mod bls;
mod error;
mod hexkey;
mod intent;
mod network;
mod node;
mod validator;

pub use address::Address;
pub use bls::{BlsKey, BlsPublicKey, genesis_validator};
pub use error::KeyError;
pub use intent::{INIT_INTENT, InitRepair};
pub use network::NetworkKey;
pub use node::{
    NodeIdentity, NodeInit, NodeKeys, NodePublicKeys, add_bls_key, init_node, init_node_with,
    init_node_with_repair, read_address, read_bls_public_key, read_identity, read_node_id,
    read_public_keys, repair_interrupted_init,
};
pub use validator::ValidatorKey;

/// Secret name of the validator (consensus) key, as Polygon Edge names it.
pub const VALIDATOR_KEY: &str = "validator-key";

/// Secret name of the BLS validator key, as Polygon Edge names it.
pub const VALIDATOR_BLS_KEY: &str = "validator-bls-key";

/// Secret name of the libp2p network key, as Polygon Edge names it.
pub const NETWORK_KEY: &str = "network-key";

/// What `Debug` prints instead of a private key.
const REDACTED: &str = "[REDACTED]";
