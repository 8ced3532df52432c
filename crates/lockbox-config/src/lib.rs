//! lockbox-config: the `secretsManagerConfig.json` file Polygon Edge and lockbox share, the
//! `--extra k=v,...` syntax, per-type validation, and [`open`], which turns a config into a
//! backend.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod extra;
mod file;
mod open;
mod settings;
pub mod strict;

pub use extra::parse_extra;
pub use file::{
    DEFAULT_CONFIG_FILE, ManagerType, SecretsManagerConfig, Token, is_region_name,
    refuse_shared_token_file,
};
pub use open::open;
#[cfg(feature = "local")]
pub use open::open_data_dir;
pub use settings::{Settings, extra_field, keys};
