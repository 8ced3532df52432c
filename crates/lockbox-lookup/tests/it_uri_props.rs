//! Properties of the connection URI parser: every part written as Airflow's `get_uri` writes it
//! (percent-encoded with nothing safe) comes back exactly.

use std::collections::BTreeMap;

use lockbox_lookup::{Connection, normalize_conn_type};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Python's `quote(s, safe="")`: everything but `A-Za-z0-9_.-~` is escaped.
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

fn quote(s: &str) -> String {
    utf8_percent_encode(s, QUOTE).to_string()
}

fn conn_type() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9+.]{0,8}(-[a-z0-9]{1,4})?|postgresql"
}

/// Hosts without ASCII capitals: Python lowercases a hostname up to its first `%`, so only
/// those survive a round trip unchanged (as in Airflow).
fn host() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| s.chars().filter(|c| !c.is_ascii_uppercase()).collect())
}

fn extra() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(any::<String>(), any::<String>(), 0..4)
        .prop_filter("__extra__ is special", |m| !m.contains_key("__extra__"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn percent_encoded_parts_round_trip(
        ty in conn_type(),
        login in any::<String>(),
        password in any::<String>(),
        host in host(),
        port in proptest::option::of(any::<u16>()),
        schema in any::<String>(),
        extra in extra(),
    ) {
        let mut uri = format!("{ty}://{}:{}@{}", quote(&login), quote(&password), quote(&host));
        if let Some(p) = port {
            uri.push_str(&format!(":{p}"));
        }
        uri.push('/');
        uri.push_str(&quote(&schema));
        if !extra.is_empty() {
            let query: Vec<String> = extra
                .iter()
                .map(|(k, v)| format!("{}={}", quote(k), quote(v)))
                .collect();
            uri.push('?');
            uri.push_str(&query.join("&"));
        }
        let c = Connection::from_uri(&uri).unwrap();
        let expected_extra: Map<String, Value> =
            extra.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        prop_assert_eq!(c.conn_type, Some(normalize_conn_type(&ty)));
        prop_assert_eq!(c.login, Some(login));
        prop_assert_eq!(c.password, Some(password));
        prop_assert_eq!(c.host, Some(host));
        prop_assert_eq!(c.port, port);
        prop_assert_eq!(c.schema, Some(schema));
        prop_assert_eq!(c.extra, expected_extra);
    }

    /// `+` in a query is a space, `%2B` a plus (Python's `parse_qsl`).
    #[test]
    fn query_plus_is_space(words in prop::collection::vec("[a-z]{1,5}", 1..4)) {
        let c = Connection::from_uri(&format!("t://h?k={}&p=%2B", words.join("+"))).unwrap();
        prop_assert_eq!(c.extra.get("k"), Some(&Value::String(words.join(" "))));
        prop_assert_eq!(c.extra.get("p"), Some(&Value::String("+".into())));
    }

    /// The whole extra as JSON in `__extra__` comes back as that object.
    #[test]
    fn extra_key_round_trips(extra in prop::collection::btree_map("\\PC{0,8}", any::<i32>(), 0..4)) {
        let object: Map<String, Value> = extra.into_iter().map(|(k, v)| (k, Value::from(v))).collect();
        let text = Value::Object(object.clone()).to_string();
        let c = Connection::from_uri(&format!("t://h?__extra__={}", quote(&text))).unwrap();
        prop_assert_eq!(c.extra, object);
    }

    /// No input panics, and no error quotes the text (here: a password marker).
    #[test]
    fn errors_never_quote_the_uri(prefix in "\\PC{0,12}", suffix in "\\PC{0,24}") {
        let marker = "QWERTYUIOPASDF";
        let uri = format!("{prefix}://user:{marker}{suffix}");
        if let Err(e) = Connection::from_uri(&uri) {
            prop_assert!(!e.to_string().contains(marker), "{}", e);
        }
        let _ = Connection::from_uri(&prefix);
        let _ = Connection::from_json(&prefix);
    }
}
