//! The one record of a secret version.

use lockbox_core::SecretValue;

/// One version of a secret: what Secrets Manager returned for it, what a sync stored, what
/// the sealed store gives back. Debug redacts the value (as [`SecretValue`]'s own Debug does).
#[derive(Clone, Debug)]
pub struct SecretVersion {
    /// The secret's full ARN (with AWS's random 6-character suffix).
    pub arn: String,
    /// The secret's name.
    pub name: String,
    /// The version's id (a UUID).
    pub version_id: String,
    /// Staging labels attached to this version, such as `AWSCURRENT`.
    pub version_stages: Vec<String>,
    /// When the version was created, in whole seconds since the Unix epoch.
    pub created_date: Option<i64>,
    /// The fraction of a second of `created_date`, in nanoseconds (0 to 999,999,999; 0 when
    /// unknown, as in stores synced before it was kept).
    pub created_date_nanos: u32,
    /// The value: SecretString's UTF-8 bytes, or SecretBinary's bytes.
    pub value: SecretValue,
    /// True when the value came from SecretBinary.
    pub binary: bool,
}

impl SecretVersion {
    /// The creation date in seconds since the Unix epoch with its fraction, as the AWS
    /// Secrets Manager Agent prints `CreatedDate`.
    pub fn created_epoch_seconds(&self) -> Option<f64> {
        self.created_date
            .map(|secs| secs as f64 + f64::from(self.created_date_nanos) / 1e9)
    }
}

/// What `SecretsManagerClient::fetch_many` read (or any source of many AWSCURRENT versions).
#[derive(Clone, Debug)]
pub struct FetchedMany {
    /// One result per id asked for, in the order given.
    pub results: Vec<lockbox_core::Result<SecretVersion>>,
    /// Requests sent: BatchGetSecretValue pages and GetSecretValue calls.
    pub requests: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_value() {
        let v = SecretVersion {
            arn: "arn:aws:secretsmanager:us-east-1:1:secret:a-AbCdEf".into(),
            name: "a".into(),
            version_id: "v1".into(),
            version_stages: vec!["AWSCURRENT".into()],
            created_date: Some(1),
            created_date_nanos: 0,
            value: SecretValue::from("hunter2-very-secret"),
            binary: false,
        };
        let d = format!("{v:?} {v:#?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("REDACTED") && d.contains("AWSCURRENT"), "{d}");
    }

    #[test]
    fn the_creation_date_keeps_its_fraction() {
        let mut v = SecretVersion {
            arn: String::new(),
            name: "a".into(),
            version_id: "v1".into(),
            version_stages: vec![],
            created_date: Some(1_523_477_145),
            created_date_nanos: 713_000_000,
            value: SecretValue::from("x"),
            binary: false,
        };
        assert_eq!(
            v.created_epoch_seconds().map(|s| s.to_string()).as_deref(),
            Some("1523477145.713")
        );
        v.created_date_nanos = 0;
        assert_eq!(v.created_epoch_seconds(), Some(1_523_477_145.0));
        v.created_date = None;
        assert_eq!(v.created_epoch_seconds(), None);
    }
}
