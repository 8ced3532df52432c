//! `lockbox sync`: Greengrass-style secret resources in a sealed local store.
//!
//! It fetches what a manifest names from AWS Secrets Manager into `<store>/secrets.sealed`
//! (one atomic write; the key file defaults to `<store>.key`, created 0600 on first use).
//! `lockbox read` reads it back offline.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;
use lockbox_resources::{
    Manifest, SecretVersion, SyncOptions, SyncReport, SyncTarget, VersionSource,
};
use lockbox_secretsmanager::SecretsManagerClient;
use serde_json::json;

use crate::commands::read::key_file;
use crate::progress::Progress;
use crate::report::{Note, Report, emit, plural, print_error, print_note, to_json};

/// Arguments of `lockbox sync`.
#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Manifest: a Greengrass v2 secret manager configuration {"cloudSecrets": [{"arn": "<ARN or
    /// name>", "labels": [...]}]}, or a Greengrass v1 resource definition {"Resources": [...]}
    /// (or {"InitialVersion": {"Resources": [...]}}) (AWSCURRENT is always synced).
    #[arg(long, value_name = "FILE")]
    manifest: PathBuf,
    /// Store directory; the sealed store is DIR/secrets.sealed.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// Store key file [default: DIR.key, next to the store directory; created with mode 0600
    /// on the first sync].
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Keep running and sync again every SECONDS, until SIGINT or SIGTERM (a write under way is
    /// finished first). A failed sync is reported on stderr and the previous store kept.
    /// Without it, a manifest's periodicRefreshIntervalMin does the same every that many
    /// minutes.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    interval: Option<u64>,
    /// AWS region [default: aws-config's chain (AWS_REGION, AWS_DEFAULT_REGION, the AWS
    /// profile, instance metadata), then the region of the manifest's ARNs when they all name
    /// one].
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// Custom Secrets Manager endpoint (an emulator); AWS_ENDPOINT_URL is honoured too.
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// How long to wait for another sync of the same store (it holds DIR.lock) before failing
    /// with "another sync is running".
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    lock_wait: u64,
    /// Accept a store older than the newest one seen (remembered in KEY_FILE.generation), which
    /// is otherwise refused as a rollback; the store written next is newer than any seen.
    #[arg(long)]
    allow_rollback: bool,
}

/// What a sync did: the store written, the secrets and versions it holds, what was removed,
/// and how long it took; with `--interval`, nothing (each round was printed as it ended).
pub enum Synced {
    /// One sync, and the manifest's notes (what it skipped).
    Once(SyncReport, Duration, Vec<String>),
    /// `--interval` stopped by a signal.
    Stopped,
}

/// `lockbox sync`: once, or every `--interval` seconds until SIGINT/SIGTERM, printing each
/// round's report (or error) as it ends.
pub async fn run(args: SyncArgs, json: bool) -> anyhow::Result<Synced> {
    let key_file = key_file(&args.store, args.key_file.as_deref())?;
    let manifest = Manifest::read(&args.manifest)?;
    let region = region(args.region.as_deref(), &manifest).await?;
    let client = SecretsManagerClient::connect(&region, args.endpoint_url.as_deref()).await?;
    let interval = match args.interval {
        Some(seconds) => Interval::Fixed(Duration::from_secs(seconds)),
        None => match manifest.periodic_refresh_interval_min {
            Some(m) => {
                let minute = minute()?;
                Interval::FromManifest(minute, minutes(minute, m))
            }
            None => {
                let start = Instant::now();
                let report = round(&manifest, &args, &key_file, &client).await?;
                return Ok(Synced::Once(report, start.elapsed(), manifest.notes));
            }
        },
    };
    run_periodically(&args, &key_file, &client, interval, json).await?;
    Ok(Synced::Stopped)
}

/// How long one minute of `periodicRefreshIntervalMin` lasts: 60 seconds, or, for tests only,
/// [`MINUTE_ENV`] seconds (a whole number from 1 to 60).
fn minute() -> anyhow::Result<Duration> {
    match std::env::var(MINUTE_ENV) {
        Err(_) => Ok(Duration::from_secs(60)),
        Ok(v) => match v.parse::<u64>() {
            Ok(n @ 1..=60) => Ok(Duration::from_secs(n)),
            _ => Err(anyhow!(
                "{MINUTE_ENV}={v:?}: must be a whole number of seconds from 1 to 60 (test only)"
            )),
        },
    }
}

/// Test only: the seconds one minute of a manifest's `periodicRefreshIntervalMin` lasts
/// (default 60), so a test can watch a refresh period taken from the manifest.
pub const MINUTE_ENV: &str = "LOCKBOX_TEST_REFRESH_MINUTE_SECS";

/// The period of a sync that keeps running.
#[derive(Clone, Copy)]
enum Interval {
    /// `--interval`.
    Fixed(Duration),
    /// The manifest's `periodicRefreshIntervalMin` (read again each round): minutes of this
    /// length, and the period at start.
    FromManifest(Duration, Duration),
}

fn minutes(minute: Duration, n: u64) -> Duration {
    minute.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX))
}

/// One sync: check key and store, fetch everything, write. The write has no await point, so
/// a signal that cancels this future can only do so before the write starts.
async fn round(
    manifest: &Manifest,
    args: &SyncArgs,
    key_file: &Path,
    client: &SecretsManagerClient,
) -> lockbox_core::Result<SyncReport> {
    let options = SyncOptions {
        lock_wait: Duration::from_secs(args.lock_wait),
        allow_rollback: args.allow_rollback,
    };
    let target = SyncTarget::prepare(&args.store, key_file, &options).await?;
    let source = Counted {
        ids: manifest
            .secret_ids()
            .enumerate()
            .map(|(i, id)| (id, i))
            .collect(),
        progress: Progress::new("syncing secret", manifest.cloud_secrets.len()),
        inner: client,
    };
    let snapshot = target.fetch(manifest, &source).await?;
    drop(source);
    target.write(&snapshot)
}

/// A source that moves a [`Progress`] on as the manifest's secrets are fetched, in order.
struct Counted<'a> {
    /// Manifest id -> its index.
    ids: HashMap<&'a str, usize>,
    progress: Progress,
    inner: &'a SecretsManagerClient,
}

#[async_trait::async_trait]
impl VersionSource for Counted<'_> {
    async fn fetch(&self, secret_id: &str, stage: &str) -> lockbox_core::Result<SecretVersion> {
        // A secret's first label is fetched by its manifest id; later ones by ARN.
        if let Some(i) = self.ids.get(secret_id) {
            self.progress.at(i + 1);
        }
        self.inner.fetch(secret_id, stage).await
    }

    async fn fetch_current_many(
        &self,
        secret_ids: &[String],
    ) -> Option<lockbox_resources::FetchedMany> {
        let answers = self.inner.fetch_current_many(secret_ids).await;
        self.progress.at(secret_ids.len());
        answers
    }
}

async fn run_periodically(
    args: &SyncArgs,
    key_file: &Path,
    client: &SecretsManagerClient,
    interval: Interval,
    json: bool,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &str| {
        signal(kind).with_context(|| format!("cannot listen for {name}"))
    };
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM")?;
    // The period from the manifest: the last one read (a manifest that cannot be read keeps
    // it).
    let mut period = match interval {
        Interval::Fixed(d) | Interval::FromManifest(_, d) => d,
    };
    // What the next-sync note says of the period: as given, with where it comes from.
    let mut said = match interval {
        Interval::Fixed(d) => format!("{} s (--interval)", d.as_secs()),
        Interval::FromManifest(..) => String::new(),
    };
    loop {
        let start = Instant::now();
        // The manifest is read again each round, so edits apply without a restart.
        let attempt = async {
            let manifest = Manifest::read(&args.manifest)?;
            if let (Interval::FromManifest(minute, _), Some(m)) =
                (interval, manifest.periodic_refresh_interval_min)
            {
                period = minutes(minute, m);
                said = format!("{m} min (periodicRefreshIntervalMin)");
            }
            let notes = manifest.notes.clone();
            round(&manifest, args, key_file, client)
                .await
                .map(|r| (r, notes))
        };
        let outcome = tokio::select! {
            biased;
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            outcome = attempt => outcome,
        };
        match outcome {
            Ok((report, notes)) => {
                emit(&Synced::Once(report, start.elapsed(), notes), json)?;
            }
            Err(e) => print_error(
                &format!("sync failed, the previous store is kept: {e}"),
                json,
            ),
        }
        // Without this the command looks hung between rounds.
        print_note(
            &Note::Info(format!("next sync in {said}; Ctrl-C to stop")),
            json,
        );
        tokio::select! {
            biased;
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            () = tokio::time::sleep(period) => {}
        }
    }
    tracing::info!("signal received; sync stopped");
    Ok(())
}

impl Report for Synced {
    fn notes(&self) -> Vec<Note> {
        match self {
            Synced::Once(_, _, notes) => notes.iter().cloned().map(Note::Info).collect(),
            Synced::Stopped => Vec::new(),
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let Synced::Once(report, took, _) = self else {
            return Ok(());
        };
        if report.accepted_rollback {
            writeln!(
                out,
                "replaced a store older than the newest seen (--allow-rollback)"
            )?;
        }
        if report.key_created {
            writeln!(
                out,
                "created store key {} (mode 0600); a copy of the store is unreadable without \
                 it, so back it up and copy it separately from {}",
                report.key_file.display(),
                report
                    .store_file
                    .parent()
                    .unwrap_or(&report.store_file)
                    .display()
            )?;
        }
        for arn in &report.removed {
            writeln!(out, "removed {arn} (no longer in the manifest)")?;
        }
        let versions: usize = report.secrets.iter().map(|s| s.versions.len()).sum();
        writeln!(
            out,
            "synced {} ({}, {}) into {} in {:.2}s",
            plural(report.secrets.len(), "secret", "secrets"),
            plural(versions, "version", "versions"),
            plural(report.requests, "request", "requests"),
            report.store_file.display(),
            took.as_secs_f64()
        )
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        let Synced::Once(report, took, notes) = self else {
            return Ok(None);
        };
        let secrets: Vec<_> = report
            .secrets
            .iter()
            .map(|s| {
                let mut o = json!({
                    "arn": s.arn,
                    "name": s.name,
                    "versions": s.versions.iter().map(|(id, stages)| json!({
                        "version_id": id,
                        "version_stages": stages,
                    })).collect::<Vec<_>>(),
                });
                if let Some(id) = &s.resource_id {
                    o["resource_id"] = json!(id);
                }
                o
            })
            .collect();
        to_json(&json!({
            "store": report.store_file.display().to_string(),
            "key_file": report.key_file.display().to_string(),
            "key_created": report.key_created,
            "secrets": secrets,
            "removed": report.removed,
            "requests": report.requests,
            "generation": report.generation,
            "accepted_rollback": report.accepted_rollback,
            "seconds": took.as_secs_f64(),
            "notes": notes,
        }))
    }
}

/// `--region`, then aws-config's region chain (AWS_REGION, AWS_DEFAULT_REGION, the profile's
/// `region` in the AWS config files, instance metadata), then the one region the manifest's
/// ARNs all name.
async fn region(given: Option<&str>, manifest: &Manifest) -> anyhow::Result<String> {
    if let Some(region) = given {
        return Ok(region.to_owned());
    }
    if let Some(region) = lockbox_aws::region_from_chain().await {
        return Ok(region);
    }
    manifest
        .single_arn_region()
        .map(str::to_owned)
        .ok_or_else(|| {
            anyhow!(
                "no AWS region: pass --region, or set AWS_REGION (or a region in the AWS profile)"
            )
        })
}
