//! What a node-secrets backend's config says, the same for the SSM and the Secrets Manager
//! backends.

#[cfg(feature = "sdk")]
use crate::{SdkConfig, SdkOptions};

/// Where one node's secrets live in an AWS service and how to reach it: the settings of an
/// `aws-ssm` or an `aws-secretsmanager` backend (`lockbox_ssm::SsmSettings` and
/// `lockbox_secretsmanager::SecretsManagerSettings` are this type).
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// AWS region, such as `us-east-1`.
    pub region: String,
    /// The path the node's secrets live under, normalised by the backend before use:
    /// `extra.ssm-parameter-path` for aws-ssm (with a leading `/`),
    /// `extra.secrets-manager-path` for aws-secretsmanager (without one).
    pub path: String,
    /// The node's name (config `name`): one segment of every secret's name.
    pub node_name: String,
    /// Customer-managed KMS key (id, ARN or alias) that encrypts new values; the service's
    /// AWS-managed key (`aws/ssm`, `aws/secretsmanager`) when `None`.
    pub kms_key_id: Option<String>,
    /// Custom endpoint (an emulator). Without it, aws-config also honours `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
}

#[cfg(feature = "sdk")]
impl NodeSettings {
    /// The SDK config for this region and endpoint ([`SdkOptions::load_for`]).
    pub async fn load_sdk(&self) -> lockbox_core::Result<SdkConfig> {
        SdkOptions::load_for(&self.region, self.endpoint_url.as_deref()).await
    }
}
