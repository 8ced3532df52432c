//! What the soak measured: tallies from each client, the table it prints, the `--summary` JSON
//! and the targets.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::load::Point;

/// RSS growth (end minus start, under load) must stay below this, MiB.
pub const RSS_GROWTH_LIMIT_MB: f64 = 10.0;
/// `/ping` must answer within this, ms.
pub const PING_LIMIT_MS: f64 = 100.0;

/// Answers one client got, by status, and the 5xx by kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Requests answered (any status).
    pub requests: u64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// 5xx answers by `"<status> <__type>"` (the body's error type, or `-`).
    pub kinds_5xx: BTreeMap<String, u64>,
    /// 200 bodies that were not the current or a previous value of the secret asked.
    pub wrong: u64,
    /// The first few wrong answers: the path and why (test values only, never real secrets).
    pub wrong_examples: Vec<String>,
    /// Requests that got no HTTP answer (connect, read or write failed, or timed out).
    pub transport_errors: u64,
}

impl Tally {
    /// Counts one answer; `verdict` is `Some(why)` when a 200 body was wrong.
    pub fn answer(&mut self, status: u16, body: &str, verdict: Option<String>) {
        self.requests += 1;
        *self.statuses.entry(status).or_default() += 1;
        if status >= 500 {
            *self.kinds_5xx.entry(kind_5xx(status, body)).or_default() += 1;
        }
        if let Some(why) = verdict {
            self.wrong += 1;
            if self.wrong_examples.len() < 5 {
                self.wrong_examples.push(why);
            }
        }
    }
}

/// `"<status> <__type>"` of an error answer, `-` when the body names no type.
pub fn kind_5xx(status: u16, body: &str) -> String {
    let kind = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("__type")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "-".to_owned());
    format!("{status} {kind}")
}

/// The `/ping` probe's record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PingTally {
    /// Probes sent.
    pub probes: u64,
    /// Probes that got an HTTP answer (any status).
    pub answered: u64,
    /// Probes that got no 200 within the limit (slow, another status, or no answer).
    pub misses: u64,
    /// The slowest probe, ms (a failed probe counts with the time it took to fail).
    pub worst_ms: f64,
    /// Seconds into the run of the first few misses.
    pub miss_times_s: Vec<f64>,
}

impl PingTally {
    /// Records one probe: its status (`None`: no answer), how long it took, when it was sent.
    pub fn probe(&mut self, status: Option<u16>, ms: f64, at_s: f64) {
        self.probes += 1;
        self.answered += u64::from(status.is_some());
        let ok = status == Some(200);
        self.worst_ms = self.worst_ms.max(ms);
        if !ok || ms > PING_LIMIT_MS {
            self.misses += 1;
            if self.miss_times_s.len() < 10 {
                self.miss_times_s.push((at_s * 10.0).round() / 10.0);
            }
        }
    }
}

/// wrk's run: its load line and the statuses its Lua script counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WrkRun {
    /// Requests per second, latency, and wrk's error count (socket errors and non-2xx).
    pub point: Point,
    /// Requests answered.
    pub requests: u64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// wrk's socket errors by kind (`connect`, `read`, `write`, `timeout`).
    pub socket_errors: BTreeMap<String, u64>,
}

/// Reads the script's `LOCKBOX_STATUS 200=N 502=N` and `LOCKBOX_ERRORS connect=N ...` lines.
pub fn parse_wrk_extra(stdout: &str) -> (BTreeMap<u16, u64>, BTreeMap<String, u64>) {
    let fields = |prefix: &str| -> Vec<(String, u64)> {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|kv| {
                        let (k, v) = kv.split_once('=')?;
                        Some((k.to_owned(), v.parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let statuses = fields("LOCKBOX_STATUS")
        .into_iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v)))
        .collect();
    (statuses, fields("LOCKBOX_ERRORS").into_iter().collect())
}

/// The token-less flood's record (from the flood process's last line).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FloodTally {
    /// The uid it ran as.
    pub uid: u32,
    /// Sockets it kept open (or reopening).
    pub sockets: u64,
    /// Connections it opened.
    pub connects: u64,
    /// Connections serve closed (then reopened).
    pub closed_by_server: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
}

impl FloodTally {
    /// The flood process's `LOCKBOX_FLOOD key=N ...` line.
    pub fn line(&self) -> String {
        format!(
            "LOCKBOX_FLOOD uid={} sockets={} connects={} closed_by_server={} connect_failures={}",
            self.uid, self.sockets, self.connects, self.closed_by_server, self.connect_failures
        )
    }

    /// Reads [`FloodTally::line`] back.
    pub fn parse(stdout: &str) -> Option<FloodTally> {
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("LOCKBOX_FLOOD "))?;
        let f: BTreeMap<&str, u64> = line
            .split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        Some(FloodTally {
            uid: u32::try_from(*f.get("uid")?).ok()?,
            sockets: *f.get("sockets")?,
            connects: *f.get("connects")?,
            closed_by_server: *f.get("closed_by_server")?,
            connect_failures: *f.get("connect_failures")?,
        })
    }
}

/// Resident memory of serve, MiB.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rss {
    /// After the warm-up reads, before any load.
    pub idle_mb: f64,
    /// 30 s into the load (connections, caches and the flood at their working size).
    pub start_mb: f64,
    /// At the end of the load.
    pub end_mb: f64,
    /// The highest sample (one a second).
    pub peak_mb: f64,
}

/// Everything one soak measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Seconds the load ran.
    pub seconds: f64,
    /// wrk at 64 connections, hits and misses mixed.
    pub wrk: WrkRun,
    /// The checker: every path in turn, each 200 body verified.
    pub checker: Tally,
    /// The consumer cycling random `versionStage` values on its own secret.
    pub cycler: Tally,
    /// `/ping` every 200 ms.
    pub ping: PingTally,
    /// The token-less flood, when its process reported.
    pub flood: Option<FloodTally>,
    /// Emulator restarts done, and failed.
    pub restarts: u64,
    /// Restarts that failed (the emulator stayed down until the next try).
    pub restart_failures: u64,
    /// Seconds the emulator was down in all.
    pub downtime_s: f64,
    /// Serve's memory.
    pub rss: Rss,
}

impl Report {
    /// Every request answered (wrk, checker, consumer, /ping).
    pub fn requests_served(&self) -> u64 {
        self.wrk.requests + self.checker.requests + self.cycler.requests + self.ping.answered
    }

    /// Wrong answers: a 200 body not the current or a previous value of the secret asked.
    pub fn wrong_answers(&self) -> u64 {
        self.checker.wrong + self.cycler.wrong
    }

    /// RSS at the end minus RSS at the start, MiB.
    pub fn rss_growth_mb(&self) -> f64 {
        self.rss.end_mb - self.rss.start_mb
    }

    /// 5xx answers by `"<source> <status> <kind>"`.
    pub fn errors_5xx(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (status, n) in self.wrk.statuses.range(500..) {
            out.insert(format!("wrk {status} -"), *n);
        }
        for (source, tally) in [("checker", &self.checker), ("consumer", &self.cycler)] {
            for (kind, n) in &tally.kinds_5xx {
                out.insert(format!("{source} {kind}"), *n);
            }
        }
        out
    }

    /// The targets missed, each with a line saying why; empty when all are met.
    pub fn missed(&self) -> Vec<String> {
        let mut missed = Vec::new();
        if self.wrong_answers() > 0 {
            missed.push(format!(
                "{} wrong answer(s) (must be 0)",
                self.wrong_answers()
            ));
        }
        // NaN (no figure) is a miss too.
        let growth = self.rss_growth_mb();
        if growth.is_nan() || growth >= RSS_GROWTH_LIMIT_MB {
            missed.push(format!(
                "RSS grew {:.1} MiB (target < {RSS_GROWTH_LIMIT_MB} MiB)",
                self.rss_growth_mb()
            ));
        }
        if self.ping.misses > 0 || self.ping.probes == 0 {
            missed.push(format!(
                "/ping missed {PING_LIMIT_MS} ms {} time(s) of {} (worst {:.1} ms)",
                self.ping.misses, self.ping.probes, self.ping.worst_ms
            ));
        }
        missed
    }

    /// The printed table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(
            w,
            "\nsoak: {:.0} s under load; emulator restarted {} time(s) ({} failed), down {:.0} s in all",
            self.seconds, self.restarts, self.restart_failures, self.downtime_s
        );
        let _ = writeln!(w, "| measure | value |");
        let _ = writeln!(w, "|---|---|");
        let _ = writeln!(w, "| requests served | {} |", self.requests_served());
        let _ = writeln!(
            w,
            "| wrk (64 connections, hits and misses) | {} requests, {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms |",
            self.wrk.requests, self.wrk.point.rps, self.wrk.point.p50_ms, self.wrk.point.p99_ms
        );
        let _ = writeln!(w, "| wrk statuses | {} |", statuses(&self.wrk.statuses));
        if self.wrk.socket_errors.values().any(|n| *n > 0) {
            let _ = writeln!(
                w,
                "| wrk socket errors | {} |",
                pairs(&self.wrk.socket_errors)
            );
        }
        for (name, t) in [
            ("checker", &self.checker),
            ("consumer (random stages)", &self.cycler),
        ] {
            let _ = writeln!(
                w,
                "| {name} | {} requests ({}), {} transport error(s), {} wrong |",
                t.requests,
                statuses(&t.statuses),
                t.transport_errors,
                t.wrong
            );
        }
        let _ = writeln!(w, "| wrong answers | {} |", self.wrong_answers());
        let errors = self.errors_5xx();
        let _ = writeln!(
            w,
            "| 5xx | {} |",
            if errors.is_empty() {
                "none".to_owned()
            } else {
                pairs(&errors)
            }
        );
        match &self.flood {
            Some(f) => {
                let _ = writeln!(
                    w,
                    "| token-less flood (uid {}) | {} sockets, {} connections, {} closed by serve, {} refused |",
                    f.uid, f.sockets, f.connects, f.closed_by_server, f.connect_failures
                );
            }
            None => {
                let _ = writeln!(w, "| token-less flood | did not report |");
            }
        }
        let _ = writeln!(
            w,
            "| RSS idle / start / end / peak | {:.1} / {:.1} / {:.1} / {:.1} MiB (growth {:+.1}) |",
            self.rss.idle_mb,
            self.rss.start_mb,
            self.rss.end_mb,
            self.rss.peak_mb,
            self.rss_growth_mb()
        );
        let _ = writeln!(
            w,
            "| /ping within {PING_LIMIT_MS} ms | {} of {} probes missed, worst {:.1} ms{} |",
            self.ping.misses,
            self.ping.probes,
            self.ping.worst_ms,
            if self.ping.miss_times_s.is_empty() {
                String::new()
            } else {
                format!(" (first misses at {:?} s)", self.ping.miss_times_s)
            }
        );
        for example in self
            .checker
            .wrong_examples
            .iter()
            .chain(&self.cycler.wrong_examples)
        {
            let _ = writeln!(w, "wrong answer: {example}");
        }
        let missed = self.missed();
        if missed.is_empty() {
            let _ = writeln!(
                w,
                "targets: met (0 wrong answers, RSS growth < {RSS_GROWTH_LIMIT_MB} MiB, /ping within {PING_LIMIT_MS} ms throughout)"
            );
        } else {
            let _ = writeln!(w, "targets MISSED: {}", missed.join("; "));
        }
        out
    }

    /// The `--summary` JSON.
    pub fn summary(&self) -> Value {
        let round = |x: f64| {
            if x.is_finite() {
                Value::from((x * 1000.0).round() / 1000.0)
            } else {
                Value::Null
            }
        };
        json!({
            "seconds": round(self.seconds),
            "requests_served": self.requests_served(),
            "wrk_requests": self.wrk.requests,
            "wrk_rps": round(self.wrk.point.rps),
            "wrk_p99_ms": round(self.wrk.point.p99_ms),
            "wrk_statuses": self.wrk.statuses.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect::<serde_json::Map<_, _>>(),
            "checker_requests": self.checker.requests,
            "consumer_requests": self.cycler.requests,
            "wrong_answers": self.wrong_answers(),
            "errors_5xx": self.errors_5xx().values().sum::<u64>(),
            "errors_5xx_by_kind": self.errors_5xx(),
            "rss_idle_mb": round(self.rss.idle_mb),
            "rss_start_mb": round(self.rss.start_mb),
            "rss_end_mb": round(self.rss.end_mb),
            "rss_peak_mb": round(self.rss.peak_mb),
            "rss_growth_mb": round(self.rss_growth_mb()),
            "ping_probes": self.ping.probes,
            "ping_misses": self.ping.misses,
            "ping_worst_ms": round(self.ping.worst_ms),
            "emulator_restarts": self.restarts,
            "emulator_restart_failures": self.restart_failures,
            "flood_connects": self.flood.as_ref().map(|f| f.connects),
            "targets_met": self.missed().is_empty(),
        })
    }
}

fn statuses(map: &BTreeMap<u16, u64>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pairs(map: &BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_script_lines() {
        let out = "LOCKBOX_LOAD requests=10 duration_us=1000000 p50_us=1 p99_us=2 errors=3\n\
                   LOCKBOX_STATUS 200=7 502=2 403=1\n\
                   LOCKBOX_ERRORS connect=0 read=1 write=0 timeout=2 status=3\n";
        let (statuses, errors) = parse_wrk_extra(out);
        assert_eq!(statuses, BTreeMap::from([(200, 7), (403, 1), (502, 2)]));
        assert_eq!(errors["timeout"], 2);
        assert_eq!(errors.len(), 5);
        let (none, _) = parse_wrk_extra("nothing");
        assert!(none.is_empty());
    }

    #[test]
    fn flood_line_round_trips() {
        let f = FloodTally {
            uid: 65534,
            sockets: 160,
            connects: 12345,
            closed_by_server: 12000,
            connect_failures: 3,
        };
        assert_eq!(
            FloodTally::parse(&format!("noise\n{}\n", f.line())),
            Some(f)
        );
        assert_eq!(FloodTally::parse("LOCKBOX_FLOOD uid=1"), None);
    }

    #[test]
    fn tallies_count_5xx_by_kind_and_wrong_answers() {
        let mut t = Tally::default();
        t.answer(200, "{}", None);
        t.answer(
            502,
            r#"{"__type":"ServiceUnavailable","message":"x"}"#,
            None,
        );
        t.answer(504, "timeout", None);
        t.answer(200, "{}", Some("a reason".into()));
        assert_eq!(t.requests, 4);
        assert_eq!(t.statuses[&200], 2);
        assert_eq!(t.kinds_5xx["502 ServiceUnavailable"], 1);
        assert_eq!(t.kinds_5xx["504 -"], 1);
        assert_eq!((t.wrong, t.wrong_examples.len()), (1, 1));
    }

    #[test]
    fn ping_misses_are_slow_or_failed_probes() {
        let mut p = PingTally::default();
        p.probe(Some(200), 3.0, 0.2);
        p.probe(Some(200), 150.0, 0.4);
        p.probe(None, 1.0, 0.6);
        assert_eq!(
            (p.probes, p.answered, p.misses, p.worst_ms),
            (3, 2, 2, 150.0)
        );
        assert_eq!(p.miss_times_s, vec![0.4, 0.6]);
    }

    fn healthy() -> Report {
        let mut r = Report {
            seconds: 120.0,
            restarts: 4,
            ..Report::default()
        };
        r.wrk.requests = 1000;
        r.wrk.statuses = BTreeMap::from([(200, 990), (502, 10)]);
        r.checker.answer(200, "{}", None);
        r.cycler.answer(504, r#"{"__type":"Timeout"}"#, None);
        r.ping.probe(Some(200), 2.0, 1.0);
        r.rss = Rss {
            idle_mb: 10.0,
            start_mb: 20.0,
            end_mb: 25.0,
            peak_mb: 30.0,
        };
        r
    }

    #[test]
    fn targets_and_summary() {
        let r = healthy();
        assert!(r.missed().is_empty(), "{:?}", r.missed());
        assert_eq!(r.requests_served(), 1003);
        assert_eq!(r.errors_5xx()["wrk 502 -"], 10);
        assert_eq!(r.errors_5xx()["consumer 504 Timeout"], 1);
        let s = r.summary();
        assert_eq!(s["requests_served"], 1003);
        assert_eq!(s["errors_5xx"], 11);
        assert_eq!(s["rss_growth_mb"], 5.0);
        assert_eq!(s["targets_met"], true);
        assert_eq!(s["wrk_statuses"]["502"], 10);
        assert!(r.table().contains("targets: met"));

        let mut bad = healthy();
        bad.rss.end_mb = 31.0;
        bad.ping.probe(Some(429), 101.0, 2.0);
        bad.checker.answer(200, "{}", Some("x".into()));
        let missed = bad.missed();
        assert_eq!(missed.len(), 3, "{missed:?}");
        assert!(bad.table().contains("targets MISSED"));
        assert_eq!(bad.summary()["targets_met"], false);
        // No probe at all is not "answered throughout".
        let mut silent = healthy();
        silent.ping = PingTally::default();
        assert_eq!(silent.missed().len(), 1);
    }
}
