//! `cargo xtask bench [--quick] [--summary FILE]`: runs the criterion benchmarks of
//! `lockbox-benches`, prints a table against the project's targets and, with `--summary`,
//! writes the headline numbers as JSON.
//!
//! The benchmarks leave criterion's estimates under `target/criterion/<group>/<bench>/new/` and
//! their own counts (backend calls, fleet outcome) under `target/lockbox-bench/*.json`; this
//! module reads both. `--quick` sets `LOCKBOX_BENCH_QUICK=1`, which the benchmarks read to
//! shorten warm-up and measurement (the fleet simulation always runs in full: it is one run).
//!
//! Self-contained: only `anyhow` and the standard library (a small JSON reader included).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask bench [--quick] [--summary FILE]

Runs the lockbox-benches criterion benchmarks (cache hits vs aws_secretsmanager_caching, cold
fetch of 100 SSM parameters vs an SDK loop, a 1,000-reader stampede, a 500-node fleet start
against a 40 req/s SSM limit), prints a table, and with --summary writes the headline numbers
as JSON.

  --quick           short warm-up and measurement (about 3-5 minutes on 2 cores)
  --summary FILE    write cache_hit_ns, aws_caching_hit_ns, cache_hit_ratio_vs_aws_caching,
                    cold_100_backend_calls, cold_100_ratio_vs_sdk_loop,
                    stampede_1000_backend_calls, fleet_success_rate, fleet_time_vs_ideal";

/// The benchmark targets of `lockbox-benches`.
const BENCHES: [&str; 3] = ["hits", "cold", "fleet"];

/// Entry point: `args` are the words after `cargo xtask bench`.
pub fn run(args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    let Some(options) = options else {
        println!("{USAGE}");
        return Ok(());
    };
    let root = workspace_root()?;
    let target = target_dir(&root);
    let started = SystemTime::now();

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["bench", "-p", "lockbox-benches"]);
    for bench in BENCHES {
        command.args(["--bench", bench]);
    }
    if options.quick {
        command.env("LOCKBOX_BENCH_QUICK", "1");
    } else {
        command.env_remove("LOCKBOX_BENCH_QUICK");
    }
    eprintln!(
        "running the benchmarks{} (cargo bench -p lockbox-benches)",
        if options.quick { " in quick mode" } else { "" }
    );
    let status = command.status().context("could not run cargo bench")?;
    if !status.success() {
        bail!("cargo bench -p lockbox-benches failed ({status})");
    }

    let results = Results::read(&target, started)?;
    print!("{}", results.table());
    if let Some(path) = &options.summary {
        let path = if path.is_absolute() {
            path.clone()
        } else {
            std::env::current_dir()?.join(path)
        };
        std::fs::write(&path, results.summary_json())
            .with_context(|| format!("could not write {}", path.display()))?;
        eprintln!("summary written to {}", path.display());
    }
    Ok(())
}

struct Options {
    quick: bool,
    summary: Option<PathBuf>,
}

impl Options {
    /// The options, or `None` when help was asked for.
    fn parse(args: &[String]) -> Result<Option<Self>> {
        let mut options = Self {
            quick: false,
            summary: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--summary" => {
                    let file = args.next().context("--summary needs a file name")?;
                    options.summary = Some(PathBuf::from(file));
                }
                "-h" | "--help" => return Ok(None),
                other => match other.strip_prefix("--summary=") {
                    Some(file) if !file.is_empty() => options.summary = Some(PathBuf::from(file)),
                    _ => bail!("unknown argument {other:?}\n\n{USAGE}"),
                },
            }
        }
        Ok(Some(options))
    }
}

/// The workspace root: xtask's parent when it holds the bench crate, else the nearest
/// ancestor of the current directory that does.
fn workspace_root() -> Result<PathBuf> {
    let is_root =
        |dir: &Path| dir.join("benches/Cargo.toml").is_file() && dir.join("Cargo.toml").is_file();
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf);
    if let Some(dir) = compiled.filter(|d| is_root(d)) {
        return Ok(dir);
    }
    let cwd = std::env::current_dir()?;
    cwd.ancestors()
        .find(|d| is_root(d))
        .map(Path::to_path_buf)
        .context("could not find the lockbox workspace (a directory with benches/Cargo.toml)")
}

/// `$CARGO_TARGET_DIR` (relative to the current directory, as cargo reads it) or
/// `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir().map(|c| c.join(&dir)).unwrap_or(dir)
            }
        }
        None => root.join("target"),
    }
}

/// Reads a file written after `since`, so a stale result from an earlier run is never shown.
fn read_fresh(path: &Path, since: SystemTime) -> Result<String> {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("{} is missing: did the benchmark run?", path.display()))?;
    if modified < since {
        bail!(
            "{} is from an earlier run: the benchmark did not update it",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))
}

/// Everything the table and the summary need.
struct Results {
    /// Criterion estimates in nanoseconds, by `group/bench`.
    times: BTreeMap<&'static str, f64>,
    /// Counts from the benchmarks' own JSON files.
    counts: BTreeMap<String, f64>,
}

const TIMES: [&str; 8] = [
    "cache_hit/lockbox_one_thread",
    "cache_hit/aws_caching_one_thread",
    "cache_hit/lockbox_dyn_one_thread",
    "cache_hit/lockbox_all_threads",
    "cache_hit/aws_caching_all_threads",
    "cold_100/lockbox_cache",
    "cold_100/sdk_loop",
    "stampede_1000/lockbox_cache",
];

impl Results {
    fn read(target: &Path, since: SystemTime) -> Result<Self> {
        let mut times = BTreeMap::new();
        for id in TIMES {
            let path = target.join("criterion").join(id).join("new/estimates.json");
            let json = Json::parse(&read_fresh(&path, since)?)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            // Criterion's headline figure: the slope of the linear fit when it sampled linearly,
            // else the mean.
            let estimate = ["slope", "mean"]
                .iter()
                .find_map(|k| json.get(k)?.get("point_estimate")?.as_f64())
                .with_context(|| format!("{} has no slope or mean", path.display()))?;
            times.insert(id, estimate);
        }
        let mut counts = BTreeMap::new();
        for file in ["cold", "fleet"] {
            let path = target.join("lockbox-bench").join(format!("{file}.json"));
            let json = Json::parse(&read_fresh(&path, since)?)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            let Json::Object(fields) = json else {
                bail!("{} is not a JSON object", path.display());
            };
            for (k, v) in fields {
                if let Some(n) = v.as_f64() {
                    counts.insert(k, n);
                }
            }
        }
        Ok(Self { times, counts })
    }

    fn time(&self, id: &str) -> f64 {
        self.times.get(id).copied().unwrap_or(f64::NAN)
    }

    fn count(&self, key: &str) -> f64 {
        self.counts.get(key).copied().unwrap_or(f64::NAN)
    }

    /// The eight headline numbers, in the summary's order.
    fn headline(&self) -> [(&'static str, f64); 8] {
        let ours = self.time("cache_hit/lockbox_one_thread");
        let theirs = self.time("cache_hit/aws_caching_one_thread");
        [
            ("cache_hit_ns", ours),
            ("aws_caching_hit_ns", theirs),
            ("cache_hit_ratio_vs_aws_caching", theirs / ours),
            (
                "cold_100_backend_calls",
                self.count("cold_100_backend_calls"),
            ),
            (
                "cold_100_ratio_vs_sdk_loop",
                self.time("cold_100/lockbox_cache") / self.time("cold_100/sdk_loop"),
            ),
            (
                "stampede_1000_backend_calls",
                self.count("stampede_1000_backend_calls"),
            ),
            ("fleet_success_rate", self.count("fleet_success_rate")),
            ("fleet_time_vs_ideal", self.count("fleet_time_vs_ideal")),
        ]
    }

    fn summary_json(&self) -> String {
        let body: Vec<String> = self
            .headline()
            .iter()
            .map(|(k, v)| format!("  \"{k}\": {}", json_number(*v)))
            .collect();
        format!("{{\n{}\n}}\n", body.join(",\n"))
    }

    fn table(&self) -> String {
        let h: BTreeMap<&str, f64> = self.headline().into_iter().collect();
        let check = |ok: bool| if ok { "met" } else { "MISSED" };
        let ns = |id: &str| format!("{:.1} ns", self.time(id));
        let ms = |id: &str| format!("{:.2} ms", self.time(id) / 1e6);
        let int = |key: &str| format!("{}", self.count(key));
        let mut rows: Vec<[String; 4]> = vec![
            [
                "cache hit, 1 thread".into(),
                format!(
                    "{} (dyn: {})",
                    ns("cache_hit/lockbox_one_thread"),
                    ns("cache_hit/lockbox_dyn_one_thread")
                ),
                ns("cache_hit/aws_caching_one_thread"),
                format!(
                    "x{:.1} faster (target >= 20: {})",
                    h["cache_hit_ratio_vs_aws_caching"],
                    check(h["cache_hit_ratio_vs_aws_caching"] >= 20.0)
                ),
            ],
            [
                "cache hit, all threads (per read)".into(),
                ns("cache_hit/lockbox_all_threads"),
                ns("cache_hit/aws_caching_all_threads"),
                format!(
                    "x{:.1} faster",
                    self.time("cache_hit/aws_caching_all_threads")
                        / self.time("cache_hit/lockbox_all_threads")
                ),
            ],
            [
                "cold fetch, 100 SSM parameters".into(),
                format!(
                    "{} / {} calls",
                    ms("cold_100/lockbox_cache"),
                    int("cold_100_backend_calls")
                ),
                format!(
                    "{} / {} calls (SDK loop)",
                    ms("cold_100/sdk_loop"),
                    int("cold_100_sdk_loop_backend_calls")
                ),
                format!(
                    "time x{:.3} (target <= 0.15: {}), calls (target <= 10: {})",
                    h["cold_100_ratio_vs_sdk_loop"],
                    check(h["cold_100_ratio_vs_sdk_loop"] <= 0.15),
                    check(h["cold_100_backend_calls"] <= 10.0)
                ),
            ],
            [
                "stampede, 1,000 readers of 1 cold name".into(),
                format!(
                    "{} / {} calls",
                    ms("stampede_1000/lockbox_cache"),
                    int("stampede_1000_backend_calls")
                ),
                format!(
                    "{} calls (aws caching client)",
                    int("aws_caching_stampede_1000_backend_calls")
                ),
                format!(
                    "target 1 call: {}",
                    check(h["stampede_1000_backend_calls"] == 1.0)
                ),
            ],
            [
                format!("fleet, {} nodes x 3 secrets, 40 req/s", int("fleet_nodes")),
                format!(
                    "{:.1}% ok in {:.2} s",
                    100.0 * h["fleet_success_rate"],
                    self.count("fleet_seconds")
                ),
                format!(
                    "ideal {:.2} s ({} ok calls / 40; {} throttled)",
                    self.count("fleet_ideal_seconds"),
                    int("fleet_ok_calls"),
                    int("fleet_throttled_calls")
                ),
                format!(
                    "success (target 1.0: {}), time x{:.3} (target <= 1.3: {})",
                    check(h["fleet_success_rate"] >= 1.0),
                    h["fleet_time_vs_ideal"],
                    check(h["fleet_time_vs_ideal"] <= 1.3)
                ),
            ],
        ];
        rows.insert(
            0,
            [
                "benchmark".into(),
                "lockbox".into(),
                "baseline".into(),
                "result".into(),
            ],
        );
        let widths: Vec<usize> = (0..4)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
            if i == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
            }
        }
        out
    }
}

/// A JSON number, or `null` for a value that could not be measured.
fn json_number(v: f64) -> String {
    if !v.is_finite() {
        "null".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Just enough JSON to read criterion's estimates and the benchmarks' counts.
#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Self> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            bail!("trailing characters at byte {}", p.i);
        }
        Ok(v)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => Some(*n),
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<()> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            bail!("expected {:?} at byte {}", c as char, self.i)
        }
    }

    fn value(&mut self) -> Result<Json> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Object(fields));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.eat(b':')?;
                    fields.push((key, self.value()?));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Object(fields));
                        }
                        _ => bail!("expected , or }} at byte {}", self.i),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => bail!("expected , or ] at byte {}", self.i),
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'n') => self.word("null", Json::Null),
            Some(_) => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(c))
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i])?;
                Ok(Json::Number(text.parse().with_context(|| {
                    format!("bad number {text:?} at byte {start}")
                })?))
            }
            None => bail!("unexpected end of JSON"),
        }
    }

    fn word(&mut self, word: &str, value: Json) -> Result<Json> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(value)
        } else {
            bail!("unexpected token at byte {}", self.i)
        }
    }

    fn string(&mut self) -> Result<String> {
        if self.s.get(self.i) != Some(&b'"') {
            bail!("expected a string at byte {}", self.i);
        }
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while self
                .s
                .get(self.i)
                .is_some_and(|c| *c != b'"' && *c != b'\\')
            {
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.s[start..self.i])?);
            match self.s.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escaped = *self.s.get(self.i + 1).context("unfinished escape")?;
                    self.i += 2;
                    match escaped {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).context("short \\u escape")?;
                            let code = u32::from_str_radix(std::str::from_utf8(hex)?, 16)?;
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            self.i += 4;
                        }
                        other => out.push(other as char),
                    }
                }
                _ => bail!("unterminated string"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_estimates() {
        let text = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.5,
            "upper_bound":2.5},"point_estimate":2.0,"standard_error":0.1},"slope":null,
            "median":{"point_estimate":1.9e0},"tags":["a\"b",true,false]}"#;
        let json = Json::parse(text).unwrap();
        assert_eq!(
            json.get("mean")
                .unwrap()
                .get("point_estimate")
                .unwrap()
                .as_f64(),
            Some(2.0)
        );
        assert_eq!(json.get("slope"), Some(&Json::Null));
        assert_eq!(
            json.get("median")
                .unwrap()
                .get("point_estimate")
                .unwrap()
                .as_f64(),
            Some(1.9)
        );
        assert!(Json::parse("{").is_err());
        assert!(Json::parse("{} x").is_err());
    }

    #[test]
    fn summary_has_exactly_the_eight_keys() {
        let mut times = BTreeMap::new();
        for (i, id) in TIMES.iter().enumerate() {
            times.insert(*id, 10.0 * (i + 1) as f64);
        }
        let counts = [
            ("cold_100_backend_calls", 10.0),
            ("stampede_1000_backend_calls", 1.0),
            ("fleet_success_rate", 1.0),
            ("fleet_time_vs_ideal", 1.1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let results = Results { times, counts };
        let json = Json::parse(&results.summary_json()).unwrap();
        let Json::Object(fields) = json else { panic!() };
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "cache_hit_ns",
                "aws_caching_hit_ns",
                "cache_hit_ratio_vs_aws_caching",
                "cold_100_backend_calls",
                "cold_100_ratio_vs_sdk_loop",
                "stampede_1000_backend_calls",
                "fleet_success_rate",
                "fleet_time_vs_ideal"
            ]
        );
        assert_eq!(fields[2].1.as_f64(), Some(2.0));
        assert_eq!(fields[3].1.as_f64(), Some(10.0));
        assert!(results.table().contains("met"));
    }

    #[test]
    fn parses_options() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = Options::parse(&args(&["--quick", "--summary", "f.json"]))
            .unwrap()
            .unwrap();
        assert!(o.quick);
        assert_eq!(o.summary, Some(PathBuf::from("f.json")));
        let o = Options::parse(&args(&["--summary=g.json"]))
            .unwrap()
            .unwrap();
        assert!(!o.quick);
        assert_eq!(o.summary, Some(PathBuf::from("g.json")));
        assert!(Options::parse(&args(&["--bogus"])).is_err());
        assert!(Options::parse(&args(&["--summary"])).is_err());
        assert!(Options::parse(&args(&["--help"])).unwrap().is_none());
    }
}
