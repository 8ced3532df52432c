//! The naming rules a manifest's ids follow: secret ids (names or ARNs), staging labels and
//! Greengrass v1 resource ids. Each check's error is the rule alone (kind `InvalidName`), so a
//! caller can place it under the field that held the id.

use lockbox_aws::Arn;
use lockbox_core::{Error, ErrorKind, Result};

/// Longest staging label Secrets Manager accepts.
pub const MAX_LABEL_LEN: usize = 256;

/// Longest secret name Secrets Manager accepts.
pub const MAX_NAME_LEN: usize = 512;

/// Longest secret id (name or ARN) accepted in a manifest.
pub const MAX_ID_LEN: usize = 2048;

/// Longest v1 resource `Id` or `Name` (Greengrass's limit).
pub const MAX_RESOURCE_ID_LEN: usize = 128;

/// An id or name that breaks a naming rule: the message is the rule alone, so that callers can
/// place it under the field that held the id.
pub(crate) fn invalid_rule(rule: impl Into<String>) -> Error {
    Error::input(ErrorKind::InvalidName, rule)
}

/// Checks a v1 resource `Id` or `Name`: 1-128 characters of `[a-zA-Z0-9:_-]` (Greengrass's
/// rule).
pub fn check_resource_id(value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_RESOURCE_ID_LEN {
        return Err(invalid_rule(format!(
            "must be 1-{MAX_RESOURCE_ID_LEN} characters"
        )));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":_-".contains(*c)))
    {
        return Err(invalid_rule(format!(
            "{value:?} has {c:?}; resource ids and names use only letters, digits and :_-"
        )));
    }
    Ok(())
}

/// Checks a secret id: a name (1-512 of `A-Za-z0-9/_+=.@-`) or a Secrets Manager ARN
/// (`arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME`).
pub fn check_secret_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(invalid_rule("must not be empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(invalid_rule(format!(
            "is {} characters; at most {MAX_ID_LEN}",
            id.len()
        )));
    }
    let name = if Arn::looks_like(id) {
        let Some(arn) = Arn::parse(id) else {
            return Err(invalid_rule(format!(
                "{id:?} is not a Secrets Manager ARN \
                 (arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME)"
            )));
        };
        if arn.partition.is_empty() || arn.region.is_empty() || arn.account.is_empty() {
            return Err(invalid_rule(format!(
                "{id:?} is not a Secrets Manager ARN: partition, region and account must be set"
            )));
        }
        if arn.service != "secretsmanager" {
            return Err(invalid_rule(format!(
                "{id:?} is an ARN of service {:?}, not secretsmanager",
                arn.service
            )));
        }
        match arn.secret_name() {
            Some(name) => name,
            None => {
                return Err(invalid_rule(format!(
                    "{id:?} is not a secret ARN (the resource must start with \"secret:\")"
                )));
            }
        }
    } else {
        id
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(invalid_rule(format!(
            "secret name {name:?} must be 1-{MAX_NAME_LEN} characters"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
    {
        return Err(invalid_rule(format!(
            "secret name {name:?} has {c:?}; names use only letters, digits and /_+=.@-"
        )));
    }
    Ok(())
}

/// Checks a staging label: 1-256 characters, no whitespace or control characters.
pub fn check_label(label: &str) -> Result<()> {
    if label.is_empty() {
        return Err(invalid_rule("a staging label must not be empty"));
    }
    if label.chars().count() > MAX_LABEL_LEN {
        return Err(invalid_rule(format!(
            "staging label is {} characters; at most {MAX_LABEL_LEN}",
            label.chars().count()
        )));
    }
    if label.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid_rule(format!(
            "staging label {label:?} has whitespace or control characters"
        )));
    }
    Ok(())
}
