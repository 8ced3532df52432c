//! The `--extra k=v,k2=v2` syntax.

use std::collections::BTreeMap;

use lockbox_core::Error;

/// Parses `k=v,k2=v2` into a map. Values may contain `=` (only the first one splits); an
/// entry without `=`, an empty key, an empty entry or a repeated key is an error naming the
/// entry. An empty string gives an empty map.
pub fn parse_extra(input: &str) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    if input.is_empty() {
        return Ok(out);
    }
    for (i, entry) in input.split(',').enumerate() {
        let position = i + 1;
        let Some((key, value)) = entry.split_once('=') else {
            return Err(Error::invalid_config(
                "--extra",
                format!("entry {position} {entry:?} has no '=' (expected key=value)"),
            ));
        };
        if key.is_empty() {
            return Err(Error::invalid_config(
                "--extra",
                format!("entry {position} {entry:?} has an empty key (expected key=value)"),
            ));
        }
        if out.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(Error::invalid_config(
                "--extra",
                format!("entry {position} repeats the key {key:?}"),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_pairs_and_keeps_equals_in_values() {
        let m = parse_extra("region=us-east-1,ssm-parameter-path=/a/b,token=x==y").unwrap();
        assert_eq!(m["region"], "us-east-1");
        assert_eq!(m["ssm-parameter-path"], "/a/b");
        assert_eq!(m["token"], "x==y");
        assert!(parse_extra("").unwrap().is_empty());
        assert_eq!(parse_extra("k=").unwrap()["k"], "");
    }

    #[test]
    fn errors_name_the_entry() {
        let e = parse_extra("region=us-east-1,oops")
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry 2 \"oops\" has no '='"), "{e}");
        let e = parse_extra("=v").unwrap_err().to_string();
        assert!(e.contains("entry 1 \"=v\" has an empty key"), "{e}");
        let e = parse_extra("a=1,,b=2").unwrap_err().to_string();
        assert!(e.contains("entry 2 \"\" has no '='"), "{e}");
        let e = parse_extra("a=1,a=2").unwrap_err().to_string();
        assert!(e.contains("repeats the key \"a\""), "{e}");
    }

    proptest! {
        #[test]
        fn round_trips(map in prop::collection::btree_map("[a-z0-9_.-]{1,10}", "[^,]{0,12}", 0..6)) {
            let text = map.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            prop_assert_eq!(parse_extra(&text).unwrap(), map);
        }

        #[test]
        fn never_panics(s in prop_oneof!["\\PC{0,40}", "([a-z=,]{0,6}){0,8}"]) {
            if let Err(e) = parse_extra(&s) {
                prop_assert_eq!(e.kind(), lockbox_core::ErrorKind::InvalidConfig);
            }
        }
    }
}
