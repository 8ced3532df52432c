//! lockbox-ssm: secrets as SecureString parameters in AWS Systems Manager Parameter Store.
//!
//! A secret `validator-key` of node `node1` under path `/polygon-edge/nodes` is the parameter
//! `/polygon-edge/nodes/node1/validator-key`, the name Polygon Edge's aws-ssm manager uses. Names
//! are normalised and checked against AWS's naming rules before any call.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod actions;
#[cfg(feature = "client")]
mod backend;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod errors;
mod names;
#[cfg(feature = "client")]
mod parameter;

pub use actions::{ACTIONS, Action, OPERATOR_ACTIONS, WATCH_ACTIONS};
#[cfg(feature = "client")]
pub use backend::{SsmBackend, SsmSettings, read_parameter};
#[cfg(feature = "client")]
pub use client::SsmClient;
#[cfg(feature = "client")]
pub use errors::error_kind;
pub use names::{STANDARD_TIER_MAX_BYTES, normalize_path, parameter_prefix};
#[cfg(feature = "client")]
pub use parameter::{Parameter, ParameterType};
