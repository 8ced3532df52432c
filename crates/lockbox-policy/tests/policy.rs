//! Generated policies against the backends' own tables, names and normalisation, with an IAM
//! wildcard matcher standing in for AWS's resource matching.

use std::collections::BTreeSet;

use lockbox_config::SecretsManagerConfig;
use lockbox_core::{ErrorKind, SecretName};
use lockbox_policy::{
    ACTIONS_WITHOUT_RESOURCES, Access, PolicyDocument, PolicyOptions, PolicySources,
    SERVE_PARAMETER_ACTIONS, SERVE_SECRET_ACTIONS, SYNC_ACTIONS, generate,
};
use lockbox_secretsmanager::SecretsManagerBackend;
use lockbox_ssm::SsmBackend;
use proptest::prelude::*;
use serde_json::json;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// IAM's resource matching: `*` is any run of characters (also none, also `/` and `:`), `?` is
/// exactly one character, everything else matches itself, case-sensitively.
fn iam_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // reach[j]: the pattern so far can match t[..j].
    let mut reach = vec![false; t.len() + 1];
    reach[0] = true;
    for &c in &p {
        let mut next = vec![false; t.len() + 1];
        match c {
            '*' => {
                let mut any = false;
                for j in 0..=t.len() {
                    any |= reach[j];
                    next[j] = any;
                }
            }
            _ => {
                for j in 1..=t.len() {
                    next[j] = reach[j - 1] && (c == '?' || c == t[j - 1]);
                }
            }
        }
        reach = next;
    }
    reach[t.len()]
}

#[test]
fn the_matcher_follows_iam_semantics() {
    assert!(iam_match("a*", "a"));
    assert!(iam_match("a*", "a/b:c"));
    assert!(iam_match("a/*", "a/b/c"));
    assert!(!iam_match("a/*", "a"));
    assert!(!iam_match("a/*", "ab/c"));
    assert!(iam_match("n-??????", "n-AbC123"));
    assert!(!iam_match("n-??????", "n-AbC12"));
    assert!(!iam_match("n-??????", "n-AbC1234"));
    assert!(!iam_match("n-??????", "m-AbC123"));
    assert!(iam_match("*", ""));
    assert!(!iam_match("A", "a"), "case-sensitive");
    assert!(iam_match("x*y*z", "x--y--z"));
    assert!(!iam_match("x*y*z", "x--z--y"));
}

fn config(value: serde_json::Value) -> SecretsManagerConfig {
    SecretsManagerConfig::from_json(&value.to_string()).unwrap()
}

fn ssm_config(path: &str, name: &str) -> SecretsManagerConfig {
    config(json!({"type": "aws-ssm", "name": name,
        "extra": {"region": REGION, "ssm-parameter-path": path}}))
}

fn sm_config(path: &str, name: &str) -> SecretsManagerConfig {
    config(json!({"type": "aws-secretsmanager", "name": name,
        "extra": {"region": REGION, "secrets-manager-path": path}}))
}

fn policy(config: &SecretsManagerConfig, access: Access) -> PolicyDocument {
    let options = PolicyOptions {
        access,
        ..PolicyOptions::new(ACCOUNT)
    };
    let sources = PolicySources {
        config: Some(config),
        ..Default::default()
    };
    generate(sources, &options).unwrap()
}

/// Backends are built only to name secrets: their client never calls (nothing listens there).
const NO_ENDPOINT: &str = "http://127.0.0.1:9";

fn ssm_backend(path: &str, name: &str) -> SsmBackend {
    lockbox_testkit::aws::ssm_backend(NO_ENDPOINT, path, name)
}

fn sm_backend(path: &str, name: &str) -> SecretsManagerBackend {
    lockbox_testkit::aws::secretsmanager_backend(NO_ENDPOINT, path, name)
}

fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    items.into_iter().collect()
}

#[test]
fn ssm_actions_are_exactly_the_backend_table() {
    let c = ssm_config("/polygon-edge/nodes", "node1");
    let rw = policy(&c, Access::ReadWrite);
    assert_eq!(
        set(rw.actions()),
        set(lockbox_ssm::ACTIONS.iter().map(|a| a.name))
    );
    let ro = policy(&c, Access::ReadOnly);
    assert_eq!(
        set(ro.actions()),
        set(lockbox_ssm::ACTIONS
            .iter()
            .filter(|a| a.read)
            .map(|a| a.name))
    );
    assert!(rw.omitted.is_empty() && ro.omitted.is_empty());
}

#[test]
fn secretsmanager_actions_are_the_backend_table_less_the_unscoped_ones() {
    let c = sm_config("polygon-edge/nodes", "node1");
    for access in [Access::ReadWrite, Access::ReadOnly] {
        let doc = policy(&c, access);
        let wanted = lockbox_secretsmanager::ACTIONS
            .iter()
            .filter(|a| a.read || access == Access::ReadWrite);
        let (omitted, granted): (Vec<&lockbox_secretsmanager::Action>, Vec<_>) =
            wanted.partition(|a| ACTIONS_WITHOUT_RESOURCES.contains(&a.name));
        assert_eq!(set(doc.actions()), set(granted.iter().map(|a| a.name)));
        assert_eq!(
            set(doc.omitted.iter().map(|o| o.action)),
            set(omitted.iter().map(|a| a.name))
        );
        for o in &doc.omitted {
            assert!(o.reason.contains("\"Resource\": \"*\""), "{}", o.reason);
        }
    }
}

#[test]
fn sync_actions_come_from_the_secretsmanager_table() {
    for action in SYNC_ACTIONS {
        let a = lockbox_secretsmanager::ACTIONS
            .iter()
            .find(|a| a.name == action)
            .unwrap_or_else(|| panic!("{action} is not in the Secrets Manager table"));
        assert!(a.read, "{action} must be a read");
    }
}

#[test]
fn serve_actions_come_from_the_backend_tables() {
    for action in SERVE_SECRET_ACTIONS {
        let a = lockbox_secretsmanager::ACTIONS
            .iter()
            .find(|a| a.name == action)
            .unwrap_or_else(|| panic!("{action} is not in the Secrets Manager table"));
        assert!(a.read, "{action} must be a read");
    }
    for action in SERVE_PARAMETER_ACTIONS {
        let a = lockbox_ssm::ACTIONS
            .iter()
            .find(|a| a.name == action)
            .unwrap_or_else(|| panic!("{action} is not in the SSM table"));
        assert!(a.read, "{action} must be a read");
    }
}

#[test]
fn serve_configs_allow_exactly_their_names() {
    let arn = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:shared/db-Xy12Ab";
    let secrets = vec![
        arn.to_string(),
        "app/api-key".to_string(),
        "app/api-key".to_string(),
    ];
    let parameters = vec![
        "/app/db/url".to_string(),
        "plain".to_string(),
        "arn:aws:ssm:eu-west-1:210987654321:parameter/shared/flag".to_string(),
    ];
    let options = PolicyOptions {
        region: Some("eu-west-1".into()),
        ..PolicyOptions::new(ACCOUNT)
    };
    let doc = generate(
        PolicySources {
            serve_secrets: &secrets,
            serve_parameters: &parameters,
            ..Default::default()
        },
        &options,
    )
    .unwrap();
    assert_eq!(doc.statements.len(), 2);
    let s = doc.statement("SecretsManagerReadServeSecrets").unwrap();
    assert_eq!(s.actions, SERVE_SECRET_ACTIONS);
    assert_eq!(
        s.resources,
        [
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/api-key-??????",
            arn,
        ]
    );
    let s = doc.statement("SsmReadServeParameters").unwrap();
    assert_eq!(s.actions, SERVE_PARAMETER_ACTIONS);
    assert_eq!(
        s.resources,
        [
            "arn:aws:ssm:eu-west-1:123456789012:parameter/app/db/url",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/plain",
            "arn:aws:ssm:eu-west-1:210987654321:parameter/shared/flag",
        ]
    );
    // The batched prefetch's action (only on "*") and the KMS action parameters may need
    // are named, not granted.
    assert_eq!(
        doc.omitted.iter().map(|o| o.action).collect::<Vec<_>>(),
        ["secretsmanager:BatchGetSecretValue", "kms:Decrypt"]
    );
    assert!(!doc.actions().iter().any(|a| a.starts_with("kms:")));

    // Secrets only: no SSM statement, and only the batch action omitted.
    let doc = generate(
        PolicySources {
            serve_secrets: &secrets[1..2],
            ..Default::default()
        },
        &options,
    )
    .unwrap();
    assert_eq!(doc.statements.len(), 1);
    assert_eq!(
        doc.omitted.iter().map(|o| o.action).collect::<Vec<_>>(),
        ["secretsmanager:BatchGetSecretValue"]
    );

    // With a config: both, the config's region for names.
    let c = sm_config("p", "n");
    let doc = generate(
        PolicySources {
            config: Some(&c),
            serve_secrets: &secrets[1..2],
            ..Default::default()
        },
        &PolicyOptions::new(ACCOUNT),
    )
    .unwrap();
    assert!(doc.statement("SecretsManagerReadNodeSecrets").is_some());
    assert!(
        doc.resources()
            .contains(&"arn:aws:secretsmanager:us-east-1:123456789012:secret:app/api-key-??????")
    );
}

#[test]
fn serve_names_are_checked_by_field() {
    let options = PolicyOptions {
        region: Some(REGION.into()),
        ..PolicyOptions::new(ACCOUNT)
    };
    let err = |secrets: &[&str], parameters: &[&str]| {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let parameters: Vec<String> = parameters.iter().map(|s| s.to_string()).collect();
        generate(
            PolicySources {
                serve_secrets: &secrets,
                serve_parameters: &parameters,
                ..Default::default()
            },
            &options,
        )
        .unwrap_err()
        .to_string()
    };
    let e = err(&["ok", "no spaces"], &[]);
    assert!(e.contains("serve config prefetch_secrets[1]"), "{e}");
    let e = err(&["arn:aws:ssm:us-east-1:123456789012:parameter/x"], &[]);
    assert!(
        e.contains("prefetch_secrets[0]") && e.contains("not secretsmanager"),
        "{e}"
    );
    let e = err(
        &["arn:aws:secretsmanager:us-east-1:123456789012:secret:*"],
        &[],
    );
    assert!(
        e.contains("prefetch_secrets[0]") && e.contains("'*'"),
        "{e}"
    );
    let e = err(&[], &["/ok", "/bad name"]);
    assert!(e.contains("serve config prefetch_parameters[1]"), "{e}");
    let e = err(&[], &["/a//b"]);
    assert!(e.contains("empty level"), "{e}");
    let e = err(&[], &["/ssm/x"]);
    assert!(e.contains("cannot start with aws or ssm"), "{e}");
    let e = err(&[], &["/app/x:3"]);
    assert!(e.contains("selector"), "{e}");
    let e = err(&[], &["arn:aws-cn:ssm:cn-north-1:123456789012:parameter/x"]);
    assert!(e.contains("partition"), "{e}");
    // Names need a region.
    let names = vec!["app/x".to_string()];
    let e = generate(
        PolicySources {
            serve_parameters: &names,
            ..Default::default()
        },
        &PolicyOptions::new(ACCOUNT),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("region: is needed for serve config prefetch_parameters[0]"),
        "{e}"
    );
}

#[test]
fn an_ssm_policy_is_pinned_and_stable() {
    let c = ssm_config("polygon-edge//nodes/", "node1");
    let doc = policy(&c, Access::ReadWrite);
    let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/polygon-edge/nodes/node1";
    let expected = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "SsmReadNodeParameters", "Effect": "Allow",
             "Action": ["ssm:GetParameter", "ssm:GetParameters"],
             "Resource": [format!("{arn}/*")]},
            {"Sid": "SsmListNodeParameters", "Effect": "Allow",
             "Action": ["ssm:GetParametersByPath"],
             "Resource": [arn, format!("{arn}/*")]},
            {"Sid": "SsmWriteNodeParameters", "Effect": "Allow",
             "Action": ["ssm:DeleteParameter", "ssm:PutParameter"],
             "Resource": [format!("{arn}/*")]},
        ]
    });
    let text = doc.to_json();
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, expected);
    assert_eq!(text, policy(&c, Access::ReadWrite).to_json());
    // Key order is fixed in the text itself.
    let order: Vec<usize> = ["\"Sid\"", "\"Effect\"", "\"Action\"", "\"Resource\""]
        .iter()
        .map(|k| text.find(k).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(text.find("\"Version\"").unwrap() < text.find("\"Statement\"").unwrap());
}

#[test]
fn kms_keys_add_decrypt_and_only_the_write_action_the_service_calls() {
    let key = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let key_arn = format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/{key}");
    let ssm = config(json!({"type": "aws-ssm", "name": "n",
        "extra": {"region": REGION, "ssm-parameter-path": "/p", "kms-key-id": key}}));
    let sm = config(json!({"type": "aws-secretsmanager", "name": "n",
        "extra": {"region": REGION, "secrets-manager-path": "p", "kms-key-id": key_arn}}));
    let cases = [
        (&ssm, Access::ReadWrite, vec!["kms:Decrypt", "kms:Encrypt"]),
        (&ssm, Access::ReadOnly, vec!["kms:Decrypt"]),
        (
            &sm,
            Access::ReadWrite,
            vec!["kms:Decrypt", "kms:GenerateDataKey"],
        ),
        (&sm, Access::ReadOnly, vec!["kms:Decrypt"]),
    ];
    for (c, access, actions) in cases {
        let doc = policy(c, access);
        let s = doc.statement("KmsUseNodeKey").unwrap();
        assert_eq!(s.actions, actions, "{access:?}");
        assert_eq!(s.resources, std::slice::from_ref(&key_arn));
        assert!(s.condition.is_none());
    }
    // An alias: the key pattern, narrowed to keys carrying the alias.
    let aliased = config(json!({"type": "aws-ssm", "name": "n",
        "extra": {"region": REGION, "ssm-parameter-path": "/p", "kms-key-id": "alias/nodes"}}));
    let doc = policy(&aliased, Access::ReadOnly);
    let s = doc.statement("KmsUseNodeKey").unwrap();
    assert_eq!(
        s.resources,
        [format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/*")]
    );
    let json: serde_json::Value = serde_json::from_str(&doc.to_json()).unwrap();
    let kms = json["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "KmsUseNodeKey")
        .unwrap();
    assert_eq!(
        kms["Condition"],
        json!({"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/nodes"]}})
    );
    // The AWS managed key needs nothing, and no key means no KMS statement.
    let managed = config(json!({"type": "aws-ssm", "name": "n",
        "extra": {"region": REGION, "ssm-parameter-path": "/p", "kms-key-id": "alias/aws/ssm"}}));
    assert!(
        policy(&managed, Access::ReadWrite)
            .statement("KmsUseNodeKey")
            .is_none()
    );
    assert!(
        !policy(&ssm_config("/p", "n"), Access::ReadWrite)
            .actions()
            .iter()
            .any(|a| a.starts_with("kms:"))
    );
}

#[test]
fn manifests_allow_exactly_their_secrets() {
    let arn = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:shared/db-Xy12Ab";
    let ids = vec![arn.to_string(), "app/api-key".to_string()];
    let options = PolicyOptions {
        region: Some("eu-west-1".into()),
        ..PolicyOptions::new(ACCOUNT)
    };
    let doc = generate(
        PolicySources {
            config: None,
            manifest_secrets: &ids,
            ..Default::default()
        },
        &options,
    )
    .unwrap();
    let s = doc.statement("SecretsManagerReadManifestSecrets").unwrap();
    assert_eq!(s.actions, SYNC_ACTIONS);
    assert_eq!(
        set(s.resources.iter().map(String::as_str)),
        set([
            arn,
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/api-key-??????"
        ])
    );
    assert_eq!(doc.statements.len(), 1);

    // A name needs a region; a config supplies one.
    let only_names = vec!["app/api-key".to_string()];
    let e = generate(
        PolicySources {
            config: None,
            manifest_secrets: &only_names,
            ..Default::default()
        },
        &PolicyOptions::new(ACCOUNT),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("region: is needed for manifest cloudSecrets[0].arn"),
        "{e}"
    );
    let c = sm_config("p", "n");
    let doc = generate(
        PolicySources {
            config: Some(&c),
            manifest_secrets: &only_names,
            ..Default::default()
        },
        &PolicyOptions::new(ACCOUNT),
    )
    .unwrap();
    assert!(
        doc.resources()
            .contains(&"arn:aws:secretsmanager:us-east-1:123456789012:secret:app/api-key-??????")
    );
    let bad = vec!["ok".to_string(), "no spaces".to_string()];
    let e = generate(
        PolicySources {
            config: Some(&c),
            manifest_secrets: &bad,
            ..Default::default()
        },
        &PolicyOptions::new(ACCOUNT),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("manifest cloudSecrets[1].arn: secret name"),
        "{e}"
    );
}

#[test]
fn roles_add_assume_role_on_that_role_only() {
    let c = ssm_config("/p", "n");
    let role = "arn:aws:iam::123456789012:role/lockbox/node-reader";
    let options = PolicyOptions {
        role_arn: Some(role.into()),
        ..PolicyOptions::new(ACCOUNT)
    };
    let doc = generate(
        PolicySources {
            config: Some(&c),
            ..Default::default()
        },
        &options,
    )
    .unwrap();
    let s = doc.statement("StsAssumeConfiguredRole").unwrap();
    assert_eq!(s.actions, ["sts:AssumeRole"]);
    assert_eq!(s.resources, [role]);
    for (bad, rule) in [
        ("role/x", "not an ARN"),
        ("arn:aws:s3:::bucket", "not an IAM ARN"),
        (
            "arn:aws-cn:iam::123456789012:role/x",
            "partition \"aws-cn\"",
        ),
        ("arn:aws:iam::123:role/x", "12 digits"),
        ("arn:aws:iam::123456789012:user/x", "not a role"),
        ("arn:aws:iam::123456789012:role/*", "role names are"),
    ] {
        let options = PolicyOptions {
            role_arn: Some(bad.into()),
            ..PolicyOptions::new(ACCOUNT)
        };
        let e = generate(
            PolicySources {
                config: Some(&c),
                ..Default::default()
            },
            &options,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("role_arn") && e.contains(rule), "{bad}: {e}");
    }
}

#[test]
fn partitions_follow_the_region_or_the_option() {
    let cn = config(json!({"type": "aws-ssm", "name": "n",
        "extra": {"region": "cn-north-1", "ssm-parameter-path": "/p"}}));
    let doc = policy(&cn, Access::ReadOnly);
    assert!(
        doc.resources()
            .iter()
            .all(|r| r.starts_with("arn:aws-cn:ssm:cn-north-1:"))
    );
    let c = ssm_config("/p", "n");
    let gov = PolicyOptions {
        region: Some("us-gov-west-1".into()),
        partition: Some(lockbox_policy::Partition::AwsUsGov),
        ..PolicyOptions::new(ACCOUNT)
    };
    let sources = PolicySources {
        config: Some(&c),
        ..Default::default()
    };
    let doc = generate(sources, &gov).unwrap();
    assert!(
        doc.resources()
            .iter()
            .all(|r| r.starts_with("arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter/p/n"))
    );
    let mismatch = PolicyOptions {
        partition: Some(lockbox_policy::Partition::AwsCn),
        ..PolicyOptions::new(ACCOUNT)
    };
    let e = generate(sources, &mismatch).unwrap_err().to_string();
    assert!(
        e.contains("partition: aws-cn does not hold region \"us-east-1\" (it is in aws)"),
        "{e}"
    );
}

#[test]
fn validation_names_the_field() {
    let ssm = ssm_config("/p", "n");
    let with = |c: &SecretsManagerConfig, options: PolicyOptions| {
        generate(
            PolicySources {
                config: Some(c),
                ..Default::default()
            },
            &options,
        )
        .map(|_| ())
        .unwrap_err()
    };
    let e = with(&ssm, PolicyOptions::new("12345"));
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(
        e.to_string()
            .contains("account: \"12345\" is not an AWS account id"),
        "{e}"
    );
    let e = with(
        &ssm,
        PolicyOptions {
            region: Some("Mars-1".into()),
            ..PolicyOptions::new(ACCOUNT)
        },
    );
    assert!(
        e.to_string()
            .contains("region: \"Mars-1\" is not an AWS region name"),
        "{e}"
    );

    // Hand-built configs skip from_json's checks: the policy checks again.
    let mut empty_path = ssm.clone();
    empty_path
        .extra
        .insert("ssm-parameter-path".into(), "".into());
    let e = with(&empty_path, PolicyOptions::new(ACCOUNT));
    assert!(e.to_string().contains("extra.ssm-parameter-path"), "{e}");
    let mut blank_path = ssm.clone();
    blank_path
        .extra
        .insert("ssm-parameter-path".into(), "  ".into());
    let e = with(&blank_path, PolicyOptions::new(ACCOUNT));
    assert!(
        e.to_string().contains("extra.ssm-parameter-path: is empty"),
        "{e}"
    );
    let mut no_name = ssm.clone();
    no_name.name = String::new();
    let e = with(&no_name, PolicyOptions::new(ACCOUNT));
    assert!(e.to_string().contains("name: is required"), "{e}");
    let mut sm_blank = sm_config("p", "n");
    sm_blank
        .extra
        .insert("secrets-manager-path".into(), " ".into());
    let e = with(&sm_blank, PolicyOptions::new(ACCOUNT));
    assert!(
        e.to_string()
            .contains("extra.secrets-manager-path: is empty"),
        "{e}"
    );
    let mut bad_region = ssm.clone();
    bad_region.extra.insert("region".into(), "moon".into());
    let e = with(&bad_region, PolicyOptions::new(ACCOUNT));
    assert!(e.to_string().contains("extra.region: \"moon\""), "{e}");

    // Paths the backend refuses are refused with the backend's own rule.
    let reserved = ssm_config("/aws/x", "n");
    let e = with(&reserved, PolicyOptions::new(ACCOUNT));
    assert!(e.to_string().contains("may not begin with 'aws'"), "{e}");

    let local = config(json!({"type": "local", "name": "n", "extra": {"path": "d"}}));
    let e = with(&local, PolicyOptions::new(ACCOUNT));
    assert!(
        e.to_string()
            .contains("type: local keeps no secrets in AWS"),
        "{e}"
    );

    let e = generate(PolicySources::default(), &PolicyOptions::new(ACCOUNT)).unwrap_err();
    assert!(
        e.to_string().contains("nothing to derive a policy from"),
        "{e}"
    );
}

/// A path segment or node name SSM accepts (and `.`/`..` excluded, which no name may be).
fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-][A-Za-z0-9_.-]{0,7}".prop_filter("not reserved", |s| {
        let l = s.to_ascii_lowercase();
        !l.starts_with("aws") && !l.starts_with("ssm")
    })
}

/// A path as an operator might write it: any number of segments, with stray slashes.
fn messy_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(), 0..4),
        "/{0,2}",
        "/{0,2}",
        prop::bool::ANY,
    )
        .prop_map(|(segments, lead, trail, double)| {
            let sep = if double { "//" } else { "/" };
            let body = segments.join(sep);
            let path = format!("{lead}{body}{trail}");
            if path.is_empty() { "/".into() } else { path }
        })
}

fn secret_name() -> impl Strategy<Value = String> {
    "[a-z0-9_-][a-z0-9_.-]{0,11}(/[a-z0-9_-][a-z0-9_.-]{0,7})?"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn ssm_resources_cover_the_node_and_no_other_node(
        path in messy_path(),
        a in segment(),
        b in segment(),
        secrets in prop::collection::vec(secret_name(), 1..4),
        access in prop::sample::select(vec![Access::ReadWrite, Access::ReadOnly]),
    ) {
        prop_assume!(a != b);
        let doc = policy(&ssm_config(&path, &a), access);
        let ours = ssm_backend(&path, &a);
        let theirs = ssm_backend(&path, &b);
        // Normalisation agrees with the backend's: the resources are built on its prefix.
        let prefix = lockbox_ssm::parameter_prefix(&path, &a).unwrap();
        prop_assert_eq!(ours.prefix(), prefix.as_str());
        let node_arn = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{prefix}");
        for r in doc.resources() {
            prop_assert!(r == node_arn || r.starts_with(&format!("{node_arn}/")), "{}", r);
        }
        let arn_of = |p: &str| format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{p}");
        for s in &secrets {
            let name = SecretName::new(s.as_str()).unwrap();
            let mine = arn_of(&ours.parameter_name(&name).unwrap());
            let other = arn_of(&theirs.parameter_name(&name).unwrap());
            for st in &doc.statements {
                prop_assert!(st.resources.iter().any(|r| iam_match(r, &mine)), "{} misses {}", st.sid, mine);
                prop_assert!(!st.resources.iter().any(|r| iam_match(r, &other)), "{} matches {}", st.sid, other);
            }
        }
        // The other node's directory, which its list calls name, is not ours either.
        let other_dir = arn_of(theirs.prefix());
        prop_assert!(!doc.resources().iter().any(|r| iam_match(r, &other_dir)));
        for action in doc.actions() {
            prop_assert!(!action.contains(['*', '?']));
        }
    }

    #[test]
    fn secretsmanager_resources_cover_the_node_and_no_other_node(
        path in messy_path(),
        a in "[A-Za-z0-9_+=@-][A-Za-z0-9_+=.@-]{0,9}",
        b in "[A-Za-z0-9_+=@-][A-Za-z0-9_+=.@-]{0,9}",
        secrets in prop::collection::vec(secret_name(), 1..4),
        suffix in "[A-Za-z0-9]{6}",
        access in prop::sample::select(vec![Access::ReadWrite, Access::ReadOnly]),
    ) {
        prop_assume!(a != b);
        let doc = policy(&sm_config(&path, &a), access);
        let ours = sm_backend(&path, &a);
        let theirs = sm_backend(&path, &b);
        let prefix = lockbox_secretsmanager::secret_prefix(&path, &a).unwrap();
        prop_assert_eq!(ours.prefix(), prefix.as_str());
        let node_arn = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{prefix}/");
        for r in doc.resources() {
            prop_assert!(r.starts_with(&node_arn), "{}", r);
        }
        let arn_of = |id: &str| format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{id}-{suffix}");
        for s in &secrets {
            let name = SecretName::new(s.as_str()).unwrap();
            let mine = arn_of(&ours.secret_id(&name).unwrap());
            let other = arn_of(&theirs.secret_id(&name).unwrap());
            for st in &doc.statements {
                prop_assert!(st.resources.iter().any(|r| iam_match(r, &mine)), "{} misses {}", st.sid, mine);
                prop_assert!(!st.resources.iter().any(|r| iam_match(r, &other)), "{} matches {}", st.sid, other);
            }
        }
    }

    #[test]
    fn manifest_names_match_their_own_secret_only(
        name in "[A-Za-z0-9/_+=.@-]{1,20}",
        other in "[A-Za-z0-9/_+=.@-]{1,20}",
        suffix in "[A-Za-z0-9]{6}",
        other_suffix in "[A-Za-z0-9]{6}",
    ) {
        prop_assume!(name != other);
        let ids = vec![name.clone()];
        let options = PolicyOptions { region: Some(REGION.into()), ..PolicyOptions::new(ACCOUNT) };
        let doc = generate(PolicySources { config: None, manifest_secrets: &ids, ..Default::default() }, &options).unwrap();
        let base = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:");
        let resources = doc.resources();
        prop_assert_eq!(resources.len(), 1);
        let own = format!("{base}{name}-{suffix}");
        let foreign = format!("{base}{other}-{other_suffix}");
        prop_assert!(iam_match(resources[0], &own), "{} misses {}", resources[0], own);
        prop_assert!(!iam_match(resources[0], &foreign), "{} matches {}", resources[0], foreign);
    }
}
