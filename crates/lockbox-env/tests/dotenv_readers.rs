//! Property test: every value `Format::Dotenv` (what `lockbox export -f dotenv` writes) accepts
//! reads back exactly with python-dotenv and npm `dotenv`, the pinned readers
//! `cargo xtask dotenv-readers` installs under `<target>/xtask/`; every value it refuses is one
//! a reader would change. Without the readers the test says it skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use lockbox_env::{Format, dotenv_quote};
use proptest::prelude::*;

/// The readers, when installed.
struct Readers {
    python: PathBuf,
    node_modules: PathBuf,
    fixtures: PathBuf,
}

/// `<target>/xtask`, from this test binary's path (`<target>/debug/deps/NAME`).
fn xtask_state() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("xtask"))
}

fn readers() -> Option<Readers> {
    let state = xtask_state()?;
    let python = state.join("venv-dotenv/bin/python");
    let node_modules = state.join("node-dotenv/node_modules");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dotenv");
    let node = Command::new("node").arg("--version").output().is_ok();
    (python.is_file() && node_modules.join("dotenv").is_dir() && node).then_some(Readers {
        python,
        node_modules,
        fixtures,
    })
}

impl Readers {
    /// What each reader reads from `doc`: (python-dotenv, npm dotenv).
    fn read(&self, doc: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".env");
        std::fs::write(&file, doc).unwrap();
        let py = Command::new(&self.python)
            .arg(self.fixtures.join("read.py"))
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            py.status.success(),
            "python-dotenv: {}",
            String::from_utf8_lossy(&py.stderr)
        );
        let js = Command::new("node")
            .arg(self.fixtures.join("read.cjs"))
            .arg(&file)
            .env("NODE_PATH", &self.node_modules)
            .output()
            .unwrap();
        assert!(
            js.status.success(),
            "npm dotenv: {}",
            String::from_utf8_lossy(&js.stderr)
        );
        (
            serde_json::from_slice(&py.stdout).unwrap(),
            serde_json::from_slice(&js.stdout).unwrap(),
        )
    }
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\PC{0,16}",
        "[ -~]{0,20}",
        "[a-z'\"\\\\$#={} \\n\\r\\t`:-]{0,16}",
        "[a-zA-Z0-9 éü😀\u{a0}\u{2028}\u{feff}'\"\\\\$#={}\\n]{0,16}",
    ]
}

/// Names `V0`, `V1`, ... for `values`, written as one document with the refused ones left out.
fn document(values: &[String]) -> (String, BTreeMap<String, String>) {
    let accepted: Vec<(String, String)> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| dotenv_quote(v).is_some())
        .map(|(i, v)| (format!("V{i}"), v.clone()))
        .collect();
    let pairs: Vec<(&str, &str)> = accepted
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    (
        Format::Dotenv.write(&pairs).unwrap(),
        accepted.into_iter().collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn accepted_values_read_back_exactly(values in prop::collection::vec(value(), 1..24)) {
        let Some(readers) = readers() else {
            eprintln!(
                "SKIPPED accepted_values_read_back_exactly: python-dotenv and npm dotenv are not \
                 installed under <target>/xtask (run `cargo xtask dotenv-readers`; needs node)"
            );
            return Ok(());
        };
        let (doc, want) = document(&values);
        let (py, js) = readers.read(&doc);
        prop_assert_eq!(&py, &want, "python-dotenv read {:?}", doc);
        prop_assert_eq!(&js, &want, "npm dotenv read {:?}", doc);
    }
}

#[test]
fn refused_values_are_the_ones_no_form_carries() {
    // What each reader makes of a refused value in every form, for the ones a user would try.
    for v in ["${HOME}", "a ${X:-d} b", "it's \"q\"\n", "'\"\n", " x'\"\\"] {
        assert_eq!(dotenv_quote(v), None, "{v:?}");
    }
    for v in [
        "${",
        "$HOME",
        "${a:b}",
        "it's \"q\" C:\\p\\",
        "x\\y",
        "l1\r\nl2",
        "",
    ] {
        assert!(dotenv_quote(v).is_some(), "{v:?}");
    }
    let Some(readers) = readers() else {
        eprintln!("SKIPPED the reader half of refused_values_are_the_ones_no_form_carries");
        return;
    };
    // python-dotenv expands ${HOME} even inside single quotes, and npm dotenv keeps `\"`.
    let (py, js) = readers.read("A='${HOME}x'\nB=\"a\\\"b\"\n");
    assert_ne!(py["A"], "${HOME}x");
    assert_eq!(js["B"], "a\\\"b");
}
