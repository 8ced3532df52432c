//! The in-memory backend: for tests, and for programs that hold secrets only while running.

use std::collections::BTreeMap;
use std::sync::RwLock;

use async_trait::async_trait;

use crate::{Error, PutMode, Result, SecretName, SecretValue, SecretsManager};

const BACKEND: &str = "memory";

/// Secrets kept in process memory, gone when the process ends.
#[derive(Default)]
pub struct MemoryBackend {
    secrets: RwLock<BTreeMap<SecretName, SecretValue>>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.secrets.read().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("MemoryBackend")
            .field("secrets", &count)
            .finish()
    }
}

#[async_trait]
impl SecretsManager for MemoryBackend {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn get_uncached(&self, name: &SecretName) -> Result<SecretValue> {
        let map = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        map.get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(BACKEND, name))
    }

    async fn put(&self, name: &SecretName, value: &SecretValue, mode: PutMode) -> Result<()> {
        let mut map = self.secrets.write().unwrap_or_else(|p| p.into_inner());
        if mode == PutMode::Create && map.contains_key(name) {
            return Err(Error::already_exists(BACKEND, name));
        }
        map.insert(name.clone(), value.clone());
        Ok(())
    }

    async fn delete(&self, name: &SecretName) -> Result<()> {
        let mut map = self.secrets.write().unwrap_or_else(|p| p.into_inner());
        map.remove(name)
            .map(drop)
            .ok_or_else(|| Error::not_found(BACKEND, name))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<SecretName>> {
        let map = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        Ok(map
            .keys()
            .filter(|k| k.as_str().starts_with(prefix))
            .cloned()
            .collect())
    }
}
