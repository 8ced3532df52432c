//! From a config (and a sync manifest) to a policy document.

use lockbox_config::{SecretsManagerConfig, Settings, extra_field, is_region_name, keys};
use lockbox_core::{Error, ErrorKind};

use lockbox_aws::Arn;

use crate::arn::{Partition, check_account};
use crate::document::{OmittedAction, PolicyDocument, Statement};
use crate::kms::kms_target;

/// The KMS action a read of a value under a customer managed key needs (SSM GetParameter with
/// decryption, Secrets Manager GetSecretValue).
pub const KMS_DECRYPT: &str = "kms:Decrypt";
/// The KMS action Parameter Store calls on the key when it stores a standard-tier SecureString
/// (lockbox writes only standard-tier parameters; advanced ones would need GenerateDataKey).
pub const SSM_KMS_WRITE: &str = "kms:Encrypt";
/// The KMS action Secrets Manager calls on the key when it stores a new secret version
/// (envelope encryption under a fresh data key).
pub const SECRETSMANAGER_KMS_WRITE: &str = "kms:GenerateDataKey";
/// The action that assuming a role needs.
pub const STS_ASSUME_ROLE: &str = "sts:AssumeRole";

/// Actions that AWS authorises only on `"Resource": "*"` (the Service Authorization Reference
/// lists no resource type for them), so a least-privilege policy cannot grant them. A backend
/// action in this list is left out and reported in [`PolicyDocument::omitted`].
pub const ACTIONS_WITHOUT_RESOURCES: [&str; 2] = [
    "secretsmanager:BatchGetSecretValue",
    "secretsmanager:ListSecrets",
];

/// What a sync of a manifest calls on each listed secret: `lockbox_resources` fetches every
/// (secret, label) with GetSecretValue. It first tries BatchGetSecretValue for the current
/// versions, which AWS grants only on `"Resource": "*"`: left out (reported in `omitted`),
/// and the sync falls back to GetSecretValue when it is denied. Picked from
/// [`lockbox_secretsmanager::ACTIONS`] by name; a test checks the table still has it.
pub const SYNC_ACTIONS: [&str; 1] = ["secretsmanager:GetSecretValue"];

/// What `lockbox serve` calls on each secret its config names: GetSecretValue. The batched
/// prefetch first tries BatchGetSecretValue, which AWS grants only on `"Resource": "*"`: left
/// out (reported in `omitted`), and serve falls back to GetSecretValue when it is denied.
/// Picked from [`lockbox_secretsmanager::ACTIONS`] by name; a test checks the table still has
/// it.
pub const SERVE_SECRET_ACTIONS: [&str; 1] = ["secretsmanager:GetSecretValue"];

/// What `lockbox serve` calls on each SSM parameter its config names: GetParameters (the
/// batched prefetch, ten names a call) and GetParameter (a read on request, and a name a
/// batch did not answer), both with decryption. Picked from [`lockbox_ssm::ACTIONS`] by name;
/// a test checks the table still has them.
pub const SERVE_PARAMETER_ACTIONS: [&str; 2] = ["ssm:GetParameter", "ssm:GetParameters"];

/// How much a policy allows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Everything the backend calls: `init`, `put`, `delete` as well as reads.
    #[default]
    ReadWrite,
    /// Only what `output`, `get`, `list` and `read` need.
    ReadOnly,
}

impl Access {
    fn allows(self, read: bool) -> bool {
        read || self == Access::ReadWrite
    }
}

/// Settings a config does not hold: whose account the policy is for, and how much it allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyOptions {
    /// The 12-digit account id the node's secrets live in.
    pub account: String,
    /// Region override; otherwise the config's `extra.region`.
    pub region: Option<String>,
    /// Partition; otherwise the region's (`cn-*` -> `aws-cn`, `us-gov-*` -> `aws-us-gov`).
    pub partition: Option<Partition>,
    /// Read-write (default) or read-only.
    pub access: Access,
    /// A role the node assumes: the policy then also allows `sts:AssumeRole` on it.
    pub role_arn: Option<String>,
}

impl PolicyOptions {
    /// Read-write options for `account`, with the region and partition taken from the config.
    pub fn new(account: impl Into<String>) -> Self {
        Self {
            account: account.into(),
            region: None,
            partition: None,
            access: Access::ReadWrite,
            role_arn: None,
        }
    }
}

/// What a policy is derived from: a config, the secret ids of a sync manifest, or both.
#[derive(Clone, Copy, Debug, Default)]
pub struct PolicySources<'a> {
    /// An `aws-ssm` or `aws-secretsmanager` config.
    pub config: Option<&'a SecretsManagerConfig>,
    /// The secret ids (ARN or name) a sync manifest lists.
    pub manifest_secrets: &'a [String],
    /// The Secrets Manager ids (ARN or name) a `lockbox serve` config names
    /// (`[lockbox] prefetch_secrets`): [`SERVE_SECRET_ACTIONS`] on each.
    pub serve_secrets: &'a [String],
    /// The SSM parameter names (or ARNs) a `lockbox serve` config names
    /// (`[lockbox] prefetch_parameters`): [`SERVE_PARAMETER_ACTIONS`] on each.
    pub serve_parameters: &'a [String],
}

/// Where resources live: partition, region (when known) and account.
struct Target<'a> {
    partition: Partition,
    region: Option<&'a str>,
    account: &'a str,
}

impl Target<'_> {
    fn region(&self, needed_for: &str) -> Result<&str, Error> {
        self.region.ok_or_else(|| {
            Error::invalid_config(
                "region",
                format!(
                    "is needed for {needed_for}: give --region or a config with {}",
                    extra_field(keys::REGION)
                ),
            )
        })
    }

    fn arn(&self, service: &str, region: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{region}:{}:{resource}",
            self.partition, self.account
        )
    }
}

/// An action a backend calls, as its table lists it.
#[derive(Clone, Copy, Debug)]
struct BackendAction {
    name: &'static str,
    read: bool,
}

/// Builds the least-privilege policy for `sources`.
///
/// Validates first, naming the field: the account (12 digits), the region (a region name),
/// the partition (it must hold the region), the config's path and name (not empty, AWS's naming
/// rules, normalised exactly as the backend normalises them), the KMS key and role ARN. The
/// result never has a wildcard in an action and never the resource `*`.
pub fn generate(
    sources: PolicySources<'_>,
    options: &PolicyOptions,
) -> Result<PolicyDocument, Error> {
    check_account(&options.account, "account")?;
    if sources.config.is_none()
        && sources.manifest_secrets.is_empty()
        && sources.serve_secrets.is_empty()
        && sources.serve_parameters.is_empty()
    {
        return Err(Error::invalid_config(
            "config",
            "nothing to derive a policy from: give a config, a manifest with secrets, a serve \
             config naming secrets or parameters, or several",
        ));
    }
    if let Some(region) = &options.region
        && !is_region_name(region)
    {
        return Err(Error::invalid_config(
            "region",
            format!("{region:?} is not an AWS region name (like us-east-1)"),
        ));
    }
    let config = match sources.config {
        Some(c) => Some((c, c.validate()?)),
        None => None,
    };
    let (region, region_field) = match (&options.region, &config) {
        (Some(r), _) => (Some(r.as_str()), "region".to_string()),
        (None, Some((_, settings))) => (settings.region(), extra_field(keys::REGION)),
        (None, None) => (None, "region".to_string()),
    };
    let partition = match (options.partition, region) {
        (Some(p), Some(r)) => {
            let of_region = Partition::of_region(r, &region_field)?;
            if of_region != p {
                return Err(Error::invalid_config(
                    "partition",
                    format!("{p} does not hold region {r:?} (it is in {of_region})"),
                ));
            }
            p
        }
        (Some(p), None) => p,
        (None, Some(r)) => Partition::of_region(r, &region_field)?,
        (None, None) => Partition::Aws,
    };
    let target = Target {
        partition,
        region,
        account: &options.account,
    };

    let mut statements = Vec::new();
    let mut omitted = Vec::new();
    if let Some((config, settings)) = &config {
        statements.extend(config_statements(
            config,
            settings,
            &target,
            options.access,
            &mut omitted,
        )?);
    }
    if !sources.manifest_secrets.is_empty() {
        statements.extend(manifest_statements(sources.manifest_secrets, &target)?);
    }
    if !sources.manifest_secrets.is_empty() || !sources.serve_secrets.is_empty() {
        let batch = "secretsmanager:BatchGetSecretValue";
        if !omitted.iter().any(|o: &OmittedAction| o.action == batch) {
            omitted.push(OmittedAction {
                action: batch,
                reason: format!(
                    "AWS grants {batch} only on \"Resource\": \"*\", which a least-privilege \
                     policy never uses; sync and serve's prefetch try it first for {} and fall \
                     back to GetSecretValue, one call per secret, when it is denied",
                    unscoped_use(batch)
                ),
            });
        }
    }
    statements.extend(serve_statements(
        sources.serve_secrets,
        sources.serve_parameters,
        &target,
        &mut omitted,
    )?);
    if let Some(role) = &options.role_arn {
        statements.push(role_statement(role, &target)?);
    }
    let mut document = PolicyDocument::new(statements);
    document.omitted = omitted;
    check_invariants(&document)?;
    Ok(document)
}

fn config_statements(
    config: &SecretsManagerConfig,
    settings: &Settings,
    target: &Target<'_>,
    access: Access,
    omitted: &mut Vec<OmittedAction>,
) -> Result<Vec<Statement>, Error> {
    if config.name.trim().is_empty() {
        return Err(Error::invalid_config("name", "is empty"));
    }
    let backend = settings.manager_type();
    let (path, path_key) = match settings {
        Settings::AwsSsm { parameter_path, .. } => (parameter_path, keys::SSM_PARAMETER_PATH),
        Settings::AwsSecretsManager {
            secrets_manager_path,
            ..
        } => (secrets_manager_path, keys::SECRETS_MANAGER_PATH),
        _ => {
            return Err(Error::invalid_config(
                "type",
                format!(
                    "{backend} keeps no secrets in AWS, so it needs no IAM policy (policies cover aws-ssm and aws-secretsmanager)"
                ),
            ));
        }
    };
    if path.trim().is_empty() {
        return Err(Error::invalid_config(
            extra_field(path_key),
            format!("is empty (type {backend} needs a path)"),
        ));
    }
    let region = target.region(&format!("a {backend} config"))?;
    let ssm = matches!(settings, Settings::AwsSsm { .. });
    let mut statements = if ssm {
        ssm_statements(path, &config.name, target, region, access)?
    } else {
        secretsmanager_statements(path, &config.name, target, region, access, omitted)?
    };
    if let Some(key) = settings.kms_key_id()
        && let Some(kms) = kms_target(key, target.partition, region, target.account)?
    {
        let mut actions = vec![KMS_DECRYPT];
        if access == Access::ReadWrite {
            actions.push(if ssm {
                SSM_KMS_WRITE
            } else {
                SECRETSMANAGER_KMS_WRITE
            });
        }
        let mut statement = Statement::allow("KmsUseNodeKey", actions, kms.resources);
        if let Some(condition) = kms.condition {
            statement = statement.with_condition(condition);
        }
        statements.push(statement);
    }
    Ok(statements)
}

/// SSM: every action of [`lockbox_ssm::ACTIONS`] the access allows, on the node's parameters
/// `parameter<prefix>/*`; actions that take a path (`...ByPath`) are authorised on the path
/// itself, so they also get `parameter<prefix>`.
fn ssm_statements(
    path: &str,
    name: &str,
    target: &Target<'_>,
    region: &str,
    access: Access,
) -> Result<Vec<Statement>, Error> {
    let prefix = lockbox_ssm::parameter_prefix(path, name)?;
    let node = target.arn("ssm", region, &format!("parameter{prefix}"));
    let under = format!("{node}/*");
    let actions = lockbox_ssm::ACTIONS.map(|a| BackendAction {
        name: a.name,
        read: a.read,
    });
    let allowed: Vec<BackendAction> = actions
        .into_iter()
        .filter(|a| access.allows(a.read))
        .collect();
    let by_path = |a: &BackendAction| a.name.ends_with("ByPath");
    let mut statements = Vec::new();
    let groups: [(&str, Vec<&BackendAction>, Vec<&str>); 3] = [
        (
            "SsmReadNodeParameters",
            allowed.iter().filter(|a| a.read && !by_path(a)).collect(),
            vec![under.as_str()],
        ),
        (
            "SsmListNodeParameters",
            allowed.iter().filter(|a| by_path(a)).collect(),
            vec![node.as_str(), under.as_str()],
        ),
        (
            "SsmWriteNodeParameters",
            allowed.iter().filter(|a| !a.read && !by_path(a)).collect(),
            vec![under.as_str()],
        ),
    ];
    for (sid, actions, resources) in groups {
        if !actions.is_empty() {
            statements.push(Statement::allow(
                sid,
                actions.iter().map(|a| a.name),
                resources,
            ));
        }
    }
    Ok(statements)
}

/// Secrets Manager: every action of [`lockbox_secretsmanager::ACTIONS`] the access allows, on
/// the node's secrets `secret:<prefix>/*` (the `*` also covers the suffix AWS appends). Actions
/// in [`ACTIONS_WITHOUT_RESOURCES`] are left out and reported.
fn secretsmanager_statements(
    path: &str,
    name: &str,
    target: &Target<'_>,
    region: &str,
    access: Access,
    omitted: &mut Vec<OmittedAction>,
) -> Result<Vec<Statement>, Error> {
    let prefix = lockbox_secretsmanager::secret_prefix(path, name)?;
    let under = target.arn("secretsmanager", region, &format!("secret:{prefix}/*"));
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    for a in lockbox_secretsmanager::ACTIONS {
        if !access.allows(a.read) {
            continue;
        }
        if ACTIONS_WITHOUT_RESOURCES.contains(&a.name) {
            omitted.push(OmittedAction {
                action: a.name,
                reason: format!(
                    "AWS grants {} only on \"Resource\": \"*\", which a least-privilege policy never uses; \
                     the calls that need it ({}) will be denied unless you grant it yourself",
                    a.name,
                    unscoped_use(a.name)
                ),
            });
        } else if a.read {
            reads.push(a.name);
        } else {
            writes.push(a.name);
        }
    }
    let mut statements = Vec::new();
    if !reads.is_empty() {
        statements.push(Statement::allow(
            "SecretsManagerReadNodeSecrets",
            reads,
            [under.as_str()],
        ));
    }
    if !writes.is_empty() {
        statements.push(Statement::allow(
            "SecretsManagerWriteNodeSecrets",
            writes,
            [under.as_str()],
        ));
    }
    Ok(statements)
}

/// What a node loses without an action of [`ACTIONS_WITHOUT_RESOURCES`].
fn unscoped_use(action: &str) -> &'static str {
    match action {
        "secretsmanager:ListSecrets" => "`lockbox list` on this backend",
        "secretsmanager:BatchGetSecretValue" => "batched reads of several secrets at once",
        _ => "every call of this action",
    }
}

/// A sync manifest: [`SYNC_ACTIONS`] on exactly the listed secrets. A full ARN is used as is;
/// a name becomes `secret:<name>-??????` in the policy's region and account.
fn manifest_statements(ids: &[String], target: &Target<'_>) -> Result<Vec<Statement>, Error> {
    let mut resources = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let field = format!("manifest cloudSecrets[{i}].arn");
        lockbox_resources::check_secret_id(id)
            .map_err(|rule| Error::invalid_config(&field, rule.message()))?;
        if id.starts_with("arn:") {
            resources.push(id.clone());
        } else {
            let region = target.region(&format!("{field} {id:?}, a secret given by name"))?;
            resources.push(target.arn("secretsmanager", region, &format!("secret:{id}-??????")));
        }
    }
    Ok(vec![Statement::allow(
        "SecretsManagerReadManifestSecrets",
        SYNC_ACTIONS,
        resources,
    )])
}

/// A `lockbox serve` config: [`SERVE_SECRET_ACTIONS`] on exactly the secrets it names (an ARN
/// as is, a name as `secret:<name>-??????`) and [`SERVE_PARAMETER_ACTIONS`] on exactly the
/// parameters it names (`parameter/<name>`, an ARN as is). Reading SecureStrings under a
/// customer managed key also needs `kms:Decrypt` on that key, which a serve config does not
/// name: reported in `omitted`.
fn serve_statements(
    secrets: &[String],
    parameters: &[String],
    target: &Target<'_>,
    omitted: &mut Vec<OmittedAction>,
) -> Result<Vec<Statement>, Error> {
    let mut statements = Vec::new();
    let mut resources: Vec<String> = Vec::new();
    for (i, id) in secrets.iter().enumerate() {
        let field = format!("serve config prefetch_secrets[{i}]");
        lockbox_resources::check_secret_id(id)
            .map_err(|rule| Error::invalid_config(&field, rule.message()))?;
        let resource = if id.starts_with("arn:") {
            check_service_arn(id, "secretsmanager", "secret:", target, &field)?;
            id.clone()
        } else {
            let region = target.region(&format!("{field} {id:?}, a secret given by name"))?;
            target.arn("secretsmanager", region, &format!("secret:{id}-??????"))
        };
        if !resources.contains(&resource) {
            resources.push(resource);
        }
    }
    if !resources.is_empty() {
        statements.push(Statement::allow(
            "SecretsManagerReadServeSecrets",
            SERVE_SECRET_ACTIONS,
            resources,
        ));
    }
    let mut resources: Vec<String> = Vec::new();
    for (i, name) in parameters.iter().enumerate() {
        let field = format!("serve config prefetch_parameters[{i}]");
        let resource = if name.starts_with("arn:") {
            check_service_arn(name, "ssm", "parameter/", target, &field)?;
            name.clone()
        } else {
            check_parameter_name(name)
                .map_err(|rule| Error::invalid_config(&field, rule.message()))?;
            let region = target.region(&format!("{field} {name:?}, a parameter given by name"))?;
            // `/a/b` is `parameter/a/b` in its ARN; a name without a leading slash gets one.
            target.arn(
                "ssm",
                region,
                &format!("parameter/{}", name.trim_start_matches('/')),
            )
        };
        if !resources.contains(&resource) {
            resources.push(resource);
        }
    }
    if !resources.is_empty() {
        statements.push(Statement::allow(
            "SsmReadServeParameters",
            SERVE_PARAMETER_ACTIONS,
            resources,
        ));
        omitted.push(OmittedAction {
            action: KMS_DECRYPT,
            reason: "a serve config does not name the KMS key of its SecureString parameters: \
                     under the AWS managed key (aws/ssm) none is needed; under a customer \
                     managed key, allow kms:Decrypt on that key yourself"
                .into(),
        });
    }
    Ok(statements)
}

/// A parameter name that breaks AWS's rule; the message is the rule alone.
fn name_rule(rule: impl Into<String>) -> Error {
    Error::input(ErrorKind::InvalidName, rule)
}

/// An SSM parameter name as AWS accepts it: 1..=2048 characters of `a-zA-Z0-9_.-/`, no `//`,
/// at most 15 levels, not starting with `aws` or `ssm` (any case).
fn check_parameter_name(name: &str) -> Result<(), Error> {
    let bare = name.trim_start_matches('/');
    if bare.is_empty() || name.len() > 2048 {
        return Err(name_rule(format!(
            "{name:?}: a parameter name is 1 to 2048 characters"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
    {
        return Err(name_rule(format!(
            "{name:?}: parameter names are a-z A-Z 0-9 _ . - with / between levels \
             (a version or label selector is not part of the name)"
        )));
    }
    if name.contains("//") || name.ends_with('/') {
        return Err(name_rule(format!(
            "{name:?}: empty level in a parameter name"
        )));
    }
    if name.matches('/').count() > 15 {
        return Err(name_rule(format!("{name:?}: more than 15 levels")));
    }
    let lower = bare.to_ascii_lowercase();
    if lower.starts_with("aws") || lower.starts_with("ssm") {
        return Err(name_rule(format!(
            "{name:?}: names cannot start with aws or ssm"
        )));
    }
    Ok(())
}

/// An ARN in a serve config: this service, `resource` kind, the policy's partition, no wildcard.
fn check_service_arn(
    id: &str,
    service: &str,
    resource: &str,
    target: &Target<'_>,
    field: &str,
) -> Result<(), Error> {
    let bad = |rule: String| Err(Error::invalid_config(field, format!("{id:?}: {rule}")));
    let Some(arn) = Arn::parse(id) else {
        return bad("not an ARN".into());
    };
    if arn.service != service || !arn.resource.starts_with(resource) {
        return bad(format!(
            "not a {service} {} ARN",
            resource.trim_end_matches([':', '/'])
        ));
    }
    if arn.partition != target.partition.as_str() {
        return bad(format!("partition {:?} is not the policy's", arn.partition));
    }
    check_account(arn.account, field)?;
    if !is_region_name(arn.region) {
        return bad(format!("{:?} is not a region name", arn.region));
    }
    if id.contains(['*', '?']) {
        return bad("wildcards are not allowed".into());
    }
    Ok(())
}

/// `sts:AssumeRole` on exactly the configured role.
fn role_statement(role: &str, target: &Target<'_>) -> Result<Statement, Error> {
    let bad = |rule: &str| {
        Err(Error::invalid_config(
            "role_arn",
            format!(
                "{role:?}: {rule} (expected arn:{}:iam::ACCOUNT:role/NAME)",
                target.partition
            ),
        ))
    };
    let Some(arn) = Arn::parse(role) else {
        return bad("not an ARN");
    };
    if arn.service != "iam" || !arn.region.is_empty() {
        return bad("not an IAM ARN");
    }
    if arn.partition != target.partition.as_str() {
        return bad(&format!(
            "partition {:?} is not the policy's",
            arn.partition
        ));
    }
    check_account(arn.account, "role_arn")?;
    let Some(name) = arn.resource.strip_prefix("role/") else {
        return bad("not a role");
    };
    if name.is_empty()
        || name.ends_with('/')
        || name.contains("//")
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
    {
        return bad("role names are A-Z a-z 0-9 + = , . @ _ - with / between path parts");
    }
    Ok(Statement::allow(
        "StsAssumeConfiguredRole",
        [STS_ASSUME_ROLE],
        [role],
    ))
}

/// What every generated document promises: actions are exact names, no resource is `*`, no
/// statement is empty, Sids are unique and alphanumeric.
fn check_invariants(document: &PolicyDocument) -> Result<(), Error> {
    let broken = |what: String| {
        Err(Error::input(
            ErrorKind::Backend,
            format!("generated policy is wrong: {what}"),
        ))
    };
    let mut sids = Vec::new();
    for s in &document.statements {
        if s.sid.is_empty() || !s.sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return broken(format!("Sid {:?}", s.sid));
        }
        if sids.contains(&s.sid.as_str()) {
            return broken(format!("Sid {} twice", s.sid));
        }
        sids.push(s.sid.as_str());
        if s.actions.is_empty() || s.resources.is_empty() {
            return broken(format!("statement {} is empty", s.sid));
        }
        if let Some(a) = s.actions.iter().find(|a| {
            a.contains(['*', '?'])
                || a.split(':').count() != 2
                || ACTIONS_WITHOUT_RESOURCES.contains(&a.as_str())
        }) {
            return broken(format!("action {a:?} in {}", s.sid));
        }
        if let Some(r) = s.resources.iter().find(|r| {
            Arn::parse(r).is_none_or(|arn| {
                [arn.partition, arn.service, arn.region, arn.account]
                    .iter()
                    .any(|f| f.contains(['*', '?']))
            })
        }) {
            return broken(format!("resource {r:?} in {}", s.sid));
        }
    }
    Ok(())
}
