//! Fuzzing (issue 13, item 10) of secret names: arbitrary text never panics, and a refused
//! name is an `InvalidName` error. Bounded inputs, a fixed case count (256 per property).

use lockbox_core::{ErrorKind, SecretName, Version};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn names_never_panic(text in prop_oneof!["\\PC{0,80}", "[a-z0-9/_.:-]{0,40}", ".{0,300}"]) {
        match SecretName::new(&text) {
            Ok(name) => prop_assert_eq!(name.as_str(), text.as_str()),
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::InvalidName, "{}", e),
        }
    }

    #[test]
    fn version_selectors_never_panic(text in "\\PC{0,40}") {
        let _ = Version::from_selector(&text);
    }
}
