//! The in-memory backend keeps every promise of the trait.

use lockbox_core::MemoryBackend;
use lockbox_testkit::conformance::{Capabilities, Subject};

lockbox_testkit::conformance_tests!(
    |_test| async { Some(Subject::new(MemoryBackend::new())) },
    Capabilities::default()
);
