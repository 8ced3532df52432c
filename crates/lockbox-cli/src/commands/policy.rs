//! `lockbox policy`: the least-privilege IAM policy a node needs, derived from its config, a sync
//! manifest and/or a `lockbox serve` config, printed as pretty JSON on stdout (with `--json`:
//! the same document, compact, on one line, like every other command's `--json` output).

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::bail;

use clap::{ArgGroup, Args};
use lockbox_config::{SecretsManagerConfig, Settings};
use lockbox_policy::{Access, Partition, PolicyDocument, PolicyOptions, PolicySources};
use lockbox_resources::Manifest;

use crate::report::{Note, Report, to_json};

/// Arguments of `lockbox policy`.
#[derive(Args, Debug)]
#[command(group(
    ArgGroup::new("source")
        .required(true)
        .multiple(true)
        .args(["config", "manifest", "serve_config"])
))]
pub struct PolicyArgs {
    /// A secretsManagerConfig.json of type aws-ssm, aws-secretsmanager (IAM) or hashicorp-vault
    /// (a Vault policy in HCL): access to that node's
    /// secrets.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A sync manifest ({"cloudSecrets": [{"arn", "labels"}]}): read access to exactly the
    /// secrets it lists.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// A `lockbox serve` config (the AWS agent's TOML keys plus `[lockbox]`): GetSecretValue
    /// on each of its `prefetch_secrets` and on each secret of its offline-store `manifest`,
    /// and ssm:GetParameter(s) on each of its `prefetch_parameters`, by exact name. Serve
    /// reads whatever id a client asks for, so ids
    /// not listed are denied unless --config (its path prefix) or --manifest also covers them.
    /// Its `region` is used when neither --region nor --config gives one.
    #[arg(long, value_name = "FILE")]
    serve_config: Option<PathBuf>,
    /// The 12-digit AWS account the secrets live in (required for IAM policies; a
    /// hashicorp-vault config needs none).
    #[arg(long, value_name = "ID", env = "AWS_ACCOUNT_ID")]
    account: Option<String>,
    /// Region of the resources (default: the config's extra.region).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// ARN partition (default: the region's: cn-* -> aws-cn, us-gov-* -> aws-us-gov, else aws).
    #[arg(long, value_name = "PARTITION", value_parser = ["aws", "aws-cn", "aws-us-gov"])]
    partition: Option<String>,
    /// Only what output, get, list and read need: no writes.
    #[arg(long)]
    read_only: bool,
    /// A role the node assumes: also allow sts:AssumeRole on it.
    #[arg(long, value_name = "ARN")]
    role_arn: Option<String>,
}

/// The policy. IAM: pretty JSON as text, the same document on one line with `--json`; actions
/// AWS grants only on `"Resource": "*"` are left out and named in notes on stderr. Vault: the
/// HCL policy as text, `{"hcl": ...}` with `--json`.
pub enum Policy {
    /// An IAM policy document (AWS configs and manifests).
    Iam(PolicyDocument),
    /// A Vault policy in HCL (`hashicorp-vault` configs).
    Vault(String),
}

/// Derives the policy `args` describe.
pub fn run(args: PolicyArgs) -> anyhow::Result<Policy> {
    let config = args
        .config
        .as_deref()
        .map(SecretsManagerConfig::read)
        .transpose()?;
    if let Some(config) = &config
        && let Settings::HashicorpVault { server_url, .. } = config.validate()?
    {
        if args.manifest.is_some() || args.role_arn.is_some() || args.serve_config.is_some() {
            bail!(
                "--config: a hashicorp-vault config gives a Vault policy, which cannot be \
                 combined with --manifest, --serve-config or --role-arn (IAM)"
            );
        }
        let settings = lockbox_vault::VaultSettings::new(server_url, config.name.clone());
        return Ok(Policy::Vault(settings.policy_hcl(args.read_only)?));
    }
    let Some(account) = args.account else {
        // A usage error (exit 2, with policy's usage line), as when clap itself finds a
        // required flag missing.
        return Err(crate::commands::sources::UsageError(
            "--account <ID> is required for an IAM policy (or set AWS_ACCOUNT_ID)".into(),
        )
        .into());
    };
    let manifest = args.manifest.as_deref().map(Manifest::read).transpose()?;
    let mut secret_ids: Vec<String> = manifest
        .iter()
        .flat_map(|m| m.secret_ids().map(str::to_owned))
        .collect();
    if let (Some(path), true) = (&args.manifest, secret_ids.is_empty()) {
        bail!(
            "manifest {}: lists no secrets, so there is nothing to allow",
            path.display()
        );
    }
    let serve = args
        .serve_config
        .as_deref()
        .map(|path| lockbox_serve::ServeConfig::load(Some(path)))
        .transpose()?;
    // The manifest serve syncs its offline store from (`[lockbox] manifest`).
    let serve_manifest = serve
        .as_ref()
        .and_then(|s| s.lockbox.offline.as_ref())
        .and_then(|o| o.manifest.as_deref())
        .map(Manifest::read)
        .transpose()?;
    for id in serve_manifest.iter().flat_map(|m| m.secret_ids()) {
        if !secret_ids.iter().any(|known| known == id) {
            secret_ids.push(id.to_owned());
        }
    }
    if let (Some(path), Some(serve)) = (&args.serve_config, &serve)
        && serve.lockbox.prefetch_secrets.is_empty()
        && serve.lockbox.prefetch_parameters.is_empty()
        && serve_manifest.is_none()
    {
        bail!(
            "serve config {}: names no secrets or parameters ([lockbox] prefetch_secrets, \
             prefetch_parameters, manifest), so there is nothing to allow; serve reads ids on \
             request, so list the ones it serves there, or give --config for a path prefix",
            path.display()
        );
    }
    // The serve config's region when nothing more specific gives one.
    let region = match (&args.region, &config, &serve) {
        (Some(region), _, _) => Some(region.clone()),
        (None, None, Some(serve)) => serve.region.clone(),
        _ => None,
    };
    let empty = Vec::new();
    let (serve_secrets, serve_parameters) = match &serve {
        Some(s) => (&s.lockbox.prefetch_secrets, &s.lockbox.prefetch_parameters),
        None => (&empty, &empty),
    };
    let options = PolicyOptions {
        account,
        region,
        partition: args
            .partition
            .as_deref()
            .map(Partition::parse)
            .transpose()?,
        access: if args.read_only {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        },
        role_arn: args.role_arn,
    };
    let sources = PolicySources {
        config: config.as_ref(),
        manifest_secrets: &secret_ids,
        serve_secrets,
        serve_parameters,
    };
    Ok(Policy::Iam(lockbox_policy::generate(sources, &options)?))
}

impl Report for Policy {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Policy::Iam(document) => writeln!(out, "{}", document.to_json()),
            Policy::Vault(hcl) => write!(out, "{hcl}"),
        }
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        match self {
            Policy::Iam(document) => to_json(document),
            Policy::Vault(hcl) => to_json(&serde_json::json!({ "hcl": hcl })),
        }
    }

    fn notes(&self) -> Vec<Note> {
        match self {
            Policy::Iam(document) => document
                .omitted
                .iter()
                .map(|o| Note::Info(format!("left out {}: {}", o.action, o.reason)))
                .collect(),
            Policy::Vault(_) => Vec::new(),
        }
    }
}
