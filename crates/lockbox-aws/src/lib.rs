//! lockbox-aws: what lockbox's AWS crates share.
//!
//! - [`Action`]: one row of a backend's table of the IAM actions it calls.
//! - [`Arn`]: an ARN split into its six fields.
//! - [`NodeSettings`]: where a node's secrets live, the settings of the SSM and the Secrets
//!   Manager backends alike.
//! - With the default `sdk` feature: [`SdkOptions`], the one SDK config loader (SDK retries
//!   off, 3 s connect and 10 s attempt timeouts), and [`AwsFailure`], the transport and
//!   HTTP-status half of error mapping. Each service crate keeps only its own table of error
//!   codes. [`all_pages`] reads every page of a listing, [`version_info`] records one version.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod action;
mod arn;
#[cfg(feature = "sdk")]
mod config;
#[cfg(feature = "sdk")]
mod error;
#[cfg(feature = "sdk")]
mod http;
mod node;
#[cfg(feature = "sdk")]
mod pages;

pub use action::Action;
pub use arn::Arn;
/// The SDK's shared configuration (credentials, region, endpoint), as [`SdkOptions::load`]
/// makes it and the service crates' clients take it.
#[cfg(feature = "sdk")]
pub use aws_config::SdkConfig;
/// Static credentials and the shared provider [`SdkOptions::credentials`] takes.
#[cfg(feature = "sdk")]
pub use aws_credential_types::{Credentials, provider::SharedCredentialsProvider};
/// A date as AWS answers it, with its fraction of a second.
#[cfg(feature = "sdk")]
pub use aws_smithy_types::DateTime;
#[cfg(feature = "sdk")]
pub use config::{
    ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, SdkOptions, provider_config, region_from_chain,
};
#[cfg(feature = "sdk")]
pub use error::{AwsFailure, Transport};
#[cfg(feature = "sdk")]
pub use http::http_client;
pub use node::NodeSettings;
#[cfg(feature = "sdk")]
pub use pages::{all_pages, version_info};
pub use status::{common_kind, service_detail, service_kind, status_kind};

mod status;
