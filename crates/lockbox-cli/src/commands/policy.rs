//! `lockbox policy`: the least-privilege IAM policy a node needs, derived from its config and/or
//! a sync manifest, printed as pretty JSON on stdout (with `--json`: the same document, compact,
//! on one line, like every other command's `--json` output).

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::bail;

use clap::{ArgGroup, Args};
use lockbox_config::SecretsManagerConfig;
use lockbox_policy::{Access, Partition, PolicyDocument, PolicyOptions, PolicySources};
use lockbox_resources::Manifest;

use crate::report::{Note, Report, to_json};

/// Arguments of `lockbox policy`.
#[derive(Args, Debug)]
#[command(group(
    ArgGroup::new("source")
        .required(true)
        .multiple(true)
        .args(["config", "manifest"])
))]
pub struct PolicyArgs {
    /// A secretsManagerConfig.json of type aws-ssm or aws-secretsmanager: access to that node's
    /// secrets.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A sync manifest ({"cloudSecrets": [{"arn", "labels"}]}): read access to exactly the
    /// secrets it lists.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// The 12-digit AWS account the secrets live in.
    #[arg(long, value_name = "ID", env = "AWS_ACCOUNT_ID")]
    account: String,
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

/// The policy: pretty JSON as text, the same document on one line with `--json`. Actions AWS
/// grants only on `"Resource": "*"` are left out and named in notes on stderr.
pub struct Policy(PolicyDocument);

/// Derives the policy `args` describe.
pub fn run(args: PolicyArgs) -> anyhow::Result<Policy> {
    let config = args
        .config
        .as_deref()
        .map(SecretsManagerConfig::read)
        .transpose()?;
    let manifest = args.manifest.as_deref().map(Manifest::read).transpose()?;
    let secret_ids: Vec<String> = manifest
        .iter()
        .flat_map(|m| m.secret_ids().map(str::to_owned))
        .collect();
    if let (Some(path), true) = (&args.manifest, secret_ids.is_empty()) {
        bail!(
            "manifest {}: lists no secrets, so there is nothing to allow",
            path.display()
        );
    }
    let options = PolicyOptions {
        account: args.account,
        region: args.region,
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
    };
    Ok(Policy(lockbox_policy::generate(sources, &options)?))
}

impl Report for Policy {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", self.0.to_json())
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        to_json(&self.0)
    }

    fn notes(&self) -> Vec<Note> {
        self.0
            .omitted
            .iter()
            .map(|o| Note::Info(format!("left out {}: {}", o.action, o.reason)))
            .collect()
    }
}
