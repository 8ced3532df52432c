//! The KMS key a config names (`extra.kms-key-id`) as policy resources.
//!
//! `extra.kms-key-id` takes what SSM's PutParameter and Secrets Manager's CreateSecret take: a
//! key id, a key ARN, an alias name (`alias/...`) or an alias ARN.
//!
//! - A key ARN is used as is; a key id becomes the key ARN in the config's region and the
//!   policy's account.
//! - An alias cannot be the resource: AWS KMS documents that "when an alias is the value of a
//!   resource element, the policy applies to the alias resource, not to any KMS key that might
//!   be associated with it" (KMS developer guide, "Use aliases to control access to KMS keys").
//!   So an alias gives the key ARN pattern `arn:<partition>:kms:<region>:<account>:key/*`,
//!   narrowed by the condition `ForAnyValue:StringEquals` on `kms:ResourceAliases`, which
//!   matches only keys that carry that alias (in the alias ARN's region and account, or the
//!   config's).
//! - An AWS managed key (`alias/aws/...`) needs no statement: its key policy already lets every
//!   principal of the account use it through the service.

use std::collections::BTreeMap;

use lockbox_config::{extra_field, is_region_name, keys};
use lockbox_core::{Error, ErrorKind};

use lockbox_aws::Arn;

use crate::arn::{Partition, check_account};
use crate::document::Condition;

/// The field errors name: `extra.kms-key-id`.
fn field() -> String {
    extra_field(keys::KMS_KEY_ID)
}

/// What a statement on the key needs: its resources and, for an alias, the condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KmsTarget {
    pub resources: Vec<String>,
    pub condition: Option<Condition>,
}

/// The resources (and condition) for `key`, or `None` for an AWS managed key.
pub(crate) fn kms_target(
    key: &str,
    partition: Partition,
    region: &str,
    account: &str,
) -> Result<Option<KmsTarget>, Error> {
    let invalid = |rule: String| Error::invalid_config(field(), format!("{key:?}: {rule}"));
    if key.starts_with("arn:") {
        let Some(arn) = Arn::parse(key) else {
            return Err(invalid(
                "not an ARN (arn:partition:kms:region:account:key/ID)".into(),
            ));
        };
        if arn.service != "kms" {
            return Err(invalid(format!(
                "an ARN of service {:?}, not kms",
                arn.service
            )));
        }
        if Partition::parse(arn.partition).is_err() {
            return Err(invalid(format!("unknown partition {:?}", arn.partition)));
        }
        if !is_region_name(arn.region) {
            return Err(invalid(format!(
                "{:?} is not an AWS region name",
                arn.region
            )));
        }
        check_account(arn.account, &field())?;
        if let Some(id) = arn.resource.strip_prefix("key/") {
            check_key_id(id).map_err(|e| invalid(e.message().to_owned()))?;
            return Ok(Some(KmsTarget {
                resources: vec![key.to_owned()],
                condition: None,
            }));
        }
        if let Some(alias) = arn.resource.strip_prefix("alias/") {
            check_alias(alias).map_err(|e| invalid(e.message().to_owned()))?;
            if alias.starts_with("aws/") {
                return Ok(None);
            }
            return Ok(Some(alias_target(
                arn.partition,
                arn.region,
                arn.account,
                arn.resource,
            )));
        }
        return Err(invalid("a KMS ARN must name key/ID or alias/NAME".into()));
    }
    if let Some(alias) = key.strip_prefix("alias/") {
        check_alias(alias).map_err(|e| invalid(e.message().to_owned()))?;
        if alias.starts_with("aws/") {
            return Ok(None);
        }
        return Ok(Some(alias_target(partition.as_str(), region, account, key)));
    }
    check_key_id(key).map_err(|e| invalid(e.message().to_owned()))?;
    Ok(Some(KmsTarget {
        resources: vec![format!("arn:{partition}:kms:{region}:{account}:key/{key}")],
        condition: None,
    }))
}

fn alias_target(partition: &str, region: &str, account: &str, alias: &str) -> KmsTarget {
    KmsTarget {
        resources: vec![format!("arn:{partition}:kms:{region}:{account}:key/*")],
        condition: Some(BTreeMap::from([(
            "ForAnyValue:StringEquals".to_string(),
            BTreeMap::from([("kms:ResourceAliases".to_string(), vec![alias.to_string()])]),
        )])),
    }
}

/// Key ids are UUIDs, or `mrk-` and 32 hex digits for multi-Region keys.
fn check_key_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(key_rule("the key id is empty"));
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        Some(c) => Err(key_rule(format!(
            "character {c:?} cannot be in a key id (key ids are like 1234abcd-12ab-34cd-56ef-1234567890ab)"
        ))),
        None => Ok(()),
    }
}

/// Alias names (after `alias/`): 1-250 characters of `a-z A-Z 0-9 / _ -`.
fn check_alias(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > 250 {
        return Err(key_rule(
            "an alias name has 1 to 250 characters after alias/",
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-')))
    {
        Some(c) => Err(key_rule(format!(
            "character {c:?} cannot be in an alias name (a-z A-Z 0-9 / _ -)"
        ))),
        None => Ok(()),
    }
}

/// A key id or alias that breaks AWS's rule; the message is the rule alone.
fn key_rule(rule: impl Into<String>) -> Error {
    Error::input(ErrorKind::InvalidConfig, rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "123456789012";

    fn target(key: &str) -> Result<Option<KmsTarget>, Error> {
        kms_target(key, Partition::Aws, "eu-west-1", ACCOUNT)
    }

    #[test]
    fn key_ids_become_key_arns_and_key_arns_stay() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let t = target(id).unwrap().unwrap();
        assert_eq!(
            t.resources,
            [format!("arn:aws:kms:eu-west-1:{ACCOUNT}:key/{id}")]
        );
        assert!(t.condition.is_none());
        let other = format!("arn:aws:kms:us-west-2:210987654321:key/{id}");
        let t = target(&other).unwrap().unwrap();
        assert_eq!(t.resources, [other]);
        let mrk = "mrk-1234abcd12ab34cd56ef1234567890ab";
        let t = kms_target(mrk, Partition::AwsCn, "cn-north-1", ACCOUNT)
            .unwrap()
            .unwrap();
        assert_eq!(
            t.resources,
            [format!("arn:aws-cn:kms:cn-north-1:{ACCOUNT}:key/{mrk}")]
        );
    }

    #[test]
    fn aliases_become_a_key_pattern_with_a_resource_aliases_condition() {
        let t = target("alias/node-keys").unwrap().unwrap();
        assert_eq!(
            t.resources,
            [format!("arn:aws:kms:eu-west-1:{ACCOUNT}:key/*")]
        );
        let c = t.condition.unwrap();
        assert_eq!(
            c["ForAnyValue:StringEquals"]["kms:ResourceAliases"],
            ["alias/node-keys"]
        );
        let t = target("arn:aws:kms:us-east-2:210987654321:alias/team/keys")
            .unwrap()
            .unwrap();
        assert_eq!(t.resources, ["arn:aws:kms:us-east-2:210987654321:key/*"]);
        assert_eq!(
            t.condition.unwrap()["ForAnyValue:StringEquals"]["kms:ResourceAliases"],
            ["alias/team/keys"]
        );
    }

    #[test]
    fn aws_managed_keys_need_no_statement() {
        assert_eq!(target("alias/aws/ssm").unwrap(), None);
        assert_eq!(
            target("arn:aws:kms:eu-west-1:123456789012:alias/aws/secretsmanager").unwrap(),
            None
        );
    }

    #[test]
    fn malformed_keys_name_the_field() {
        for (key, rule) in [
            ("", "key id is empty"),
            ("abc def", "character ' '"),
            ("alias/", "1 to 250"),
            ("alias/a b", "character ' '"),
            ("arn:aws:kms", "not an ARN"),
            ("arn:aws:s3:eu-west-1:123456789012:key/x", "service \"s3\""),
            ("arn:aws:kms:Mars:123456789012:key/x", "not an AWS region"),
            ("arn:aws:kms:eu-west-1:12:key/x", "12 digits"),
            (
                "arn:aws:kms:eu-west-1:123456789012:grant/x",
                "key/ID or alias/NAME",
            ),
            (
                "arn:aws-mars:kms:eu-west-1:123456789012:key/x",
                "unknown partition",
            ),
        ] {
            let e = target(key).unwrap_err().to_string();
            assert!(
                e.contains("extra.kms-key-id") && e.contains(rule),
                "{key}: {e}"
            );
        }
    }
}
