//! Parameter names: normalisation and AWS's naming rules.

use lockbox_core::Error;

/// Largest SecureString value of the standard tier, in bytes.
pub const STANDARD_TIER_MAX_BYTES: usize = 4096;

/// Deepest hierarchy AWS allows (`/a/b/.../o` has 15 levels).
const MAX_LEVELS: usize = 15;

/// Longest fully qualified name: AWS counts 1011 characters including the parameter ARN
/// (`arn:aws:ssm:<region>:<12-digit account>:parameter`), so the name itself gets what is left.
const MAX_ARN_LEN: usize = 1011;

/// Normalises a parameter path as the backend and generated policies both use it: a leading
/// `/`, no trailing or doubled `/`. `""` and `"/"` give `""` (the root).
pub fn normalize_path(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        String::new()
    } else {
        format!("/{}", segments.join("/"))
    }
}

/// The prefix every parameter of node `name` shares: `<normalised path>/<name>`, validated
/// against AWS's rules.
pub fn parameter_prefix(path: &str, name: &str) -> Result<String, Error> {
    let prefix = format!("{}/{}", normalize_path(path), name);
    check_name(&prefix, "", "extra.ssm-parameter-path")?;
    Ok(prefix)
}

/// Checks a full parameter name against AWS's rules; the error names the rule and `field`.
pub(crate) fn check_name(full: &str, region: &str, field: &str) -> Result<(), Error> {
    let broken = |rule: String| {
        Err(Error::invalid_config(
            field,
            format!("parameter name {full:?}: {rule}"),
        ))
    };
    if let Some(c) = full
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
    {
        return broken(format!(
            "character {c:?} is not allowed (SSM allows a-z A-Z 0-9 _ . - /)"
        ));
    }
    if !full.starts_with('/') {
        return broken("a name with '/' must start with '/'".into());
    }
    if full.contains("//") {
        return broken("'//' is not allowed".into());
    }
    let first = full.trim_start_matches('/').to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return broken("names may not begin with 'aws' or 'ssm' (any case)".into());
    }
    let levels = full.split('/').filter(|s| !s.is_empty()).count();
    if levels > MAX_LEVELS {
        return broken(format!(
            "{levels} levels, but AWS allows at most {MAX_LEVELS}"
        ));
    }
    let region_len = if region.is_empty() {
        "ap-southeast-2".len()
    } else {
        region.len()
    };
    let arn_len = "arn:aws:ssm:".len() + region_len + ":123456789012:parameter".len() + full.len();
    if arn_len > MAX_ARN_LEN {
        return broken(format!(
            "with its ARN it is {arn_len} characters, but AWS allows at most {MAX_ARN_LEN}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_slashes() {
        assert_eq!(normalize_path("polygon-edge/nodes/"), "/polygon-edge/nodes");
        assert_eq!(normalize_path("//a//b//"), "/a/b");
        assert_eq!(normalize_path("/"), "");
        assert_eq!(
            parameter_prefix("/edge//nodes/", "node1").unwrap(),
            "/edge/nodes/node1"
        );
        assert_eq!(parameter_prefix("", "node1").unwrap(), "/node1");
    }

    #[test]
    fn names_the_broken_rule() {
        let cases = [
            ("/aws/x", "may not begin with 'aws'"),
            ("/SSM-things/x", "may not begin with 'aws' or 'ssm'"),
            ("/a b", "character ' '"),
            ("/a@b", "character '@'"),
            ("/a//b", "'//'"),
            ("a/b", "must start with '/'"),
        ];
        for (name, rule) in cases {
            let e = check_name(name, "us-east-1", "f").unwrap_err().to_string();
            assert!(e.contains(rule), "{name}: {e}");
        }
        let deep = format!("/{}", vec!["a"; 16].join("/"));
        assert!(
            check_name(&deep, "us-east-1", "f")
                .unwrap_err()
                .to_string()
                .contains("16 levels")
        );
        let fifteen = format!("/{}", vec!["a"; 15].join("/"));
        assert!(check_name(&fifteen, "us-east-1", "f").is_ok());
        let long = format!("/{}", "a".repeat(1000));
        assert!(
            check_name(&long, "us-east-1", "f")
                .unwrap_err()
                .to_string()
                .contains("at most 1011")
        );
    }

    proptest! {
        #[test]
        fn normalised_paths_have_one_leading_slash_and_no_empty_segments(p in "[a-z/]{0,30}") {
            let n = normalize_path(&p);
            prop_assert!(n.is_empty() || n.starts_with('/'));
            prop_assert!(!n.ends_with('/'));
            prop_assert!(!n.contains("//"));
            prop_assert_eq!(normalize_path(&n), n.clone());
        }

        #[test]
        fn prefixes_never_contain_another_nodes_names(
            path in "(/[a-z0-9_.-]{1,8}){1,4}/?",
            a in "[a-z0-9_-]{1,8}",
            b in "[a-z0-9_-]{1,8}",
        ) {
            prop_assume!(a != b);
            prop_assume!(!path.trim_start_matches('/').starts_with("aws") && !path.trim_start_matches('/').starts_with("ssm"));
            let pa = parameter_prefix(&path, &a).unwrap();
            let pb = parameter_prefix(&path, &b).unwrap();
            let other = format!("{}/x", pb);
            let ours = format!("{}/", pa);
            prop_assert!(!other.starts_with(&ours));
        }
    }
}
