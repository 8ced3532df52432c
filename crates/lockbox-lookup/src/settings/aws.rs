//! The AWS side of the settings (region, endpoint, profile, static keys, the role to assume)
//! and how the kwargs Airflow passes to its AWS connection become them.

use std::fmt;
use std::time::Duration;

use lockbox_core::{Error, ErrorKind, Result};
use serde_json::{Map, Value};

use super::opt_string;

/// Static AWS keys given in the kwargs (`aws_access_key_id`, `aws_secret_access_key`,
/// `aws_session_token`). Debug redacts the secret key and the token.
#[derive(Clone)]
pub struct StaticCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token, for temporary keys.
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[REDACTED]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// How `role_arn` is assumed (Airflow's `assume_role_kwargs`, the part aws-config supports).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssumeRoleOptions {
    /// `RoleSessionName`; by default
    /// [`BackendKind::role_session_name`](super::BackendKind::role_session_name).
    pub session_name: Option<String>,
    /// `ExternalId`.
    pub external_id: Option<String>,
    /// `DurationSeconds`.
    pub duration: Option<Duration>,
    /// `Policy` (an inline session policy, JSON).
    pub policy: Option<String>,
    /// `PolicyArns` (managed session policies).
    pub policy_arns: Vec<String>,
    /// `Tags` (session tags).
    pub tags: Vec<(String, String)>,
}

/// Where and as whom AWS is called.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// `region_name`; without it aws-config's chain (`AWS_REGION`, profile, IMDS) decides.
    pub region_name: Option<String>,
    /// `profile_name`: the shared-config profile for the base credentials.
    pub profile_name: Option<String>,
    /// `endpoint_url`: custom endpoint of the SSM or Secrets Manager client (not of STS, as in
    /// Airflow). Without it aws-config also honours `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// `service_config.sts.endpoint_url`: the STS endpoint used to assume `role_arn`.
    pub sts_endpoint_url: Option<String>,
    /// `role_arn`: a role assumed through STS before every call (credentials refreshed before
    /// they expire).
    pub role_arn: Option<String>,
    /// `assume_role_kwargs`.
    pub assume_role: AssumeRoleOptions,
    /// Static base credentials from the kwargs, when both key parts are given.
    pub static_credentials: Option<StaticCredentials>,
}

/// The AWS keys of one kwargs object, gathered as they come and checked together at the end
/// (static keys count only in pairs, the assume-role keys only with a role).
#[derive(Default)]
pub(super) struct AwsKwargs<'a> {
    access_key: Option<String>,
    secret_key: Option<String>,
    token: Option<String>,
    assume_method: Option<String>,
    assume_kwargs: Option<&'a Map<String, Value>>,
}

impl<'a> AwsKwargs<'a> {
    /// Takes `key` into `aws` (or keeps it for [`AwsKwargs::finish`]) when it is one of the AWS
    /// keys; `false` when it is not.
    pub(super) fn take(
        &mut self,
        aws: &mut AwsSettings,
        key: &str,
        value: &'a Value,
    ) -> Result<bool> {
        match key {
            "role_arn" => aws.role_arn = opt_string(key, value)?.filter(|r| !r.is_empty()),
            "region_name" => aws.region_name = opt_string(key, value)?.filter(|r| !r.is_empty()),
            "profile_name" => aws.profile_name = opt_string(key, value)?.filter(|r| !r.is_empty()),
            "endpoint_url" => aws.endpoint_url = opt_string(key, value)?.filter(|r| !r.is_empty()),
            "service_config" => aws.sts_endpoint_url = sts_endpoint(value)?,
            "aws_access_key_id" => self.access_key = opt_string(key, value)?,
            "aws_secret_access_key" => self.secret_key = opt_string(key, value)?,
            "aws_session_token" => self.token = opt_string(key, value)?,
            "assume_role_method" => self.assume_method = opt_string(key, value)?,
            "assume_role_kwargs" => match value {
                Value::Object(m) => self.assume_kwargs = Some(m),
                Value::Null => {}
                _ => {
                    return Err(Error::invalid_config(
                        "backend_kwargs.assume_role_kwargs",
                        "must be a JSON object",
                    ));
                }
            },
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Applies what only counts together: the static key pair, and the assume-role method and
    /// kwargs (looked at only when a role is set, as in Airflow).
    pub(super) fn finish(self, aws: &mut AwsSettings) -> Result<()> {
        match (self.access_key, self.secret_key) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                aws.static_credentials = Some(StaticCredentials {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: self.token.filter(|t| !t.is_empty()),
                });
            }
            (None, None) => {}
            _ => tracing::warn!(
                "backend_kwargs: aws_access_key_id and aws_secret_access_key must both be set \
                 to be used (as in Airflow); using the default credential chain"
            ),
        }
        if aws.role_arn.is_some() {
            match self.assume_method.as_deref() {
                None | Some("assume_role") => {}
                Some(m @ ("assume_role_with_saml" | "assume_role_with_web_identity")) => {
                    return Err(Error::input(
                        ErrorKind::Unsupported,
                        format!(
                            "backend_kwargs.assume_role_method {m:?}: only \"assume_role\" is \
                             supported"
                        ),
                    ));
                }
                Some(m) => {
                    return Err(Error::invalid_config(
                        "backend_kwargs.assume_role_method",
                        format!(
                            "{m:?} is not one of assume_role, assume_role_with_saml, \
                             assume_role_with_web_identity"
                        ),
                    ));
                }
            }
            if let Some(kw) = self.assume_kwargs {
                aws.assume_role = assume_role_options(kw)?;
            }
        }
        Ok(())
    }
}

fn sts_endpoint(value: &Value) -> Result<Option<String>> {
    let bad = |what: &str| Error::invalid_config("backend_kwargs.service_config", what.to_string());
    match value {
        Value::Null => Ok(None),
        Value::Object(services) => {
            for name in services.keys().filter(|k| k.as_str() != "sts") {
                tracing::debug!(
                    service = name.as_str(),
                    "backend_kwargs.service_config: only sts is used (as in Airflow's secrets \
                     backends); ignored"
                );
            }
            match services.get("sts") {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(sts)) => match sts.get("endpoint_url") {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(u)) if !u.is_empty() => Ok(Some(u.clone())),
                    Some(Value::String(_)) => Ok(None),
                    Some(_) => Err(bad("sts.endpoint_url must be a string")),
                },
                Some(_) => Err(bad("sts must be an object")),
            }
        }
        _ => Err(bad("must be an object")),
    }
}

fn assume_role_options(kw: &Map<String, Value>) -> Result<AssumeRoleOptions> {
    let field = |k: &str| format!("backend_kwargs.assume_role_kwargs.{k}");
    let string = |k: &str, v: &Value| -> Result<String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::invalid_config(field(k), "must be a string"))
    };
    let mut o = AssumeRoleOptions::default();
    for (k, v) in kw {
        match k.as_str() {
            // Airflow sets RoleArn from role_arn after these kwargs.
            "RoleArn" => {}
            "RoleSessionName" => o.session_name = Some(string(k, v)?),
            "ExternalId" => o.external_id = Some(string(k, v)?),
            "Policy" => o.policy = Some(string(k, v)?),
            "DurationSeconds" => {
                let secs = v.as_u64().ok_or_else(|| {
                    Error::invalid_config(field(k), "must be a whole number of seconds")
                })?;
                o.duration = Some(Duration::from_secs(secs));
            }
            "PolicyArns" => {
                let bad = || Error::invalid_config(field(k), "must be a list of {\"arn\": ...}");
                let list = v.as_array().ok_or_else(bad)?;
                for item in list {
                    let arn = item.get("arn").and_then(Value::as_str).ok_or_else(bad)?;
                    o.policy_arns.push(arn.to_string());
                }
            }
            "Tags" => {
                let bad = || {
                    Error::invalid_config(
                        field(k),
                        "must be a list of {\"Key\": ..., \"Value\": ...}",
                    )
                };
                let list = v.as_array().ok_or_else(bad)?;
                for item in list {
                    let key = item.get("Key").and_then(Value::as_str).ok_or_else(bad)?;
                    let value = item.get("Value").and_then(Value::as_str).ok_or_else(bad)?;
                    o.tags.push((key.to_string(), value.to_string()));
                }
            }
            other => {
                return Err(Error::input(
                    ErrorKind::Unsupported,
                    format!(
                        "backend_kwargs.assume_role_kwargs.{other}: not supported (use \
                         RoleSessionName, ExternalId, DurationSeconds, Policy, PolicyArns, Tags)"
                    ),
                ));
            }
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::ssm;

    #[test]
    fn aws_settings() {
        let s = ssm(
            r#"{"role_arn": "arn:aws:iam::222222222222:role/awesome-role", "region_name": "eu-central-1",
                "profile_name": null, "endpoint_url": "http://127.0.0.1:1", "use_ssl": false,
                "service_config": {"sts": {"endpoint_url": "http://127.0.0.1:2"}, "s3": {}},
                "assume_role_kwargs": {"ExternalId": "x", "DurationSeconds": 900, "RoleSessionName": "mine",
                                       "Tags": [{"Key": "k", "Value": "v"}], "PolicyArns": [{"arn": "a"}]},
                "aws_access_key_id": "AKID", "aws_secret_access_key": "SECRET", "aws_session_token": "TOKEN"}"#,
        );
        assert_eq!(
            s.aws.role_arn.as_deref(),
            Some("arn:aws:iam::222222222222:role/awesome-role")
        );
        assert_eq!(s.aws.region_name.as_deref(), Some("eu-central-1"));
        assert_eq!(s.aws.profile_name, None);
        assert_eq!(s.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(
            s.aws.sts_endpoint_url.as_deref(),
            Some("http://127.0.0.1:2")
        );
        assert_eq!(s.aws.assume_role.external_id.as_deref(), Some("x"));
        assert_eq!(s.aws.assume_role.duration, Some(Duration::from_secs(900)));
        assert_eq!(s.aws.assume_role.session_name.as_deref(), Some("mine"));
        assert_eq!(
            s.aws.assume_role.tags,
            vec![("k".to_string(), "v".to_string())]
        );
        assert_eq!(s.aws.assume_role.policy_arns, vec!["a".to_string()]);
        let d = format!("{s:?}");
        assert!(!d.contains("SECRET") && !d.contains("TOKEN"), "{d}");
        assert!(d.contains("AKID"));
        // An empty role_arn assumes nothing (Airflow tests `if role_arn`).
        assert_eq!(ssm(r#"{"role_arn": ""}"#).aws.role_arn, None);
    }
}
