//! `cargo xtask deb [--profile P]`: the Debian package (issue 25 item 5).
//!
//! Builds `lockbox` with the profile (default `dist`, the shipped one), has that binary write
//! its man pages (`lockbox man`, `lockbox man COMMAND` for every command lockbox(1) lists) and
//! shell completions (`lockbox completions bash|zsh|fish`) under
//! `target/<profile>/deb-assets/`, runs cargo-deb (metadata in crates/lockbox-cli/Cargo.toml,
//! maintainer scripts in packaging/debian/), then checks the package: `dpkg-deb --contents`
//! must list every expected path with its mode and owner root/root, the control archive must
//! hold the maintainer scripts and the conffile, and `lintian` (when installed) must report no
//! error and no warning other than the ones [`LINTIAN_ACCEPTED`] explains.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::paths;
use crate::steps::{Steps, cargo};

/// The cargo-deb version CI installs when `cargo deb` is missing.
const CARGO_DEB_VERSION: &str = "3.8.0";

/// The profile the package, the Lambda layer and the container ship (`[profile.dist]`).
pub const SHIPPED_PROFILE: &str = "dist";

/// The profile CI packages with: the dev build its tests use anyway. The package's layout,
/// maintainer scripts, man pages, completions and lintian's verdict do not depend on the
/// profile, while a dist build (fat LTO, one codegen unit) would add 15 to 20 minutes to every
/// CI run on 2 cores; `cargo xtask deb` builds and checks the shipped profile.
pub const CI_PROFILE: &str = "dev";

/// Paths the package must hold, with their `ls -l` mode string.
const EXPECTED: [(&str, &str); 10] = [
    ("./usr/bin/lockbox", "-rwxr-xr-x"),
    ("./lib/systemd/system/lockbox-serve.service", "-rw-r--r--"),
    ("./lib/systemd/system/lockbox-sync.service", "-rw-r--r--"),
    ("./etc/lockbox/serve.toml", "-rw-r--r--"),
    ("./usr/share/man/man1/lockbox.1.gz", "-rw-r--r--"),
    ("./usr/share/man/man1/lockbox-serve.1.gz", "-rw-r--r--"),
    ("./usr/share/man/man1/lockbox-sync.1.gz", "-rw-r--r--"),
    (
        "./usr/share/bash-completion/completions/lockbox",
        "-rw-r--r--",
    ),
    ("./usr/share/zsh/vendor-completions/_lockbox", "-rw-r--r--"),
    (
        "./usr/share/fish/vendor_completions.d/lockbox.fish",
        "-rw-r--r--",
    ),
];

/// The lintian tags left, each with why it stays.
pub const LINTIAN_ACCEPTED: [(&str, &str); 1] = [(
    "initial-upload-closes-no-bugs",
    "lockbox is not uploaded to Debian's archive, so there is no ITP bug to close",
)];

/// Arguments of `cargo xtask deb`.
#[derive(clap::Args)]
pub struct Args {
    /// The cargo profile to build and package `lockbox` with.
    #[arg(long, default_value = SHIPPED_PROFILE)]
    pub profile: String,
    /// Package the `lockbox` already built with that profile instead of building it.
    #[arg(long)]
    pub no_build: bool,
}

impl Args {
    /// `cargo xtask deb`.
    pub fn run(self) -> Result<std::process::ExitCode> {
        run(&self).map(|()| std::process::ExitCode::SUCCESS)
    }
}

/// `cargo xtask deb`: builds, packages and checks; prints the package's path and size.
pub fn run(args: &Args) -> Result<()> {
    let deb = build_and_check(&args.profile, !args.no_build, &mut Steps::default())?;
    println!(
        "{}: {:.1} MB",
        paths::show(&deb),
        std::fs::metadata(&deb)?.len() as f64 / 1e6
    );
    Ok(())
}

/// CI's step: cargo-deb (installed at [`CARGO_DEB_VERSION`] when missing), then
/// [`build_and_check`] with `profile`, each timed as a step.
pub fn ci_step(steps: &mut Steps, profile: &str) -> Result<()> {
    if !cargo_deb_available() {
        steps.cargo(
            "cargo-deb install",
            &[
                "install",
                "cargo-deb",
                "--locked",
                "--version",
                CARGO_DEB_VERSION,
            ],
        )?;
    }
    build_and_check(profile, true, steps).map(drop)
}

fn cargo_deb_available() -> bool {
    cargo()
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The output directory of `profile` under the target dir.
fn profile_dir(profile: &str) -> PathBuf {
    let dir = match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    };
    paths::target_dir().join(dir)
}

/// Builds `lockbox` with `profile`; returns the binary's path.
pub fn build_lockbox(profile: &str) -> Result<PathBuf> {
    crate::steps::build_lockbox(profile)?;
    Ok(profile_dir(profile).join("lockbox"))
}

/// Builds (with `build`) the package with `profile` and checks it; returns its path.
fn build_and_check(profile: &str, build: bool, steps: &mut Steps) -> Result<PathBuf> {
    let exe = if build {
        let t = Instant::now();
        let exe = build_lockbox(profile)?;
        steps.record(&format!("build lockbox ({profile})"), t.elapsed());
        exe
    } else {
        profile_dir(profile).join("lockbox")
    };
    write_assets(&exe, &profile_dir(profile).join("deb-assets"))?;
    let out = paths::target_dir().join("debian");
    std::fs::create_dir_all(&out)?;
    let before = debs_in(&out)?;
    let mut command = cargo();
    command
        .current_dir(paths::workspace_root())
        .args([
            "deb",
            "-p",
            "lockbox-cli",
            "--no-build",
            "--profile",
            profile,
        ])
        .arg("--output")
        .arg(&out);
    steps.run("cargo deb", &mut command)?;
    let deb = newest_deb(&out, &before)?;
    let t = Instant::now();
    check_contents(&deb)?;
    lintian(&deb)?;
    steps.record("deb checks", t.elapsed());
    eprintln!("xtask: {} checked", paths::show(&deb));
    Ok(deb)
}

/// Runs `exe` with `args`; its stdout.
fn output_of(exe: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new(exe)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .with_context(|| format!("could not run {}", exe.display()))?;
    if !out.status.success() {
        bail!(
            "`lockbox {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// The commands lockbox(1) lists in its SUBCOMMANDS section (`lockbox\-sync(1)`).
fn subcommands(main_page: &str) -> Vec<String> {
    let mut names: Vec<String> = main_page
        .split("lockbox\\-")
        .skip(1)
        .filter_map(|rest| {
            let name = rest.split_once("(1)")?.0;
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c == '-')
                .then(|| name.to_owned())
        })
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Writes `man/lockbox.1.gz`, `man/lockbox-COMMAND.1.gz` and `completions/{lockbox.bash,_lockbox,
/// lockbox.fish}` under `dir` (emptied first), generated by `exe`.
fn write_assets(exe: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    let man = dir.join("man");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let main_page = output_of(exe, &["man"])?;
    let commands = subcommands(&String::from_utf8_lossy(&main_page));
    if commands.len() < 2 {
        bail!("lockbox(1) lists no commands: is its SUBCOMMANDS section still there?");
    }
    std::fs::write(man.join("lockbox.1"), main_page)?;
    for command in &commands {
        let page = output_of(exe, &["man", command])?;
        std::fs::write(man.join(format!("lockbox-{command}.1")), page)?;
    }
    // Debian wants them gzipped (cargo-deb compresses only assets that are not under
    // target/): -n leaves out the name and time, so the package builds reproducibly.
    let mut gzip = Command::new("gzip");
    gzip.args(["-9", "-n", "-f"]);
    for entry in std::fs::read_dir(&man)? {
        gzip.arg(entry?.path());
    }
    run_text(&mut gzip)?;
    for (shell, file) in [
        ("bash", "lockbox.bash"),
        ("zsh", "_lockbox"),
        ("fish", "lockbox.fish"),
    ] {
        std::fs::write(
            completions.join(file),
            output_of(exe, &["completions", shell])?,
        )?;
    }
    eprintln!(
        "xtask: wrote {} man pages and 3 completion scripts under {}",
        commands.len() + 1,
        paths::show(dir)
    );
    Ok(())
}

fn debs_in(dir: &Path) -> Result<Vec<(PathBuf, std::time::SystemTime)>> {
    let mut debs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "deb") {
            debs.push((path.clone(), std::fs::metadata(&path)?.modified()?));
        }
    }
    Ok(debs)
}

/// The package cargo-deb just wrote into `dir`.
fn newest_deb(dir: &Path, before: &[(PathBuf, std::time::SystemTime)]) -> Result<PathBuf> {
    debs_in(dir)?
        .into_iter()
        .filter(|d| !before.contains(d))
        .max_by_key(|(_, modified)| *modified)
        .map(|(path, _)| path)
        .with_context(|| format!("cargo deb wrote no new .deb into {}", dir.display()))
}

/// One line of `dpkg-deb --contents`: mode string, owner/group, path.
fn parse_contents(listing: &str) -> Vec<(String, String, String)> {
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let mode = fields.next()?.to_owned();
            let owner = fields.next()?.to_owned();
            // size, date, time, then the path (and `-> target` for a link).
            let path = fields.nth(3)?.to_owned();
            Some((mode, owner, path))
        })
        .collect()
}

/// Checks what `dpkg-deb` lists in `deb` against [`EXPECTED`] and the control archive.
fn check_contents(deb: &Path) -> Result<()> {
    let listing = run_text(Command::new("dpkg-deb").arg("--contents").arg(deb))?;
    let entries = parse_contents(&listing);
    let mut problems = Vec::new();
    for (path, mode) in EXPECTED {
        match entries.iter().find(|(_, _, p)| p == path) {
            None => problems.push(format!("{path} is missing")),
            Some((m, owner, _)) => {
                if m != mode {
                    problems.push(format!("{path} is {m}, expected {mode}"));
                }
                if owner != "root/root" && owner != "0/0" {
                    problems.push(format!("{path} belongs to {owner}, expected root/root"));
                }
            }
        }
    }
    let pages = entries
        .iter()
        .filter(|(_, _, p)| p.starts_with("./usr/share/man/man1/lockbox-") && p.ends_with(".1.gz"))
        .count();
    if pages < 10 {
        problems.push(format!("only {pages} command man pages"));
    }
    let info = run_text(Command::new("dpkg-deb").arg("--info").arg(deb))?;
    for part in [
        "postinst",
        "postrm",
        "prerm",
        "conffiles",
        "Depends: ",
        "adduser",
    ] {
        if !info.contains(part) {
            problems.push(format!("the control archive has no {part}"));
        }
    }
    let conffiles = run_text(
        Command::new("dpkg-deb")
            .arg("--info")
            .arg(deb)
            .arg("conffiles"),
    )?;
    if !conffiles
        .lines()
        .any(|l| l.trim() == "/etc/lockbox/serve.toml")
    {
        problems.push("/etc/lockbox/serve.toml is not a conffile".into());
    }
    if !problems.is_empty() {
        bail!(
            "{} is not as expected:\n  {}\ncontents:\n{listing}",
            deb.display(),
            problems.join("\n  ")
        );
    }
    eprintln!(
        "xtask: dpkg-deb --contents: {} entries, the {} expected paths with their modes, {pages} command man pages",
        entries.len(),
        EXPECTED.len()
    );
    Ok(())
}

fn run_text(command: &mut Command) -> Result<String> {
    let out = command
        .output()
        .with_context(|| format!("could not run {}", crate::steps::show(command)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            crate::steps::show(command),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The tag of a lintian line (`W: lockbox: tag-name extra...`) and whether it is an error or
/// a warning; `None` for info, pedantic and other lines.
fn lintian_tag(line: &str) -> Option<(char, &str)> {
    let (kind, rest) = line.split_once(": ")?;
    let kind = match kind {
        "E" => 'E',
        "W" => 'W',
        _ => return None,
    };
    let (_package, rest) = rest.split_once(": ")?;
    Some((kind, rest.split_whitespace().next()?))
}

/// `lintian` on `deb` when it is installed: errors fail, warnings fail unless accepted in
/// [`LINTIAN_ACCEPTED`] (each printed with its reason).
fn lintian(deb: &Path) -> Result<()> {
    if Command::new("lintian").arg("--version").output().is_err() {
        eprintln!("xtask: SKIPPED [lintian]: not installed (apt-get install lintian)");
        return Ok(());
    }
    let out = Command::new("lintian")
        .args(["--no-tag-display-limit", "--info"])
        .arg(deb)
        .output()
        .context("could not run lintian")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut failing = Vec::new();
    for line in text.lines() {
        let Some((kind, tag)) = lintian_tag(line) else {
            continue;
        };
        match LINTIAN_ACCEPTED.iter().find(|(t, _)| *t == tag) {
            Some((_, why)) if kind == 'W' => eprintln!("xtask: lintian: {line} (accepted: {why})"),
            _ => failing.push(line.to_owned()),
        }
    }
    if !failing.is_empty() {
        bail!("lintian reports:\n  {}", failing.join("\n  "));
    }
    eprintln!("xtask: lintian: no errors, no unexplained warnings");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_commands_of_the_main_page() {
        let page = ".SH SUBCOMMANDS\n.TP\nlockbox\\-generate(1)\nWrite...\n.TP\nlockbox\\-serve(1)\n\
                    see lockbox\\-serve(1) again\n.TP\nlockbox\\-help(1)\n";
        assert_eq!(subcommands(page), ["generate", "help", "serve"]);
        assert!(subcommands("no pages").is_empty());
    }

    #[test]
    fn parses_dpkg_listing_and_lintian_lines() {
        let listing = "drwxr-xr-x root/root         0 2026-12-03 13:00 ./usr/bin/\n\
                       -rwxr-xr-x root/root  20000000 2026-12-03 13:00 ./usr/bin/lockbox\n";
        let entries = parse_contents(listing);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1],
            (
                "-rwxr-xr-x".to_owned(),
                "root/root".to_owned(),
                "./usr/bin/lockbox".to_owned()
            )
        );
        assert_eq!(
            lintian_tag("W: lockbox: no-manual-page usr/bin/x"),
            Some(('W', "no-manual-page"))
        );
        assert_eq!(
            lintian_tag("E: lockbox: no-changelog usr/share/doc/lockbox/changelog.gz"),
            Some(('E', "no-changelog"))
        );
        assert_eq!(lintian_tag("I: lockbox: something"), None);
        assert_eq!(lintian_tag("N: note"), None);
    }
}
