//! The environment of a program started by `lockbox exec`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};

use lockbox_core::{Error, ErrorKind, Result};

/// The value `--strict` looks for when none is given.
pub const DEFAULT_SENTINEL: &str = "lockbox";

/// How the child's environment is made.
#[derive(Clone, Debug, Default)]
pub struct ChildOptions {
    /// Start from an empty environment: the child sees only the secrets and `keep_env`.
    pub pristine: bool,
    /// With `pristine`, variables of the parent's environment to keep.
    pub keep_env: Vec<String>,
    /// Only variables the parent has set to this sentinel value are replaced, each must have
    /// a secret, and no other secret is passed.
    pub strict: Option<String>,
}

/// The child's environment: `parent` (or, with `pristine`, only its `keep_env` variables)
/// with `secrets` (variable -> value) set over it. With `strict`, only the parent's variables
/// whose value is the sentinel are set, and a sentinel variable no secret maps to is an error
/// naming every such variable. A value holding a NUL byte is an error (no environment can
/// hold one).
pub fn child_environment(
    parent: impl IntoIterator<Item = (OsString, OsString)>,
    secrets: &BTreeMap<String, String>,
    options: &ChildOptions,
) -> Result<Vec<(OsString, OsString)>> {
    let parent: Vec<(OsString, OsString)> = parent.into_iter().collect();
    if let Some((var, _)) = secrets.iter().find(|(_, v)| v.contains('\0')) {
        return Err(Error::input(
            ErrorKind::Unsupported,
            format!(
                "the value for {var} holds a NUL byte, which no environment variable can hold; \
                 ask for it base64-encoded (--binary=base64)"
            ),
        ));
    }
    let chosen: BTreeMap<&str, &str> = match &options.strict {
        None => secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        Some(sentinel) => {
            let wanted: BTreeSet<&OsStr> = parent
                .iter()
                .filter(|(_, v)| v.as_os_str() == OsStr::new(sentinel))
                .map(|(k, _)| k.as_os_str())
                .collect();
            let missing: Vec<String> = wanted
                .iter()
                .filter(|k| k.to_str().is_none_or(|k| !secrets.contains_key(k)))
                .map(|k| k.to_string_lossy().into_owned())
                .collect();
            if !missing.is_empty() {
                return Err(Error::input(
                    ErrorKind::NotFound,
                    format!(
                        "--strict: no secret for {} (set to {sentinel:?} in the environment)",
                        missing.join(", ")
                    ),
                ));
            }
            secrets
                .iter()
                .filter(|(k, _)| wanted.contains(OsStr::new(k.as_str())))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        }
    };
    let mut out: Vec<(OsString, OsString)> = parent
        .into_iter()
        .filter(|(k, _)| {
            !options.pristine || options.keep_env.iter().any(|keep| OsStr::new(keep) == k)
        })
        .filter(|(k, _)| k.to_str().is_none_or(|k| !chosen.contains_key(k)))
        .collect();
    out.extend(
        chosen
            .into_iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v))),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn sorted(mut v: Vec<(OsString, OsString)>) -> Vec<(String, String)> {
        v.sort();
        v.into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect()
    }

    #[test]
    fn secrets_override_the_parent() {
        let out = child_environment(
            env(&[("PATH", "/bin"), ("A", "old")]),
            &secrets(&[("A", "new"), ("B", "b")]),
            &ChildOptions::default(),
        )
        .unwrap();
        assert_eq!(
            sorted(out),
            [
                ("A".into(), "new".into()),
                ("B".into(), "b".into()),
                ("PATH".into(), "/bin".into())
            ]
        );
    }

    #[test]
    fn pristine_keeps_only_what_is_asked() {
        let options = ChildOptions {
            pristine: true,
            keep_env: vec!["PATH".into()],
            strict: None,
        };
        let out = child_environment(
            env(&[("PATH", "/bin"), ("HOME", "/root")]),
            &secrets(&[("A", "a")]),
            &options,
        )
        .unwrap();
        assert_eq!(
            sorted(out),
            [("A".into(), "a".into()), ("PATH".into(), "/bin".into())]
        );
    }

    #[test]
    fn strict_replaces_only_sentinels_and_names_the_missing() {
        let options = ChildOptions {
            strict: Some(DEFAULT_SENTINEL.into()),
            ..ChildOptions::default()
        };
        let out = child_environment(
            env(&[("A", "lockbox"), ("C", "keep")]),
            &secrets(&[("A", "a"), ("B", "b")]),
            &options,
        )
        .unwrap();
        assert_eq!(
            sorted(out),
            [("A".into(), "a".into()), ("C".into(), "keep".into())]
        );
        let e = child_environment(
            env(&[("A", "lockbox"), ("X", "lockbox"), ("Y", "lockbox")]),
            &secrets(&[("A", "a")]),
            &options,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("X, Y"), "{e}");
    }

    #[test]
    fn nul_bytes_are_refused() {
        let e = child_environment(
            env(&[]),
            &secrets(&[("A", "a\0b")]),
            &ChildOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("NUL") && e.contains('A'), "{e}");
    }
}
