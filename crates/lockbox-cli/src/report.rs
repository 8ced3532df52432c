//! The one output path: every command returns a [`Report`], and [`emit`] prints it as text or,
//! with `--json`, as one line of JSON. Errors go through [`print_error`].

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use serde_json::json;

/// What a command produced, in both of its forms.
pub trait Report {
    /// Writes the text form to `out` (stdout). Secret values are written raw, with no newline
    /// added.
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()>;
    /// The JSON form, one line without its newline (`serde_json::to_string`, so a document
    /// keeps its key order); `None` prints nothing on stdout.
    fn json(&self) -> anyhow::Result<Option<String>>;
    /// Lines for stderr, printed before the output.
    fn notes(&self) -> Vec<Note> {
        Vec::new()
    }
    /// The exit code; 0 unless the report says otherwise.
    fn exit_code(&self) -> u8 {
        0
    }
}

/// One line for stderr: `note: ...` / `warning: ...` as text, `{"note"|"warning"|"absent":
/// ...}` with `--json`.
pub enum Note {
    /// Something the user should know.
    Info(String),
    /// Something the user should act on.
    Warning(String),
    /// Why a lookup found nothing (printed as `note:`, JSON key `absent`).
    Absent(String),
}

/// Prints one note on stderr at once (for a command still running).
pub fn print_note(note: &Note, json: bool) {
    eprintln!("{}", note.line(json));
}

impl Note {
    fn line(&self, json: bool) -> String {
        let (label, key, text) = match self {
            Note::Info(t) => ("note", "note", t),
            Note::Warning(t) => ("warning", "warning", t),
            Note::Absent(t) => ("note", "absent", t),
        };
        if json {
            json!({ key: text }).to_string()
        } else {
            format!("{label}: {text}")
        }
    }
}

/// The JSON form of `value`, for [`Report::json`].
pub fn to_json(value: &impl Serialize) -> anyhow::Result<Option<String>> {
    Ok(Some(serde_json::to_string(value)?))
}

/// Prints `report` (its notes on stderr, its text or JSON form on stdout) and returns its exit
/// code.
pub fn emit(report: &dyn Report, json: bool) -> anyhow::Result<ExitCode> {
    for note in report.notes() {
        // A closed stderr loses the note; it never turns a finished command into a panic.
        let _ = writeln!(io::stderr(), "{}", note.line(json));
    }
    let stdout = io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = stdout.lock();
    let written = if json {
        match report.json()? {
            Some(value) => writeln!(out, "{value}"),
            None => Ok(()),
        }
    } else {
        let mut tracked = LastByte {
            inner: &mut out,
            last: None,
        };
        report.write_text(&mut tracked).and_then(|()| {
            // A value printed raw (get, read, lookup) keeps its bytes when piped; on a
            // terminal the prompt starts on a line of its own.
            match tracked.last {
                Some(b) if b != b'\n' && terminal => tracked.inner.write_all(b"\n"),
                _ => Ok(()),
            }
        })
    };
    written
        .and_then(|()| out.flush())
        .context("writing to stdout")?;
    Ok(ExitCode::from(report.exit_code()))
}

/// A writer that remembers the last byte written through it.
struct LastByte<'a> {
    inner: &'a mut dyn Write,
    last: Option<u8>,
}

impl Write for LastByte<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.last = Some(buf[n - 1]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Prints an error as one line on stderr: `error: ...`, or `{"error": ...}` with `--json`.
pub fn print_error(message: &str, json: bool) {
    if json {
        eprintln!("{}", json!({ "error": message }));
    } else {
        eprintln!("error: {message}");
    }
}

/// Standard base64, for binary values in JSON.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `1 secret`, `2 secrets`: a count with its noun (`one` for 1, else `many`).
pub fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Prints a usage error (clap's or lockbox's own): clap's text as it is, or with `--json`
/// `{"error": ..., "usage": ...}` on stderr, the first line of clap's message and its usage
/// line apart.
pub fn print_usage_error(rendered: &str, json: bool) {
    if !json {
        eprint!("{rendered}");
        return;
    }
    let message = rendered
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_owned();
    let usage = rendered
        .lines()
        .find_map(|l| l.strip_prefix("Usage: "))
        .map(str::to_owned);
    let mut body = json!({ "error": message });
    if let Some(usage) = usage {
        body["usage"] = json!(usage);
    }
    eprintln!("{body}");
}

#[cfg(test)]
mod tests {
    use super::plural;

    #[test]
    fn plurals() {
        assert_eq!(plural(0, "secret", "secrets"), "0 secrets");
        assert_eq!(plural(1, "secret", "secrets"), "1 secret");
        assert_eq!(plural(2, "entry", "entries"), "2 entries");
    }
}
