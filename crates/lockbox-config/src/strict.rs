//! Strict JSON for files a user writes (configs, manifests, settings).
//!
//! serde_json keeps only the last of two equal keys in an object, so a second `"type"` or
//! `"cloudSecrets"` silently replaces the first. [`parse`] refuses any object that holds two
//! keys equal regardless of case (`type` and `TYPE`), at any depth, and says where. It works in
//! one pass with a hash set per object, so its time is linear in the size of the text; nesting
//! is bounded by serde_json's recursion limit (128).
//!
//! Beside it, the helpers the readers of such files share: [`parse_file`] (errors that name
//! the file), [`only_keys`], [`type_name`] and [`read_text`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::path::Path;

use lockbox_core::Error;
use lockbox_fs::FsError;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use zeroize::Zeroize;

/// The key under which serde_json's `arbitrary_precision` feature hands a number to a visitor.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Why a text is not strict JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrictJsonError {
    /// Not JSON at all; `message` is serde_json's (with line and column).
    Syntax {
        /// serde_json's description, such as `EOF while parsing an object at line 1 column 9`.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// An object holds two keys that are equal regardless of case.
    DuplicateKey {
        /// Where the object is: empty for the top level, else like `cloudSecrets[2]` or `extra`.
        path: String,
        /// The key as first given.
        first: String,
        /// The key as given the second time (what the error names).
        key: String,
        /// 1-based line of the second key.
        line: usize,
    },
}

impl StrictJsonError {
    /// The path of the repeated key (`extra.path`, `cloudSecrets[0].ARN`), for duplicate keys.
    pub fn key_path(&self) -> Option<String> {
        match self {
            Self::Syntax { .. } => None,
            Self::DuplicateKey { path, key, .. } if path.is_empty() => Some(key.clone()),
            Self::DuplicateKey { path, key, .. } => Some(format!("{path}.{key}")),
        }
    }
}

impl fmt::Display for StrictJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { message, .. } => f.write_str(message),
            Self::DuplicateKey {
                first, key, line, ..
            } => {
                let at = self.key_path().unwrap_or_default();
                if first == key {
                    write!(f, "{at}: key {key:?} is given twice (line {line})")
                } else {
                    write!(
                        f,
                        "{at}: key {key:?} duplicates {first:?} (line {line}; keys are matched \
                         regardless of case)"
                    )
                }
            }
        }
    }
}

impl std::error::Error for StrictJsonError {}

/// Parses `text` as JSON, refusing an object with two keys equal regardless of case. The
/// values are what `serde_json::from_str::<Value>` gives (object keys sorted).
pub fn parse(text: &str) -> Result<Value, StrictJsonError> {
    let ctx = Ctx::default();
    let mut de = serde_json::Deserializer::from_str(text);
    let result = Seed(&ctx)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match result {
        Ok(v) => Ok(v),
        Err(e) => match ctx.duplicate.into_inner() {
            Some((path, first, key)) => Err(StrictJsonError::DuplicateKey {
                path,
                first,
                key,
                line: e.line(),
            }),
            None => Err(StrictJsonError::Syntax {
                message: e.to_string(),
                line: e.line(),
                column: e.column(),
            }),
        },
    }
}

/// Where the parser is (for messages) and the duplicate it found.
#[derive(Default)]
struct Ctx {
    path: RefCell<Vec<Segment>>,
    duplicate: RefCell<Option<(String, String, String)>>,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl Ctx {
    fn path_string(&self) -> String {
        let mut out = String::new();
        for seg in self.path.borrow().iter() {
            match seg {
                Segment::Key(k) if out.is_empty() => out.push_str(k),
                Segment::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }
}

#[derive(Clone, Copy)]
struct Seed<'c>(&'c Ctx);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            self.0.path.borrow_mut().push(Segment::Index(items.len()));
            let next = seq.next_element_seed(self);
            self.0.path.borrow_mut().pop();
            match next? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // Lower-cased key -> the key as first given.
        let mut seen: HashMap<String, String> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            // With serde_json's `arbitrary_precision` (turned on in the whole build by a crate
            // that needs exact numbers, lockbox-lookup), a number arrives as a one-entry map
            // holding its digits under this token.
            if out.is_empty() && seen.is_empty() && key == NUMBER_TOKEN {
                let digits: String = map.next_value()?;
                return digits
                    .parse::<Number>()
                    .map(Value::Number)
                    .map_err(A::Error::custom);
            }
            match seen.entry(key.to_lowercase()) {
                Entry::Occupied(first) => {
                    let path = self.0.path_string();
                    let first = first.get().clone();
                    *self.0.duplicate.borrow_mut() = Some((path, first, key));
                    return Err(A::Error::custom("duplicate key"));
                }
                Entry::Vacant(slot) => {
                    slot.insert(key.clone());
                }
            }
            self.0.path.borrow_mut().push(Segment::Key(key.clone()));
            let value = map.next_value_seed(self);
            self.0.path.borrow_mut().pop();
            out.insert(key, value?);
        }
        Ok(Value::Object(out))
    }
}

/// The JSON type of `value` as an error message names it: `null`, `a boolean`, `a number`,
/// `a string`, `an array`, `an object`.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses `text` as strict JSON (see [`parse`]) with errors that name `source` (usually the
/// file's path): `{source}: not valid JSON: ...`, or `{source}: cloudSecrets[0].Labels:
/// duplicates "labels" (line 3; ...)`. The reader of the JSON files users write for
/// lockbox-resources (manifests, consumers files).
pub fn parse_file(text: &str, source: &str) -> Result<Value, Error> {
    parse(text).map_err(|e| match e {
        StrictJsonError::Syntax { message, .. } => {
            Error::invalid_config(source, format_args!("not valid JSON: {message}"))
        }
        StrictJsonError::DuplicateKey {
            ref first, line, ..
        } => Error::invalid_config(
            format_args!("{source}: {}", e.key_path().unwrap_or_default()),
            format_args!(
                "duplicates {first:?} (line {line}; keys are matched ignoring case, and \
                 each may be given once)"
            ),
        ),
    })
}

/// Refuses any key of `fields` not in `allowed`, naming it as `{at}{key}` (`at` names the
/// file and the object, e.g. `"manifest.json: Resources[0]."`); keys are matched exactly, with
/// a hint when only the case differs (`did you mean "Id"?`).
pub fn only_keys(fields: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), Error> {
    for key in fields.keys() {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        let hint = match allowed.iter().find(|a| a.eq_ignore_ascii_case(key)) {
            Some(a) => format!("unknown key; did you mean {a:?}? (keys are matched exactly)"),
            None => format!(
                "unknown key; expected {}",
                allowed
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return Err(Error::invalid_config(format_args!("{at}{key}"), hint));
    }
    Ok(())
}

/// Reads the text of a file a user points lockbox at (a config file, a manifest): a regular
/// file ([`lockbox_fs::read_regular`]: a FIFO is refused at once), at most
/// [`lockbox_fs::MAX_INPUT_FILE_LEN`] bytes, UTF-8. Text that is not UTF-8 is an
/// [`FsError::Io`] of kind `InvalidData` ("stream did not contain valid UTF-8", as
/// `std::fs::read_to_string` says), and the bytes read are wiped.
pub fn read_text(path: &Path) -> Result<String, FsError> {
    let bytes = lockbox_fs::read_regular(path, lockbox_fs::MAX_INPUT_FILE_LEN)?;
    String::from_utf8(bytes).map_err(|e| {
        e.into_bytes().zeroize();
        FsError::Io {
            path: path.to_owned(),
            action: "read",
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn same_values_as_serde_json() {
        let text = r#"{"a": [1, -2, 3.5, true, null, "x", {"b": {}}], "B": "y"}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    #[test]
    fn duplicate_keys_in_any_case_at_any_depth_are_named() {
        for (text, path, first, key) in [
            (r#"{"type": 1, "type": 2}"#, "", "type", "type"),
            (r#"{"type": 1, "TYPE": 2}"#, "", "type", "TYPE"),
            (r#"{"a": {"x": 1, "X": 2}}"#, "a", "x", "X"),
            (r#"{"a": [{}, {"k": 1, "k": 1}]}"#, "a[1]", "k", "k"),
            (r#"[[{"Ä": 1, "ä": 2}]]"#, "[0][0]", "Ä", "ä"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(
                e,
                StrictJsonError::DuplicateKey {
                    path: path.into(),
                    first: first.into(),
                    key: key.into(),
                    line: 1
                },
                "{text}"
            );
            assert!(e.to_string().contains(&format!("{key:?}")), "{e}");
        }
        let e = parse("{\"a\": {\"x\": 1,\n \"X\": 2}}").unwrap_err();
        assert_eq!(e.key_path().as_deref(), Some("a.X"));
        assert!(
            e.to_string().starts_with("a.X: key \"X\" duplicates \"x\""),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_keep_serde_json_positions() {
        let e = parse("{\n  \"a\": [,]\n}").unwrap_err();
        let StrictJsonError::Syntax { line, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(line, 2);
        assert!(matches!(
            parse("{} x").unwrap_err(),
            StrictJsonError::Syntax { .. }
        ));
        let deep = "[".repeat(10_000);
        assert!(matches!(
            parse(&deep).unwrap_err(),
            StrictJsonError::Syntax { .. }
        ));
    }

    #[test]
    fn many_keys_parse_in_one_pass() {
        let body: Vec<String> = (0..50_000).map(|i| format!("\"k{i}\": {i}")).collect();
        let v = parse(&format!("{{{}}}", body.join(","))).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 50_000);
    }

    #[test]
    fn read_text_refuses_bytes_that_are_not_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, b"{\"a\": \"\xff\"}").unwrap();
        let e = read_text(&path).unwrap_err();
        assert_eq!(e.io_kind(), std::io::ErrorKind::InvalidData);
        assert!(
            e.to_string().contains("stream did not contain valid UTF-8"),
            "{e}"
        );
        std::fs::write(&path, "{\"a\": \"é\"}").unwrap();
        assert_eq!(read_text(&path).unwrap(), "{\"a\": \"é\"}");
        assert!(
            read_text(&dir.path().join("none"))
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn parse_file_and_only_keys_name_the_file_and_the_key() {
        let e = parse_file("{", "m.json").unwrap_err();
        assert!(e.to_string().contains("m.json: not valid JSON"), "{e}");
        let e = parse_file(r#"{"a": {"k": 1, "K": 2}}"#, "m.json").unwrap_err();
        assert!(
            e.to_string().contains("m.json: a.K: duplicates \"k\""),
            "{e}"
        );
        let Value::Object(v) = serde_json::json!({"id": 1}) else {
            unreachable!()
        };
        let e = only_keys(&v, &["Id", "Name"], "m.json: Resources[0].").unwrap_err();
        assert!(
            e.to_string()
                .contains("m.json: Resources[0].id: unknown key; did you mean \"Id\"?"),
            "{e}"
        );
        let e = only_keys(&v, &["Name"], "m.json: ").unwrap_err();
        assert!(
            e.to_string().contains("unknown key; expected \"Name\""),
            "{e}"
        );
        assert!(only_keys(&v, &["id"], "").is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics_and_agrees_with_serde_json(text in "\\PC{0,200}") {
            match parse(&text) {
                Ok(v) => prop_assert_eq!(v, serde_json::from_str::<Value>(&text).unwrap()),
                Err(StrictJsonError::Syntax { .. }) => {
                    prop_assert!(serde_json::from_str::<Value>(&text).is_err());
                }
                Err(StrictJsonError::DuplicateKey { .. }) => {}
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse(&text);
        }
    }
}
