//! Reading the files `lockbox import` takes, and validating them whole before any write.

use std::str::FromStr;

use lockbox_core::{Error, ErrorKind, Result, SecretName, SecretValue, SecretsManager};
use serde::de::{Deserializer, MapAccess, Visitor};

/// A format `lockbox import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// A JSON object of strings.
    Json,
    /// A YAML mapping of strings.
    Yaml,
    /// `NAME=value` lines (see [`parse_import`]).
    Dotenv,
}

impl FromStr for ImportFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "json" => Ok(Self::Json),
            "yaml" => Ok(Self::Yaml),
            "dotenv" => Ok(Self::Dotenv),
            other => Err(Error::invalid_config(
                "--format",
                format!("{other:?}: import reads json, yaml or dotenv"),
            )),
        }
    }
}

/// One entry of an import file: its name, and its value or why it is not a string.
#[derive(Debug)]
pub struct ImportEntry {
    /// The name as the file gives it (checked by [`check_import`]).
    pub name: String,
    /// The value, or what the file gave instead of a string.
    pub value: std::result::Result<SecretValue, NotAString>,
}

/// What an import file gave where a value must be a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAString {
    /// `null`.
    Null,
    /// `true` or `false` (quote it to store the text).
    Boolean,
    /// A number (quote it to store the text).
    Number,
    /// A list.
    List,
    /// A map.
    Map,
}

impl NotAString {
    /// `value` as a secret value when it is a string, or what it is instead.
    fn read(value: serde_json::Value) -> std::result::Result<SecretValue, Self> {
        match value {
            serde_json::Value::String(s) => Ok(SecretValue::from_string(s)),
            serde_json::Value::Null => Err(Self::Null),
            serde_json::Value::Bool(_) => Err(Self::Boolean),
            serde_json::Value::Number(_) => Err(Self::Number),
            serde_json::Value::Array(_) => Err(Self::List),
            serde_json::Value::Object(_) => Err(Self::Map),
        }
    }
}

impl std::fmt::Display for NotAString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Null => "the value is null, not a string",
            Self::Boolean => "the value is a boolean, not a string (quote it)",
            Self::Number => "the value is a number, not a string (quote it)",
            Self::List => "the value is a list, not a string",
            Self::Map => "the value is a map, not a string",
        })
    }
}

impl std::error::Error for NotAString {}

/// The entries of an import file, in file order. A syntax error fails the whole file (with a
/// line number, never a value); an entry whose value is not a string (a number, a list) is
/// returned with the reason, so [`check_import`] can name every bad entry at once. A name given
/// twice is an error.
///
/// Dotenv: `NAME=value` lines; blank lines and lines starting with `#` are skipped; `export `
/// before a name is allowed. A value is `'single-quoted'` (literal, may span lines),
/// `"double-quoted"` (may span lines; `\n`, `\r`, `\t`, `\\`, `\"`, `\$` and `` \` `` are
/// escapes, other backslashes stay), quoted parts following each other as in a shell
/// (`'it'\''s'`, what lockbox wrote before it wrote the dotenv readers' dialect), or bare: the
/// rest of the line as python-dotenv and npm `dotenv` read it (quotes and backslashes literal,
/// trailing white space dropped). A `#` after white space starts a comment.
pub fn parse_import(format: ImportFormat, text: &str) -> Result<Vec<ImportEntry>> {
    let entries = match format {
        ImportFormat::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let entries = de.deserialize_map(EntriesVisitor).map_err(|e| {
                syntax(
                    "JSON",
                    &format!("line {} column {}", e.line(), e.column()),
                    "not a JSON object of strings",
                )
            })?;
            de.end()
                .map_err(|_| syntax("JSON", "the end", "text after the object"))?;
            entries
        }
        ImportFormat::Yaml => {
            if text.trim().is_empty() {
                Vec::new()
            } else {
                serde_yaml_ng::Deserializer::from_str(text)
                    .deserialize_map(EntriesVisitor)
                    .map_err(|e| {
                        let at = e
                            .location()
                            .map(|l| format!("line {} column {}", l.line(), l.column()))
                            .unwrap_or_else(|| "the document".into());
                        syntax(
                            "YAML",
                            &at,
                            "not a YAML mapping of strings with unique keys",
                        )
                    })?
            }
        }
        ImportFormat::Dotenv => parse_dotenv(text)?,
    };
    let mut seen = std::collections::BTreeSet::new();
    let dups: Vec<&str> = entries
        .iter()
        .filter(|e| !seen.insert(e.name.as_str()))
        .map(|e| e.name.as_str())
        .collect();
    if !dups.is_empty() {
        return Err(Error::input(
            ErrorKind::InvalidConfig,
            format!(
                "the file names {} more than once; nothing was written",
                dups.join(", ")
            ),
        ));
    }
    Ok(entries)
}

fn syntax(format: &str, at: &str, what: &str) -> Error {
    Error::input(
        ErrorKind::InvalidConfig,
        format!("{format} at {at}: {what}"),
    )
}

/// Validates every entry against the backend's rules ([`SecretName`]'s and
/// [`SecretsManager::check_put`]'s), without any call. Fails naming every bad entry (never a
/// value), so a file with one bad entry writes nothing.
pub fn check_import(
    backend: &dyn SecretsManager,
    entries: Vec<ImportEntry>,
) -> Result<Vec<(SecretName, SecretValue)>> {
    let total = entries.len();
    let mut good = Vec::with_capacity(total);
    let mut bad = Vec::new();
    for ImportEntry { name, value } in entries {
        let value = match value {
            Ok(v) => v,
            Err(why) => {
                bad.push(format!("{name:?}: {why}"));
                continue;
            }
        };
        let checked = SecretName::new(name.as_str()).and_then(|n| {
            backend.check_put(&n, &value)?;
            Ok(n)
        });
        match checked {
            Ok(n) => good.push((n, value)),
            Err(e) => bad.push(format!("{name:?}: {}", e.message())),
        }
    }
    if bad.is_empty() {
        return Ok(good);
    }
    Err(Error::input(
        ErrorKind::InvalidConfig,
        format!(
            "{} of {total} entries cannot be stored in {}, so nothing was written: {}",
            bad.len(),
            backend.backend(),
            bad.join("; ")
        ),
    ))
}

/// Reads a map of string keys, keeping every key in order and each value or why it is not a
/// string.
struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Vec<ImportEntry>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map of names to string values")
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some((name, value)) = map.next_entry::<String, serde_json::Value>()? {
            out.push(ImportEntry {
                name,
                value: NotAString::read(value),
            });
        }
        Ok(out)
    }
}

fn parse_dotenv(text: &str) -> Result<Vec<ImportEntry>> {
    let mut p = Dotenv {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    loop {
        p.skip_blank();
        let Some(c) = p.peek() else { break };
        if c == '\n' {
            p.bump();
            continue;
        }
        if c == '#' {
            p.skip_to_eol();
            continue;
        }
        let line = p.line;
        let mut name = p.word_chars();
        if name == "export" && p.peek().is_some_and(|c| c == ' ' || c == '\t') {
            p.skip_blank();
            name = p.word_chars();
        }
        if name.is_empty() || p.peek() != Some('=') {
            return Err(syntax(
                "dotenv",
                &format!("line {line}"),
                "expected NAME=value",
            ));
        }
        p.bump();
        let value = p.value(line)?;
        p.skip_blank();
        match p.peek() {
            None | Some('\n') => {}
            Some('#') => p.skip_to_eol(),
            Some(_) => {
                return Err(syntax(
                    "dotenv",
                    &format!("line {line}"),
                    "unexpected text after the value (quote a value that holds spaces)",
                ));
            }
        }
        out.push(ImportEntry {
            name,
            value: Ok(SecretValue::from_string(value)),
        });
    }
    Ok(out)
}

struct Dotenv {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

impl Dotenv {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blank(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
            self.bump();
        }
    }

    fn skip_to_eol(&mut self) {
        while self.peek().is_some_and(|c| c != '\n') {
            self.bump();
        }
    }

    fn word_chars(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | '+' | '@') {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        s
    }

    /// An unquoted value as dotenv readers take it: the rest of the line, without a comment
    /// (`#` after white space) and trailing white space; quotes and backslashes are literal.
    fn bare(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek().filter(|c| *c != '\n') {
            if c == '#' && out.ends_with(char::is_whitespace) {
                break;
            }
            out.push(c);
            self.bump();
        }
        self.skip_to_eol();
        out.truncate(out.trim_end().len());
        out
    }

    /// A value: quoted (single quotes literal, double quotes with escapes, adjacent quoted
    /// parts joined as in a shell, which older lockbox exports wrote) or bare.
    fn value(&mut self, line: usize) -> Result<String> {
        let unclosed = |q: &str| {
            syntax(
                "dotenv",
                &format!("line {line}"),
                &format!("the {q}-quoted value is not closed"),
            )
        };
        if self
            .peek()
            .is_some_and(|c| !matches!(c, '\'' | '"' | ' ' | '\t' | '\n' | '\r'))
        {
            return Ok(self.bare());
        }
        let mut out = String::new();
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | '\r' => break,
                '\'' => {
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(unclosed("single")),
                            Some('\'') => break,
                            Some(c) => out.push(c),
                        }
                    }
                }
                '"' => {
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(unclosed("double")),
                            Some('"') => break,
                            Some('\\') => match self.bump() {
                                None => return Err(unclosed("double")),
                                Some('n') => out.push('\n'),
                                Some('r') => out.push('\r'),
                                Some('t') => out.push('\t'),
                                Some('\n') => {}
                                Some(c @ ('\\' | '"' | '$' | '`')) => out.push(c),
                                Some(c) => {
                                    out.push('\\');
                                    out.push(c);
                                }
                            },
                            Some(c) => out.push(c),
                        }
                    }
                }
                '\\' => {
                    self.bump();
                    match self.bump() {
                        Some('\n') | None => {}
                        Some(c) => out.push(c),
                    }
                }
                c => {
                    self.bump();
                    out.push(c);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockbox_core::MemoryBackend;

    fn ok(entries: Vec<ImportEntry>) -> Vec<(String, String)> {
        entries
            .into_iter()
            .map(|e| (e.name, e.value.unwrap().expose_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn dotenv_reads_shell_and_dotenv_quoting() {
        let text = "# comment\n\nexport A='it'\\''s $x'\nB=\"l1\\nl2 \\\"q\\\" \\$y\"  # note\nC=it's \"q\" C:\\p\\ # c\nD=\nE='multi\nline'\nF=a#b\n";
        let got = ok(parse_import(ImportFormat::Dotenv, text).unwrap());
        let want = [
            ("A", "it's $x"),
            ("B", "l1\nl2 \"q\" $y"),
            ("C", "it's \"q\" C:\\p\\"),
            ("D", ""),
            ("E", "multi\nline"),
            ("F", "a#b"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn dotenv_errors_name_the_line_not_the_value() {
        for (text, line) in [("A=ok\nB='open\n", 2), ("A='x' y\n", 1), ("=v\n", 1)] {
            let e = parse_import(ImportFormat::Dotenv, text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("line {line}")), "{text:?}: {e}");
            assert!(!e.contains("open") && !e.contains("ok"), "{e}");
        }
    }

    #[test]
    fn json_and_yaml_keep_order_and_flag_non_strings() {
        let got = parse_import(ImportFormat::Json, r#"{"b": "1", "a": 2, "c": null}"#).unwrap();
        assert_eq!(got[0].name, "b");
        assert_eq!(got[0].value.as_ref().unwrap().expose_str(), Some("1"));
        assert_eq!(got[1].value.as_ref().err(), Some(&NotAString::Number));
        assert_eq!(
            got[1].value.as_ref().unwrap_err().to_string(),
            "the value is a number, not a string (quote it)"
        );
        assert_eq!(got[2].value.as_ref().err(), Some(&NotAString::Null));
        assert_eq!(
            got[2].value.as_ref().unwrap_err().to_string(),
            "the value is null, not a string"
        );
        let got = parse_import(ImportFormat::Yaml, "b: x\na: |\n  l1\n  l2\n").unwrap();
        assert_eq!(
            ok(got),
            [("b".into(), "x".into()), ("a".into(), "l1\nl2\n".into())]
        );
        assert!(parse_import(ImportFormat::Yaml, "").unwrap().is_empty());
        assert!(parse_import(ImportFormat::Json, "[1]").is_err());
        let e = parse_import(ImportFormat::Json, r#"{"a": "1", "a": "2"}"#).unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
    }

    fn entry(name: &str, value: std::result::Result<SecretValue, NotAString>) -> ImportEntry {
        ImportEntry {
            name: name.into(),
            value,
        }
    }

    #[test]
    fn check_names_every_bad_entry() {
        let m = MemoryBackend::new();
        let entries = vec![
            entry("good", Ok("v".into())),
            entry("bad name", Ok("secret-value".into())),
            entry("n", Err(NotAString::Number)),
        ];
        let e = check_import(&m, entries).unwrap_err().to_string();
        assert!(
            e.contains("2 of 3") && e.contains("\"bad name\"") && e.contains("\"n\""),
            "{e}"
        );
        assert!(!e.contains("secret-value"), "{e}");
    }
}
