//! `cargo xtask bench [--quick] [--summary FILE]`: runs the criterion benchmarks of
//! `lockbox-benches`, prints a table against the project's targets and, with `--summary`,
//! writes the headline numbers as JSON.
//!
//! The benchmarks leave criterion's estimates under `target/criterion/<group>/<bench>/new/` and
//! their own counts (backend calls, fleet outcome) under `target/lockbox-bench/*.json`; this
//! module reads both. `--quick` sets `LOCKBOX_BENCH_QUICK=1`, which the benchmarks read to
//! shorten warm-up and measurement (the fleet simulation always runs in full: it is one run).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{paths, steps};

mod cli;

/// The benchmark targets of `lockbox-benches`.
const BENCHES: [&str; 6] = ["hits", "cold", "fleet", "sync", "fill", "watch"];

/// `cargo xtask bench`'s options.
#[derive(clap::Args, Debug, PartialEq, Eq)]
pub struct Options {
    /// Short warm-up and measurement (about 3-5 minutes on 2 cores).
    #[arg(long)]
    pub quick: bool,
    /// Write cache_hit_ns, aws_caching_hit_ns, cache_hit_ratio_vs_aws_caching,
    /// cold_100_backend_calls, cold_100_ratio_vs_sdk_loop, stampede_1000_backend_calls,
    /// fleet_success_rate, fleet_time_vs_ideal, dyn_hit_ratio_vs_direct, hit_2_thread_scaling,
    /// fill_100k_per_name_ratio_vs_1k, sync_400_ratio_vs_sequential, cli_output_local_ms,
    /// cli_get_ssm_ms, binary_mb, layer_zip_mb (the CLI figures on the shipped dist build) (and, from the load run, the serve_* and agent_* keys) to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
}

impl Options {
    /// Runs `cargo xtask bench`.
    pub fn run(self) -> Result<ExitCode> {
        run(&self).map(|()| ExitCode::SUCCESS)
    }
}

/// Runs the benchmarks, prints the table and writes the summary.
pub fn run(options: &Options) -> Result<()> {
    let target = paths::target_dir();
    let started = SystemTime::now();

    let mut command = steps::cargo();
    command
        .current_dir(paths::workspace_root())
        .args(["bench", "-p", "lockbox-benches"]);
    for bench in BENCHES {
        command.args(["--bench", bench]);
    }
    // The watch bench polls an emulator: one for this run, or it says it skipped.
    let emulator = crate::emulator::Session::start_scoped(crate::emulator::Kind::Moto)
        .inspect_err(|e| eprintln!("bench: no emulator, so the watch bench skips: {e:#}"))
        .ok();
    command.env_remove("LOCKBOX_IT_ENDPOINT");
    if let Some(emulator) = &emulator {
        command.env("LOCKBOX_IT_ENDPOINT", &emulator.endpoint);
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
    if let Some(emulator) = emulator {
        emulator.stop();
    }
    if !status.success() {
        bail!("cargo bench -p lockbox-benches failed ({status})");
    }

    let mut results = Results::read(&target, started)?;
    results.add_cli_figures();
    print!("{}", results.table());
    // The HTTP load run (lockbox serve vs the AWS agent), next to this run's in-process hit.
    let load = crate::load::run(
        options.quick,
        Some(results.time("cache_hit/lockbox_one_thread")),
    )?;
    print!("{}", load.table());
    let summary = crate::load::merge_summary(&results.summary_json(), &load);
    if let Some(path) = &options.summary {
        let path = std::env::current_dir()?.join(path);
        std::fs::write(&path, summary)
            .with_context(|| format!("could not write {}", path.display()))?;
        eprintln!("summary written to {}", path.display());
    }
    Ok(())
}

/// Criterion's headline figure in `json` (an `estimates.json` read from `path`): the slope of
/// the linear fit when it sampled linearly, else the mean.
pub fn estimate(json: &Value, path: &Path) -> Result<f64> {
    ["slope", "mean"]
        .iter()
        .find_map(|k| json.get(k)?.get("point_estimate")?.as_f64())
        .with_context(|| format!("{} has no slope or mean", path.display()))
}

/// Reads `path` as JSON.
fn read_json(path: &Path, since: SystemTime) -> Result<Value> {
    serde_json::from_str(&read_fresh(path, since)?)
        .with_context(|| format!("{} is not JSON", path.display()))
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
        for id in TIMES.into_iter().chain(IO_TIMES) {
            let path = target.join("criterion").join(id).join("new/estimates.json");
            let json = read_json(&path, since)?;
            let estimate = estimate(&json, &path)?;
            times.insert(id, estimate);
        }
        read_cache_times(target, since, &mut times)?;
        let mut counts = BTreeMap::new();
        for file in ["cold", "fleet", "sync"] {
            let path = target.join("lockbox-bench").join(format!("{file}.json"));
            let Value::Object(fields) = read_json(&path, since)? else {
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
            .chain(self.cache_headline().iter())
            .chain(&self.io_headline())
            .map(|(k, v)| format!("  {}: {}", Value::from(*k), json_number(*v)))
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
                    "time x{:.3} (target <= 0.02: {}), calls (target <= 10: {})",
                    h["cold_100_ratio_vs_sdk_loop"],
                    check(h["cold_100_ratio_vs_sdk_loop"] <= 0.02),
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
        rows.extend(self.cache_rows());
        rows.extend(self.io_rows());
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

/// Criterion ids of the parallel sync benchmark.
const IO_TIMES: [&str; 2] = ["sync_400/lockbox", "sync_400/sequential"];

/// Parallel fetches and CLI start-up (issue 16, items 3, 4 and 6): the sync and CLI figures.
impl Results {
    /// Times the CLI (the shipped dist build, median of 10 whole processes), takes the binary's
    /// and the layer zip's sizes, and adds these figures to the counts; a failure is reported and leaves them unmeasured (`null`).
    fn add_cli_figures(&mut self) {
        match cli::measure() {
            Ok(figures) => {
                for (k, v) in figures {
                    self.counts.insert(k.to_owned(), v);
                }
            }
            Err(e) => eprintln!("warning: the CLI figures were not measured: {e:#}"),
        }
    }

    /// The summary keys of this block, in order.
    fn io_headline(&self) -> [(&'static str, f64); 5] {
        [
            (
                "sync_400_ratio_vs_sequential",
                self.time("sync_400/lockbox") / self.time("sync_400/sequential"),
            ),
            ("cli_output_local_ms", self.count("cli_output_local_ms")),
            ("cli_get_ssm_ms", self.count("cli_get_ssm_ms")),
            ("binary_mb", self.count("binary_mb")),
            ("layer_zip_mb", self.count("layer_zip_mb")),
        ]
    }

    /// The table rows of this block.
    fn io_rows(&self) -> Vec<[String; 4]> {
        let check = |ok: bool| if ok { "met" } else { "MISSED" };
        let ms = |id: &str| format!("{:.2} ms", self.time(id) / 1e6);
        let [(_, sync), (_, output), (_, get), (_, binary), (_, zip)] = self.io_headline();
        vec![
            [
                "sync, 200 secrets x 2 labels".into(),
                format!(
                    "{} / {} calls",
                    ms("sync_400/lockbox"),
                    self.count("sync_400_backend_calls")
                ),
                format!(
                    "{} / {} calls (sequential GetSecretValue)",
                    ms("sync_400/sequential"),
                    self.count("sync_400_sequential_calls")
                ),
                format!("time x{sync:.3} (target <= 0.1: {})", check(sync <= 0.1)),
            ],
            [
                "shipped binary (dist profile) / Lambda layer zip".into(),
                format!("{binary:.1} MB / {zip:.1} MB"),
                "38.9 MB release binary before issue 25".into(),
                "sizes".into(),
            ],
            [
                "CLI: lockbox output --data-dir (median of 10)".into(),
                format!("{output:.2} ms"),
                "4 ms before issue 16".into(),
                format!("target <= 2 ms: {}", check(output <= 2.0)),
            ],
            [
                "CLI: lockbox get --config, SSM on moto (median of 10)".into(),
                format!("{get:.2} ms"),
                "13 ms before issue 16".into(),
                format!("target <= 6 ms: {}", check(get <= 6.0)),
            ],
        ]
    }
}

/// Criterion ids of the cache benchmarks behind issue 16's hit, scaling and fill figures.
const CACHE_TIMES: [&str; 5] = [
    "cache_hit/lockbox_threads_1",
    "cache_hit/lockbox_threads_2",
    "cache_hit/lockbox_one_thread_100k_entries",
    "cache_fill/fill_1k",
    "cache_fill/fill_100k",
];

/// Adds the estimates of [`CACHE_TIMES`] to `times`.
fn read_cache_times(
    target: &Path,
    since: SystemTime,
    times: &mut BTreeMap<&'static str, f64>,
) -> Result<()> {
    for id in CACHE_TIMES {
        let path = target.join("criterion").join(id).join("new/estimates.json");
        let json = read_json(&path, since)?;
        let estimate = estimate(&json, &path)?;
        times.insert(id, estimate);
    }
    Ok(())
}

/// The cache's figures (hits through the trait object, scaling, fills), after the headline.
impl Results {
    fn cache_headline(&self) -> [(&'static str, f64); 3] {
        let direct = self.time("cache_hit/lockbox_one_thread");
        [
            (
                "dyn_hit_ratio_vs_direct",
                self.time("cache_hit/lockbox_dyn_one_thread") / direct,
            ),
            (
                "hit_2_thread_scaling",
                // Both are wall time per read; reads/s on 2 threads over reads/s on 1.
                self.time("cache_hit/lockbox_threads_1") / self.time("cache_hit/lockbox_threads_2"),
            ),
            (
                "fill_100k_per_name_ratio_vs_1k",
                (self.time("cache_fill/fill_100k") / 100_000.0)
                    / (self.time("cache_fill/fill_1k") / 1_000.0),
            ),
        ]
    }

    fn cache_rows(&self) -> Vec<[String; 4]> {
        let h: BTreeMap<&str, f64> = self.cache_headline().into_iter().collect();
        let check = |ok: bool| if ok { "met" } else { "MISSED" };
        let ns = |id: &str| format!("{:.1} ns", self.time(id));
        let per_name = |id: &str, n: f64| format!("{:.0} ns/name", self.time(id) / n);
        vec![
            [
                "cache hit through Arc<dyn SecretsManager>".into(),
                ns("cache_hit/lockbox_dyn_one_thread"),
                format!("{} (direct Cache::get)", ns("cache_hit/lockbox_one_thread")),
                format!(
                    "x{:.2} (target <= 1.5: {})",
                    h["dyn_hit_ratio_vs_direct"],
                    check(h["dyn_hit_ratio_vs_direct"] <= 1.5)
                ),
            ],
            [
                "cache hit, 2 threads on 1 secret (per read)".into(),
                ns("cache_hit/lockbox_threads_2"),
                format!("{} (1 thread)", ns("cache_hit/lockbox_threads_1")),
                format!(
                    "reads/s x{:.2} (target >= 1.6: {})",
                    h["hit_2_thread_scaling"],
                    check(h["hit_2_thread_scaling"] >= 1.6)
                ),
            ],
            [
                "cache hit in a 100,000-entry cache".into(),
                ns("cache_hit/lockbox_one_thread_100k_entries"),
                format!("{} (1 entry)", ns("cache_hit/lockbox_one_thread")),
                format!(
                    "x{:.2}",
                    self.time("cache_hit/lockbox_one_thread_100k_entries")
                        / self.time("cache_hit/lockbox_one_thread")
                ),
            ],
            [
                "fill 100,000 names (per name)".into(),
                per_name("cache_fill/fill_100k", 100_000.0),
                format!("{} (1,000 names)", per_name("cache_fill/fill_1k", 1_000.0)),
                format!(
                    "x{:.2} (target <= 2: {})",
                    h["fill_100k_per_name_ratio_vs_1k"],
                    check(h["fill_100k_per_name_ratio_vs_1k"] <= 2.0)
                ),
            ],
        ]
    }
}

/// A JSON number (integral values without a fraction), or `null` for a value that could not
/// be measured.
fn json_number(v: f64) -> Value {
    if !v.is_finite() {
        Value::Null
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_has_exactly_the_headline_keys() {
        let mut times = BTreeMap::new();
        for (i, id) in TIMES
            .iter()
            .chain(CACHE_TIMES.iter())
            .chain(&IO_TIMES)
            .enumerate()
        {
            times.insert(*id, 10.0 * (i + 1) as f64);
        }
        let counts = [
            ("cold_100_backend_calls", 10.0),
            ("stampede_1000_backend_calls", 1.0),
            ("fleet_success_rate", 1.0),
            ("fleet_time_vs_ideal", 1.1),
            ("cli_output_local_ms", 1.5),
            ("cli_get_ssm_ms", 5.0),
            ("binary_mb", 20.5),
            ("layer_zip_mb", 8.25),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let results = Results { times, counts };
        let summary = results.summary_json();
        let fields: BTreeMap<String, Value> = serde_json::from_str(&summary).unwrap();
        // Keys in the summary's order, as written.
        let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        keys.sort_by_key(|k| summary.find(&format!("\"{k}\"")));
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
                "fleet_time_vs_ideal",
                "dyn_hit_ratio_vs_direct",
                "hit_2_thread_scaling",
                "fill_100k_per_name_ratio_vs_1k",
                "sync_400_ratio_vs_sequential",
                "cli_output_local_ms",
                "cli_get_ssm_ms",
                "binary_mb",
                "layer_zip_mb"
            ]
        );
        // lockbox_dyn_one_thread (30) over lockbox_one_thread (10); threads_1 (90) over
        // threads_2 (100); (fill_100k (130) / 1e5) over (fill_1k (120) / 1e3).
        assert_eq!(fields["dyn_hit_ratio_vs_direct"].as_f64(), Some(3.0));
        assert_eq!(fields["hit_2_thread_scaling"].as_f64(), Some(0.9));
        let fill = fields["fill_100k_per_name_ratio_vs_1k"].as_f64().unwrap();
        assert!((fill - 130.0 / 120.0 / 100.0).abs() < 1e-12);
        assert_eq!(fields["cache_hit_ratio_vs_aws_caching"].as_f64(), Some(2.0));
        assert!(summary.contains("\"cold_100_backend_calls\": 10,"));
        assert!(summary.contains("\"cli_get_ssm_ms\": 5,"), "{summary}");
        assert!(summary.contains("\"layer_zip_mb\": 8.25\n"), "{summary}");
        assert_eq!(fields["binary_mb"].as_f64(), Some(20.5));
        assert_eq!(fields["cli_output_local_ms"].as_f64(), Some(1.5));
        assert!(results.table().contains("met"));
    }

    #[test]
    fn parses_options() {
        use clap::Parser;
        #[derive(Parser)]
        struct Bench {
            #[command(flatten)]
            options: Options,
        }
        let parse = |a: &[&str]| {
            Bench::try_parse_from(std::iter::once("bench").chain(a.iter().copied()))
                .map(|b| b.options)
        };
        let o = parse(&["--quick", "--summary", "f.json"]).unwrap();
        assert!(o.quick);
        assert_eq!(o.summary, Some(PathBuf::from("f.json")));
        let o = parse(&["--summary=g.json"]).unwrap();
        assert!(!o.quick);
        assert_eq!(o.summary, Some(PathBuf::from("g.json")));
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--summary"]).is_err());
        assert!(parse(&["--summary="]).is_err());
        assert_eq!(
            parse(&["--help"]).err().map(|e| e.kind()),
            Some(clap::error::ErrorKind::DisplayHelp)
        );
    }
}
