//! `lockbox serve --write-token FILE [--token-group GROUP]` (issue 25 item 4): the SSRF token
//! file the AWS Secrets Manager Agent's install script creates, as the systemd unit's
//! `ExecStartPre` runs it. Runs the built binary; needs no emulator.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use lockbox_testkit::cli::{code, json, mode, stderr, stdout};

fn write_token(file: &Path, group: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lockbox"));
    command
        .args(["--json", "serve", "--write-token"])
        .arg(file)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    if let Some(group) = group {
        command.args(["--token-group", group]);
    }
    command.output().expect("run lockbox")
}

fn read(file: &Path) -> String {
    std::fs::read_to_string(file).unwrap()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Asserts the run failed with exit 1 and returns its stderr.
fn refused(o: &Output) -> String {
    assert_eq!(code(o), 1, "stdout: {}, stderr: {}", stdout(o), stderr(o));
    stderr(o)
}

#[test]
fn a_new_token_is_32_random_bytes_in_hex_mode_0640_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let o = write_token(&file, None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report = json(&stdout(&o));
    assert_eq!(report["created"], true, "{report}");
    assert_eq!(report["token_file"], file.to_str().unwrap());
    assert_eq!(mode(&file), 0o640);
    let token = read(&file);
    assert_eq!(token.len(), 64, "{token:?}");
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{token:?}"
    );
    assert_eq!(hex_bytes(&token).len(), 32);
    assert!(!stdout(&o).contains(&token) && !stderr(&o).contains(&token));

    // Random: another file gets another token.
    let other = dir.path().join("other");
    assert_eq!(code(&write_token(&other, None)), 0);
    assert_ne!(read(&other), token);
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn a_restart_keeps_the_token_and_restores_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    assert_eq!(code(&write_token(&file, None)), 0);
    let token = read(&file);
    // Clients already read it: a restart must not change it, only fix what drifted.
    chmod(&file, 0o600);
    let o = write_token(&file, None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&stdout(&o))["created"], false);
    assert_eq!(read(&file), token);
    assert_eq!(mode(&file), 0o640);
    // An empty file (a crash of whoever made it) gets a token.
    std::fs::write(&file, "\n").unwrap();
    let o = write_token(&file, None);
    assert_eq!(json(&stdout(&o))["created"], true);
    assert_eq!(read(&file).len(), 64);
}

#[test]
fn the_reader_group_is_set_by_name_or_number() {
    let gid = nix::unistd::getgid();
    let name = nix::unistd::Group::from_gid(gid)
        .unwrap()
        .expect("the user's primary group has a name")
        .name;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let o = write_token(&file, Some(&name));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&stdout(&o))["group"], name.as_str());
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.gid(), gid.as_raw());
    assert_eq!(meta.mode() & 0o777, 0o640);

    let numeric = dir.path().join("numeric");
    let o = write_token(&numeric, Some(&gid.as_raw().to_string()));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&numeric).unwrap().gid(), gid.as_raw());

    // An unknown group is refused by name before anything is written.
    let none = dir.path().join("none");
    let err = refused(&write_token(&none, Some("no-such-group-lockbox-test")));
    assert!(err.contains("no-such-group-lockbox-test"), "{err}");
    assert!(!none.exists());
}

#[test]
fn a_symbolic_link_is_refused_and_its_target_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    std::fs::write(&target, "not a token, must stay private").unwrap();
    chmod(&target, 0o600);
    let link = dir.path().join("token");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = refused(&write_token(&link, Some(&gid_text())));
    assert!(err.contains(link.to_str().unwrap()), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(mode(&target), 0o600);
    assert_eq!(read(&target), "not a token, must stay private");

    // A dangling link: nothing is created where it points.
    let dangling = dir.path().join("dangling");
    let nowhere = dir.path().join("nowhere");
    std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
    refused(&write_token(&dangling, None));
    assert!(!nowhere.exists());
}

fn gid_text() -> String {
    nix::unistd::getgid().as_raw().to_string()
}

#[test]
fn unsafe_places_are_refused_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // A directory others can write: they could swap the file.
    let open_dir = dir.path().join("open");
    std::fs::create_dir(&open_dir).unwrap();
    chmod(&open_dir, 0o777);
    let err = refused(&write_token(&open_dir.join("token"), None));
    assert!(err.contains("chmod go-w"), "{err}");
    assert!(!open_dir.join("token").exists());

    // A token file others can write: its contents are not ours to keep.
    let writable = dir.path().join("writable");
    std::fs::write(&writable, "0123456789abcdef0123456789abcdef").unwrap();
    chmod(&writable, 0o666);
    let err = refused(&write_token(&writable, None));
    assert!(err.contains("chmod go-w"), "{err}");
    assert!(!err.contains("0123456789abcdef"), "{err}");

    // A FIFO is refused at once, not waited on.
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    refused(&write_token(&fifo, None));

    // A directory that does not exist is not created with a guessed owner.
    let missing = dir.path().join("missing/token");
    let err = refused(&write_token(&missing, None));
    assert!(err.contains("missing"), "{err}");
    assert!(!dir.path().join("missing").exists());
}
