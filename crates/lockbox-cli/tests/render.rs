//! `lockbox render` on a local data dir: filters and functions, owner-only atomic writes only
//! on change, a missing secret failing with its name and line and writing nothing, and
//! `--watch` rewriting each new version atomically (a reader polling the file never sees a
//! partial or empty one) with `--on-change` run once per change. Deadlines are generous;
//! nothing is timed.

mod watch_child;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lockbox_testkit::cli::{code, mode, stderr};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use watch_child::{DEADLINE, lockbox, put};

const TEMPLATE: &str = r#"# app config
password={{ secret("db/password") }}
shell={{ secret("db/password") | shell }}
json={{ secret("db/password") | json }}
yaml={{ secret("db/password") | yaml }}
dotenv={{ secret("db/password") | dotenv }}
db={{ (secret("db/config") | fromjson).host }}:{{ (secret("db/config") | fromjson).port }}
user={{ env("RENDER_TEST_USER") }} {{ env("RENDER_TEST_UNSET", "fallback") }}
"#;

fn seeded() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    put(&node, "db/password", "it's \"x\" \\ $y");
    put(
        &node,
        "db/config",
        r#"{"host": "db.internal", "port": 5432}"#,
    );
    fs::write(dir.path().join("app.j2"), TEMPLATE).unwrap();
    let n = node.to_str().unwrap().to_owned();
    (dir, n)
}

fn render(dir: &Path, node: &str, extra: &[&str]) -> std::process::Output {
    lockbox()
        .current_dir(dir)
        .env("RENDER_TEST_USER", "svc")
        .args([
            "render",
            "--data-dir",
            node,
            "--template",
            "app.j2",
            "--out",
            "out/app.conf",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn renders_with_every_filter_owner_only() {
    let (dir, node) = seeded();
    let o = render(dir.path(), &node, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = dir.path().join("out/app.conf");
    let text = fs::read_to_string(&out).unwrap();
    let want = "# app config\n\
        password=it's \"x\" \\ $y\n\
        shell='it'\\''s \"x\" \\ $y'\n\
        json=\"it's \\\"x\\\" \\\\ $y\"\n\
        yaml=\"it's \\\"x\\\" \\\\ $y\"\n\
        dotenv=it's \"x\" \\ $y\n\
        db=db.internal:5432\n\
        user=svc fallback\n";
    assert_eq!(text, want);
    assert_eq!(mode(&out), 0o600);
    // Same bytes: not rewritten (same inode), and --on-change does not run.
    let inode = fs::metadata(&out).unwrap().ino();
    let marker = dir.path().join("ran");
    let cmd = format!("touch {}", marker.display());
    let o = render(dir.path(), &node, &["--on-change", &cmd, "--mode", "0640"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::metadata(&out).unwrap().ino(), inode);
    assert!(!marker.exists());
    assert_eq!(mode(&out), 0o640);
    // A change: rewritten, --on-change runs.
    put(Path::new(&node), "db/password", "new");
    let o = render(dir.path(), &node, &["--on-change", &cmd]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(fs::read_to_string(&out).unwrap().contains("password=new\n"));
    assert!(marker.exists());
}

#[test]
fn a_missing_secret_names_itself_and_the_line_and_writes_nothing() {
    let (dir, node) = seeded();
    fs::write(
        dir.path().join("bad.j2"),
        "ok={{ secret(\"db/password\") }}\nbad={{ secret(\"db/nope\") }}\n",
    )
    .unwrap();
    fs::create_dir(dir.path().join("out")).unwrap();
    fs::write(dir.path().join("out/app.conf"), "old").unwrap();
    // Two pairs: the good one is not written either.
    let o = lockbox()
        .current_dir(dir.path())
        .args(["render", "--data-dir", &node])
        .args(["--template", "app.j2", "--out", "out/app.conf"])
        .args(["--template", "bad.j2", "--out", "out/bad.conf"])
        .env("RENDER_TEST_USER", "svc")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    assert!(
        err.contains("\"db/nope\"") && err.contains("bad.j2 line 2"),
        "{err}"
    );
    assert!(!err.contains("it's"), "{err}");
    assert_eq!(
        fs::read_to_string(dir.path().join("out/app.conf")).unwrap(),
        "old"
    );
    assert!(!dir.path().join("out/bad.conf").exists());
    // A value the dotenv filter cannot carry, an unpaired --out, a bad mode.
    put(Path::new(&node), "db/password", "${HOME}");
    let o = render(dir.path(), &node, &[]);
    assert!(
        code(&o) == 1 && stderr(&o).contains("app.j2 line 6"),
        "{}",
        stderr(&o)
    );
    // An unpaired --out is a usage error (exit 2) with the command's usage line.
    let o = render(dir.path(), &node, &["--out", "x"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Usage: lockbox render "),
        "{}",
        stderr(&o)
    );
    let o = render(dir.path(), &node, &["--mode", "999"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn watch_rewrites_each_version_atomically_and_runs_on_change_once_per_change() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    put(&node, "db/password", "v0");
    // A big output, so a torn write would be visible.
    fs::write(
        dir.path().join("t.j2"),
        "{% for i in range(2000) %}{{ secret(\"db/password\") }}{% endfor %}\n",
    )
    .unwrap();
    let out = dir.path().join("out.txt");
    let ran = dir.path().join("ran.log");
    let mut child = lockbox()
        .current_dir(dir.path())
        .args([
            "render",
            "--data-dir",
            node.to_str().unwrap(),
            "--watch=200ms",
        ])
        .args(["--template", "t.j2", "--out", out.to_str().unwrap()])
        .args([
            "--on-change",
            &format!("sh -c 'echo ran >> {}'", ran.display()),
        ])
        .env("RUST_LOG", "lockbox_env=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    let wait = |what: &str, ok: &dyn Fn() -> bool| {
        let end = Instant::now() + DEADLINE;
        while !ok() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let runs = || fs::read_to_string(&ran).unwrap_or_default().lines().count();
    wait("the first output", &|| out.exists() && runs() == 1);
    // A reader polling the file the whole time.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, out) = (stop.clone(), out.clone());
        std::thread::spawn(move || {
            let mut bad = Vec::new();
            let mut reads = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let text = fs::read_to_string(&out).unwrap();
                let whole = (0..4).any(|v| text == format!("{}\n", format!("v{v}").repeat(2000)));
                if !whole {
                    bad.push(text.len());
                }
                reads += 1;
            }
            (reads, bad)
        })
    };
    let polls = || {
        fs::read_to_string(dir.path().join("err"))
            .unwrap_or_default()
            .matches(": no change")
            .count()
    };
    for v in 1..4 {
        let inode = fs::metadata(&out).unwrap().ino();
        let seen = polls();
        wait("two polls without change", &|| polls() >= seen + 2);
        assert_eq!(
            fs::metadata(&out).unwrap().ino(),
            inode,
            "rewritten without a change"
        );
        assert_eq!(runs(), v, "--on-change ran without a change");
        put(&node, "db/password", &format!("v{v}"));
        wait("the new version", &|| {
            fs::read_to_string(&out)
                .unwrap()
                .starts_with(&format!("v{v}"))
                && runs() == v + 1
        });
    }
    stop.store(true, Ordering::SeqCst);
    let (reads, bad) = reader.join().unwrap();
    assert!(
        bad.is_empty(),
        "{} of {reads} reads saw a partial file: {bad:?}",
        bad.len()
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(runs(), 4);
}
