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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule_says_what_is_wrong_with_kind_invalid_name() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
        for ok in ["db", "a/b_c+d=e.f@g-h", arn] {
            assert!(check_secret_id(ok).is_ok(), "{ok}");
        }
        for (id, want) in [
            ("", "must not be empty"),
            ("a b", "secret name \"a b\" has ' '"),
            (
                "arn:aws:ssm:us-east-1:1:parameter/x",
                "is an ARN of service \"ssm\"",
            ),
            (
                "arn:aws:secretsmanager::1:secret:x",
                "partition, region and account must be set",
            ),
            (
                "arn:aws:secretsmanager:us-east-1:1:key:x",
                "is not a secret ARN",
            ),
        ] {
            let e = check_secret_id(id).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidName);
            assert!(e.message().contains(want), "{id}: {e}");
        }
        assert!(check_secret_id(&"a".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(check_secret_id(&"a".repeat(MAX_NAME_LEN + 1)).is_err());

        assert!(check_label("blue").is_ok());
        assert_eq!(
            check_label("").unwrap_err().message(),
            "a staging label must not be empty"
        );
        assert!(
            check_label("a\tb")
                .unwrap_err()
                .message()
                .contains("whitespace")
        );
        assert!(check_label(&"l".repeat(MAX_LABEL_LEN + 1)).is_err());

        assert!(check_resource_id("my-resource:1_x").is_ok());
        assert_eq!(
            check_resource_id("").unwrap_err().message(),
            "must be 1-128 characters"
        );
        assert_eq!(
            check_resource_id("a.b").unwrap_err().message(),
            "\"a.b\" has '.'; resource ids and names use only letters, digits and :_-"
        );
    }
}
