//! End-to-end tests of `lockbox exec`, `env`, `export` and `import` on local data directories
//! (no emulator needed; `it_exec.rs` runs them on SSM, Secrets Manager and the sealed store).
//!
//! Every format is read back by an independent parser: Python's json, csv and shlex, PyYAML,
//! `sh` itself, Java's `java.util.Properties` and Terraform. PyYAML comes from `python3` when
//! it can import yaml, else from the Python of the moto virtualenv `cargo xtask` installs
//! (beside `LOCKBOX_IT_MOTO_SERVER`, or `<target>/xtask/venv-moto/bin/python`); the YAML check
//! is skipped with a note only when neither exists. Java and Terraform checks are skipped with
//! a note when `java` / `terraform` are not on PATH.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use lockbox_testkit::cli::{code, json, mode, stderr, stdout, workspace_root};

/// Values every format must carry unchanged.
const TRICKY: [(&str, &str); 10] = [
    ("app/quotes", "it's \"quoted\" `cmd` 'single'"),
    ("app/newlines", "line1\nline2\r\n\tindented\n\n"),
    ("app/equals", "a=b==c"),
    ("app/dollar", "$HOME ${PATH} $(id) %{x} $${y}"),
    ("app/hash", "# not a comment # ; ! :"),
    ("app/unicode", "ünïcödé 😀 — ✓ \u{2028}"),
    ("app/backslash", "C:\\path\\n\\"),
    ("app/spaces", "  leading and trailing  "),
    ("app/empty", ""),
    ("app/plain", "hunter2"),
];

fn lockbox(args: &[&str]) -> Output {
    lockbox_env(args, &[], None)
}

fn lockbox_env(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockbox"));
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("LOCKBOX_TOKEN")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run lockbox");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> &Output {
    assert_eq!(code(o), 0, "stderr: {}", stderr(o));
    o
}

/// A data dir holding `secrets`.
fn data_dir(secrets: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("node");
    for (name, value) in secrets {
        ok(&lockbox_env(
            &["put", "--data-dir", d.to_str().unwrap(), name],
            &[],
            Some(value),
        ));
    }
    dir
}

fn node(dir: &tempfile::TempDir) -> String {
    dir.path().join("node").to_str().unwrap().to_owned()
}

fn tricky_dir() -> tempfile::TempDir {
    let secrets: Vec<(&str, &[u8])> = TRICKY.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    data_dir(&secrets)
}

/// The variables TRICKY maps to.
fn tricky_vars() -> BTreeMap<String, String> {
    TRICKY
        .iter()
        .map(|(n, v)| {
            (
                n.rsplit('/').next().unwrap().to_ascii_uppercase(),
                (*v).to_owned(),
            )
        })
        .collect()
}

fn tricky_names() -> BTreeMap<String, String> {
    TRICKY
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// TRICKY with `app/dollar` holding what python-dotenv does not expand (it expands `${NAME}`
/// wherever it appears, so `export -f dotenv` refuses such a value).
fn dotenv_dir() -> tempfile::TempDir {
    let secrets: Vec<(&str, &[u8])> = dotenv_tricky()
        .iter()
        .map(|(n, v)| (*n, v.as_bytes()))
        .collect();
    data_dir(&secrets)
}

fn dotenv_tricky() -> Vec<(&'static str, &'static str)> {
    TRICKY
        .iter()
        .map(|(n, v)| match *n {
            "app/dollar" => (*n, "$HOME $(id) %{x} ${ $"),
            _ => (*n, *v),
        })
        .collect()
}

fn dotenv_vars() -> BTreeMap<String, String> {
    dotenv_tricky()
        .iter()
        .map(|(n, v)| {
            (
                n.rsplit('/').next().unwrap().to_ascii_uppercase(),
                (*v).to_owned(),
            )
        })
        .collect()
}

/// The python-dotenv `cargo xtask dotenv-readers` installs, when it is there.
fn python_dotenv() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    Some(target.join("xtask/venv-dotenv/bin/python")).filter(|p| p.is_file())
}

/// `env -0` output as a map.
fn env_map(bytes: &[u8]) -> BTreeMap<String, String> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let kv = String::from_utf8(kv.to_vec()).unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// A Python 3 that can import yaml: see the module docs.
fn python_with_yaml() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let mut candidates = vec![PathBuf::from("python3")];
    if let Some(server) = std::env::var_os("LOCKBOX_IT_MOTO_SERVER") {
        candidates.push(Path::new(&server).with_file_name("python"));
    }
    candidates.push(target.join("xtask/venv-moto/bin/python"));
    candidates.into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import yaml"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Runs `script` (Python) with the file as argv[1]; it prints a JSON object.
fn python(py: &Path, script: &str, file: &Path) -> BTreeMap<String, String> {
    let o = Command::new(py)
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("run python");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn export_to(dir: &tempfile::TempDir, format: &str) -> PathBuf {
    let file = dir.path().join(format!("out.{format}"));
    ok(&lockbox(&[
        "export",
        "--data-dir",
        &node(dir),
        "--format",
        format,
        "-o",
        file.to_str().unwrap(),
    ]));
    assert_eq!(mode(&file), 0o600);
    file
}

#[test]
fn exec_pristine_passes_the_secrets_and_nothing_else() {
    let dir = tricky_dir();
    let o = lockbox_env(
        &[
            "exec",
            "--data-dir",
            &node(&dir),
            "--prefix",
            "app/",
            "--pristine",
            "--keep-env",
            "KEEP_ME",
            "--",
            "/usr/bin/env",
            "-0",
        ],
        &[("KEEP_ME", "kept"), ("DROP_ME", "dropped")],
        None,
    );
    let mut want = tricky_vars();
    want.insert("KEEP_ME".into(), "kept".into());
    assert_eq!(env_map(&ok(&o).stdout), want);
}

#[test]
fn exec_without_pristine_adds_to_the_environment() {
    let dir = data_dir(&[("db/password", b"pw")]);
    let o = lockbox_env(
        &[
            "exec",
            "--data-dir",
            &node(&dir),
            "--",
            "/usr/bin/env",
            "-0",
        ],
        &[("OTHER", "x"), ("PASSWORD", "old")],
        None,
    );
    let got = env_map(&ok(&o).stdout);
    assert_eq!(got["PASSWORD"], "pw");
    assert_eq!(got["OTHER"], "x");
}

#[test]
fn exec_returns_the_programs_exit_code() {
    let dir = data_dir(&[("a", b"1")]);
    for want in [0, 1, 137] {
        let o = lockbox(&[
            "exec",
            "--data-dir",
            &node(&dir),
            "--",
            "/bin/sh",
            "-c",
            &format!("exit {want}"),
        ]);
        assert_eq!(code(&o), want, "{}", stderr(&o));
    }
    // Killed by SIGKILL: the process itself dies of the signal (a shell reports 137).
    let o = lockbox(&[
        "exec",
        "--data-dir",
        &node(&dir),
        "--",
        "/bin/sh",
        "-c",
        "kill -9 $$",
    ]);
    assert_eq!(o.status.signal(), Some(9));
    let exe = env!("CARGO_BIN_EXE_lockbox");
    let o = Command::new("/bin/sh")
        .args([
            "-c",
            "\"$0\" exec --data-dir \"$1\" -- /bin/sh -c 'kill -9 $$'; echo $?",
        ])
        .arg(exe)
        .arg(node(&dir))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "137");
    let o = lockbox(&["exec", "--data-dir", &node(&dir), "--", "no-such-program-x"]);
    assert_eq!(code(&o), 127, "{}", stderr(&o));
    assert!(stderr(&o).contains("no-such-program-x"), "{}", stderr(&o));
}

#[test]
fn exec_is_the_program_so_sigterm_reaches_it() {
    let dir = data_dir(&[("a", b"1")]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lockbox"))
        .args([
            "exec",
            "--data-dir",
            &node(&dir),
            "--",
            "/bin/sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(lines.next().unwrap().unwrap(), "got-term");
    assert_eq!(child.wait().unwrap().code(), Some(42));
}

#[test]
fn strict_replaces_only_sentinels_and_a_missing_one_fails() {
    let dir = data_dir(&[("db/password", b"pw"), ("db/user", b"u")]);
    let n = node(&dir);
    let o = lockbox_env(
        &[
            "exec",
            "--data-dir",
            &n,
            "--strict",
            "--",
            "/usr/bin/env",
            "-0",
        ],
        &[("PASSWORD", "lockbox"), ("OTHER", "x")],
        None,
    );
    let got = env_map(&ok(&o).stdout);
    assert_eq!(got["PASSWORD"], "pw");
    assert_eq!(got["OTHER"], "x");
    assert!(!got.contains_key("USER") || got["USER"] != "u", "{got:?}");
    let o = lockbox_env(
        &[
            "exec",
            "--data-dir",
            &n,
            "--strict=fill-me",
            "--",
            "/usr/bin/env",
            "-0",
        ],
        &[("USER", "fill-me"), ("PASSWORD", "lockbox")],
        None,
    );
    let got = env_map(&ok(&o).stdout);
    assert_eq!(
        (got["USER"].as_str(), got["PASSWORD"].as_str()),
        ("u", "lockbox")
    );
    let o = lockbox_env(
        &["exec", "--data-dir", &n, "--strict", "--", "/usr/bin/env"],
        &[("PASSWORD", "lockbox"), ("MISSING_ONE", "lockbox")],
        None,
    );
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("MISSING_ONE"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("pw"));
}

#[test]
fn collisions_name_both_secrets_and_a_prefix_resolves_them() {
    let dir = data_dir(&[("a/password", b"1"), ("b/password", b"2")]);
    let n = node(&dir);
    for cmd in [
        &["exec", "--data-dir", &n, "--", "/usr/bin/env"][..],
        &["env", "--data-dir", &n],
    ] {
        let o = lockbox(cmd);
        assert_eq!(code(&o), 1);
        let e = stderr(&o);
        assert!(
            e.contains("a/password") && e.contains("b/password") && e.contains("PASSWORD"),
            "{e}"
        );
    }
    let o = lockbox(&["env", "--data-dir", &n, "--prefix", "b/"]);
    assert_eq!(stdout(ok(&o)), "export PASSWORD='2'\n");
    // Across sources the later one wins.
    let other = data_dir(&[("x/password", b"3")]);
    let o = lockbox(&[
        "env",
        "--prefix",
        "a/",
        "--data-dir",
        &n,
        "--data-dir",
        &node(&other),
        "--prefix",
        "",
    ]);
    assert_eq!(stdout(ok(&o)), "export PASSWORD='3'\n");
}

#[test]
fn binary_values_are_refused_unless_base64() {
    let dir = data_dir(&[("bin", &[0xff, 0x00, 0x10]), ("text", b"t")]);
    let n = node(&dir);
    let o = lockbox(&["exec", "--data-dir", &n, "--", "/usr/bin/env"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("bin") && stderr(&o).contains("--binary=base64"),
        "{}",
        stderr(&o)
    );
    let o = lockbox(&["env", "--data-dir", &n, "--binary=base64"]);
    assert_eq!(stdout(ok(&o)), "export BIN='/wAQ'\nexport TEXT='t'\n");
}

#[test]
fn env_round_trips_through_sh_and_shlex() {
    let dir = tricky_dir();
    let o = lockbox(&["env", "--data-dir", &node(&dir)]);
    let file = dir.path().join("env.sh");
    std::fs::write(&file, &ok(&o).stdout).unwrap();
    // A real shell: `. FILE` then the environment it exported.
    let o = Command::new("/bin/sh")
        .args(["-c", ". \"$1\"; exec /usr/bin/env -0", "sh"])
        .arg(&file)
        .env_clear()
        .output()
        .unwrap();
    let mut got = env_map(&o.stdout);
    got.retain(|k, _| tricky_vars().contains_key(k));
    assert_eq!(got, tricky_vars());
    // Python's shlex.
    let got = python(
        Path::new("python3"),
        "import json, shlex, sys\n\
         words = shlex.split(open(sys.argv[1], encoding='utf-8', newline='').read())\n\
         assert words[0::2] == ['export'] * (len(words) // 2), words\n\
         print(json.dumps(dict(w.split('=', 1) for w in words[1::2])))",
        &file,
    );
    assert_eq!(got, tricky_vars());
    let o = lockbox(&["--json", "env", "--data-dir", &node(&dir)]);
    let got: BTreeMap<String, String> = serde_json::from_value(json(&stdout(ok(&o)))).unwrap();
    assert_eq!(got, tricky_vars());
}

#[test]
fn json_csv_tsv_and_dotenv_round_trip_through_python() {
    let dir = tricky_dir();
    let py = Path::new("python3");
    let f = export_to(&dir, "json");
    let got = python(
        py,
        "import json, sys; print(json.dumps(json.load(open(sys.argv[1], encoding='utf-8'))))",
        &f,
    );
    assert_eq!(got, tricky_names());
    for (format, delimiter) in [("csv", ","), ("tsv", "\\t")] {
        let f = export_to(&dir, format);
        let got = python(
            py,
            &format!(
                "import csv, json, sys\n\
                 rows = list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8'), delimiter='{delimiter}'))\n\
                 assert all(len(r) == 2 for r in rows), rows\n\
                 print(json.dumps(dict(rows)))"
            ),
            &f,
        );
        assert_eq!(got, tricky_names(), "{format}");
    }
    // dotenv: a value python-dotenv would expand (`${PATH}`) is refused, naming the secret.
    let o = lockbox(&["export", "--data-dir", &node(&dir), "-f", "dotenv"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("app/dollar") && stderr(&o).contains("-f json"),
        "{}",
        stderr(&o)
    );
    let Some(py) = python_dotenv() else {
        eprintln!(
            "SKIPPED the python-dotenv half: run `cargo xtask dotenv-readers` (the npm reader \
             is checked in lockbox-env's tests/dotenv_readers.rs)"
        );
        return;
    };
    let dir = dotenv_dir();
    let f = export_to(&dir, "dotenv");
    let got = python(
        &py,
        "import json, sys\n\
         from dotenv import dotenv_values\n\
         print(json.dumps(dotenv_values(sys.argv[1], encoding='utf-8')))",
        &f,
    );
    assert_eq!(got, dotenv_vars());
}

#[test]
fn yaml_round_trips_through_pyyaml() {
    let Some(py) = python_with_yaml() else {
        eprintln!(
            "SKIPPED yaml_round_trips_through_pyyaml: no Python with PyYAML (python3, or the moto \
             virtualenv `cargo xtask emulator start` installs)"
        );
        return;
    };
    let dir = tricky_dir();
    let f = export_to(&dir, "yaml");
    let got = python(
        &py,
        "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding='utf-8'))))",
        &f,
    );
    assert_eq!(got, tricky_names());
}

#[test]
fn java_properties_round_trip_through_java() {
    let Some(java) = which("java") else {
        eprintln!("SKIPPED java_properties_round_trip_through_java: no `java` on PATH");
        return;
    };
    let dir = tricky_dir();
    let f = export_to(&dir, "java-properties");
    let program = dir.path().join("Props.java");
    std::fs::write(
        &program,
        r#"import java.io.*; import java.util.*;
public class Props {
  static String hex(String s) throws Exception {
    StringBuilder b = new StringBuilder();
    for (byte x : s.getBytes("UTF-8")) b.append(String.format("%02x", x));
    return b.toString();
  }
  public static void main(String[] a) throws Exception {
    Properties p = new Properties();
    try (InputStream in = new FileInputStream(a[0])) { p.load(in); }
    for (String k : new TreeSet<>(p.stringPropertyNames()))
      System.out.println(hex(k) + " " + hex(p.getProperty(k)));
  }
}"#,
    )
    .unwrap();
    let o = Command::new(java).arg(&program).arg(&f).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let unhex = |h: &str| {
        let bytes: Vec<u8> = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect();
        String::from_utf8(bytes).unwrap()
    };
    let got: BTreeMap<String, String> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (unhex(k), unhex(v))
        })
        .collect();
    assert_eq!(got, tricky_names());
}

#[test]
fn tfvars_round_trip_through_terraform() {
    let Some(terraform) = which("terraform") else {
        eprintln!("SKIPPED tfvars_round_trip_through_terraform: no `terraform` on PATH");
        return;
    };
    let dir = tricky_dir();
    let f = export_to(&dir, "tfvars");
    let vars = tricky_vars();
    let tf: String = vars
        .keys()
        .map(|k| format!("variable \"{k}\" {{ type = string }}\n"))
        .collect();
    std::fs::write(dir.path().join("main.tf"), tf).unwrap();
    let expr: Vec<String> = vars.keys().map(|k| format!("{k} = var.{k}")).collect();
    let mut child = Command::new(terraform)
        .arg("console")
        .arg(format!("-var-file={}", f.display()))
        .current_dir(dir.path())
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(
        child.stdin.take().unwrap(),
        "jsonencode({{{}}})",
        expr.join(", ")
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The console prints the JSON text as a quoted string.
    let text: String = serde_json::from_str(String::from_utf8(o.stdout).unwrap().trim()).unwrap();
    let got: BTreeMap<String, String> = serde_json::from_str(&text).unwrap();
    assert_eq!(got, vars);
}

#[test]
fn export_to_a_file_is_private_and_never_replaced_without_force() {
    let dir = data_dir(&[("a", b"1")]);
    let file = dir.path().join("out.json");
    std::fs::write(&file, "keep").unwrap();
    let args = [
        "export",
        "--data-dir",
        &node(&dir),
        "-o",
        file.to_str().unwrap(),
    ];
    let o = lockbox(&args);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    let mut forced = args.to_vec();
    forced.push("--force");
    let o = lockbox(&[&["--json"][..], &forced].concat());
    let report = json(&stdout(ok(&o)));
    assert_eq!(report["count"], 1);
    assert_eq!(report["format"], "json");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "{\n  \"a\": \"1\"\n}\n"
    );
}

#[test]
fn import_checks_the_whole_file_before_writing() {
    let dir = data_dir(&[]);
    let n = node(&dir);
    let bad = dir.path().join("bad.env");
    std::fs::write(&bad, "GOOD=1\na//b=2\nALSO_GOOD='x y'\n").unwrap();
    let o = lockbox(&["import", "--data-dir", &n, bad.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("a//b") && stderr(&o).contains("nothing was written"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(ok(&lockbox(&["list", "--data-dir", &n]))), "");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"a": "1", "n": 2, "l": [], "b": "2"}"#).unwrap();
    let o = lockbox(&["import", "--data-dir", &n, bad.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("\"n\"") && stderr(&o).contains("\"l\""),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(ok(&lockbox(&["list", "--data-dir", &n]))), "");

    // A good file: exported from one store, imported into another, read back the same.
    let src = tricky_dir();
    let f = export_to(&src, "json");
    let o = lockbox(&["--json", "import", "--data-dir", &n, f.to_str().unwrap()]);
    assert_eq!(
        json(&stdout(ok(&o)))["stored"].as_array().unwrap().len(),
        TRICKY.len()
    );
    let o = lockbox(&["--json", "env", "--data-dir", &n]);
    let got: BTreeMap<String, String> = serde_json::from_value(json(&stdout(ok(&o)))).unwrap();
    assert_eq!(got, tricky_vars());
    // Again: every name exists now, so nothing is written without --overwrite.
    let o = lockbox(&["import", "--data-dir", &n, f.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("--overwrite") && stderr(&o).contains("app/plain"),
        "{}",
        stderr(&o)
    );
    ok(&lockbox(&[
        "import",
        "--data-dir",
        &n,
        "--overwrite",
        f.to_str().unwrap(),
    ]));
    // YAML and dotenv too (dotenv without the value python-dotenv would expand).
    let dotenv_src = dotenv_dir();
    for (format, src, want) in [
        ("yaml", &src, tricky_vars()),
        ("dotenv", &dotenv_src, dotenv_vars()),
    ] {
        let target = data_dir(&[]);
        let file = export_to(src, format);
        ok(&lockbox(&[
            "import",
            "--data-dir",
            &node(&target),
            "--format",
            format,
            file.to_str().unwrap(),
        ]));
        let o = lockbox(&["--json", "env", "--data-dir", &node(&target)]);
        let got: BTreeMap<String, String> = serde_json::from_value(json(&stdout(ok(&o)))).unwrap();
        assert_eq!(got, want, "{format}");
    }
}

#[test]
fn usage_errors() {
    for args in [
        &["exec", "--", "env"][..],
        &["exec", "--data-dir", "d"],
        &["env", "--data-dir", "d", "--key-file", "k"],
        &["export", "--data-dir", "d", "--format", "xml"],
        &["import", "--data-dir", "d", "--data-dir", "e", "f.json"],
    ] {
        let o = lockbox(args);
        assert_ne!(code(&o), 0, "{args:?}");
    }
    let o = lockbox(&["import", "--data-dir", "d", "--data-dir", "e", "f.json"]);
    assert!(stderr(&o).contains("one source"), "{}", stderr(&o));
}

#[test]
fn import_failing_midway_names_what_was_stored_and_what_was_not() {
    let dir = data_dir(&[]);
    let n = node(&dir);
    // A directory where secret `c` would go: the backend's write of `c` fails.
    std::fs::create_dir_all(dir.path().join("node/secrets/c/sub")).unwrap();
    let file = dir.path().join("in.env");
    std::fs::write(&file, "a=1\nb=2\nc=3\nd=4\n").unwrap();
    let o = lockbox(&[
        "import",
        "--data-dir",
        &n,
        "--overwrite",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    let e = stderr(&o);
    assert!(
        e.contains("secret c")
            && e.contains("stored before the failure: a, b; not stored: c and d"),
        "{e}"
    );
    assert_eq!(stdout(ok(&lockbox(&["list", "--data-dir", &n]))), "a\nb\n");
}
