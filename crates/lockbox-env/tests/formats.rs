//! Property tests: every format's document reads back to the same name/value map through a
//! parser of that format (serde_json, serde_yaml_ng, the csv crate, lockbox's dotenv reader).
//! The CLI's tests check the same against Python's parsers, Java and Terraform.

use std::collections::BTreeMap;

use lockbox_env::{Format, ImportFormat, parse_import};
use proptest::prelude::*;

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\PC{0,20}",
        "[ -~\\n\\t'\"=$#\\\\!:éü😀]{0,24}",
        Just(
            "it's \"quoted\"\n$HOME ${X} %{y} # = ! : \\ \r\n\t\u{0}\u{1}\u{7f}\u{85}\u{2028}ü😀"
                .to_owned()
        ),
    ]
}

fn pairs(key: &'static str) -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(key, value(), 0..6)
}

fn as_refs(map: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn read_csv(text: &str, delimiter: u8) -> BTreeMap<String, String> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.len(), 2, "{r:?}");
            (r[0].to_owned(), r[1].to_owned())
        })
        .collect()
}

/// `doc` read back by lockbox's own importer, every value present.
fn imported(format: ImportFormat, doc: &str) -> BTreeMap<String, String> {
    parse_import(format, doc)
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap().expose_str().unwrap().to_owned()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn json_round_trips(map in pairs("[a-z][a-z0-9_./-]{0,10}")) {
        let doc = Format::Json.write(&as_refs(&map)).unwrap();
        let back: BTreeMap<String, String> = serde_json::from_str(&doc).unwrap();
        prop_assert_eq!(back, map);
    }

    #[test]
    fn yaml_round_trips(map in pairs("[a-z][a-z0-9_./-]{0,10}")) {
        let doc = Format::Yaml.write(&as_refs(&map)).unwrap();
        let back: BTreeMap<String, String> = serde_yaml_ng::from_str(&doc).unwrap();
        prop_assert_eq!(&back, &map);
        let imported: BTreeMap<String, String> = imported(ImportFormat::Yaml, &doc);
        prop_assert_eq!(imported, map);
    }

    #[test]
    fn dotenv_round_trips_through_import(map in pairs("[A-Z_][A-Z0-9_]{0,10}")) {
        // Values no dotenv reader carries are refused (tests/dotenv_readers.rs).
        let mut map = map;
        map.retain(|_, v| lockbox_env::dotenv_quote(v).is_some());
        let doc = Format::Dotenv.write(&as_refs(&map)).unwrap();
        let back: BTreeMap<String, String> = imported(ImportFormat::Dotenv, &doc);
        prop_assert_eq!(back, map);
    }

    #[test]
    fn json_round_trips_through_import(map in pairs("[a-z][a-z0-9_./-]{0,10}")) {
        let doc = Format::Json.write(&as_refs(&map)).unwrap();
        let back: BTreeMap<String, String> = imported(ImportFormat::Json, &doc);
        prop_assert_eq!(back, map);
    }

    #[test]
    fn csv_and_tsv_round_trip(map in pairs("[a-z][a-z0-9_./-]{0,10}")) {
        let doc = Format::Csv.write(&as_refs(&map)).unwrap();
        prop_assert_eq!(read_csv(&doc, b','), map.clone());
        let doc = Format::Tsv.write(&as_refs(&map)).unwrap();
        prop_assert_eq!(read_csv(&doc, b'\t'), map);
    }
}
