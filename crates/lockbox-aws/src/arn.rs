//! ARNs.

use std::fmt;

/// The six fields of an ARN, `arn:partition:service:region:account:resource`; the resource
/// keeps any further `:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `aws`, `aws-cn`, `aws-us-gov`, ...
    pub partition: &'a str,
    /// The service, such as `secretsmanager`.
    pub service: &'a str,
    /// The region; empty for global services.
    pub region: &'a str,
    /// The 12-digit account id; empty for some resources.
    pub account: &'a str,
    /// The rest, such as `secret:app/db-AbCdEf`.
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits `arn`, or `None` when it does not have six fields starting with `arn`.
    pub fn parse(arn: &'a str) -> Option<Self> {
        let mut it = arn.splitn(6, ':');
        if it.next()? != "arn" {
            return None;
        }
        Some(Self {
            partition: it.next()?,
            service: it.next()?,
            region: it.next()?,
            account: it.next()?,
            resource: it.next()?,
        })
    }

    /// True for a string that starts like an ARN (`arn:`), well formed or not.
    pub fn looks_like(id: &str) -> bool {
        id.starts_with("arn:")
    }

    /// The secret name of a Secrets Manager ARN: the resource after `secret:`, which still
    /// carries the 6-character suffix AWS adds when the ARN is a full one.
    pub fn secret_name(&self) -> Option<&'a str> {
        self.resource.strip_prefix("secret:")
    }
}

impl fmt::Display for Arn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_split_into_six_fields_and_join_again() {
        let s = "arn:aws:secretsmanager:us-east-1:123456789012:secret:a/b-AbCdEf";
        let a = Arn::parse(s).unwrap();
        assert_eq!(a.partition, "aws");
        assert_eq!(a.service, "secretsmanager");
        assert_eq!(a.region, "us-east-1");
        assert_eq!(a.account, "123456789012");
        assert_eq!(a.resource, "secret:a/b-AbCdEf");
        assert_eq!(a.secret_name(), Some("a/b-AbCdEf"));
        assert_eq!(a.to_string(), s);
        let role = Arn::parse("arn:aws:iam::123456789012:role/x:y").unwrap();
        assert_eq!((role.region, role.resource), ("", "role/x:y"));
        assert_eq!(role.secret_name(), None);
        assert!(Arn::parse("arn:aws:iam").is_none());
        assert!(Arn::parse("nar:aws:iam::1:role/x").is_none());
        assert!(Arn::looks_like("arn:aws") && !Arn::looks_like("app/db"));
    }
}
