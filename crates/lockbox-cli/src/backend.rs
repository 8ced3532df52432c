//! `--data-dir DIR | --config FILE`: where a node's secrets live, shared by the commands that
//! read or write them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use lockbox_config::SecretsManagerConfig;
use lockbox_core::{Result, SecretsManager};

/// Where the secrets live: a local data directory or a config file.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct BackendArgs {
    /// Local data directory (Polygon Edge layout).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A secretsManagerConfig.json naming the backend.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl BackendArgs {
    /// Opens the backend chosen by `--data-dir` or `--config`.
    pub async fn open(&self) -> Result<Arc<dyn SecretsManager>> {
        match (&self.data_dir, &self.config) {
            (Some(dir), _) => Ok(lockbox_config::open_data_dir(dir)),
            (None, Some(path)) => {
                let config = SecretsManagerConfig::read(path)?;
                let dir = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                lockbox_config::open(&config, dir).await
            }
            (None, None) => unreachable!("clap requires --data-dir or --config"),
        }
    }
}
