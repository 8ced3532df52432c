//! Airflow connections: parsed from a URI or from JSON exactly as Airflow's `Connection` does.
//!
//! Errors never quote the value: a connection holds a password.

use std::collections::BTreeMap;
use std::fmt;

use lockbox_core::{Error, ErrorKind, Result};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::pyurl::{self, urlsplit};
use crate::settings::BackendKind;

/// The query key whose value is the whole extra as JSON (Airflow's `Connection.EXTRA_KEY`).
pub const EXTRA_KEY: &str = "__extra__";

/// An Airflow connection, with its fields as Airflow's `Connection` holds them.
///
/// A connection parsed from a URI has `conn_type`, `host` and `schema` always set (possibly
/// empty, as in Airflow), `login` and `password` only when the URI has them, and `port` only
/// when the URI names one. `extra` is the extra as a JSON object (empty when there is none,
/// like Airflow's `extra_dejson`).
///
/// Debug redacts the password and the values of `extra`.
#[derive(Clone, Default, PartialEq)]
pub struct Connection {
    /// Connection type, normalised (`postgresql` becomes `postgres`, `-` becomes `_`).
    pub conn_type: Option<String>,
    /// Free-text description (JSON connections only).
    pub description: Option<String>,
    /// Host; `protocol://host` when the URI carries a second scheme.
    pub host: Option<String>,
    /// Login, percent-decoded.
    pub login: Option<String>,
    /// Password, percent-decoded.
    pub password: Option<String>,
    /// Schema (the URI path without its leading `/`), percent-decoded.
    pub schema: Option<String>,
    /// Port.
    pub port: Option<u16>,
    /// Extra parameters (URI query parameters, or the JSON `extra` object). Integers keep
    /// their exact value, however large (as in Python); other numbers are floats.
    pub extra: Map<String, Value>,
    /// The text fields (`login`, `password`, `host`, `schema`, `description`) a JSON
    /// connection gave as numbers. Airflow keeps such a field as a number; the field above
    /// holds its text, and [`Connection::to_json`] renders it as the number again.
    pub numbers: BTreeMap<String, serde_json::Number>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra_keys: Vec<&str> = self.extra.keys().map(String::as_str).collect();
        f.debug_struct("Connection")
            .field("conn_type", &self.conn_type)
            .field("description", &self.description)
            .field("host", &self.host)
            .field("login", &self.login)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("schema", &self.schema)
            .field("port", &self.port)
            .field("extra_keys", &extra_keys)
            .field("numbers", &self.numbers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Words that name each connection field in a Secrets Manager JSON secret, beyond the field's
/// own name (Airflow's `extra_conn_words`). Keys are field names (`login`, `password`, `host`,
/// `port`, `schema`, `conn_type`, `extra`); `user` is accepted for `login`.
pub type ExtraConnWords = BTreeMap<String, Vec<String>>;

/// The connection fields a Secrets Manager JSON secret is standardised to, in Airflow's order.
pub(crate) const SM_FIELDS: [&str; 7] = [
    "login",
    "password",
    "host",
    "port",
    "schema",
    "conn_type",
    "extra",
];

/// Airflow's default words for each field of a Secrets Manager JSON secret.
fn default_words(field: &str) -> &'static [&'static str] {
    match field {
        "login" => &["login", "user", "username", "user_name"],
        "password" => &["password", "pass", "key"],
        "host" => &["host", "remote_host", "server"],
        "port" => &["port"],
        "schema" => &["database", "schema"],
        "conn_type" => &["conn_type", "conn_id", "connection_type", "engine"],
        "extra" => &["extra"],
        _ => &[],
    }
}

fn corrupt(message: impl Into<String>) -> Error {
    Error::input(ErrorKind::Corrupt, message)
}

/// Airflow's `Connection._normalize_conn_type`.
pub fn normalize_conn_type(conn_type: &str) -> String {
    if conn_type == "postgresql" {
        "postgres".to_string()
    } else {
        conn_type.replace('-', "_")
    }
}

impl Connection {
    /// Deserialises a stored connection value the way Airflow does for `backend`: after
    /// stripping whitespace as Python's `str.strip()` does ([`py_strip`]), a value starting
    /// with `{` is JSON (for Secrets Manager, first standardised with the field aliases and
    /// `extra_words`), anything else a URI.
    ///
    /// Errors are `Corrupt` and never quote the value.
    pub fn deserialize(
        value: &str,
        backend: BackendKind,
        extra_words: &ExtraConnWords,
    ) -> Result<Self> {
        let stripped = py_strip(value);
        if stripped.is_empty() {
            return Err(corrupt("the connection value is blank"));
        }
        if stripped.starts_with('{') {
            match backend {
                BackendKind::Ssm => Self::from_json(stripped),
                // Airflow's Secrets Manager backend decides on the stripped value but decodes
                // the value as stored: JSON allows only its own four whitespace characters
                // around it.
                BackendKind::SecretsManager => Self::from_secrets_manager_json(value, extra_words),
            }
        } else {
            Self::from_uri(stripped)
        }
    }

    /// Airflow's `Connection(uri=...)` (`_parse_from_uri`).
    pub fn from_uri(uri: &str) -> Result<Self> {
        let schemes = uri.matches("://").count();
        if schemes > 2 {
            return Err(corrupt(
                "invalid connection URI: it has more than two '://'",
            ));
        }
        let host_with_protocol = schemes == 2;
        let split_err =
            |e: pyurl::SplitError| corrupt(format!("invalid connection URI: {}", e.describe()));
        let first = urlsplit(uri).map_err(split_err)?;
        let raw_type = first.scheme;
        let conn_type = normalize_conn_type(&raw_type);
        // Airflow replaces every occurrence of "<scheme>://", not just the first.
        let rest = uri.replace(
            &format!("{raw_type}://"),
            if host_with_protocol { "" } else { "//" },
        );
        if host_with_protocol {
            let head = rest.split_once("://").map_or(rest.as_str(), |(h, _)| h);
            if head.contains('@') || head.contains(':') {
                return Err(corrupt(
                    "invalid connection URI: a second scheme must come right after the first \
                     (type://protocol://login:password@host:port/schema)",
                ));
            }
        }
        let parts = urlsplit(&rest).map_err(split_err)?;
        let protocol = host_with_protocol.then(|| parts.scheme.clone());
        let host = netloc_to_hostname(&parts);
        let host = match protocol {
            Some(p) if !host.is_empty() && !p.is_empty() => format!("{p}://{host}"),
            _ => host,
        };
        let quoted_schema = parts.path.get(1..).unwrap_or("");
        let schema = pyurl::unquote(quoted_schema).into_owned();
        let login = parts.username().map(|u| pyurl::unquote(u).into_owned());
        let password = parts.password().map(|p| pyurl::unquote(p).into_owned());
        let port = parts.port().map_err(split_err)?;
        let mut extra = Map::new();
        if !parts.query.is_empty() {
            let mut query: Map<String, Value> = Map::new();
            for (k, v) in pyurl::parse_qsl(&parts.query) {
                query.insert(k, Value::String(v));
            }
            extra = match query.get(EXTRA_KEY) {
                Some(Value::String(s)) => parse_extra_str(s)?,
                _ => query,
            };
        }
        Ok(Self {
            conn_type: Some(conn_type),
            description: None,
            host: Some(host),
            login,
            password,
            schema: Some(schema),
            port,
            extra,
            numbers: BTreeMap::new(),
        })
    }

    /// Airflow's `Connection.from_json`: an object with the keys `conn_type`, `description`,
    /// `host`, `login`, `password`, `schema`, `port`, `extra` (or `uri`, alone). `port` may be
    /// a number or a numeric string; `extra` an object or a JSON-encoded object.
    pub fn from_json(value: &str) -> Result<Self> {
        let object = parse_object(value)?;
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in object {
            fields.insert(k, v);
        }
        Self::from_fields(fields)
    }

    /// Airflow's Secrets Manager JSON handling: each field takes the first key of the secret
    /// (in the secret's own order) among the field's words (`login`: login, user, username,
    /// user_name; `password`: password, pass, key; `host`: host, remote_host, server; `port`;
    /// `schema`: database, schema; `conn_type`: conn_type, conn_id, connection_type, engine;
    /// `extra`), plus `extra_words`. Other keys are dropped. Then as [`Connection::from_json`].
    pub fn from_secrets_manager_json(value: &str, extra_words: &ExtraConnWords) -> Result<Self> {
        let object = parse_object(value)?;
        let mut words: BTreeMap<&str, Vec<&str>> = SM_FIELDS
            .iter()
            .map(|f| (*f, default_words(f).to_vec()))
            .collect();
        for (field, more) in extra_words {
            let field = if field == "user" {
                "login"
            } else {
                field.as_str()
            };
            let Some(list) = words.get_mut(field) else {
                return Err(Error::invalid_config(
                    "backend_kwargs.extra_conn_words",
                    format!(
                        "unknown connection field {field:?} (use login, password, host, port, \
                         schema, conn_type or extra)"
                    ),
                ));
            };
            list.extend(more.iter().map(String::as_str));
        }
        let mut fields: BTreeMap<String, Value> = BTreeMap::new();
        for field in SM_FIELDS {
            let found = object
                .iter()
                .find(|(k, _)| words[field].contains(&k.as_str()))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null);
            fields.insert(field.to_string(), found);
        }
        Self::from_fields(fields)
    }

    /// `Connection.from_json` on already-decoded keys.
    fn from_fields(mut fields: BTreeMap<String, Value>) -> Result<Self> {
        let extra = match fields.remove("extra") {
            Some(v) if truthy(&v) => match v {
                Value::String(s) => parse_extra_str(&s)?,
                Value::Object(m) => match py_numbers(Value::Object(m))? {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                _ => {
                    return Err(corrupt(
                        "connection field \"extra\" must be a JSON object (or a string holding one)",
                    ));
                }
            },
            _ => Map::new(),
        };
        let conn_type = match fields.remove("conn_type") {
            Some(v) if truthy(&v) => match v {
                Value::String(s) => Some(normalize_conn_type(&s)),
                _ => return Err(corrupt("connection field \"conn_type\" must be a string")),
            },
            _ => None,
        };
        let port = match fields.remove("port") {
            Some(v) if truthy(&v) => Some(json_port(&v)?),
            _ => None,
        };
        let mut numbers = BTreeMap::new();
        let mut text = |key: &str| -> Result<Option<String>> {
            match fields.remove(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(Value::Number(n)) => {
                    let n = py_number(&n)?;
                    let text = n.to_string();
                    if key != "uri" {
                        numbers.insert(key.to_string(), n);
                    }
                    Ok(Some(text))
                }
                Some(_) => Err(corrupt(format!(
                    "connection field {key:?} is a JSON boolean, list or object: lockbox \
                     accepts a string or a number (Airflow keeps such a value as it is, and \
                     its hooks then fail on it)"
                ))),
            }
        };
        let description = text("description")?;
        let host = text("host")?;
        let login = text("login")?;
        let password = text("password")?;
        let schema = text("schema")?;
        let uri = text("uri")?;
        if let Some(unknown) = fields.keys().next() {
            return Err(corrupt(format!(
                "unknown connection field {unknown:?} (Airflow accepts conn_type, description, \
                 host, login, password, schema, port, extra, uri)"
            )));
        }
        if let Some(uri) = uri.filter(|u| !u.is_empty()) {
            let others = conn_type.is_some()
                || [&host, &login, &password, &schema]
                    .iter()
                    .any(|f| f.as_deref().is_some_and(|s| !s.is_empty()))
                || port.is_some_and(|p| p != 0)
                || !extra.is_empty();
            if others {
                return Err(corrupt(
                    "a JSON connection gives either \"uri\" or the individual fields, not both",
                ));
            }
            let mut conn = Self::from_uri(&uri)?;
            conn.description = description;
            conn.numbers = numbers
                .into_iter()
                .filter(|(k, _)| k == "description")
                .collect();
            return Ok(conn);
        }
        Ok(Self {
            conn_type,
            description,
            host,
            login,
            password,
            schema,
            port,
            extra,
            numbers,
        })
    }

    /// The connection as Airflow's `Connection.to_dict()` without `conn_id`: `conn_type`,
    /// `login`, `password`, `host`, `port`, `schema`, `extra` (an object), and `description`
    /// when set. This exposes the password: print it only when the user asked for it.
    ///
    /// A text field the JSON gave as a number is rendered as that number, as Airflow does.
    pub fn to_json(&self) -> Value {
        let opt = |key: &str, s: &Option<String>| match (s, self.numbers.get(key)) {
            (Some(_), Some(n)) => Value::Number(n.clone()),
            (Some(s), None) => Value::String(s.clone()),
            (None, _) => Value::Null,
        };
        let mut m = Map::new();
        m.insert("conn_type".into(), opt("conn_type", &self.conn_type));
        if self.description.is_some() {
            m.insert("description".into(), opt("description", &self.description));
        }
        m.insert("login".into(), opt("login", &self.login));
        m.insert("password".into(), opt("password", &self.password));
        m.insert("host".into(), opt("host", &self.host));
        m.insert("port".into(), self.port.map_or(Value::Null, Value::from));
        m.insert("schema".into(), opt("schema", &self.schema));
        m.insert("extra".into(), Value::Object(self.extra.clone()));
        Value::Object(m)
    }
}

/// Python's `str.strip()` with no argument: removes the characters `str.isspace` accepts at
/// both ends, which are Unicode's White_Space characters plus the ASCII information
/// separators `\x1c`-`\x1f` (Rust's `trim` keeps those four).
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python's `str.isspace` for one character.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// A JSON number as Python's `json.loads` reads it: an integer keeps its exact value, any
/// other number becomes a float (written back the way a float is). A float beyond the
/// range of a double (Python reads it as `inf`) is refused.
fn py_number(n: &serde_json::Number) -> Result<serde_json::Number> {
    let text = n.to_string();
    if !text.contains(['.', 'e', 'E']) {
        return Ok(n.clone());
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .ok_or_else(|| {
            corrupt(
                "a number in the connection is beyond the range of a float (Python reads it as \
                 infinity, which JSON cannot hold)",
            )
        })
}

/// Every number of `v` as Python's `json.loads` reads it ([`py_number`]).
fn py_numbers(v: Value) -> Result<Value> {
    Ok(match v {
        Value::Number(n) => Value::Number(py_number(&n)?),
        Value::Array(a) => Value::Array(a.into_iter().map(py_numbers).collect::<Result<_>>()?),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| Ok((k, py_numbers(v)?)))
                .collect::<Result<_>>()?,
        ),
        other => other,
    })
}

/// Python truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `int(port)` for a JSON port, limited to 0-65535: an integer, a float (truncated, as
/// Python's `int`), `true` (1), or a string as Python's `int` reads it: surrounding Unicode
/// whitespace (not `str.strip`'s set: `int` refuses the information separators
/// `\x1c`-`\x1f`), an optional sign, ASCII digits with single `_` between them.
fn json_port(v: &Value) -> Result<u16> {
    let bad = || {
        corrupt("connection field \"port\" must be an integer from 0 to 65535 (or a string of one)")
    };
    let n: i64 = match v {
        Value::Bool(true) => 1,
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.is_finite() && f.abs() < 1e9 => f.trunc() as i64,
            _ => return Err(bad()),
        },
        Value::String(s) => {
            let t = s.trim();
            let (negative, t) = match t.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, t.strip_prefix('+').unwrap_or(t)),
            };
            let well_formed = !t.is_empty()
                && !t.starts_with('_')
                && !t.ends_with('_')
                && !t.contains("__")
                && t.bytes().all(|b| b.is_ascii_digit() || b == b'_');
            if !well_formed {
                return Err(bad());
            }
            let digits: String = t.chars().filter(|c| *c != '_').collect();
            let digits = digits.trim_start_matches('0');
            if digits.len() > 9 {
                return Err(bad());
            }
            let n: i64 = if digits.is_empty() {
                0
            } else {
                digits.parse().map_err(|_| bad())?
            };
            if negative { -n } else { n }
        }
        _ => return Err(bad()),
    };
    u16::try_from(n).map_err(|_| bad())
}

/// Airflow's `_parse_netloc_to_hostname`: the unquoted hostname, or, when that holds a `/`,
/// the host part of the raw netloc unquoted (without lowercasing).
fn netloc_to_hostname(parts: &pyurl::SplitUrl) -> String {
    let hostname = pyurl::unquote(parts.hostname().as_deref().unwrap_or("")).into_owned();
    if !hostname.contains('/') {
        return hostname;
    }
    let mut host = parts.netloc.as_str();
    if let Some((_, after)) = host.rsplit_once('@') {
        host = after;
    }
    if let Some((before, _)) = host.split_once(':') {
        host = before;
    }
    pyurl::unquote(host).into_owned()
}

/// An extra given as text: it must be a JSON object (Airflow's `_validate_extra`); an empty
/// text is no extra.
fn parse_extra_str(s: &str) -> Result<Map<String, Value>> {
    if s.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(s).map(py_numbers) {
        Ok(Ok(Value::Object(m))) => Ok(m),
        Ok(Err(e)) => Err(e),
        Ok(_) => Err(corrupt(
            "the connection's extra is JSON but not an object (Airflow requires a JSON object)",
        )),
        Err(_) => Err(corrupt("the connection's extra is not valid JSON")),
    }
}

/// A JSON object's members in document order (the last of duplicate keys wins, at the
/// position of the first, as Python's `json.loads` gives them).
fn parse_object(value: &str) -> Result<Vec<(String, Value)>> {
    let mut de = serde_json::Deserializer::from_str(value);
    let ordered = OrderedObject::deserialize(&mut de)
        .and_then(|o| de.end().map(|()| o))
        .map_err(|e| {
            // serde_json's messages name a line and column, never the text.
            corrupt(format!(
                "the connection value starts with '{{' but is not a JSON object ({})",
                e.classify_message()
            ))
        })?;
    Ok(ordered.0)
}

trait ClassifyMessage {
    fn classify_message(&self) -> String;
}

impl ClassifyMessage for serde_json::Error {
    fn classify_message(&self) -> String {
        use serde_json::error::Category;
        let what = match self.classify() {
            Category::Io => "read error",
            Category::Syntax => "syntax error",
            Category::Data => "not an object",
            Category::Eof => "unexpected end",
        };
        format!("{what} at line {} column {}", self.line(), self.column())
    }
}

struct OrderedObject(Vec<(String, Value)>);

impl OrderedObject {
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<OrderedObject, A::Error> {
                let mut out: Vec<(String, Value)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    match out.iter_mut().find(|(key, _)| *key == k) {
                        Some(slot) => slot.1 = v,
                        None => out.push((k, v)),
                    }
                }
                Ok(OrderedObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests;
