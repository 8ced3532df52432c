//! `lockbox generate`: write a secretsManagerConfig.json.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;
use lockbox_config::{DEFAULT_CONFIG_FILE, ManagerType, SecretsManagerConfig, Token, parse_extra};
use serde_json::json;

use crate::report::{Report, to_json};

use crate::sensitive::Sensitive;

/// Arguments of `lockbox generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Backend type.
    #[arg(
        long = "type",
        value_name = "TYPE",
        value_parser = type_parser(),
    )]
    manager_type: ManagerType,
    /// The node's name (the path segment its secrets live under).
    #[arg(long)]
    name: String,
    /// Where to write the config file; an existing directory means DIR/secretsManagerConfig.json.
    #[arg(long, value_name = "FILE|DIR", default_value = DEFAULT_CONFIG_FILE)]
    dir: PathBuf,
    /// Type-specific settings, as key=value,key2=value2 (aws-ssm: region, ssm-parameter-path,
    /// kms-key-id; aws-secretsmanager: region, secrets-manager-path, kms-key-id; local: path).
    /// Without region, the AWS types take the AWS chain's (AWS_REGION, AWS_DEFAULT_REGION, the
    /// AWS profile).
    #[arg(long, value_name = "k=v,...", default_value = "")]
    extra: String,
    /// Custom endpoint URL (an emulator, a Vault server).
    #[arg(long, value_name = "URL")]
    server_url: Option<String>,
    /// Access token (prefer the LOCKBOX_TOKEN environment variable: argv is visible to others).
    #[arg(long, env = "LOCKBOX_TOKEN", hide_env_values = true)]
    token: Option<Sensitive>,
    /// Namespace (Vault).
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
    /// Replace an existing config file.
    #[arg(long)]
    force: bool,
}

/// `--type`: one of [`ManagerType::ALL`], listed in help and in the error for any other.
fn type_parser() -> impl clap::builder::TypedValueParser<Value = ManagerType> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(ManagerType::ALL.map(ManagerType::as_str))
        .map(|s| ManagerType::parse(&s).expect("a listed type"))
}

/// The config file written.
pub struct Generated {
    path: PathBuf,
}

/// Writes the config file `args` describe.
pub async fn run(args: GenerateArgs) -> lockbox_core::Result<Generated> {
    let mut extra = parse_extra(&args.extra)?;
    let aws = matches!(
        args.manager_type,
        ManagerType::AwsSsm | ManagerType::AwsSecretsManager
    );
    if aws
        && !extra.contains_key("region")
        && let Some(region) = lockbox_aws::region_from_chain().await
    {
        extra.insert("region".into(), region);
    }
    let path = if args.dir.is_dir() {
        args.dir.join(DEFAULT_CONFIG_FILE)
    } else {
        args.dir
    };
    let config = SecretsManagerConfig {
        token: args
            .token
            .map(Sensitive::into_inner)
            .filter(|t| !t.is_empty())
            .map(Token::new),
        server_url: args.server_url.filter(|s| !s.is_empty()),
        manager_type: args.manager_type,
        name: args.name,
        namespace: args.namespace.filter(|s| !s.is_empty()),
        extra,
    };
    config.write(&path, args.force)?;
    Ok(Generated { path })
}

impl Report for Generated {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "Configuration file written to {}", self.path.display())
    }

    fn json(&self) -> anyhow::Result<Option<String>> {
        to_json(&json!({ "config": self.path.display().to_string() }))
    }
}
