//! Secret names to environment variable names.

use lockbox_core::{Error, ErrorKind, Result};

/// The environment variable a secret named `name` becomes: its last `/`-separated segment,
/// upper-cased (unless `preserve_case`), every character outside `[A-Za-z0-9_]` replaced by
/// `_`, and `_` put before a leading digit. `db/password` is `PASSWORD`, `app/api-key.v2` is
/// `API_KEY_V2`, `tls/2fa` is `_2FA`. A name whose last segment is empty is an error.
pub fn variable_name(name: &str, preserve_case: bool) -> Result<String> {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.is_empty() {
        return Err(Error::invalid_name(
            name,
            "its last segment is empty, so it maps to no environment variable",
        ));
    }
    let mut out = String::with_capacity(last.len() + 1);
    if last.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    for c in last.chars() {
        out.push(match c {
            'a'..='z' if !preserve_case => c.to_ascii_uppercase(),
            'A'..='Z' | 'a'..='z' | '0'..='9' | '_' => c,
            _ => '_',
        });
    }
    Ok(out)
}

/// The error for two names of one source that map to the same variable.
pub(crate) fn collision(variable: &str, first: &str, second: &str, source: &str) -> Error {
    Error::input(
        ErrorKind::InvalidName,
        format!(
            "secrets {first:?} and {second:?} of {source} both map to the environment variable \
             {variable}; rename one, or narrow the source with --prefix"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn maps_like_chamber() {
        let cases = [
            ("db/password", false, "PASSWORD"),
            ("app/api-key.v2", false, "API_KEY_V2"),
            ("tls/2fa", false, "_2FA"),
            ("validator-key", false, "VALIDATOR_KEY"),
            ("x@y=z+1", false, "X_Y_Z_1"),
            ("Mixed/CamelCase", true, "CamelCase"),
            ("a/b.c", true, "b_c"),
            ("under_score", false, "UNDER_SCORE"),
            ("ünï", false, "_N_"),
        ];
        for (name, keep, want) in cases {
            assert_eq!(variable_name(name, keep).unwrap(), want, "{name}");
        }
        assert!(variable_name("dir/", false).is_err());
    }

    proptest! {
        #[test]
        fn every_name_maps_to_a_valid_variable(name in "[A-Za-z0-9_.+=@/-]{0,30}", keep: bool) {
            match variable_name(&name, keep) {
                Ok(v) => {
                    prop_assert!(!v.is_empty());
                    prop_assert!(v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                    prop_assert!(!v.starts_with(|c: char| c.is_ascii_digit()));
                    if !keep {
                        prop_assert!(!v.chars().any(|c| c.is_ascii_lowercase()));
                    }
                    let last = name.rsplit('/').next().unwrap();
                    let extra = usize::from(last.starts_with(|c: char| c.is_ascii_digit()));
                    prop_assert_eq!(v.len(), last.len() + extra);
                }
                Err(_) => prop_assert!(name.is_empty() || name.ends_with('/')),
            }
        }

        #[test]
        fn mapping_only_depends_on_the_last_segment(dir in "[a-z]{1,8}", leaf in "[A-Za-z0-9._-]{1,12}") {
            prop_assert_eq!(
                variable_name(&format!("{dir}/{leaf}"), false).unwrap(),
                variable_name(&leaf, false).unwrap()
            );
        }

        #[test]
        fn case_is_kept_when_asked(leaf in "[A-Za-z][A-Za-z0-9_]{0,12}") {
            prop_assert_eq!(variable_name(&leaf, true).unwrap(), leaf.clone());
            prop_assert_eq!(variable_name(&leaf, false).unwrap(), leaf.to_ascii_uppercase());
        }
    }
}
