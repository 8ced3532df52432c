//! `lockbox history`: the versions of a secret (chamber's `history`): version, labels or
//! stages, date and who changed it. Never values; `lockbox get NAME:VERSION` reads one.

use std::io::{self, Write};

use clap::Args;
use lockbox_core::{Error, ErrorKind, SecretName, VersionInfo};
use lockbox_resources::Selector;
use serde_json::json;

use crate::commands::sources::OneSourceArgs;
use crate::report::{Report, to_json};

/// Arguments of `lockbox history`.
#[derive(Args, Debug)]
#[command(override_usage = "lockbox history [OPTIONS] [SERVICE] <NAME>")]
pub struct HistoryArgs {
    #[command(flatten)]
    sources: OneSourceArgs,
    /// `NAME`: the secret (a name in the source; for a store, its name or ARN), or `SERVICE
    /// KEY` as `chamber history SERVICE KEY` takes them (KEY lower-cased as chamber does).
    #[arg(value_name = "NAME", num_args = 1..=2, required = true)]
    positionals: Vec<String>,
}

/// The versions, oldest first: one line each as text, `{"name", "versions": [...]}` as JSON.
pub struct History {
    name: String,
    versions: Vec<VersionInfo>,
}

/// Reads the version metadata of `NAME`.
pub async fn run(args: HistoryArgs) -> anyhow::Result<History> {
    let (source, name) = args.sources.split("history", &args.positionals)?;
    if let Some(store) = source.store()? {
        let info = store
            .secrets()
            .into_iter()
            .find(|s| s.name == name || s.arn == name || s.manifest_id == name)
            .ok_or_else(|| {
                Error::input(ErrorKind::NotFound, "the store holds no such secret")
                    .with_secret(&name)
            })?;
        let mut versions = Vec::new();
        for (id, stages) in info.versions {
            let version = store.read(&info.arn, &Selector::version_id(id.clone()))?;
            let mut v = VersionInfo::new(id);
            v.labels = stages;
            v.created = version.created_date;
            versions.push(v);
        }
        versions.sort_by_key(|v| v.created.unwrap_or(i64::MAX));
        return Ok(History { name, versions });
    }
    let backend = source.backend().await?.expect("not a store");
    let name = if source.is_service() {
        crate::chamber::normalize_key(&name)
    } else {
        name
    };
    let versions = backend.history(&SecretName::new(name.as_str())?).await?;
    Ok(History { name, versions })
}

/// `2024-05-01T12:34:56Z` for seconds since the Unix epoch.
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Report for History {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let width = self
            .versions
            .iter()
            .map(|v| v.version.len())
            .max()
            .unwrap_or(7)
            .max(7);
        writeln!(
            out,
            "{:width$}  {:20}  {:30}  LABELS",
            "VERSION", "DATE", "CHANGED BY"
        )?;
        for v in &self.versions {
            let mut labels = v.labels.join(",");
            if v.deleted {
                labels.push_str(if labels.is_empty() {
                    "(deleted)"
                } else {
                    " (deleted)"
                });
            }
            writeln!(
                out,
                "{:width$}  {:20}  {:30}  {labels}",
                v.version,
                v.created.map(rfc3339).unwrap_or_else(|| "-".into()),
                v.changed_by.as_deref().unwrap_or("-"),
            )?;
        }
        Ok(())
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        let versions: Vec<_> = self
            .versions
            .iter()
            .map(|v| {
                json!({
                    "version": v.version,
                    "labels": v.labels,
                    "created": v.created.map(rfc3339),
                    "changed_by": v.changed_by,
                    "deleted": v.deleted,
                })
            })
            .collect();
        to_json(&json!({ "name": self.name, "versions": versions }))
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_521_685_446), "2018-03-22T02:24:06Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
    }
}
