//! Secret names: path normalisation, AWS's naming rules and the value size limit.

use lockbox_core::{Error, ErrorKind};

/// Largest value Secrets Manager stores, in bytes (SecretString and SecretBinary alike).
pub const MAX_VALUE_BYTES: usize = 65_536;

/// Longest secret name AWS accepts, in characters.
pub const MAX_NAME_CHARS: usize = 512;

/// Normalises a `secrets-manager-path` as the backend and generated policies both use it:
/// no leading, trailing or doubled `/`. `""` and `"/"` give `""` (no path).
///
/// Secrets Manager names are conventionally written without a leading `/`
/// (`prod/app/db`), and AWS treats `/a/b` and `a/b` as two different secrets. Dropping the
/// slash gives every spelling of a path one secret name, so a path copied from an aws-ssm
/// config (`/polygon-edge/nodes`, where SSM requires the slash) and the same path written
/// without it reach the same secrets: `polygon-edge/nodes/<node>/<secret>`.
pub fn normalize_path(path: &str) -> String {
    path.split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// The prefix every secret of node `node` shares: `<normalised path>/<node>` (or `<node>`
/// alone when the path is empty), checked against AWS's rules. The node name is one segment.
pub fn secret_prefix(path: &str, node: &str) -> Result<String, Error> {
    if node.is_empty() {
        return Err(Error::invalid_config(
            "name",
            "the node name must not be empty",
        ));
    }
    if node.contains('/') {
        return Err(Error::invalid_config(
            "name",
            format!(
                "node name {node:?}: must not contain '/' (it is one segment of the secret name)"
            ),
        ));
    }
    check_chars(node).map_err(|e| {
        Error::invalid_config("name", format!("node name {node:?}: {}", e.message()))
    })?;
    let path = normalize_path(path);
    check_chars(&path).map_err(|rule| {
        Error::invalid_config(
            "extra.secrets-manager-path",
            format!("path {path:?}: {}", rule.message()),
        )
    })?;
    let prefix = if path.is_empty() {
        node.to_owned()
    } else {
        format!("{path}/{node}")
    };
    // A secret needs at least `/x` after the prefix.
    let len = prefix.chars().count();
    if len + 2 > MAX_NAME_CHARS {
        return Err(Error::invalid_config(
            "extra.secrets-manager-path",
            format!(
                "the secret prefix {prefix:?} is {len} characters, which leaves no room for a \
                 secret name within AWS's {MAX_NAME_CHARS}"
            ),
        ));
    }
    Ok(prefix)
}

/// Checks a full secret name against AWS's rules: 1 to 512 characters of
/// `a-z A-Z 0-9 / _ + = . @ -`. Returns the broken rule.
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub(crate) fn check_secret_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(name_rule("a secret name must not be empty"));
    }
    check_chars(id)?;
    let len = id.chars().count();
    if len > MAX_NAME_CHARS {
        return Err(name_rule(format!(
            "secret name {id:?} is {len} characters, but AWS allows at most {MAX_NAME_CHARS}"
        )));
    }
    Ok(())
}

fn check_chars(s: &str) -> Result<(), Error> {
    match s.chars().find(|c| !is_allowed(*c)) {
        Some(c) => Err(name_rule(format!(
            "character {c:?} is not allowed (Secrets Manager allows a-z A-Z 0-9 / _ + = . @ -)"
        ))),
        None => Ok(()),
    }
}

/// A name that breaks AWS's naming rule; the message is the rule alone.
fn name_rule(rule: impl Into<String>) -> Error {
    Error::input(ErrorKind::InvalidName, rule)
}

/// Characters AWS allows in a secret name.
pub(crate) fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '=' | '.' | '@' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_slashes_without_a_leading_one() {
        assert_eq!(normalize_path("/polygon-edge/nodes/"), "polygon-edge/nodes");
        assert_eq!(normalize_path("polygon-edge/nodes"), "polygon-edge/nodes");
        assert_eq!(normalize_path("//a//b//"), "a/b");
        assert_eq!(normalize_path("/"), "");
        assert_eq!(normalize_path(""), "");
        assert_eq!(
            secret_prefix("/edge//nodes/", "node1").unwrap(),
            "edge/nodes/node1"
        );
        assert_eq!(secret_prefix("", "node1").unwrap(), "node1");
        assert_eq!(secret_prefix("/", "n@1+x=y").unwrap(), "n@1+x=y");
    }

    #[test]
    fn names_the_broken_rule_and_the_field() {
        let cases = [
            ("/p", "", "name", "must not be empty"),
            ("/p", "a/b", "name", "must not contain '/'"),
            ("/p", "a b", "name", "character ' '"),
            ("/p q", "n", "extra.secrets-manager-path", "character ' '"),
            ("/p#", "n", "extra.secrets-manager-path", "character '#'"),
        ];
        for (path, node, field, rule) in cases {
            let e = secret_prefix(path, node).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains(rule), "{path} {node}: {e}");
        }
        let long = "a".repeat(510);
        let e = secret_prefix(&long, "n").unwrap_err().to_string();
        assert!(e.contains("512"), "{e}");
        assert!(secret_prefix(&"a".repeat(507), "n").is_ok());
    }

    #[test]
    fn checks_full_ids() {
        assert!(check_secret_id("a/b_c+d=e.f@g-h").is_ok());
        assert!(check_secret_id("").unwrap_err().message().contains("empty"));
        assert!(
            check_secret_id("a b")
                .unwrap_err()
                .message()
                .contains("' '")
        );
        assert!(
            check_secret_id("ü")
                .unwrap_err()
                .message()
                .contains("not allowed")
        );
        assert!(check_secret_id(&"a".repeat(512)).is_ok());
        assert!(
            check_secret_id(&"a".repeat(513))
                .unwrap_err()
                .message()
                .contains("513 characters")
        );
    }

    proptest! {
        #[test]
        fn normalised_paths_have_no_empty_segments_and_are_stable(p in "[a-z/]{0,30}") {
            let n = normalize_path(&p);
            prop_assert!(!n.starts_with('/'));
            prop_assert!(!n.ends_with('/'));
            prop_assert!(!n.contains("//"));
            prop_assert_eq!(normalize_path(&n), n.clone());
            // Every spelling with extra slashes reaches the same name.
            prop_assert_eq!(normalize_path(&format!("/{p}/")), n);
        }

        #[test]
        fn valid_prefixes_pass_the_id_check(
            path in "(/?[A-Za-z0-9_+=.@-]{1,8}){0,4}/?",
            node in "[A-Za-z0-9_+=.@-]{1,12}",
        ) {
            let prefix = secret_prefix(&path, &node).unwrap();
            prop_assert!(prefix.ends_with(&node));
            let id = format!("{prefix}/validator-key");
            prop_assert!(check_secret_id(&id).is_ok());
        }

        #[test]
        fn prefixes_never_contain_another_nodes_names(
            path in "(/[a-z0-9_.-]{1,8}){0,4}/?",
            a in "[a-z0-9_-]{1,8}",
            b in "[a-z0-9_-]{1,8}",
        ) {
            prop_assume!(a != b);
            let pa = secret_prefix(&path, &a).unwrap();
            let pb = secret_prefix(&path, &b).unwrap();
            let other = format!("{pb}/x");
            let ours = format!("{pa}/");
            prop_assert!(!other.starts_with(&ours));
        }

        #[test]
        fn the_id_check_accepts_exactly_the_allowed_characters(s in "\\PC{1,40}") {
            let ok = check_secret_id(&s).is_ok();
            prop_assert_eq!(ok, s.chars().all(is_allowed) && s.chars().count() <= MAX_NAME_CHARS);
        }
    }
}
