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
pub type ImportEntry = (String, std::result::Result<String, String>);

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
        .filter(|(n, _)| !seen.insert(n.as_str()))
        .map(|(n, _)| n.as_str())
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
    for (name, value) in entries {
        let value = match value {
            Ok(v) => SecretValue::from_string(v),
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
            let value = match value {
                serde_json::Value::String(s) => Ok(s),
                serde_json::Value::Null => Err("the value is null, not a string".to_owned()),
                serde_json::Value::Bool(_) => {
                    Err("the value is a boolean, not a string (quote it)".to_owned())
                }
                serde_json::Value::Number(_) => {
                    Err("the value is a number, not a string (quote it)".to_owned())
                }
                serde_json::Value::Array(_) => Err("the value is a list, not a string".to_owned()),
                serde_json::Value::Object(_) => Err("the value is a map, not a string".to_owned()),
            };
            out.push((name, value));
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
        out.push((name, Ok(value)));
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
        entries.into_iter().map(|(n, v)| (n, v.unwrap())).collect()
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
        assert_eq!(got[0], ("b".into(), Ok("1".into())));
        assert!(got[1].1.as_ref().unwrap_err().contains("number"));
        assert!(got[2].1.as_ref().unwrap_err().contains("null"));
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

    #[test]
    fn check_names_every_bad_entry() {
        let m = MemoryBackend::new();
        let entries = vec![
            ("good".into(), Ok("v".into())),
            ("bad name".into(), Ok("secret-value".into())),
            (
                "n".into(),
                Err("the value is a number, not a string (quote it)".into()),
            ),
        ];
        let e = check_import(&m, entries).unwrap_err().to_string();
        assert!(
            e.contains("2 of 3") && e.contains("\"bad name\"") && e.contains("\"n\""),
            "{e}"
        );
        assert!(!e.contains("secret-value"), "{e}");
    }
}
