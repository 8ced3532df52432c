//! Fuzzing (issue 13, item 10) through lockbox-lookup's public API: arbitrary text fed to the
//! Airflow connection URI parser, the connection JSON parsers and the backend kwargs parser
//! must never panic and fail, when they fail, with an input error (InvalidConfig,
//! InvalidName, Corrupt or Unsupported), never a backend or I/O kind. Inputs are bounded in
//! size and the case count is fixed (256 per property), so the run time is bounded too.

use lockbox_core::ErrorKind;
use lockbox_lookup::{BackendKind, Connection, ExtraConnWords, LookupSettings};
use proptest::prelude::*;

const INPUT_KINDS: [ErrorKind; 4] = [
    ErrorKind::InvalidConfig,
    ErrorKind::InvalidName,
    ErrorKind::Corrupt,
    ErrorKind::Unsupported,
];

fn input_error(kind: ErrorKind) -> bool {
    INPUT_KINDS.contains(&kind)
}

/// Text that looks like a URI often enough to reach the deeper branches.
fn uri_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,80}",
        "[a-z+.-]{0,8}://[^ ]{0,60}",
        "[a-z]{1,6}://([a-z%0-9:@]{0,12}@)?[a-z0-9.%\\[\\]:]{0,20}(:[0-9]{0,6})?(/[^?]{0,12})?(\\?[a-z_%=&0-9]{0,30})?",
    ]
}

/// JSON-ish text: valid JSON of arbitrary shape, or noise.
fn json_like() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::String),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("conn_type".to_string()),
                    Just("host".to_string()),
                    Just("port".to_string()),
                    Just("extra".to_string()),
                    Just("login".to_string()),
                    Just("connections_prefix".to_string()),
                    Just("sep".to_string()),
                    Just("role_arn".to_string()),
                    Just("assume_role_kwargs".to_string()),
                    Just("connections_lookup_pattern".to_string()),
                    "[a-z_]{0,10}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![value.prop_map(|v| v.to_string()), "\\PC{0,80}"]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn connection_uris_never_panic(uri in uri_like()) {
        if let Err(e) = Connection::from_uri(&uri) {
            prop_assert!(input_error(e.kind()), "{:?}: {}", e.kind(), e);
        }
    }

    #[test]
    fn connection_json_never_panics(text in json_like()) {
        if let Err(e) = Connection::from_json(&text) {
            prop_assert!(input_error(e.kind()), "{:?}: {}", e.kind(), e);
        }
        if let Err(e) = Connection::from_secrets_manager_json(&text, &ExtraConnWords::new()) {
            prop_assert!(input_error(e.kind()), "{:?}: {}", e.kind(), e);
        }
    }

    #[test]
    fn backend_kwargs_never_panic(text in json_like(), ssm in any::<bool>()) {
        let backend = if ssm { BackendKind::Ssm } else { BackendKind::SecretsManager };
        if let Err(e) = LookupSettings::from_backend_kwargs(backend, &text) {
            prop_assert!(input_error(e.kind()), "{:?}: {}", e.kind(), e);
        }
    }

    #[test]
    fn backend_names_never_panic(text in "\\PC{0,60}") {
        if let Err(e) = BackendKind::parse(&text) {
            prop_assert!(input_error(e.kind()), "{:?}: {}", e.kind(), e);
        }
    }
}
