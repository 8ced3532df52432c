//! lockbox-policy: the least-privilege IAM policy a node needs, derived from the same
//! `secretsManagerConfig.json` (and sync manifest) that drives its backend, so the policy
//! cannot drift from the calls the node makes.
//!
//! - The actions come from the backends' own tables ([`lockbox_ssm::ACTIONS`],
//!   [`lockbox_secretsmanager::ACTIONS`]), never from a second hand-kept list; `read-only` keeps
//!   the actions marked `read`. A sync manifest gets [`SYNC_ACTIONS`], picked from the Secrets
//!   Manager table.
//! - The resources are built from the path normalised by the backend's own function
//!   ([`lockbox_ssm::parameter_prefix`], [`lockbox_secretsmanager::secret_prefix`]), so a
//!   policy covers exactly the node's secrets:
//!   `arn:<partition>:ssm:<region>:<account>:parameter/<path>/<name>/*` and
//!   `arn:<partition>:secretsmanager:<region>:<account>:secret:<path>/<name>/*`. Manifest
//!   secrets are allowed one by one: a full ARN as is, a name as `secret:<name>-??????` (AWS
//!   appends `-` and six characters to every secret's name in its ARN).
//! - Actions AWS only grants on `"Resource": "*"` ([`ACTIONS_WITHOUT_RESOURCES`]) are never
//!   granted: the document lists them in [`PolicyDocument::omitted`] instead.
//! - A customer managed key (`extra.kms-key-id`) adds `kms:Decrypt`, and for writes the one
//!   KMS action the service calls (see [`SSM_KMS_WRITE`], [`SECRETSMANAGER_KMS_WRITE`]).
//! - A `lockbox serve` config's prefetch lists (`[lockbox] prefetch_secrets`,
//!   `prefetch_parameters`) get [`SERVE_SECRET_ACTIONS`] and [`SERVE_PARAMETER_ACTIONS`] on
//!   exactly the names listed. Serve reads any id a client asks for, so ids outside the lists
//!   are denied unless another source (a config's path prefix, a manifest) covers them.
//! - A role the node assumes adds `sts:AssumeRole` on that role.
//!
//! ```
//! use lockbox_config::SecretsManagerConfig;
//! use lockbox_policy::{PolicyOptions, PolicySources, generate};
//!
//! let config = SecretsManagerConfig::from_json(
//!     r#"{"type": "aws-ssm", "name": "node1",
//!         "extra": {"region": "us-east-1", "ssm-parameter-path": "/polygon-edge/nodes/"}}"#,
//! )
//! .unwrap();
//! let sources = PolicySources { config: Some(&config), ..Default::default() };
//! let policy = generate(sources, &PolicyOptions::new("123456789012")).unwrap();
//! assert!(policy.to_json().contains(
//!     "arn:aws:ssm:us-east-1:123456789012:parameter/polygon-edge/nodes/node1/*"
//! ));
//! ```
#![cfg_attr(doctest, doc = include_str!("../README.md"))]

mod arn;
mod document;
mod generate;
mod kms;

pub use arn::{Partition, check_account};
pub use document::{Condition, Effect, OmittedAction, POLICY_VERSION, PolicyDocument, Statement};
pub use generate::{
    ACTIONS_WITHOUT_RESOURCES, Access, KMS_DECRYPT, PolicyOptions, PolicySources,
    SECRETSMANAGER_KMS_WRITE, SERVE_PARAMETER_ACTIONS, SERVE_SECRET_ACTIONS, SSM_KMS_WRITE,
    STS_ASSUME_ROLE, SYNC_ACTIONS, generate,
};
