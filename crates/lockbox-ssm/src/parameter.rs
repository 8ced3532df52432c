//! The full record of one parameter as SSM answers it.

use std::fmt;

use lockbox_aws::DateTime;
use lockbox_core::{Error, ErrorKind, SecretValue};

use crate::backend::BACKEND;

/// A parameter's type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParameterType {
    /// `String`.
    String,
    /// `StringList` (comma-separated values).
    StringList,
    /// `SecureString` (encrypted with KMS).
    SecureString,
    /// A type this version of lockbox does not know, as AWS spelled it.
    Other(String),
}

impl ParameterType {
    /// The type as AWS spells it (`String`, `StringList`, `SecureString`).
    pub fn as_str(&self) -> &str {
        match self {
            Self::String => "String",
            Self::StringList => "StringList",
            Self::SecureString => "SecureString",
            Self::Other(s) => s,
        }
    }

    fn from_sdk(t: &aws_sdk_ssm::types::ParameterType) -> Self {
        use aws_sdk_ssm::types::ParameterType as T;
        match t {
            T::String => Self::String,
            T::StringList => Self::StringList,
            T::SecureString => Self::SecureString,
            other => Self::Other(other.as_str().to_owned()),
        }
    }
}

impl fmt::Display for ParameterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parameter as GetParameter, GetParameters or GetParametersByPath answer it: every field
/// AWS gives, the value as a [`SecretValue`]. Debug redacts the value (as [`SecretValue`]'s own
/// Debug does).
#[derive(Clone, Debug)]
pub struct Parameter {
    /// The parameter's name (without any `:version` or `:label` selector).
    pub name: String,
    /// The parameter's ARN, when AWS gave one.
    pub arn: Option<String>,
    /// Its type, when AWS gave one.
    pub kind: Option<ParameterType>,
    /// Its data type (`text`, `aws:ec2:image`, ...), when AWS gave one.
    pub data_type: Option<String>,
    /// The version read.
    pub version: i64,
    /// The `:version` or `:label` selector the read named, as AWS echoes it (`:3`, `:prod`).
    pub selector: Option<String>,
    /// For a parameter that references another service (`/aws/reference/...`), what AWS
    /// returned from it.
    pub source_result: Option<String>,
    /// When the version was last modified, with its fraction of a second.
    pub last_modified_date: Option<DateTime>,
    /// The value: decrypted when the read asked for it; a SecureString read without
    /// decryption holds the ciphertext AWS returns.
    pub value: SecretValue,
}

impl Parameter {
    /// The record of an SDK parameter; `Corrupt` when AWS sent no value.
    pub(crate) fn from_sdk(p: aws_sdk_ssm::types::Parameter, action: &str) -> Result<Self, Error> {
        let name = p.name.unwrap_or_default();
        let Some(value) = p.value else {
            return Err(Error::new(
                ErrorKind::Corrupt,
                BACKEND,
                format!("{action} on {name} returned no value"),
            )
            .with_secret(&name));
        };
        Ok(Self {
            arn: p.arn,
            kind: p.r#type.as_ref().map(ParameterType::from_sdk),
            data_type: p.data_type,
            version: p.version,
            selector: p.selector,
            source_result: p.source_result,
            last_modified_date: p.last_modified_date,
            value: SecretValue::from_string(value),
            name,
        })
    }

    /// Whether this record answers the `asked` name: by name or ARN, with the selector AWS
    /// echoes (`name:3` is answered by `name` with selector `:3`), or without one.
    pub(crate) fn answers(&self, asked: &str) -> bool {
        let by = |id: &str| match asked.strip_prefix(id) {
            Some("") => self.selector.is_none(),
            Some(rest) => self.selector.as_deref() == Some(rest),
            None => false,
        };
        by(&self.name) || self.arn.as_deref().is_some_and(by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(selector: Option<&str>) -> Parameter {
        Parameter::from_sdk(
            aws_sdk_ssm::types::Parameter::builder()
                .name("/app/db")
                .arn("arn:aws:ssm:us-east-1:1:parameter/app/db")
                .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                .data_type("text")
                .version(3)
                .set_selector(selector.map(str::to_owned))
                .last_modified_date(DateTime::from_secs_and_nanos(1_700_000_000, 250_000_000))
                .value("hunter2-very-secret")
                .build(),
            "ssm:GetParameter",
        )
        .unwrap()
    }

    #[test]
    fn every_field_is_kept_and_debug_redacts_the_value() {
        let p = record(Some(":3"));
        assert_eq!(p.kind, Some(ParameterType::SecureString));
        assert_eq!(p.kind.as_ref().unwrap().as_str(), "SecureString");
        assert_eq!(p.version, 3);
        assert_eq!(p.data_type.as_deref(), Some("text"));
        let d = p.last_modified_date.unwrap();
        assert_eq!((d.secs(), d.subsec_nanos()), (1_700_000_000, 250_000_000));
        assert_eq!(p.value.expose_str(), Some("hunter2-very-secret"));
        let debug = format!("{p:?} {p:#?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("REDACTED") && debug.contains("/app/db"),
            "{debug}"
        );
    }

    #[test]
    fn a_record_answers_its_name_with_its_selector() {
        let plain = record(None);
        assert!(plain.answers("/app/db"));
        assert!(plain.answers("arn:aws:ssm:us-east-1:1:parameter/app/db"));
        assert!(!plain.answers("/app/db:3"));
        assert!(!plain.answers("/app/d"));
        let selected = record(Some(":3"));
        assert!(selected.answers("/app/db:3"));
        assert!(!selected.answers("/app/db"));
        assert!(!selected.answers("/app/db:4"));
    }

    #[test]
    fn no_value_is_corrupt() {
        let e = Parameter::from_sdk(
            aws_sdk_ssm::types::Parameter::builder().name("/a").build(),
            "ssm:GetParameter",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
    }
}
