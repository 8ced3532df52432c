//! `lockbox read`: one version from the sealed store `lockbox sync` writes, offline.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use lockbox_resources::{SecretVersion, Selector, Store};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::report::{Report, base64, to_json};

/// Arguments of `lockbox read`.
#[derive(Args, Debug)]
pub struct ReadArgs {
    /// Store directory (holding secrets.sealed).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// The secret's name or full ARN.
    #[arg(long, value_name = "ID", required_unless_present = "resource_id")]
    secret_id: Option<String>,
    /// The Id of the secret's Greengrass v1 resource (in the resource definition it was
    /// synced from), instead of --secret-id.
    #[arg(long, value_name = "ID", conflicts_with = "secret_id")]
    resource_id: Option<String>,
    /// Read the version with this staging label [default: AWSCURRENT].
    #[arg(long, value_name = "LABEL", conflicts_with = "version_id")]
    version_stage: Option<String>,
    /// Read the version with this id.
    #[arg(long, value_name = "ID")]
    version_id: Option<String>,
    /// Store key file [default: DIR.key, next to the store directory].
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Read a store older than the newest one seen (remembered in KEY_FILE.generation), which
    /// is otherwise refused as a rollback.
    #[arg(long)]
    allow_rollback: bool,
    /// With --json, the field names the AWS Secrets Manager Agent, `lockbox serve` and
    /// GetSecretValue use (ARN, Name, VersionId, SecretString or SecretBinary, VersionStages,
    /// CreatedDate) instead of lockbox's snake_case ones (arn, name, version_id, ...).
    #[arg(long)]
    aws_fields: bool,
}

/// The version read: raw bytes as text; as JSON its ARN, name, version id, stages, creation
/// date and `secret_string` (or `secret_binary`, base64), and `resource_id` when read by it.
pub struct Read(SecretVersion, Option<String>, bool);

/// Reads one version (default stage AWSCURRENT) from the store.
pub fn run(args: ReadArgs) -> lockbox_core::Result<Read> {
    let aws = args.aws_fields;
    let key_file = key_file(&args.store, args.key_file.as_deref())?;
    let selector = match (args.version_stage, args.version_id) {
        (_, Some(id)) => Selector::VersionId(id),
        (Some(stage), None) => Selector::Stage(stage),
        (None, None) => Selector::current(),
    };
    let store = Store::open_with(&args.store, &key_file, args.allow_rollback)?;
    match (args.resource_id, args.secret_id) {
        (Some(resource), _) => Ok(Read(
            store.read_resource(&resource, &selector)?,
            Some(resource),
            aws,
        )),
        (None, Some(id)) => Ok(Read(store.read(&id, &selector)?, None, aws)),
        (None, None) => Err(lockbox_core::Error::input(
            lockbox_core::ErrorKind::InvalidName,
            "pass --secret-id or --resource-id",
        )),
    }
}

/// `--key-file`, or the default next to the store directory.
pub fn key_file(store: &Path, given: Option<&Path>) -> lockbox_core::Result<PathBuf> {
    match given {
        Some(k) => Ok(k.to_owned()),
        None => lockbox_resources::default_key_file(store),
    }
}

impl Report for Read {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.0.value.expose_bytes())
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        // Rendered from borrowed fields (no intermediate JSON value holding a copy of the
        // secret); the rendered line is freed, and zeroed, once printed.
        // Keys in the order they always had (sorted).
        #[derive(Serialize)]
        struct Body<'a> {
            arn: &'a str,
            created_date: Option<i64>,
            name: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            resource_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            secret_binary: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            secret_string: Option<&'a str>,
            version_id: &'a str,
            version_stages: &'a [String],
        }
        /// The agent's names (`lockbox serve` answers the same), absent fields omitted.
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct AwsBody<'a> {
            #[serde(rename = "ARN")]
            arn: &'a str,
            name: &'a str,
            version_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            secret_string: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            secret_binary: Option<&'a str>,
            version_stages: &'a [String],
            /// Seconds since the epoch, as a string, as the agent prints it.
            #[serde(skip_serializing_if = "Option::is_none")]
            created_date: Option<String>,
        }
        let secret = &self.0;
        let text = secret.value.expose_str().filter(|_| !secret.binary);
        let encoded = match text {
            Some(_) => None,
            None => Some(Zeroizing::new(base64(secret.value.expose_bytes()))),
        };
        if self.2 {
            #[allow(clippy::cast_precision_loss)]
            return to_json(&AwsBody {
                arn: &secret.arn,
                name: &secret.name,
                version_id: &secret.version_id,
                secret_string: text,
                secret_binary: encoded.as_ref().map(|e| e.as_str()),
                version_stages: &secret.version_stages,
                created_date: secret.created_date.map(|s| (s as f64).to_string()),
            });
        }
        to_json(&Body {
            arn: &secret.arn,
            name: &secret.name,
            resource_id: self.1.as_deref(),
            version_id: &secret.version_id,
            version_stages: &secret.version_stages,
            created_date: secret.created_date,
            secret_string: text,
            secret_binary: encoded.as_ref().map(|e| e.as_str()),
        })
    }
}
