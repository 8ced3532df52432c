//! `lockbox render`: templates (minijinja, a Jinja engine) filled with the secrets of the
//! sources, written atomically and owner-only, only when their bytes change (what Vault Agent
//! templates and consul-template do).
//!
//! In a template: `{{ secret("db/password") }}`, `{{ secret("db/config") | fromjson }}` for
//! JSON secrets, `{{ env("NAME") }}` (or `env("NAME", "default")`), and the escaping filters
//! `shell`, `json`, `yaml` and `dotenv` so a value lands safely in any file. A name with no
//! secret fails naming it and the template line, and nothing is written. Several
//! `--template/--out` pairs share one read of the sources. With `--watch` lockbox keeps polling
//! ([`lockbox_env::Watcher`]) and rewrites only the files whose bytes change; `--on-change`
//! runs a command (split like a shell, run without one) after each round that wrote a file.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use lockbox_core::PutMode;
use lockbox_env::{Loaded, WatchOptions, Watcher};
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
use serde_json::json;

use crate::commands::sources::{SourceArgs, UsageError, ValueArgs};
use crate::report::{Note, Report, to_json};

/// The most a template file may hold.
const MAX_TEMPLATE: u64 = 1 << 20;

/// Arguments of `lockbox render`.
#[derive(Args, Debug)]
pub struct RenderArgs {
    #[command(flatten)]
    sources: SourceArgs,
    #[command(flatten)]
    values: ValueArgs,
    /// A template (minijinja syntax); repeatable, each paired with the --out in the same
    /// position.
    #[arg(long = "template", value_name = "FILE", required = true)]
    templates: Vec<PathBuf>,
    /// Where its output goes (written atomically; repeatable).
    #[arg(long = "out", value_name = "FILE", required = true)]
    outs: Vec<PathBuf>,
    /// The output files' mode, in octal.
    #[arg(long, value_name = "MODE", default_value = "0600", value_parser = parse_mode)]
    mode: u32,
    /// Keep running: re-read the sources every INTERVAL (30s, 5m; jittered by up to 10%) and
    /// rewrite the files whose output changes.
    #[arg(
        long = "watch",
        value_name = "INTERVAL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "60s",
        value_parser = parse_interval
    )]
    watch: Option<Duration>,
    /// A command to run after a round that changed a file (split like a shell, run without
    /// one), such as `systemctl reload nginx`.
    #[arg(long = "on-change", value_name = "CMD", value_parser = parse_command)]
    on_change: Option<CommandLine>,
    /// How long the --on-change command may run before it is killed.
    #[arg(long = "on-change-timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    on_change_timeout: Duration,
}

fn parse_mode(s: &str) -> Result<u32, lockbox_core::Error> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(lockbox_core::Error::invalid_config(
            "--mode",
            format!("{s:?}: give permission bits in octal, such as 0600 or 0640"),
        )),
    }
}

fn parse_interval(s: &str) -> Result<Duration, lockbox_core::Error> {
    lockbox_env::parse_duration("--watch", s)
}

fn parse_timeout(s: &str) -> Result<Duration, lockbox_core::Error> {
    lockbox_env::parse_duration("--on-change-timeout", s)
}

/// A command split into words like a shell would (`--on-change`).
#[derive(Clone, Debug)]
pub struct CommandLine(Vec<String>);

fn parse_command(s: &str) -> Result<CommandLine, lockbox_core::Error> {
    match shlex::split(s) {
        Some(words) if !words.is_empty() => Ok(CommandLine(words)),
        _ => Err(lockbox_core::Error::invalid_config(
            "--on-change",
            format!("{s:?}: not a command (an unclosed quote, or empty)"),
        )),
    }
}

/// One template and its output file.
struct Pair {
    template: PathBuf,
    source: String,
    out: PathBuf,
}

/// What the last round did: each output file and whether it was written.
pub struct Rendered {
    files: Vec<(PathBuf, bool)>,
    ran: Option<String>,
}

/// Renders every template once, or with `--watch` until SIGTERM or SIGINT.
pub async fn run(args: RenderArgs) -> anyhow::Result<Rendered> {
    if args.templates.len() != args.outs.len() {
        return Err(UsageError(format!(
            "give one --out for each --template ({} templates, {} outputs)",
            args.templates.len(),
            args.outs.len()
        ))
        .into());
    }
    let mut pairs = Vec::with_capacity(args.templates.len());
    for (template, out) in args.templates.iter().zip(&args.outs) {
        let bytes = lockbox_fs::read_regular(template, MAX_TEMPLATE)
            .with_context(|| format!("--template {}", template.display()))?;
        let source = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("--template {}: not UTF-8", template.display()))?;
        pairs.push(Pair {
            template: template.clone(),
            source,
            out: out.clone(),
        });
    }
    let sources = args.sources.open().await?;
    let Some(interval) = args.watch else {
        let loaded = lockbox_env::load(&sources).await?;
        let rendered = round(&args, &pairs, &loaded)?;
        let ran = on_change(&args, &rendered).await?;
        return Ok(Rendered {
            files: rendered,
            ran,
        });
    };
    let mut watcher = Watcher::start(sources, WatchOptions { interval }).await?;
    let mut last = round(&args, &pairs, &watcher.current())?;
    let mut ran = on_change(&args, &last).await.unwrap_or_else(|e| {
        tracing::warn!("{e:#}");
        None
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            loaded = watcher.changed() => {
                let Some(loaded) = loaded else { break };
                match round(&args, &pairs, &loaded) {
                    Ok(files) => {
                        last = files;
                        match on_change(&args, &last).await {
                            Ok(r) => ran = r,
                            Err(e) => tracing::warn!("{e:#}"),
                        }
                    }
                    Err(e) => tracing::warn!("{e:#} (the files keep their last output)"),
                }
            }
        }
    }
    Ok(Rendered { files: last, ran })
}

/// Renders every template against `loaded`; only if all render, writes those whose bytes
/// changed. Each output file and whether it was written.
fn round(
    args: &RenderArgs,
    pairs: &[Pair],
    loaded: &Loaded,
) -> anyhow::Result<Vec<(PathBuf, bool)>> {
    let secrets: BTreeMap<String, String> = loaded
        .by_name()
        .into_iter()
        .map(|(name, entry)| {
            Ok((
                name.to_owned(),
                entry.text(args.values.binary())?.into_owned(),
            ))
        })
        .collect::<lockbox_core::Result<_>>()?;
    let env = environment(Arc::new(secrets));
    let mut outputs = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let name = pair.template.display().to_string();
        let text = env
            .template_from_named_str(&name, &pair.source)
            .and_then(|t| t.render(()))
            .map_err(|e| anyhow::anyhow!("{}", template_error(&e)))?;
        outputs.push(text);
    }
    let mut written = Vec::with_capacity(pairs.len());
    for (pair, text) in pairs.iter().zip(outputs) {
        let same = std::fs::read(&pair.out).is_ok_and(|old| old == text.as_bytes());
        if same {
            set_mode(&pair.out, args.mode)?;
        } else {
            write(&pair.out, text.as_bytes(), args.mode)?;
            tracing::info!("wrote {}", pair.out.display());
        }
        written.push((pair.out.clone(), !same));
    }
    Ok(written)
}

/// `bytes` into `path` atomically (owner-only while written), then `mode`.
fn write(path: &std::path::Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    lockbox_fs::write_file_atomic(path, bytes, PutMode::Overwrite)
        .with_context(|| format!("--out {}", path.display()))?;
    set_mode(path, mode)
}

/// Gives `path` the permission bits `mode` unless it has them.
fn set_mode(path: &std::path::Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let now = std::fs::metadata(path)
        .with_context(|| format!("--out {}", path.display()))?
        .permissions()
        .mode()
        & 0o7777;
    if now != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("--mode on {}", path.display()))?;
    }
    Ok(())
}

/// A template error as one line: what and where (`FILE:LINE`), never a value.
fn template_error(e: &minijinja::Error) -> String {
    let place = match (e.name(), e.line()) {
        (Some(name), Some(line)) => format!("template {name} line {line}"),
        (Some(name), None) => format!("template {name}"),
        _ => "template".to_owned(),
    };
    match e.detail() {
        Some(detail) => format!("{place}: {detail}"),
        None => format!("{place}: {}", e.kind()),
    }
}

/// The template environment: `secret()`, `env()`, and the filters.
fn environment(secrets: Arc<BTreeMap<String, String>>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env.add_function("secret", move |name: String| {
        secrets.get(&name).cloned().ok_or_else(|| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("no secret {name:?} in the sources"),
            )
        })
    });
    env.add_function("env", |name: String, default: Option<String>| {
        std::env::var(&name).ok().or(default).ok_or_else(|| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("environment variable {name} is not set (give env({name:?}, \"default\"))"),
            )
        })
    });
    env.add_filter("fromjson", |text: String| {
        serde_json::from_str::<serde_json::Value>(&text)
            .map(json_value)
            .map_err(|e| {
                minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "fromjson: not JSON (line {} column {})",
                        e.line(),
                        e.column()
                    ),
                )
            })
    });
    env.add_filter("shell", |v: Value| lockbox_env::shell_quote(&as_text(&v)));
    env.add_filter("yaml", |v: Value| lockbox_env::yaml_quote(&as_text(&v)));
    env.add_filter("json", |v: Value| {
        let text = match v.as_str() {
            Some(s) => serde_json::to_string(s),
            None => serde_json::to_string(&v),
        };
        text.map_err(|_| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "json: cannot write this value as JSON",
            )
        })
    });
    env.add_filter("dotenv", |v: Value| {
        lockbox_env::dotenv_quote(&as_text(&v)).ok_or_else(|| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "dotenv: python-dotenv and npm dotenv cannot both read this value back (it holds \
                 ${NAME}, or mixes both quotes with a backslash, `#`, a line break or surrounding \
                 spaces)",
            )
        })
    });
    env
}

/// A JSON document as a template value (numbers as integers where they are).
fn json_value(v: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(b),
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (_, Some(u), _) => Value::from(u),
            (_, _, Some(f)) => Value::from(f),
            _ => Value::from(n.to_string()),
        },
        J::String(s) => Value::from(s),
        J::Array(a) => Value::from(a.into_iter().map(json_value).collect::<Vec<Value>>()),
        J::Object(o) => Value::from(
            o.into_iter()
                .map(|(k, v)| (Value::from(k), json_value(v)))
                .collect::<BTreeMap<Value, Value>>(),
        ),
    }
}

fn as_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// Runs `--on-change` when a file was written; what ran.
async fn on_change(args: &RenderArgs, files: &[(PathBuf, bool)]) -> anyhow::Result<Option<String>> {
    let Some(CommandLine(words)) = &args.on_change else {
        return Ok(None);
    };
    if !files.iter().any(|(_, written)| *written) {
        return Ok(None);
    }
    let (program, rest) = words
        .split_first()
        .expect("parse_command refuses empty commands");
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("--on-change: cannot run {program}"))?;
    let status = match tokio::time::timeout(args.on_change_timeout, child.wait()).await {
        Ok(status) => status.context("--on-change: waiting for the command")?,
        Err(_) => {
            let _ = child.kill().await;
            bail!(
                "--on-change: {program} did not finish within --on-change-timeout {:?}; killed",
                args.on_change_timeout
            );
        }
    };
    if !status.success() {
        bail!("--on-change: {program} failed ({status})");
    }
    Ok(Some(words.join(" ")))
}

impl Report for Rendered {
    fn write_text(&self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        let files: Vec<serde_json::Value> = self
            .files
            .iter()
            .map(|(f, w)| json!({ "file": f.display().to_string(), "written": w }))
            .collect();
        to_json(&json!({ "files": files, "on_change_ran": self.ran.is_some() }))
    }

    fn notes(&self) -> Vec<Note> {
        let mut notes: Vec<Note> = self
            .files
            .iter()
            .map(|(f, w)| {
                Note::Info(if *w {
                    format!("wrote {}", f.display())
                } else {
                    format!("{} unchanged", f.display())
                })
            })
            .collect();
        if let Some(cmd) = &self.ran {
            notes.push(Note::Info(format!("ran {cmd}")));
        }
        notes
    }
}
