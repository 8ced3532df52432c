//! Partitions, account ids and the ARNs built from them.

use std::fmt;
use std::str::FromStr;

use lockbox_core::Error;

/// An AWS partition: the second field of every ARN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Partition {
    /// The commercial regions (`aws`).
    Aws,
    /// The China regions (`aws-cn`).
    AwsCn,
    /// AWS GovCloud (US) (`aws-us-gov`).
    AwsUsGov,
}

impl Partition {
    /// Every partition lockbox writes policies for, in the order help texts list them.
    pub const ALL: [Partition; 3] = [Self::Aws, Self::AwsCn, Self::AwsUsGov];

    /// The ARN spelling: `aws`, `aws-cn` or `aws-us-gov`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::AwsCn => "aws-cn",
            Self::AwsUsGov => "aws-us-gov",
        }
    }

    /// Parses the ARN spelling, or says which ones exist.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ALL.iter().map(|p| p.as_str()).collect();
                Error::invalid_config(
                    "partition",
                    format!(
                        "unknown partition {s:?} (expected one of: {})",
                        known.join(", ")
                    ),
                )
            })
    }

    /// The partition a region (already checked to be a region name) belongs to: `cn-*` is
    /// `aws-cn`, `us-gov-*` is `aws-us-gov`, the isolated (`*-iso*-*`) regions are refused,
    /// everything else is `aws`.
    pub fn of_region(region: &str, field: &str) -> Result<Self, Error> {
        let second = region.split('-').nth(1).unwrap_or("");
        if region.starts_with("cn-") {
            Ok(Self::AwsCn)
        } else if region.starts_with("us-gov-") {
            Ok(Self::AwsUsGov)
        } else if second.starts_with("iso") {
            Err(Error::invalid_config(
                field,
                format!(
                    "{region:?} is in an isolated partition, which lockbox writes no policies for"
                ),
            ))
        } else {
            Ok(Self::Aws)
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Partition {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// Checks an AWS account id: exactly 12 ASCII digits. The error names `field`.
pub fn check_account(account: &str, field: &str) -> Result<(), Error> {
    if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::invalid_config(
            field,
            format!("{account:?} is not an AWS account id (12 digits)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse_and_follow_regions() {
        for p in Partition::ALL {
            assert_eq!(p.as_str().parse::<Partition>().unwrap(), p);
        }
        let e = Partition::parse("aws-mars").unwrap_err().to_string();
        assert!(
            e.contains("partition: unknown partition \"aws-mars\""),
            "{e}"
        );
        assert_eq!(
            Partition::of_region("us-east-1", "r").unwrap(),
            Partition::Aws
        );
        assert_eq!(
            Partition::of_region("cn-north-1", "r").unwrap(),
            Partition::AwsCn
        );
        assert_eq!(
            Partition::of_region("us-gov-west-1", "r").unwrap(),
            Partition::AwsUsGov
        );
        let e = Partition::of_region("us-iso-east-1", "region")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("region: \"us-iso-east-1\" is in an isolated partition"),
            "{e}"
        );
    }

    #[test]
    fn accounts_are_twelve_digits() {
        assert!(check_account("123456789012", "account").is_ok());
        for bad in [
            "",
            "12345678901",
            "1234567890123",
            "12345678901a",
            "１２３４５６７８９０１２",
        ] {
            let e = check_account(bad, "account").unwrap_err().to_string();
            assert!(
                e.contains("account: ") && e.contains("12 digits"),
                "{bad}: {e}"
            );
        }
    }
}
