//! `lockbox sync` and `lockbox read`: Greengrass-style secret resources in a sealed local store.
//!
//! `sync` fetches what a manifest names from AWS Secrets Manager into `<store>/secrets.sealed`
//! (one atomic write; the key file defaults to `<store>.key`, created 0600 on first use).
//! `read` reads it back offline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use lockbox_core::{Error, ErrorKind};
use lockbox_resources::{Manifest, Selector, Store, SyncReport, SyncTarget};
use lockbox_secretsmanager::SmClient;
use serde_json::json;

use crate::{base64_encode, print_line, write_stdout};

/// Arguments of `lockbox sync`.
#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Manifest: {"cloudSecrets": [{"arn": "<ARN or name>", "labels": [...]}]} (AWSCURRENT is
    /// always synced).
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
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    interval: Option<u64>,
    /// AWS region [default: AWS_REGION, then AWS_DEFAULT_REGION, then the region of the
    /// manifest's ARNs when they all name one].
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// Custom Secrets Manager endpoint (an emulator); AWS_ENDPOINT_URL is honoured too.
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
}

/// Arguments of `lockbox read`.
#[derive(Args, Debug)]
pub struct ReadArgs {
    /// Store directory (holding secrets.sealed).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// The secret's name or full ARN.
    #[arg(long, value_name = "ID")]
    secret_id: String,
    /// Read the version with this staging label [default: AWSCURRENT].
    #[arg(long, value_name = "LABEL", conflicts_with = "version_id")]
    version_stage: Option<String>,
    /// Read the version with this id.
    #[arg(long, value_name = "ID")]
    version_id: Option<String>,
    /// Store key file [default: DIR.key, next to the store directory].
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

/// `lockbox sync`: once, or every `--interval` seconds until SIGINT/SIGTERM.
pub async fn sync(args: SyncArgs, json: bool) -> Result<(), Error> {
    let key_file = key_file(&args.store, args.key_file.as_deref())?;
    let manifest = Manifest::read(&args.manifest)?;
    let region = region(args.region.as_deref(), &manifest)?;
    let client = SmClient::connect(&region, args.endpoint_url.as_deref()).await?;
    let Some(interval) = args.interval else {
        let start = Instant::now();
        let report = round(&manifest, &args.store, &key_file, &client).await?;
        return report_sync(&report, start.elapsed(), json);
    };
    run_periodically(
        &args,
        &key_file,
        &client,
        Duration::from_secs(interval),
        json,
    )
    .await
}

/// One sync: check key and store, fetch everything, write. The write has no await point, so
/// a signal that cancels this future can only do so before the write starts.
async fn round(
    manifest: &Manifest,
    store: &Path,
    key_file: &Path,
    client: &SmClient,
) -> Result<SyncReport, Error> {
    let target = SyncTarget::prepare(store, key_file)?;
    let snapshot = lockbox_resources::fetch(manifest, client).await?;
    target.write(&snapshot)
}

async fn run_periodically(
    args: &SyncArgs,
    key_file: &Path,
    client: &SmClient,
    interval: Duration,
    json: bool,
) -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| {
            Error::new(
                ErrorKind::Backend,
                "lockbox",
                format!("cannot listen for {name}: {e}"),
            )
        })
    };
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT")?;
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM")?;
    loop {
        let start = Instant::now();
        // The manifest is read again each round, so edits apply without a restart.
        let attempt = async {
            let manifest = Manifest::read(&args.manifest)?;
            round(&manifest, &args.store, key_file, client).await
        };
        let outcome = tokio::select! {
            biased;
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            outcome = attempt => outcome,
        };
        match outcome {
            Ok(report) => report_sync(&report, start.elapsed(), json)?,
            Err(e) => {
                let message = format!("sync failed, the previous store is kept: {e}");
                eprintln!(
                    "{}",
                    if json {
                        json!({ "error": message }).to_string()
                    } else {
                        format!("error: {message}")
                    }
                );
            }
        }
        tokio::select! {
            biased;
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    tracing::info!("signal received; sync stopped");
    Ok(())
}

fn report_sync(report: &SyncReport, took: Duration, json: bool) -> Result<(), Error> {
    let versions: usize = report.secrets.iter().map(|s| s.versions.len()).sum();
    if json {
        let secrets: Vec<_> = report
            .secrets
            .iter()
            .map(|s| {
                json!({
                    "arn": s.arn,
                    "name": s.name,
                    "versions": s.versions.iter().map(|(id, stages)| json!({
                        "version_id": id,
                        "version_stages": stages,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return print_line(
            &json!({
                "store": report.store_file.display().to_string(),
                "key_file": report.key_file.display().to_string(),
                "key_created": report.key_created,
                "secrets": secrets,
                "removed": report.removed,
                "requests": report.requests,
                "seconds": took.as_secs_f64(),
            })
            .to_string(),
        );
    }
    if report.key_created {
        print_line(&format!(
            "created store key {} (mode 0600); keep it apart from the store",
            report.key_file.display()
        ))?;
    }
    for arn in &report.removed {
        print_line(&format!("removed {arn} (no longer in the manifest)"))?;
    }
    print_line(&format!(
        "synced {} secrets ({versions} versions, {} requests) into {} in {:.2}s",
        report.secrets.len(),
        report.requests,
        report.store_file.display(),
        took.as_secs_f64()
    ))
}

/// `lockbox read`: one version from the sealed store, raw on stdout (or JSON).
pub async fn read(args: ReadArgs, json: bool) -> Result<(), Error> {
    let key_file = key_file(&args.store, args.key_file.as_deref())?;
    let selector = match (args.version_stage, args.version_id) {
        (_, Some(id)) => Selector::VersionId(id),
        (Some(stage), None) => Selector::Stage(stage),
        (None, None) => Selector::current(),
    };
    let store = Store::open(&args.store, &key_file)?;
    let secret = store.read(&args.secret_id, &selector)?;
    if !json {
        return write_stdout(secret.value.expose_bytes());
    }
    let mut body = json!({
        "arn": secret.arn,
        "name": secret.name,
        "version_id": secret.version_id,
        "version_stages": secret.version_stages,
        "created_date": secret.created_date,
    });
    match secret.value.expose_str() {
        Some(text) if !secret.binary => body["secret_string"] = json!(text),
        _ => body["secret_binary"] = json!(base64_encode(secret.value.expose_bytes())),
    }
    print_line(&body.to_string())
}

fn key_file(store: &Path, given: Option<&Path>) -> Result<PathBuf, Error> {
    match given {
        Some(k) => Ok(k.to_owned()),
        None => lockbox_resources::default_key_file(store),
    }
}

/// `--region`, then AWS_REGION, then AWS_DEFAULT_REGION, then the one region the manifest's
/// ARNs all name.
fn region(given: Option<&str>, manifest: &Manifest) -> Result<String, Error> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    given
        .map(str::to_owned)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| manifest.single_arn_region().map(str::to_owned))
        .ok_or_else(|| {
            Error::invalid_config(
                "region",
                "no AWS region: pass --region, or set AWS_REGION (or AWS_DEFAULT_REGION)",
            )
        })
}
