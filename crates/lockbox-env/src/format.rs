//! The export formats and POSIX shell quoting.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use lockbox_core::{Error, ErrorKind, Result};

use crate::source::Loaded;

/// What to do with a binary (non-UTF-8) value where text is needed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Binary {
    /// Refuse it with an error naming the secret.
    #[default]
    Refuse,
    /// Pass it base64-encoded (standard alphabet, padded).
    Base64,
}

/// A format `lockbox export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A JSON object `{"name": "value"}`, pretty-printed, names sorted.
    Json,
    /// A YAML mapping `name: value` (strings quoted or block-styled as YAML needs).
    Yaml,
    /// `VARIABLE="value"` lines in the dialect python-dotenv and npm `dotenv` share (see
    /// [`dotenv_quote`]); a value neither can read back exactly is refused.
    Dotenv,
    /// Terraform variable definitions `VARIABLE = "value"` (HCL string escapes; `${` and `%{`
    /// doubled so Terraform reads them literally).
    Tfvars,
    /// Java `.properties` `name=value` lines, escaped as `java.util.Properties.store` does
    /// (non-ASCII as `\uXXXX`).
    JavaProperties,
    /// `name,value` rows (RFC 4180 quoting), no header.
    Csv,
    /// `name<TAB>value` rows, quoted like CSV where a field holds a tab, quote or line break;
    /// no header.
    Tsv,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 7] = [
        Format::Json,
        Format::Yaml,
        Format::Dotenv,
        Format::Tfvars,
        Format::JavaProperties,
        Format::Csv,
        Format::Tsv,
    ];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Yaml => "yaml",
            Format::Dotenv => "dotenv",
            Format::Tfvars => "tfvars",
            Format::JavaProperties => "java-properties",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
        }
    }

    /// True for the formats keyed by variable name (dotenv and tfvars, whose keys must be
    /// identifiers), false for those keyed by secret name.
    pub fn keyed_by_variable(self) -> bool {
        matches!(self, Format::Dotenv | Format::Tfvars)
    }

    /// The document for `loaded`: keyed by variable name (see
    /// [`Loaded::variables`](crate::Loaded::variables)) for dotenv and tfvars, by secret name
    /// otherwise; later sources win.
    pub fn render(self, loaded: &Loaded, preserve_case: bool, binary: Binary) -> Result<String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if self.keyed_by_variable() {
            for (var, entry) in loaded.variables(preserve_case)? {
                let text = entry.text(binary)?.into_owned();
                if self == Format::Dotenv && dotenv_quote(&text).is_none() {
                    return Err(dotenv_refused(&var).with_secret(&entry.name));
                }
                pairs.push((var, text));
            }
        } else {
            for (name, entry) in loaded.by_name() {
                pairs.push((name.to_owned(), entry.text(binary)?.into_owned()));
            }
        }
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.write(&pairs)
    }

    /// The document for `pairs` (keys unique, in the order given; JSON and YAML sort them).
    /// For dotenv and tfvars every key must be a variable name (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn write(self, pairs: &[(&str, &str)]) -> Result<String> {
        if self.keyed_by_variable()
            && let Some((bad, _)) = pairs.iter().find(|(k, _)| !is_identifier(k))
        {
            return Err(Error::input(
                ErrorKind::InvalidName,
                format!(
                    "{bad:?} is not a variable name, which {} keys must be",
                    self.name()
                ),
            ));
        }
        let mut out = String::new();
        match self {
            Format::Json => {
                let map: BTreeMap<&str, &str> = pairs.iter().copied().collect();
                out = serde_json::to_string_pretty(&map).map_err(|e| failed(self, e))?;
                out.push('\n');
            }
            Format::Yaml => {
                let map: BTreeMap<&str, &str> = pairs.iter().copied().collect();
                out = serde_yaml_ng::to_string(&map).map_err(|e| failed(self, e))?;
            }
            Format::Dotenv => {
                for (k, v) in pairs {
                    let quoted = dotenv_quote(v).ok_or_else(|| dotenv_refused(k))?;
                    let _ = writeln!(out, "{k}={quoted}");
                }
            }
            Format::Tfvars => {
                for (k, v) in pairs {
                    let _ = writeln!(out, "{k} = \"{}\"", hcl_escape(v));
                }
            }
            Format::JavaProperties => {
                for (k, v) in pairs {
                    let _ = writeln!(
                        out,
                        "{}={}",
                        properties_escape(k, true),
                        properties_escape(v, false)
                    );
                }
            }
            Format::Csv | Format::Tsv => {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .delimiter(if self == Format::Csv { b',' } else { b'\t' })
                    .terminator(csv::Terminator::Any(b'\n'))
                    .from_writer(Vec::new());
                for (k, v) in pairs {
                    w.write_record([k, v]).map_err(|e| failed(self, e))?;
                }
                let bytes = w.into_inner().map_err(|e| failed(self, e.error()))?;
                out = String::from_utf8(bytes).expect("UTF-8 in, UTF-8 out");
            }
        }
        Ok(out)
    }
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                Error::invalid_config(
                    "--format",
                    format!("{s:?}: use one of {}", names.join(", ")),
                )
            })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn failed(format: Format, e: impl std::fmt::Display) -> Error {
    // Serialisers report structure, not values; still, keep only the kind of failure.
    let _ = e;
    Error::input(
        ErrorKind::Backend,
        format!("could not write the {} document", format.name()),
    )
}

fn is_identifier(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The refusal of a value [`dotenv_quote`] cannot write, naming its variable.
fn dotenv_refused(var: &str) -> Error {
    Error::input(
        ErrorKind::Unsupported,
        format!(
            "the value for {var} cannot be written as dotenv so that python-dotenv and npm \
             dotenv both read it back exactly (python-dotenv expands `${{NAME}}` wherever it \
             appears, and no quoting carries both kinds of quote with a backslash, `#`, a line \
             break or surrounding spaces for both readers); use -f json"
        ),
    )
}

/// `value` as a dotenv value that python-dotenv (1.x, with its default `${VAR}` expansion)
/// and npm `dotenv` (16-18) both read back exactly, or `None` when no form carries it for
/// both. python-dotenv expands `${NAME}` and `${NAME:-default}` in every form, quoted or not,
/// and has no escape for it, so a value holding one is refused. Otherwise the first form that
/// fits:
///
/// 1. `"..."` with line feeds and carriage returns written `\n` and `\r`, when the value has
///    no `"` and no `\` (npm `dotenv` decodes only `\n` and `\r` inside double quotes, so
///    `\"` and `\\` would keep their backslash there).
/// 2. `'...'`, literal, when the value has no `'`, no carriage return (npm `dotenv` turns
///    those into line feeds) and no `\` before another `\` or at the end (python-dotenv
///    decodes `\\` and `\'` inside single quotes).
/// 3. Bare, when the value is one line without `#`, does not start with a quote and neither
///    starts nor ends with white space.
pub fn dotenv_quote(value: &str) -> Option<String> {
    if python_dotenv_expands(value) {
        return None;
    }
    if !value.contains(['"', '\\']) {
        let mut out = String::with_capacity(value.len() + 2);
        out.push('"');
        for c in value.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        out.push('"');
        return Some(out);
    }
    let backslash_trouble = value.ends_with('\\') || value.contains("\\\\");
    if !value.contains(['\'', '\r']) && !backslash_trouble {
        return Some(format!("'{value}'"));
    }
    let bare = !value.is_empty()
        && !value.contains(['#', '\n', '\r', '\u{2028}', '\u{2029}'])
        && !value.starts_with(['\'', '"', '`'])
        && !value.starts_with(is_space)
        && !value.ends_with(is_space);
    bare.then(|| value.to_owned())
}

/// True when python-dotenv's expansion pattern `\$\{[^}:]*(:-[^}]*)?\}` matches somewhere
/// in `value`.
fn python_dotenv_expands(value: &str) -> bool {
    value.match_indices("${").any(|(at, _)| {
        let rest = &value[at + 2..];
        let name_end = rest.find(['}', ':']).unwrap_or(rest.len());
        match &rest.as_bytes()[name_end..] {
            [b'}', ..] => true,
            [b':', b'-', tail @ ..] => tail.contains(&b'}'),
            _ => false,
        }
    })
}

/// White space as either reader trims it (Unicode white space and the byte-order mark).
fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// `value` as one POSIX shell word: inside single quotes, each `'` written `'\''`. Every
/// byte, newlines and `$` included, comes back unchanged through `eval` or `.`.
pub fn shell_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// `value` as a YAML double-quoted scalar: `\\`, `\"`, `\n`, `\r`, `\t`, and every
/// character YAML does not allow as it is (controls, DEL, C1 controls, the byte-order mark,
/// U+2028 and U+2029 line and paragraph separators) escaped, so any YAML 1.1 or 1.2 parser
/// reads back exactly `value`.
pub fn yaml_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0}'..='\u{1f}'
            | '\u{7f}'..='\u{9f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{feff}'
            | '\u{fffe}'
            | '\u{ffff}' => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The inside of an HCL quoted string: `\\ \" \n \r \t`, other control characters as
/// `\uXXXX`, and the template openers `${` and `%{` doubled (`$${`, `%%{`).
fn hcl_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// `java.util.Properties.store`'s escaping (its `saveConvert`): `\`, `=`, `:`, `#`, `!`, tab,
/// line breaks and form feed escaped; spaces escaped in keys and at the start of values;
/// everything outside printable ASCII as `\uXXXX` (UTF-16 units).
fn properties_escape(s: &str, key: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' if key || i == 0 => out.push_str("\\ "),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        let e = "xml".parse::<Format>().unwrap_err().to_string();
        assert!(e.contains("java-properties"), "{e}");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's $HOME"), r"'it'\''s $HOME'");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            hcl_escape("a\"b\\c\n${x}%{y}$z"),
            r#"a\"b\\c\n$${x}%%{y}$z"#
        );
        assert_eq!(hcl_escape("\u{1}"), r"\u0001");
        assert_eq!(
            properties_escape(" a b=c:ü😀", false),
            r"\ a b\=c\:\u00FC\uD83D\uDE00"
        );
        assert_eq!(properties_escape("k ey", true), r"k\ ey");
    }

    #[test]
    fn variable_formats_need_identifiers() {
        let e = Format::Dotenv.write(&[("db/password", "x")]).unwrap_err();
        assert!(e.to_string().contains("db/password"), "{e}");
        assert_eq!(
            Format::Dotenv
                .write(&[("A", "b'c"), ("B", "x\\y"), ("C", "it's \"q\" \\")])
                .unwrap(),
            "A=\"b'c\"\nB='x\\y'\nC=it's \"q\" \\\n"
        );
        let e = Format::Dotenv.write(&[("A", "${HOME}")]).unwrap_err();
        assert!(
            e.to_string().contains("-f json") && e.to_string().contains('A'),
            "{e}"
        );
        assert_eq!(Format::Tfvars.write(&[("A", "b")]).unwrap(), "A = \"b\"\n");
    }

    #[test]
    fn yaml_quoting_reads_back() {
        for v in [
            "",
            "a\"b\\c\n\r\t\u{0}\u{7f}\u{85}\u{2028}\u{feff}ü😀 # x: y",
            "- [x] {y}: 'z'",
        ] {
            let back: String = serde_yaml_ng::from_str(&yaml_quote(v)).unwrap();
            assert_eq!(back, v);
        }
    }

    #[test]
    fn table_formats() {
        let pairs = [("a", "x,y"), ("b", "q\"t\nz"), ("c", "")];
        assert_eq!(
            Format::Csv.write(&pairs).unwrap(),
            "a,\"x,y\"\nb,\"q\"\"t\nz\"\nc,\n"
        );
        assert_eq!(
            Format::Tsv.write(&[("a", "x\ty")]).unwrap(),
            "a\t\"x\ty\"\n"
        );
    }
}
