//! lockbox-core: the one trait every lockbox backend implements, the validated secret name, the
//! redacted secret value and the one error type callers match on.
//!
//! Callers hold an `Arc<dyn SecretsManager>` chosen at run time from a config and never care
//! whether a secret lives on local disk, in memory or in a cloud service.
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod batch;
mod error;
mod manager;
mod memory;
mod name;
mod retry;
mod value;

pub use batch::get_many_by_key;
pub use error::{Error, ErrorKind, Result};
pub use manager::{GetFuture, PutMode, SecretsManager, SecretsManagerExt, Version, VersionInfo};
pub use memory::MemoryBackend;
pub use name::SecretName;
pub use retry::{Retry, RetryPolicy, jitter};
pub use value::SecretValue;
