//! The BLS validator key through the `lockbox` binary: `init --ecdsa/--bls/--network/--num`,
//! `output --bls/--ibft-validator`, checked against public keys computed independently in
//! Python (py_ecc, `lockbox-keys/tests/vectors/bls_vectors.json`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use lockbox_testkit::cli::{code, json, mode, stderr, stdout};

use serde_json::Value;

fn lockbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lockbox"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run lockbox")
}

/// Runs lockbox, requires success, and returns stdout.
fn ok(args: &[&str]) -> String {
    let o = lockbox(args);
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    stdout(&o)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const BLS_FILE: &str = "consensus/validator-bls.key";
const VALIDATOR_FILE: &str = "consensus/validator.key";
const NETWORK_FILE: &str = "libp2p/libp2p.key";

/// The three key files of a node, as bytes (`None` when absent).
fn key_files(dir: &Path) -> [Option<Vec<u8>>; 3] {
    [VALIDATOR_FILE, BLS_FILE, NETWORK_FILE].map(|f| fs::read(dir.join(f)).ok())
}

/// Writes a node's key files as Polygon Edge lays them out (0700 directories, 0600 files).
fn write_node(dir: &Path, validator: &str, bls: &str, network: &str) {
    for sub in ["", "consensus", "libp2p"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
        fs::set_permissions(dir.join(sub), fs::Permissions::from_mode(0o700)).unwrap();
    }
    for (file, value) in [
        (VALIDATOR_FILE, validator),
        (BLS_FILE, bls),
        (NETWORK_FILE, network),
    ] {
        let path = dir.join(file);
        fs::write(&path, value).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn init_writes_the_bls_key_file_and_output_reads_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let d = s(&dir);
    let out = ok(&["init", "--data-dir", d, "--bls"]);
    assert!(out.contains("\n[SECRETS INIT]\n"), "{out}");
    assert!(out.contains("Public key (address) = 0x"), "{out}");
    assert!(out.contains("\nBLS Public key       = 0x"), "{out}");
    assert!(out.contains("\nNode ID              = 16Uiu2"), "{out}");

    let file = dir.join(BLS_FILE);
    let stored = fs::read_to_string(&file).unwrap();
    assert_eq!(stored.len(), 64, "32 bytes as hex, no newline");
    assert!(
        stored
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "lowercase hex"
    );
    assert_eq!(mode(&file), 0o600);
    for f in [VALIDATOR_FILE, NETWORK_FILE] {
        assert!(dir.join(f).is_file(), "{f}");
    }

    let bls = ok(&["output", "--data-dir", d, "--bls"]);
    let bls = bls.strip_suffix('\n').unwrap();
    assert!(bls.starts_with("0x") && bls.len() == 98, "{bls}");
    assert!(
        out.contains(&format!("BLS Public key       = {bls}\n")),
        "{out}"
    );
    let address = ok(&["output", "--data-dir", d, "--validator"]);
    let address = address.trim_end();
    assert_eq!(
        ok(&["output", "--data-dir", d, "--ibft-validator"]),
        format!("{address}:{bls}\n")
    );

    let text = ok(&["output", "--data-dir", d]);
    assert!(text.starts_with("\n[SECRETS OUTPUT]\n"), "{text}");
    for printed in [&out, &text] {
        assert!(!printed.contains(&stored[..16]), "BLS key material printed");
    }
    assert!(
        text.contains(&format!("\nBLS Public key       = {bls}\n")),
        "{text}"
    );
    let all = json(&ok(&["output", "--data-dir", d, "--json"]));
    assert_eq!(all["bls"], bls);
    assert_eq!(all["address"], address);
    assert_eq!(all["ibft_validator"], format!("{address}:{bls}"));
    assert_eq!(
        json(&ok(&["output", "--data-dir", d, "--bls", "--json"])),
        serde_json::json!({ "bls": bls })
    );
    assert_eq!(
        json(&ok(&[
            "output",
            "--data-dir",
            d,
            "--ibft-validator",
            "--json"
        ])),
        serde_json::json!({ "ibft_validator": format!("{address}:{bls}") })
    );

    // --bls reads only the BLS key.
    fs::remove_file(dir.join(VALIDATOR_FILE)).unwrap();
    fs::remove_file(dir.join(NETWORK_FILE)).unwrap();
    assert_eq!(
        ok(&["output", "--data-dir", d, "--bls"]),
        format!("{bls}\n")
    );
    // The flags that print one value exclude each other.
    for (a, b) in [("--bls", "--validator"), ("--bls", "--ibft-validator")] {
        assert_eq!(code(&lockbox(&["output", "--data-dir", d, a, b])), 2);
    }
}

/// BLS vector i with the secp256k1 and libp2p keys of the vectors.json entry with the same
/// address (gen_bls_vectors.py pairs them).
#[test]
fn output_matches_public_keys_computed_by_py_ecc() {
    let bls: Value = json(include_str!(
        "../../lockbox-keys/tests/vectors/bls_vectors.json"
    ));
    let ecdsa: Value = json(include_str!(
        "../../lockbox-keys/tests/vectors/vectors.json"
    ));
    let ecdsa = ecdsa["vectors"].as_array().unwrap();
    let vectors = bls["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 5);
    let mut leading_zero = false;
    for v in vectors {
        let label = v["label"].as_str().unwrap();
        let scalar = v["secret_key_hex"].as_str().unwrap();
        leading_zero |= scalar.starts_with("00") && scalar != format!("{}1", "0".repeat(63));
        let pair = ecdsa
            .iter()
            .find(|e| e["address"] == v["address"])
            .unwrap_or_else(|| panic!("{label}: no validator vector with its address"));
        let tmp = tempfile::tempdir().unwrap();
        let d = s(tmp.path());
        write_node(
            tmp.path(),
            pair["private_key_hex"].as_str().unwrap(),
            scalar,
            pair["network_key_hex"].as_str().unwrap(),
        );
        let public_key = v["public_key"].as_str().unwrap();
        let validator = v["genesis_validator"].as_str().unwrap();
        assert_eq!(
            ok(&["output", "--data-dir", d, "--bls"]),
            format!("{public_key}\n"),
            "{label}"
        );
        assert_eq!(
            ok(&["output", "--data-dir", d, "--ibft-validator"]),
            format!("{validator}\n"),
            "{label}"
        );
        assert_eq!(
            json(&ok(&["output", "--data-dir", d, "--json"])),
            serde_json::json!({
                "address": v["address"],
                "bls": public_key,
                "ibft_validator": validator,
                "node_id": pair["node_id"],
            }),
            "{label}"
        );
    }
    assert!(leading_zero, "a vector whose scalar has leading zero bytes");
}

#[test]
fn bls_false_skips_the_bls_key() {
    for flag in [&["--bls=false"][..], &["--bls", "false"]] {
        let tmp = tempfile::tempdir().unwrap();
        let d = s(tmp.path());
        let mut args = vec!["init", "--data-dir", d, "--json"];
        args.extend_from_slice(flag);
        let v = json(&ok(&args));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["address", "node_id"], "{flag:?}");
        assert!(!tmp.path().join(BLS_FILE).exists(), "{flag:?}");
        assert!(tmp.path().join(VALIDATOR_FILE).is_file(), "{flag:?}");

        let text = ok(&["output", "--data-dir", d]);
        assert!(text.contains("\nBLS Public key       = <none>\n"), "{text}");
        let o = lockbox(&["output", "--data-dir", d, "--bls"]);
        assert_eq!(code(&o), 1);
        assert!(
            stderr(&o).contains("validator-bls-key") && stderr(&o).contains("not found"),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            code(&lockbox(&["output", "--data-dir", d, "--ibft-validator"])),
            1
        );
    }
    // Every key can be left out; leaving out all of them is an error that writes nothing.
    let tmp = tempfile::tempdir().unwrap();
    let d = s(tmp.path());
    let v = json(&ok(&[
        "init",
        "--data-dir",
        d,
        "--json",
        "--ecdsa=false",
        "--network=0",
        "--bls=true",
        "--insecure",
    ]));
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["bls_pubkey"]);
    assert_eq!(key_files(tmp.path())[0], None);
    let o = lockbox(&[
        "init",
        "--data-dir",
        s(&tmp.path().join("none")),
        "--ecdsa=false",
        "--network=false",
        "--bls=false",
    ]);
    assert_eq!(code(&o), 1);
    assert!(!tmp.path().join("none").join(VALIDATOR_FILE).exists());
    assert_eq!(code(&lockbox(&["init", "--data-dir", d, "--bls=maybe"])), 2);
}

#[test]
fn adding_the_bls_key_later_leaves_the_other_keys_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let d = s(tmp.path());
    let first = json(&ok(&["init", "--data-dir", d, "--bls=false", "--json"]));
    let before = key_files(tmp.path());
    assert!(before[1].is_none());

    let added = ok(&[
        "init",
        "--data-dir",
        d,
        "--ecdsa=false",
        "--network=false",
        "--bls",
    ]);
    let after = key_files(tmp.path());
    assert_eq!(after[0], before[0], "validator key byte-identical");
    assert_eq!(after[2], before[2], "network key byte-identical");
    assert!(after[1].is_some());
    let bls = ok(&["output", "--data-dir", d, "--bls"]);
    let bls = bls.trim_end();
    // The report shows the whole node, as Polygon Edge's does.
    let address = first["address"].as_str().unwrap();
    let node_id = first["node_id"].as_str().unwrap();
    assert_eq!(
        added,
        format!(
            "\n[SECRETS INIT]\nPublic key (address) = {address}\nBLS Public key       = {bls}\n\
             Node ID              = {node_id}\n\n"
        )
    );

    // A second time refuses and changes nothing.
    let o = lockbox(&[
        "init",
        "--data-dir",
        d,
        "--ecdsa=false",
        "--network=false",
        "--bls",
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("validator-bls-key") && stderr(&o).contains("already exists"),
        "{}",
        stderr(&o)
    );
    assert_eq!(key_files(tmp.path()), after);
    // So does a full init: the node is complete.
    assert_eq!(code(&lockbox(&["init", "--data-dir", d, "--bls"])), 1);
    assert_eq!(key_files(tmp.path()), after);
}

#[test]
fn num_creates_numbered_nodes_all_or_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("node-");
    let p = s(&prefix);
    let v = json(&ok(&[
        "init",
        "--data-dir",
        p,
        "--num",
        "3",
        "--bls",
        "--json",
    ]));
    let nodes = v.as_array().expect("an array with --num above 1");
    assert_eq!(nodes.len(), 3);
    for (i, node) in nodes.iter().enumerate() {
        let dir = tmp.path().join(format!("node-{}", i + 1));
        assert_eq!(node["data_dir"], s(&dir));
        assert!(
            key_files(&dir).iter().all(Option::is_some),
            "{}",
            dir.display()
        );
        let out = json(&ok(&["output", "--data-dir", s(&dir), "--json"]));
        assert_eq!(out["address"], node["address"]);
        assert_eq!(out["bls"], node["bls_pubkey"]);
        assert_eq!(out["node_id"], node["node_id"]);
    }
    assert!(!prefix.exists());

    // Text: one [SECRETS INIT] block per node.
    let text = ok(&[
        "init",
        "--data-dir",
        s(&tmp.path().join("t-")),
        "--num",
        "2",
    ]);
    assert_eq!(text.matches("[SECRETS INIT]").count(), 2, "{text}");

    // A key in any node: refuse, name it, write nothing anywhere.
    let prefix = tmp.path().join("r-");
    let second = tmp.path().join("r-2");
    ok(&["init", "--data-dir", s(&second), "--bls=false"]);
    let before = key_files(&second);
    let o = lockbox(&["init", "--data-dir", s(&prefix), "--num", "3"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("already exist") && err.contains(s(&second)),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
    assert!(!tmp.path().join("r-1").exists(), "nothing written in r-1");
    assert!(!tmp.path().join("r-3").exists(), "nothing written in r-3");
    assert_eq!(key_files(&second), before);

    // A node failing midway: the nodes already written are rolled back too.
    let prefix = tmp.path().join("f-");
    let third = tmp.path().join("f-3");
    fs::create_dir_all(&third).unwrap();
    fs::write(third.join("libp2p"), b"not a directory").unwrap();
    let o = lockbox(&["init", "--data-dir", s(&prefix), "--num", "3", "--bls"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains(s(&third)) && err.contains("network-key"),
        "{err}"
    );
    assert!(err.contains("removed"), "{err}");
    for i in 1..=3 {
        let dir = tmp.path().join(format!("f-{i}"));
        assert_eq!(key_files(&dir), [None, None, None], "{}", dir.display());
    }
}

#[test]
fn num_is_local_only_and_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("secretsManagerConfig.json");
    ok(&[
        "generate",
        "--type",
        "local",
        "--name",
        "n",
        "--dir",
        s(&cfg),
        "--extra",
        "path=node",
    ]);
    let o = lockbox(&["init", "--config", s(&cfg), "--num", "2"]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(err.contains("--num") && err.contains("--config"), "{err}");
    assert!(!tmp.path().join("node").exists());
    for n in ["0", "31", "x"] {
        let o = lockbox(&["init", "--data-dir", s(&tmp.path().join("n-")), "--num", n]);
        assert_eq!(code(&o), 2, "--num {n}");
    }
    // --num 1 is the data directory itself, as in Polygon Edge.
    let v = json(&ok(&[
        "init",
        "--data-dir",
        s(&tmp.path().join("one")),
        "--num",
        "1",
        "--json",
    ]));
    assert!(v.is_object(), "{v}");
    assert!(tmp.path().join("one").join(VALIDATOR_FILE).is_file());
}

#[test]
fn a_bad_bls_key_file_is_an_error_naming_the_file() {
    let bls: Value = json(include_str!(
        "../../lockbox-keys/tests/vectors/bls_vectors.json"
    ));
    let invalid: Vec<String> = bls["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["secret_key_hex"].as_str().unwrap().to_owned())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let d = s(tmp.path());
    ok(&["init", "--data-dir", d, "--bls"]);
    let file = tmp.path().join(BLS_FILE);
    let bad = [
        "ab".repeat(31),
        "ab".repeat(33),
        format!("{}\n", "ab".repeat(32)),
        format!("zz{}", "ab".repeat(31)),
        format!("0x{}", "ab".repeat(31)),
    ];
    for value in bad.iter().chain(&invalid) {
        fs::write(&file, value).unwrap();
        for args in [&["--bls"][..], &["--ibft-validator"], &[], &["--json"]] {
            let mut all = vec!["output", "--data-dir", d];
            all.extend_from_slice(args);
            let o = lockbox(&all);
            assert_eq!(code(&o), 1, "{value:?} {args:?}");
            let err = stderr(&o);
            assert!(
                err.contains("validator-bls-key") && err.contains("corrupt"),
                "{err}"
            );
            assert!(err.contains(s(&file)), "error must name the file: {err}");
            assert!(!err.contains(&value.trim()[2..20]), "{err}");
        }
    }
}
