//! The manifest as a Greengrass v1 resource definition: `{"Resources": [...]}` or
//! `{"InitialVersion": {"Resources": [...]}}`; secret resources become entries, other resource
//! types are skipped with a note. Keys are matched exactly, as the Greengrass API does.

use std::collections::HashMap;

use lockbox_config::strict::{only_keys, type_name};
use lockbox_core::{Error, Result};
use serde_json::{Map, Value};

use super::{CloudSecret, Manifest, Resource, check_resource_id, check_secret_id, parse_labels};

/// The top-level key of a Greengrass v1 resource definition version.
pub const V1_RESOURCES: &str = "Resources";

/// The wrapper `aws greengrass create-resource-definition --initial-version` takes.
pub const V1_INITIAL_VERSION: &str = "InitialVersion";

/// The v1 resource data container that holds a Secrets Manager secret.
pub const V1_SECRET_DATA: &str = "SecretsManagerSecretResourceData";

/// The other v1 resource data containers: accepted and skipped with a note.
pub const V1_SKIPPED_DATA: [&str; 4] = [
    "LocalVolumeResourceData",
    "LocalDeviceResourceData",
    "S3MachineLearningModelResourceData",
    "SageMakerMachineLearningModelResourceData",
];

/// A Greengrass v1 resource definition: `{"Resources": [...]}` (a definition version, as
/// `get-resource-definition-version` shows under `Definition`) or `{"InitialVersion":
/// {"Resources": [...]}}` (as `create-resource-definition --initial-version` takes it). Keys
/// are matched exactly, as the Greengrass API does.
pub(super) fn parse(root: &Map<String, Value>, source: &str) -> Result<Manifest> {
    let (resources, path) = if let Some(v) = root.get(V1_INITIAL_VERSION) {
        only_keys(root, &[V1_INITIAL_VERSION], &format!("{source}: "))?;
        let Value::Object(inner) = v else {
            return Err(Error::invalid_config(
                format_args!("{source}: {V1_INITIAL_VERSION}"),
                format_args!(
                    "must be an object like {{\"{V1_RESOURCES}\": [...]}}, found {}",
                    type_name(v)
                ),
            ));
        };
        let at = format!("{V1_INITIAL_VERSION}.");
        only_keys(inner, &[V1_RESOURCES], &format!("{source}: {at}"))?;
        let Some(r) = inner.get(V1_RESOURCES) else {
            return Err(Error::invalid_config(
                format_args!("{source}: {at}{V1_RESOURCES}"),
                "is required (an array of resources)",
            ));
        };
        (r, format!("{at}{V1_RESOURCES}"))
    } else {
        only_keys(root, &[V1_RESOURCES], &format!("{source}: "))?;
        (&root[V1_RESOURCES], V1_RESOURCES.to_owned())
    };
    let Value::Array(entries) = resources else {
        return Err(Error::invalid_config(
            format_args!("{source}: {path}"),
            format_args!("must be an array, found {}", type_name(resources)),
        ));
    };
    let mut manifest = Manifest::default();
    // Secret ARN / resource Id / resource Name -> the entry that has it.
    let mut arns: HashMap<String, String> = HashMap::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let here = format!("{path}[{i}]");
        let at = format!("{source}: {here}");
        let Value::Object(fields) = entry else {
            return Err(Error::invalid_config(
                &at,
                format_args!(
                    "must be an object like {{\"Id\": ..., \"Name\": ..., \
                     \"ResourceDataContainer\": {{...}}}}, found {}",
                    type_name(entry)
                ),
            ));
        };
        only_keys(
            fields,
            &["Id", "Name", "ResourceDataContainer"],
            &format!("{source}: {here}."),
        )?;
        let id = resource_word(fields, "Id", &at)?;
        let name = resource_word(fields, "Name", &at)?;
        if let Some(j) = ids.insert(id.clone(), i) {
            return Err(Error::invalid_config(
                format_args!("{at}.Id"),
                format_args!("{id:?} is already the Id of {path}[{j}]; resource ids are unique"),
            ));
        }
        if let Some(j) = names.insert(name.clone(), i) {
            return Err(Error::invalid_config(
                format_args!("{at}.Name"),
                format_args!(
                    "{name:?} is already the Name of {path}[{j}]; resource names are unique"
                ),
            ));
        }
        let Some(container) = fields.get("ResourceDataContainer") else {
            return Err(Error::invalid_config(
                format_args!("{at}.ResourceDataContainer"),
                format_args!("is required (an object with \"{V1_SECRET_DATA}\")"),
            ));
        };
        let Value::Object(container) = container else {
            return Err(Error::invalid_config(
                format_args!("{at}.ResourceDataContainer"),
                format_args!("must be an object, found {}", type_name(container)),
            ));
        };
        let mut kinds = container.iter();
        let (Some((kind, data)), None) = (kinds.next(), kinds.next()) else {
            return Err(Error::invalid_config(
                format_args!("{at}.ResourceDataContainer"),
                format_args!(
                    "must hold exactly one resource type, found {}",
                    container.len()
                ),
            ));
        };
        let at_data = format!("{at}.ResourceDataContainer.{kind}");
        if V1_SKIPPED_DATA.contains(&kind.as_str()) {
            manifest.notes.push(format!(
                "{source}: {here} (Id {id:?}) is a {kind}, not a secret; skipped (lockbox syncs \
                 only {V1_SECRET_DATA})"
            ));
            continue;
        }
        if kind != V1_SECRET_DATA {
            return Err(Error::invalid_config(
                &at_data,
                format_args!(
                    "unknown resource type; one of {V1_SECRET_DATA}, {}",
                    V1_SKIPPED_DATA.join(", ")
                ),
            ));
        }
        let Value::Object(data) = data else {
            return Err(Error::invalid_config(
                &at_data,
                format_args!(
                    "must be an object like {{\"ARN\": ..., \
                     \"AdditionalStagingLabelsToDownload\": [...]}}, found {}",
                    type_name(data)
                ),
            ));
        };
        only_keys(
            data,
            &["ARN", "AdditionalStagingLabelsToDownload"],
            &format!("{source}: {here}.ResourceDataContainer.{kind}."),
        )?;
        let arn = match data.get("ARN") {
            None | Some(Value::Null) => {
                return Err(Error::invalid_config(
                    format_args!("{at_data}.ARN"),
                    "is required (the secret's ARN)",
                ));
            }
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(Error::invalid_config(
                    format_args!("{at_data}.ARN"),
                    format_args!("must be a string, found {}", type_name(other)),
                ));
            }
        };
        check_secret_id(&arn)
            .map_err(|rule| Error::invalid_config(format_args!("{at_data}.ARN"), rule.message()))?;
        let entry_name = format!("{here} (Id {id:?})");
        if let Some(first) = arns.get(&arn) {
            return Err(Error::invalid_config(
                format_args!("{at_data}.ARN"),
                format_args!(
                    "{arn:?} is already the secret of {first}; {entry_name} references it \
                     again, and a secret may be referenced by one resource only (as in a \
                     Greengrass group): keep one resource with all the labels"
                ),
            ));
        }
        arns.insert(arn.clone(), entry_name);
        let extra = parse_labels(
            data.get("AdditionalStagingLabelsToDownload"),
            &at_data,
            "AdditionalStagingLabelsToDownload",
        )?;
        let mut secret = CloudSecret::new(arn, extra);
        secret.resource = Some(Resource { id, name, at: here });
        manifest.cloud_secrets.push(secret);
    }
    Ok(manifest)
}

/// A v1 resource `Id` or `Name`: 1-128 characters of `[a-zA-Z0-9:_-]`.
fn resource_word(fields: &Map<String, Value>, key: &str, at: &str) -> Result<String> {
    let value = match fields.get(key) {
        None | Some(Value::Null) => {
            return Err(Error::invalid_config(
                format_args!("{at}.{key}"),
                "is required",
            ));
        }
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(Error::invalid_config(
                format_args!("{at}.{key}"),
                format_args!("must be a string, found {}", type_name(other)),
            ));
        }
    };
    check_resource_id(value)
        .map_err(|rule| Error::invalid_config(format_args!("{at}.{key}"), rule.message()))?;
    Ok(value.clone())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{err, parse};
    use super::*;
    use lockbox_core::ErrorKind;

    /// The example of `aws greengrass create-resource-definition` in Greengrass's
    /// documentation, as is.
    pub(crate) const GREENGRASS_DOC_DEFINITION: &str = r#"{
    "Resources": [
        {
            "Id": "my-resource-id",
            "Name": "MySecretResource",
            "ResourceDataContainer": {
                "SecretsManagerSecretResourceData": {
                    "ARN": "arn:aws:secretsmanager:us-west-2:123456789012:secret:greengrass-SomeSecret-KUj89s",
                    "AdditionalStagingLabelsToDownload": [
                        "Label1",
                        "Label2"
                    ]
                }
            }
        }
    ]
}"#;

    #[test]
    fn greengrass_v1_definition_as_documented() {
        let m = parse(GREENGRASS_DOC_DEFINITION).unwrap();
        assert_eq!(m.cloud_secrets.len(), 1);
        let s = &m.cloud_secrets[0];
        assert_eq!(
            s.arn,
            "arn:aws:secretsmanager:us-west-2:123456789012:secret:greengrass-SomeSecret-KUj89s"
        );
        assert_eq!(s.labels, ["AWSCURRENT", "Label1", "Label2"]);
        assert_eq!(
            s.resource,
            Some(Resource {
                id: "my-resource-id".into(),
                name: "MySecretResource".into(),
                at: "Resources[0]".into()
            })
        );
        assert_eq!(s.describe(0), "Resources[0] (Id \"my-resource-id\")");
        assert!(m.notes().is_empty());
        assert_eq!(m.periodic_refresh_interval(), None);
        assert_eq!(m.resource("my-resource-id"), Some(s));
        assert_eq!(m.single_arn_region(), Some("us-west-2"));
        // The --initial-version wrapper gives the same manifest, paths aside.
        let wrapped = format!(r#"{{"InitialVersion": {GREENGRASS_DOC_DEFINITION}}}"#);
        let w = parse(&wrapped).unwrap();
        assert_eq!(w.cloud_secrets[0].arn, s.arn);
        assert_eq!(w.cloud_secrets[0].labels, s.labels);
        assert_eq!(
            w.cloud_secrets[0].resource.as_ref().unwrap().at,
            "InitialVersion.Resources[0]"
        );
    }

    fn resource(id: &str, container: &str) -> String {
        format!(r#"{{"Id": "{id}", "Name": "N-{id}", "ResourceDataContainer": {container}}}"#)
    }

    fn secret_data(arn: &str) -> String {
        format!(r#"{{"SecretsManagerSecretResourceData": {{"ARN": "{arn}"}}}}"#)
    }

    #[test]
    fn other_v1_resource_types_are_skipped_with_a_note() {
        let text = format!(
            r#"{{"Resources": [{}, {}, {}, {}, {}]}}"#,
            resource(
                "data-volume",
                r#"{"LocalVolumeResourceData": {"SourcePath": "/src/LRAtest", "DestinationPath": "/dest/LRAtest", "GroupOwnerSetting": {"AutoAddGroupOwner": true}}}"#
            ),
            resource(
                "db",
                &secret_data("arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf")
            ),
            resource(
                "tty",
                r#"{"LocalDeviceResourceData": {"SourcePath": "/dev/tty0"}}"#
            ),
            resource(
                "model",
                r#"{"S3MachineLearningModelResourceData": {"S3Uri": "s3://b/m.zip", "DestinationPath": "/m"}}"#
            ),
            resource(
                "sm",
                r#"{"SageMakerMachineLearningModelResourceData": {"SageMakerJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/x", "DestinationPath": "/s"}}"#
            ),
        );
        let m = parse(&text).unwrap();
        assert_eq!(m.cloud_secrets.len(), 1);
        assert_eq!(m.cloud_secrets[0].resource_id(), Some("db"));
        assert_eq!(m.cloud_secrets[0].describe(0), "Resources[1] (Id \"db\")");
        assert_eq!(m.notes().len(), 4, "{:?}", m.notes());
        assert!(
            m.notes()[0].contains(
                "m.json: Resources[0] (Id \"data-volume\") is a LocalVolumeResourceData, not a secret; skipped"
            ),
            "{:?}",
            m.notes()
        );
        assert!(m.notes()[3].contains("SageMakerMachineLearningModelResourceData"));
    }

    #[test]
    fn a_secret_referenced_twice_is_refused_naming_both_resources() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf";
        let text = format!(
            r#"{{"Resources": [{}, {}, {}]}}"#,
            resource("first", &secret_data(arn)),
            resource("other", &secret_data("api")),
            resource("second", &secret_data(arn)),
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        let e = e.to_string();
        assert!(
            e.contains("Resources[2].ResourceDataContainer.SecretsManagerSecretResourceData.ARN"),
            "{e}"
        );
        assert!(e.contains("Resources[0] (Id \"first\")"), "{e}");
        assert!(e.contains("Resources[2] (Id \"second\")"), "{e}");
    }

    #[test]
    #[allow(clippy::useless_format)]
    fn v1_errors_name_file_resource_and_field() {
        let ok = secret_data("db");
        let cases = [
            (format!(r#"{{"Resources": {{}}}}"#), "m.json: Resources: must be an array".to_owned()),
            (format!(r#"{{"Resources": [], "cloudSecrets": []}}"#), "m.json: cloudSecrets: unknown key; expected \"Resources\"".to_owned()),
            (format!(r#"{{"InitialVersion": {{"Resources": [], "X": 1}}}}"#), "m.json: InitialVersion.X: unknown key".to_owned()),
            (format!(r#"{{"InitialVersion": []}}"#), "m.json: InitialVersion: must be an object".to_owned()),
            (format!(r#"{{"InitialVersion": {{}}}}"#), "m.json: InitialVersion.Resources: is required".to_owned()),
            (format!(r#"{{"Resources": [3]}}"#), "m.json: Resources[0]: must be an object".to_owned()),
            (format!(r#"{{"Resources": [{{"id": "a", "Name": "b", "ResourceDataContainer": {ok}}}]}}"#), "m.json: Resources[0].id: unknown key; did you mean \"Id\"?".to_owned()),
            (format!(r#"{{"Resources": [{{"Name": "b", "ResourceDataContainer": {ok}}}]}}"#), "m.json: Resources[0].Id: is required".to_owned()),
            (format!(r#"{{"Resources": [{{"Id": "a b", "Name": "b", "ResourceDataContainer": {ok}}}]}}"#), "m.json: Resources[0].Id: \"a b\" has ' '".to_owned()),
            (format!(r#"{{"Resources": [{}, {}]}}"#, resource("a", &ok), resource("a", &secret_data("x"))), "m.json: Resources[1].Id: \"a\" is already the Id of Resources[0]".to_owned()),
            (format!(r#"{{"Resources": [{}]}}"#, resource("a", "{}")), "m.json: Resources[0].ResourceDataContainer: must hold exactly one resource type, found 0".to_owned()),
            (format!(r#"{{"Resources": [{}]}}"#, resource("a", r#"{"FooResourceData": {}}"#)), "m.json: Resources[0].ResourceDataContainer.FooResourceData: unknown resource type".to_owned()),
            (format!(r#"{{"Resources": [{}]}}"#, resource("a", r#"{"SecretsManagerSecretResourceData": {}}"#)), "SecretsManagerSecretResourceData.ARN: is required".to_owned()),
            (format!(r#"{{"Resources": [{}]}}"#, resource("a", r#"{"SecretsManagerSecretResourceData": {"ARN": "db", "Labels": []}}"#)), "SecretsManagerSecretResourceData.Labels: unknown key".to_owned()),
            (format!(r#"{{"Resources": [{}]}}"#, resource("a", r#"{"SecretsManagerSecretResourceData": {"ARN": "db", "AdditionalStagingLabelsToDownload": [1]}}"#)), "SecretsManagerSecretResourceData.AdditionalStagingLabelsToDownload[0]: must be a string".to_owned()),
            (format!(r#"{{"Resources": [{}]}}"#, resource("a", r#"{"SecretsManagerSecretResourceData": {"ARN": "arn:aws:ssm:us-east-1:1:parameter/x"}}"#)), "is an ARN of service \"ssm\"".to_owned()),
            (format!(r#"{{"Resources": [], "resources": []}}"#), "m.json: resources: duplicates \"Resources\"".to_owned()),
        ];
        for (text, want) in cases {
            let got = err(&text);
            assert!(got.contains(&want), "{text}: {got:?} lacks {want:?}");
        }
    }
}
