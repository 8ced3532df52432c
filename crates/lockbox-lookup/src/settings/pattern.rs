//! Lookup patterns: Python's `re.match(pattern, id, re.IGNORECASE)`, compiled when first
//! needed, and how a kwargs value becomes one.

use std::fmt;
use std::sync::{Arc, OnceLock};

use lockbox_core::{Error, Result};
use serde_json::Value;

/// A lookup pattern: Python's `re.match(pattern, id, re.IGNORECASE)`, i.e. a case-insensitive
/// match anchored at the start of the id (not at its end), with Python's `re` syntax and
/// meaning (look-around, backreferences, `\Z`, `(?P<name>...)`, a `{` that starts no repeat
/// is a literal, global inline flags only at the start, Python's `\s`, `\w`, `\b`, `$`).
///
/// Like Airflow, a pattern from the kwargs is compiled only when a lookup of its kind needs it
/// ([`LookupPattern::deferred`]): a pattern Python would refuse makes lookups of that kind
/// fail, and leaves the other kinds alone.
#[derive(Clone)]
pub struct LookupPattern {
    source: String,
    field: String,
    compiled: Arc<OnceLock<Result<fancy_regex::Regex>>>,
}

impl LookupPattern {
    /// Compiles `pattern` now.
    pub fn new(pattern: &str) -> Result<Self> {
        let p = Self::deferred("lookup pattern", pattern);
        p.regex()?;
        Ok(p)
    }

    /// `pattern`, compiled on first use; `field` names it in errors.
    pub fn deferred(field: &str, pattern: &str) -> Self {
        Self {
            source: pattern.to_string(),
            field: field.to_string(),
            compiled: Arc::new(OnceLock::new()),
        }
    }

    /// A kwargs value that cannot be a pattern (not a string): every use fails with `message`.
    fn unusable(field: &str, source: String, message: &str) -> Self {
        let p = Self::deferred(field, &source);
        let _ = p.compiled.set(Err(Error::invalid_config(field, message)));
        p
    }

    fn regex(&self) -> Result<&fancy_regex::Regex> {
        let compiled = self.compiled.get_or_init(|| {
            let translated = crate::pyre::translate(&self.source).map_err(|e| {
                Error::invalid_config(
                    &self.field,
                    format!(
                        "{:?} is not a valid Python regular expression: {e}",
                        self.source
                    ),
                )
            })?;
            fancy_regex::RegexBuilder::new(&translated)
                .build()
                .map_err(|e| {
                    Error::invalid_config(
                        &self.field,
                        format!("{:?} cannot be used as a lookup pattern: {e}", self.source),
                    )
                })
        });
        compiled.as_ref().map_err(Error::clone)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern matches at the start of `id`, ignoring case. Errors when the
    /// pattern is not a valid Python regular expression (or matching exceeds the backtracking
    /// limit).
    pub fn is_match(&self, id: &str) -> Result<bool> {
        self.regex()?.is_match(id).map_err(|e| {
            Error::invalid_config(
                &self.field,
                format!("{:?} could not be matched against the id: {e}", self.source),
            )
        })
    }
}

impl fmt::Debug for LookupPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LookupPattern({:?})", self.source)
    }
}

/// A kind's lookup pattern, compiled only when a lookup of that kind needs it (as Airflow
/// calls `re.match` only then); a value that is not a string fails those lookups only.
pub(super) fn from_kwargs(key: &str, value: &Value) -> Option<LookupPattern> {
    let field = format!("backend_kwargs.{key}");
    match value {
        // An empty (or false, zero, ...) pattern filters nothing (Airflow tests
        // `if lookup_pattern`).
        Value::Null | Value::Bool(false) => None,
        Value::String(p) if p.is_empty() => None,
        Value::Array(a) if a.is_empty() => None,
        Value::Object(o) if o.is_empty() => None,
        Value::Number(n) if n.as_f64() == Some(0.0) => None,
        Value::String(p) => Some(LookupPattern::deferred(&field, p)),
        other => Some(LookupPattern::unusable(
            &field,
            other.to_string(),
            "must be a string (a Python regular expression)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_syntax() {
        // Python's syntax: look-around, backreferences, \Z, a lone `{`.
        for (p, id) in [
            ("(?!x)", "y"),
            (r"(a)\1", "aA"),
            (r"ab\Z", "ab"),
            ("a{", "a{"),
        ] {
            assert!(LookupPattern::new(p).unwrap().is_match(id).unwrap(), "{p}");
        }
        assert!(LookupPattern::new("a(?i)").is_err());
    }
}
