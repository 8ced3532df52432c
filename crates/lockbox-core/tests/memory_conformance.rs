//! The in-memory backend keeps every promise of the trait.
#![cfg(feature = "conformance")]

use std::sync::Arc;

use lockbox_core::{MemoryBackend, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_backend_passes_conformance() {
    conformance::run(
        Arc::new(MemoryBackend::new()),
        &conformance::Options::default(),
    )
    .await;
}
