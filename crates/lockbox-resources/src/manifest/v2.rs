//! The manifest as AWS IoT Greengrass v2's secret manager component configures it:
//! `{"cloudSecrets": [{"arn": ..., "labels": [...]}], "periodicRefreshIntervalMin": N}`, entry
//! keys matched case-insensitively as Greengrass does.

use std::collections::HashMap;

use lockbox_config::strict::type_name;
use lockbox_core::{Error, Result};
use serde_json::{Map, Value};

use super::{
    CloudSecret, Manifest, V1_INITIAL_VERSION, V1_RESOURCES, check_secret_id, parse_labels,
};

/// The top-level key that lists the secrets.
pub const CLOUD_SECRETS: &str = "cloudSecrets";

const REFRESH_KEY: &str = "periodicRefreshIntervalMin";

/// Parses a component configuration's top-level object; `source` names the file in errors.
pub(super) fn parse(root: &Map<String, Value>, source: &str) -> Result<Manifest> {
    let mut cloud = None;
    let mut refresh = None;
    for (key, value) in root {
        match key.as_str() {
            CLOUD_SECRETS => cloud = Some(value),
            REFRESH_KEY => refresh = Some(parse_refresh(value, source)?),
            other => {
                return Err(Error::invalid_config(
                    format_args!("{source}: {other}"),
                    format_args!(
                        "unknown key; a manifest has \"{CLOUD_SECRETS}\" (and optionally \
                         \"{REFRESH_KEY}\"), or is a Greengrass v1 resource definition \
                         (\"{V1_RESOURCES}\", or \"{V1_INITIAL_VERSION}\": {{\"{V1_RESOURCES}\": \
                         [...]}})"
                    ),
                ));
            }
        }
    }
    let Some(cloud) = cloud else {
        return Err(Error::invalid_config(
            format_args!("{source}: {CLOUD_SECRETS}"),
            "is required (an array of {\"arn\": ..., \"labels\": [...]})",
        ));
    };
    let Value::Array(entries) = cloud else {
        return Err(Error::invalid_config(
            format_args!("{source}: {CLOUD_SECRETS}"),
            format_args!("must be an array, found {}", type_name(cloud)),
        ));
    };
    let mut cloud_secrets: Vec<CloudSecret> = Vec::with_capacity(entries.len());
    // Secret id -> its entry's index: one hash lookup per entry.
    let mut listed: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("{source}: {CLOUD_SECRETS}[{i}]");
        let secret = parse_entry(entry, &at)?;
        #[cfg(test)]
        tests::LOOKUPS.with(|n| n.set(n.get() + 1));
        if let Some(&j) = listed.get(&secret.arn) {
            return Err(Error::invalid_config(
                format_args!("{at}.arn"),
                format_args!(
                    "{:?} is already listed as {CLOUD_SECRETS}[{j}]; list each secret once \
                     with all its labels",
                    secret.arn
                ),
            ));
        }
        listed.insert(secret.arn.clone(), i);
        cloud_secrets.push(secret);
    }
    Ok(Manifest {
        cloud_secrets,
        periodic_refresh_interval_min: refresh,
        notes: Vec::new(),
    })
}

fn parse_refresh(value: &Value, source: &str) -> Result<u64> {
    match value.as_u64() {
        Some(n) if n > 0 => Ok(n),
        _ => Err(Error::invalid_config(
            format_args!("{source}: {REFRESH_KEY}"),
            format_args!("must be a whole number of minutes above 0, found {value}"),
        )),
    }
}

fn parse_entry(entry: &Value, at: &str) -> Result<CloudSecret> {
    let Value::Object(fields) = entry else {
        return Err(Error::invalid_config(
            at,
            format_args!(
                "must be an object like {{\"arn\": ..., \"labels\": [...]}}, found {}",
                type_name(entry)
            ),
        ));
    };
    let arn = field(fields, "arn");
    let labels = field(fields, "labels");
    for key in fields.keys() {
        if !key.eq_ignore_ascii_case("arn") && !key.eq_ignore_ascii_case("labels") {
            return Err(Error::invalid_config(
                format_args!("{at}.{key}"),
                "unknown key; an entry has \"arn\" and optionally \"labels\"",
            ));
        }
    }
    let arn = match arn {
        None | Some(Value::Null) => {
            return Err(Error::invalid_config(
                format_args!("{at}.arn"),
                "is required (the secret's ARN or name)",
            ));
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(Error::invalid_config(
                format_args!("{at}.arn"),
                format_args!("must be a string, found {}", type_name(other)),
            ));
        }
    };
    check_secret_id(&arn)
        .map_err(|rule| Error::invalid_config(format_args!("{at}.arn"), rule.message()))?;
    let extra = parse_labels(labels, at, "labels")?;
    Ok(CloudSecret::new(arn, extra))
}

/// The value of `name` in `fields`, matched case-insensitively (as Greengrass does); the
/// strict parser has already refused two spellings of one key.
fn field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, parse};
    use super::*;
    use lockbox_core::ErrorKind;
    use std::time::Duration;

    #[test]
    fn greengrass_shape_with_awscurrent_always_first() {
        let m = parse(
            r#"{"cloudSecrets": [
                {"arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", "labels": ["blue", "AWSCURRENT", "blue"]},
                {"arn": "api/token"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(m.cloud_secrets.len(), 2);
        assert_eq!(m.cloud_secrets[0].labels, ["AWSCURRENT", "blue"]);
        assert_eq!(m.cloud_secrets[1].labels, ["AWSCURRENT"]);
        assert_eq!(
            m.secret_ids().collect::<Vec<_>>(),
            [
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
                "api/token"
            ]
        );
        assert_eq!(m.pairs().count(), 3);
        assert_eq!(m.cloud_secrets[0].name_or_arn_name(), "db-AbCdEf");
        assert_eq!(m.cloud_secrets[0].arn_region(), Some("us-east-1"));
        assert_eq!(m.single_arn_region(), None, "a name gives no region");
        assert_eq!(m.periodic_refresh_interval(), None);
    }

    #[test]
    fn keys_match_case_insensitively_like_greengrass() {
        let m = parse(
            r#"{"cloudSecrets": [{"ARN": "a", "Labels": ["x"]}], "periodicRefreshIntervalMin": 5}"#,
        )
        .unwrap();
        assert_eq!(m.cloud_secrets[0], CloudSecret::new("a", ["x"]));
        assert_eq!(
            m.periodic_refresh_interval(),
            Some(Duration::from_secs(300))
        );
        assert!(err(r#"{"cloudSecrets": [{"arn": "a", "ARN": "b"}]}"#).contains("duplicates"));
    }

    thread_local! {
        /// Duplicate-id lookups made by `Manifest::parse` on this thread.
        pub(super) static LOOKUPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn keys_given_twice_in_any_case_are_refused_naming_them() {
        for (text, want) in [
            (
                r#"{"cloudSecrets": [{"arn": "a"}], "cloudSecrets": []}"#,
                "m.json: cloudSecrets: duplicates \"cloudSecrets\"",
            ),
            (
                r#"{"cloudSecrets": [], "CLOUDSECRETS": [{"arn": "a"}]}"#,
                "m.json: CLOUDSECRETS: duplicates \"cloudSecrets\"",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a", "labels": [], "Labels": ["x"]}]}"#,
                "m.json: cloudSecrets[0].Labels: duplicates \"labels\"",
            ),
            (
                r#"{"periodicRefreshIntervalMin": 1, "periodicrefreshintervalmin": 2, "cloudSecrets": []}"#,
                "m.json: periodicrefreshintervalmin: duplicates",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig);
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn duplicate_ids_are_found_in_linear_time() {
        let n = 50_000;
        let items: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"arn": "secret-{i}", "labels": ["blue"]}}"#))
            .collect();
        let text = format!(r#"{{"cloudSecrets": [{}]}}"#, items.join(","));
        LOOKUPS.with(|c| c.set(0));
        let m = parse(&text).unwrap();
        assert_eq!(m.cloud_secrets.len(), n);
        // One hash lookup per entry (a pairwise check made n * (n - 1) / 2 comparisons).
        assert_eq!(LOOKUPS.with(std::cell::Cell::get), n);
        let dup = format!(
            r#"{{"cloudSecrets": [{}, {{"arn": "secret-7"}}]}}"#,
            items.join(",")
        );
        let e = parse(&dup).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "cloudSecrets[{n}].arn: \"secret-7\" is already listed as cloudSecrets[7]"
            )),
            "{e}"
        );
        // A huge label list stops at the first label over the limit.
        let labels: Vec<String> = (0..100_000).map(|i| format!("\"l{i}\"")).collect();
        let text = format!(
            r#"{{"cloudSecrets": [{{"arn": "a", "labels": [{}]}}]}}"#,
            labels.join(",")
        );
        assert!(err(&text).contains("21 distinct labels"), "{}", err(&text));
    }

    #[test]
    fn empty_list_and_null_labels_are_fine() {
        assert!(
            parse(r#"{"cloudSecrets": []}"#)
                .unwrap()
                .cloud_secrets
                .is_empty()
        );
        let m = parse(r#"{"cloudSecrets": [{"arn": "a", "labels": null}]}"#).unwrap();
        assert_eq!(m.cloud_secrets[0].labels, ["AWSCURRENT"]);
    }

    #[test]
    fn errors_name_file_entry_and_field() {
        let cases = [
            ("[]", "m.json: must be a JSON object"),
            ("{", "m.json: not valid JSON"),
            ("{}", "m.json: cloudSecrets: is required"),
            (
                r#"{"cloudSecrets": {}}"#,
                "m.json: cloudSecrets: must be an array, found an object",
            ),
            (r#"{"cloudSecret": []}"#, "m.json: cloudSecret: unknown key"),
            (
                r#"{"cloudSecrets": [3]}"#,
                "m.json: cloudSecrets[0]: must be an object",
            ),
            (
                r#"{"cloudSecrets": [{}]}"#,
                "m.json: cloudSecrets[0].arn: is required",
            ),
            (
                r#"{"cloudSecrets": [{"arn": 1}]}"#,
                "cloudSecrets[0].arn: must be a string, found a number",
            ),
            (
                r#"{"cloudSecrets": [{"arn": ""}]}"#,
                "cloudSecrets[0].arn: must not be empty",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a b"}]}"#,
                "cloudSecrets[0].arn: secret name \"a b\" has ' '",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a"}, {"arn": "arn:aws:ssm:us-east-1:1:parameter/x"}]}"#,
                "cloudSecrets[1].arn: \"arn:aws:ssm:us-east-1:1:parameter/x\" is an ARN of service \"ssm\"",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "arn:aws:secretsmanager:us-east-1:1:key:x"}]}"#,
                "is not a secret ARN",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "arn:aws:secretsmanager"}]}"#,
                "is not a Secrets Manager ARN",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a", "labels": "x"}]}"#,
                "cloudSecrets[0].labels: must be an array of strings, found a string",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a", "labels": ["x", 2]}]}"#,
                "cloudSecrets[0].labels[1]: must be a string, found a number",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a", "labels": [""]}]}"#,
                "cloudSecrets[0].labels[0]: a staging label must not be empty",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a", "labels": ["a b"]}]}"#,
                "has whitespace",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a", "label": ["x"]}]}"#,
                "cloudSecrets[0].label: unknown key",
            ),
            (
                r#"{"cloudSecrets": [{"arn": "a"}, {"arn": "a"}]}"#,
                "cloudSecrets[1].arn: \"a\" is already listed as cloudSecrets[0]",
            ),
            (
                r#"{"cloudSecrets": [], "periodicRefreshIntervalMin": 0}"#,
                "periodicRefreshIntervalMin: must be a whole number",
            ),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(got.contains(want), "{text}: {got:?} lacks {want:?}");
            assert!(got.contains("m.json"), "{got}");
        }
        let many: Vec<String> = (0..20).map(|i| format!("\"l{i}\"")).collect();
        let text = format!(
            r#"{{"cloudSecrets": [{{"arn": "a", "labels": [{}]}}]}}"#,
            many.join(",")
        );
        assert!(err(&text).contains("21 distinct labels"), "{}", err(&text));
    }
}
