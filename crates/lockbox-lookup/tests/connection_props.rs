//! Properties of connection parsing with Python's rules: whitespace as `str.strip()` sees it,
//! JSON numbers as `json.loads` reads them, ports as `int()` reads them, and connection URIs
//! and JSON built from random fields coming back as those fields.

use lockbox_lookup::{BackendKind, Connection, ExtraConnWords, is_py_space, py_strip};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Python's `str.isspace` characters: Unicode White_Space plus `\x1c`-`\x1f`.
const PY_SPACES: &[char] = &[
    ' ', '\t', '\n', '\r', '\u{b}', '\u{c}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{1f}', '\u{85}',
    '\u{a0}', '\u{1680}', '\u{2000}', '\u{2007}', '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}',
    '\u{205f}', '\u{3000}',
];

/// JSON's own whitespace, all `json.loads` (and serde_json) skip around a value.
const JSON_SPACES: &[char] = &[' ', '\t', '\n', '\r'];

/// Python's `quote(s, safe="")`.
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

fn quote(s: &str) -> String {
    utf8_percent_encode(s, QUOTE).to_string()
}

fn padding(set: &'static [char]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(set), 0..4).prop_map(|v| v.into_iter().collect())
}

fn words() -> ExtraConnWords {
    ExtraConnWords::new()
}

fn parse(value: &str, backend: BackendKind) -> Result<Connection, lockbox_core::Error> {
    Connection::deserialize(value, backend, &words())
}

/// A URI from fields, written as Airflow's `get_uri` writes them (percent-encoded).
fn uri_strategy() -> impl Strategy<Value = (String, [String; 4], Option<u16>)> {
    (
        "[a-z][a-z0-9]{0,6}",
        any::<String>(),
        any::<String>(),
        "[a-z0-9][a-z0-9.-]{0,12}",
        any::<String>(),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(ty, login, password, host, schema, port)| {
            let mut uri = format!("{ty}://{}:{}@{host}", quote(&login), quote(&password));
            if let Some(p) = port {
                uri.push_str(&format!(":{p}"));
            }
            uri.push('/');
            uri.push_str(&quote(&schema));
            (uri, [ty, login, password, host], port)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `py_strip` removes exactly Python's whitespace from both ends.
    #[test]
    fn py_strip_is_python_strip(pre in padding(PY_SPACES), core in any::<String>(), post in padding(PY_SPACES)) {
        let s = format!("{pre}{core}{post}");
        let stripped = py_strip(&s);
        prop_assert!(!stripped.starts_with(is_py_space) && !stripped.ends_with(is_py_space));
        prop_assert_eq!(stripped, core.trim_matches(is_py_space));
    }

    /// A URI padded with any of Python's whitespace (information separators included) is the
    /// same connection, for both backends.
    #[test]
    fn padded_uris_parse_as_the_uri((uri, [_, login, password, host], port) in uri_strategy(),
                                    pre in padding(PY_SPACES), post in padding(PY_SPACES)) {
        for backend in [BackendKind::Ssm, BackendKind::SecretsManager] {
            let plain = parse(&uri, backend).unwrap();
            let padded = parse(&format!("{pre}{uri}{post}"), backend).unwrap();
            prop_assert_eq!(&padded, &plain);
            prop_assert_eq!(plain.login.as_deref(), Some(login.as_str()));
            prop_assert_eq!(plain.password.as_deref(), Some(password.as_str()));
            prop_assert_eq!(plain.host.as_deref(), Some(host.as_str()));
            prop_assert_eq!(plain.port, port);
        }
    }

    /// JSON padded with Python whitespace is JSON for SSM (Airflow strips, then parses);
    /// Secrets Manager parses the value as stored, so only JSON's own whitespace may surround
    /// it there, and anything else (`\x1c`) is an error, as `json.loads` makes it in Airflow.
    #[test]
    fn padded_json(login in any::<String>(), host in any::<String>(),
                   pre in padding(PY_SPACES), post in padding(PY_SPACES),
                   jpre in padding(JSON_SPACES), jpost in padding(JSON_SPACES)) {
        let body = json!({"conn_type": "x", "login": login, "host": host}).to_string();
        let ssm = parse(&format!("{pre}{body}{post}"), BackendKind::Ssm).unwrap();
        prop_assert_eq!(ssm.login.as_deref(), Some(login.as_str()));
        prop_assert_eq!(ssm.host.as_deref(), Some(host.as_str()));
        let sm = parse(&format!("{jpre}{body}{jpost}"), BackendKind::SecretsManager).unwrap();
        prop_assert_eq!(&sm, &ssm);
        let padded = format!("{pre}{body}{post}");
        let only_json_ws = padded.trim_matches(JSON_SPACES) == body;
        prop_assert_eq!(parse(&padded, BackendKind::SecretsManager).is_ok(), only_json_ws);
    }

    /// Integers in a JSON extra keep their exact value however large, and come back as the
    /// same decimal text; floats are doubles.
    #[test]
    fn extra_numbers_are_python_numbers(big in any::<i128>(), digits in "[1-9][0-9]{0,60}",
                                        f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        let text = format!(r#"{{"conn_type": "x", "extra": {{"i": {big}, "d": -{digits}, "f": {f:e}}}}}"#);
        for backend in [BackendKind::Ssm, BackendKind::SecretsManager] {
            let c = parse(&text, backend).unwrap();
            prop_assert_eq!(c.extra["i"].to_string(), big.to_string());
            prop_assert_eq!(c.extra["d"].to_string(), format!("-{digits}"));
            prop_assert_eq!(c.extra["f"].as_f64(), Some(f));
            // ...also when the extra is a JSON string holding the object.
            let inner = format!(r#"{{"i": {big}, "d": -{digits}}}"#);
            let c = parse(&json!({"conn_type": "x", "extra": inner}).to_string(), backend).unwrap();
            prop_assert_eq!(c.extra["d"].to_string(), format!("-{digits}"));
        }
    }

    /// A numeric login (or host, schema, password, description) stays a number in the JSON
    /// lockbox prints, as Airflow keeps it; its text is the field's value.
    #[test]
    fn numeric_text_fields_stay_numbers(field in prop::sample::select(&["login", "password", "host", "schema", "description"][..]),
                                        digits in "-?[1-9][0-9]{0,40}") {
        let text = format!(r#"{{"conn_type": "x", "{field}": {digits}}}"#);
        let c = parse(&text, BackendKind::Ssm).unwrap();
        let shown = c.to_json();
        prop_assert!(shown[field].is_number(), "{}", shown);
        prop_assert_eq!(shown[field].to_string(), digits.clone());
        let value = match field {
            "login" => c.login,
            "password" => c.password,
            "host" => c.host,
            "schema" => c.schema,
            _ => c.description,
        };
        prop_assert_eq!(value, Some(digits));
    }

    /// Ports as Python's `int()` reads a string: surrounding Unicode whitespace, a sign,
    /// `_` between digits; the information separators are not whitespace to `int()`.
    #[test]
    fn port_strings(port in 1u16.., pad in prop::sample::select(&[" ", "\t", "\u{3000}", "\u{85}", "\n"][..]),
                    plus in any::<bool>()) {
        let digits = port.to_string();
        let underscored: String = digits.chars().enumerate()
            .flat_map(|(i, c)| if i > 0 { vec!['_', c] } else { vec![c] })
            .collect();
        for written in [&digits, &underscored] {
            let sign = if plus { "+" } else { "" };
            let v = json!({"conn_type": "x", "port": format!("{pad}{sign}{written}{pad}")}).to_string();
            prop_assert_eq!(parse(&v, BackendKind::Ssm).unwrap().port, Some(port));
        }
        let v = json!({"conn_type": "x", "port": format!("\u{1c}{digits}")}).to_string();
        prop_assert!(parse(&v, BackendKind::Ssm).is_err());
        let v = json!({"conn_type": "x", "port": format!("{digits}__0")}).to_string();
        prop_assert!(parse(&v, BackendKind::Ssm).is_err());
    }

    /// A JSON connection built from string fields comes back with those fields, through both
    /// backends (Secrets Manager via its aliases).
    #[test]
    fn json_fields_round_trip(login in any::<String>(), password in any::<String>(),
                              host in any::<String>(), schema in any::<String>(),
                              port in proptest::option::of(1u16..)) {
        let mut core = json!({"conn_type": "my-type", "login": login, "password": password,
                              "host": host, "schema": schema});
        if let Some(p) = port {
            core["port"] = json!(p);
        }
        let c = parse(&core.to_string(), BackendKind::Ssm).unwrap();
        prop_assert_eq!(c.conn_type.as_deref(), Some("my_type"));
        prop_assert_eq!(c.login.as_deref(), Some(login.as_str()));
        prop_assert_eq!(c.password.as_deref(), Some(password.as_str()));
        prop_assert_eq!(c.host.as_deref(), Some(host.as_str()));
        prop_assert_eq!(c.schema.as_deref(), Some(schema.as_str()));
        prop_assert_eq!(c.port, port);
        let aliased = json!({"engine": "my-type", "username": login, "pass": password,
                             "server": host, "database": schema, "port": port});
        let s = parse(&aliased.to_string(), BackendKind::SecretsManager).unwrap();
        prop_assert_eq!(&s, &c);
        prop_assert_eq!(s.to_json()["login"].clone(), Value::String(login));
    }
}
