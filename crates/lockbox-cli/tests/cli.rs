//! End-to-end tests: run the built `lockbox` binary as a user would.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use lockbox_testkit::cli::{code, json, mode, stderr, stdout};

fn lockbox(args: &[&str]) -> Output {
    lockbox_with(args, None, &[])
}

fn lockbox_with(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockbox"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("LOCKBOX_TOKEN")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run lockbox");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn init_json(dir: &Path) -> (String, String) {
    let o = lockbox(&["init", "--data-dir", dir.to_str().unwrap(), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&stdout(&o));
    let obj = v.as_object().unwrap();
    assert_eq!(
        obj.len(),
        3,
        "exactly address, bls_pubkey and node_id (Polygon Edge's keys): {v}"
    );
    assert!(obj["bls_pubkey"].as_str().unwrap().starts_with("0x"), "{v}");
    (
        obj["address"].as_str().unwrap().to_owned(),
        obj["node_id"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn init_creates_polygon_edge_layout_with_private_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let o = lockbox(&["init", "--data-dir", dir.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Public key (address) = 0x"), "{out}");
    assert!(out.contains("Node ID              = 16Uiu2"), "{out}");
    assert!(stderr(&o).contains("unencrypted"), "{}", stderr(&o));

    let validator = dir.join("consensus/validator.key");
    let network = dir.join("libp2p/libp2p.key");
    let v = fs::read_to_string(&validator).unwrap();
    assert_eq!(v.len(), 64);
    assert!(
        v.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "lowercase hex, no newline"
    );
    let n = fs::read_to_string(&network).unwrap();
    assert!(
        n.starts_with("08021220") && n.len() == 72,
        "libp2p secp256k1 protobuf hex"
    );
    for f in [&validator, &network] {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    for d in [&dir, &dir.join("consensus"), &dir.join("libp2p")] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
}

#[test]
fn output_reads_back_what_init_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let (address, node_id) = init_json(tmp.path());
    assert!(address.starts_with("0x") && address.len() == 42);
    assert!(node_id.starts_with("16Uiu2"));

    let o = lockbox(&["output", "--data-dir", d, "--json"]);
    assert_eq!(code(&o), 0);
    let out = json(&stdout(&o));
    let bls = out["bls"].as_str().unwrap().to_owned();
    assert_eq!(
        out,
        serde_json::json!({"address": address, "bls": bls, "ibft_validator": format!("{address}:{bls}"), "node_id": node_id})
    );

    let o = lockbox(&["output", "--data-dir", d, "--validator"]);
    assert_eq!(stdout(&o), format!("{address}\n"));
    let o = lockbox(&["output", "--data-dir", d, "--node-id"]);
    assert_eq!(stdout(&o), format!("{node_id}\n"));

    let o = lockbox(&["output", "--data-dir", d]);
    assert!(stdout(&o).contains(&address) && stdout(&o).contains(&node_id));

    // --validator reads only the validator key.
    fs::remove_file(tmp.path().join("libp2p/libp2p.key")).unwrap();
    let o = lockbox(&["output", "--data-dir", d, "--validator"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{address}\n"));
    let o = lockbox(&["output", "--data-dir", d]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("network-key") && stderr(&o).contains("not found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn init_refuses_when_any_key_exists_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    init_json(tmp.path());
    let before = fs::read(tmp.path().join("consensus/validator.key")).unwrap();
    let o = lockbox(&["init", "--data-dir", d]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("validator-key") && err.contains("already exists"),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
    assert_eq!(
        fs::read(tmp.path().join("consensus/validator.key")).unwrap(),
        before
    );

    // Only the network key present: refuse, name it, and create no validator key.
    let tmp2 = tempfile::tempdir().unwrap();
    init_json(tmp2.path());
    fs::remove_file(tmp2.path().join("consensus/validator.key")).unwrap();
    let o = lockbox(&[
        "init",
        "--data-dir",
        tmp2.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&o), 1);
    let err = json(&stderr(&o));
    let msg = err["error"].as_str().unwrap();
    assert!(
        msg.contains("network-key") && msg.contains("already exists"),
        "{msg}"
    );
    assert!(!msg.contains("validator-key already"), "{msg}");
    assert!(!tmp2.path().join("consensus/validator.key").exists());
}

#[test]
fn init_failing_midway_removes_what_it_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    // A file where the libp2p directory should be makes the network key write fail.
    fs::write(tmp.path().join("libp2p"), b"not a directory").unwrap();
    let o = lockbox(&["init", "--data-dir", tmp.path().to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(err.contains("network-key"), "{err}");
    assert!(err.contains("left as it was"), "{err}");
    assert!(
        !tmp.path().join("consensus/validator.key").exists(),
        "validator key must be rolled back"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
}

#[test]
fn corrupt_and_exposed_key_files_are_refused_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    init_json(tmp.path());
    let validator = tmp.path().join("consensus/validator.key");

    fs::set_permissions(&validator, fs::Permissions::from_mode(0o644)).unwrap();
    let o = lockbox(&["output", "--data-dir", d, "--validator"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("chmod 600 {}", validator.display())),
        "{err}"
    );

    fs::set_permissions(&validator, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&validator, "zz-not-hex").unwrap();
    let o = lockbox(&["output", "--data-dir", d, "--validator"]);
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("validator-key") && err.contains("corrupt"),
        "{err}"
    );
    assert!(
        err.contains(validator.to_str().unwrap()),
        "error must name the file: {err}"
    );
    assert!(!err.contains("zz-not-hex"), "{err}");
}

#[test]
fn generate_writes_config_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("secretsManagerConfig.json");
    let p = path.to_str().unwrap();
    let args = [
        "generate",
        "--type",
        "aws-ssm",
        "--name",
        "node1",
        "--dir",
        p,
        "--extra",
        "region=us-east-1,ssm-parameter-path=/edge/nodes",
    ];
    let o = lockbox(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&fs::read_to_string(&path).unwrap());
    assert_eq!(v["type"], "aws-ssm");
    assert_eq!(v["name"], "node1");
    assert_eq!(v["extra"]["ssm-parameter-path"], "/edge/nodes");
    assert_eq!(v["token"], "");
    assert_eq!(mode(&path), 0o600);

    let o = lockbox(&args);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("already exists") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    let mut forced = args.to_vec();
    forced.extend(["--force", "--namespace", "ns2"]);
    assert_eq!(code(&lockbox(&forced)), 0);
    assert_eq!(
        json(&fs::read_to_string(&path).unwrap())["namespace"],
        "ns2"
    );
}

#[test]
fn generate_reports_bad_input_and_never_prints_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("c.json");
    let p = p.to_str().unwrap();
    let o = lockbox(&[
        "generate",
        "--type",
        "aws-ssm",
        "--name",
        "n",
        "--dir",
        p,
        "--extra",
        "region=us-east-1,oops",
    ]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("\"oops\" has no '='"), "{}", stderr(&o));
    assert!(!Path::new(p).exists(), "nothing written on error");

    let o = lockbox(&[
        "generate",
        "--type",
        "aws-ssm",
        "--name",
        "n",
        "--dir",
        p,
        "--extra",
        "region=us-east-1",
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("extra.ssm-parameter-path"),
        "{}",
        stderr(&o)
    );

    let o = lockbox(&["generate", "--type", "nope", "--name", "n", "--dir", p]);
    assert_eq!(code(&o), 2, "usage errors exit 2");

    let o = lockbox_with(
        &[
            "generate",
            "--type",
            "hashicorp-vault",
            "--name",
            "n",
            "--dir",
            p,
            "--server-url",
            "http://127.0.0.1:8200",
            "--json",
        ],
        None,
        &[("LOCKBOX_TOKEN", "s.TOPSECRETTOKEN"), ("RUST_LOG", "trace")],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stdout(&o).contains("TOPSECRET") && !stderr(&o).contains("TOPSECRET"));
    assert_eq!(
        json(&fs::read_to_string(p).unwrap())["token"],
        "s.TOPSECRETTOKEN"
    );
}

#[test]
fn init_and_output_through_a_local_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("secretsManagerConfig.json");
    let c = cfg.to_str().unwrap();
    let o = lockbox(&[
        "generate",
        "--type",
        "local",
        "--name",
        "n1",
        "--dir",
        c,
        "--extra",
        "path=node",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = lockbox(&["init", "--config", c, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let init = json(&stdout(&o));
    assert!(
        tmp.path().join("node/consensus/validator.key").is_file(),
        "path is relative to the config file"
    );
    let o = lockbox(&["output", "--config", c, "--json"]);
    let output = json(&stdout(&o));
    // Polygon Edge names the BLS key `bls_pubkey` in init's JSON and `bls` in output's.
    for (init_key, output_key) in [
        ("address", "address"),
        ("node_id", "node_id"),
        ("bls_pubkey", "bls"),
    ] {
        assert_eq!(output[output_key], init[init_key], "{output_key}");
    }
}

#[test]
fn get_put_delete_list_round_trip_any_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let value: Vec<u8> = (0..=255u8).collect();
    let o = lockbox_with(&["put", "--data-dir", d, "app/blob"], Some(&value), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = lockbox(&["get", "--data-dir", d, "app/blob"]);
    assert_eq!(o.stdout, value, "byte-exact, no newline added");

    let o = lockbox_with(&["put", "--data-dir", d, "app/blob"], Some(b"other"), &[]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("app/blob") && stderr(&o).contains("already exists"),
        "{}",
        stderr(&o)
    );
    let o = lockbox_with(
        &["put", "--data-dir", d, "app/blob", "--overwrite"],
        Some(b"other"),
        &[],
    );
    assert_eq!(code(&o), 0);
    assert_eq!(
        lockbox(&["get", "--data-dir", d, "app/blob"]).stdout,
        b"other"
    );

    let file = tmp.path().join("value.txt");
    fs::write(&file, "from-file").unwrap();
    let o = lockbox(&[
        "put",
        "--data-dir",
        d,
        "app/text",
        "--from-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = lockbox(&["get", "--data-dir", d, "app/text", "--json"]);
    assert_eq!(
        json(&stdout(&o)),
        serde_json::json!({"name": "app/text", "value": "from-file"})
    );

    let o = lockbox(&["list", "--data-dir", d]);
    assert_eq!(stdout(&o), "app/blob\napp/text\n");
    let o = lockbox(&["list", "--data-dir", d, "app/t", "--json"]);
    assert_eq!(json(&stdout(&o)), serde_json::json!(["app/text"]));

    assert_eq!(code(&lockbox(&["delete", "--data-dir", d, "app/blob"])), 0);
    let o = lockbox(&["get", "--data-dir", d, "app/blob"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("app/blob") && stderr(&o).contains("not found"),
        "{}",
        stderr(&o)
    );
    let o = lockbox(&["delete", "--data-dir", d, "app/blob", "--json"]);
    assert_eq!(code(&o), 1);
    assert!(
        json(&stderr(&o))["error"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn bad_names_and_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let o = lockbox(&["get", "--data-dir", d, "../etc/passwd"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("invalid name"), "{}", stderr(&o));
    assert_eq!(code(&lockbox(&["get", "x"])), 2, "no backend given");
    assert_eq!(
        code(&lockbox(&[
            "get",
            "--data-dir",
            d,
            "--config",
            "c.json",
            "x"
        ])),
        2,
        "both given"
    );
    assert_eq!(
        code(&lockbox(&[
            "output",
            "--data-dir",
            d,
            "--validator",
            "--node-id"
        ])),
        2
    );
    let o = lockbox(&[
        "init",
        "--config",
        tmp.path().join("missing.json").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        json(&stderr(&o))["error"]
            .as_str()
            .unwrap()
            .contains("missing.json")
    );
}

#[test]
fn no_key_material_in_any_output_at_trace_level() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let trace = [("RUST_LOG", "trace")];
    let mut outputs = vec![lockbox_with(&["init", "--data-dir", d], None, &trace)];
    for extra in [&[][..], &["--validator"], &["--node-id"], &["--json"]] {
        let mut args = vec!["output", "--data-dir", d];
        args.extend_from_slice(extra);
        outputs.push(lockbox_with(&args, None, &trace));
    }
    outputs.push(lockbox_with(&["list", "--data-dir", d], None, &trace));
    let validator = fs::read_to_string(tmp.path().join("consensus/validator.key")).unwrap();
    let network = fs::read_to_string(tmp.path().join("libp2p/libp2p.key")).unwrap();
    let scalar = &network[8..];
    let mut all = String::new();
    for o in &outputs {
        assert_eq!(code(o), 0, "{}", stderr(o));
        all.push_str(&stdout(o));
        all.push_str(&stderr(o));
    }
    let lower = all.to_ascii_lowercase();
    for secret in [&validator[..], &network[..], scalar] {
        assert!(
            !lower.contains(&secret[..16]),
            "key material leaked into output"
        );
    }
    // The raw bytes as decimal lists (a Debug of Vec<u8>) must not appear either.
    let first = u8::from_str_radix(&validator[..2], 16).unwrap();
    let second = u8::from_str_radix(&validator[2..4], 16).unwrap();
    assert!(!all.contains(&format!("[{first}, {second},")));
}
