//! The load run's results as the summary's keys and as the printed table.

use std::fmt::Write as _;

use super::{CONNECTIONS, LoadResults, Point, ServerResult};

impl LoadResults {
    fn serve_point(&self, c: usize) -> Point {
        self.serve.points.get(&c).copied().unwrap_or(nan_point())
    }

    fn floor_point(&self, c: usize) -> Point {
        self.floor
            .as_ref()
            .and_then(|a| a.points.get(&c).copied())
            .unwrap_or(nan_point())
    }

    fn agent_point(&self, c: usize) -> Point {
        self.agent
            .as_ref()
            .and_then(|a| a.points.get(&c).copied())
            .unwrap_or(nan_point())
    }

    /// The summary keys, in order.
    pub fn summary(&self) -> Vec<(&'static str, f64)> {
        let agent_hwm = self.agent.as_ref().map_or(f64::NAN, |a| a.hwm_mb);
        vec![
            ("serve_rps_1", self.serve_point(1).rps),
            ("serve_rps_16", self.serve_point(16).rps),
            ("serve_rps_64", self.serve_point(64).rps),
            ("agent_rps_1", self.agent_point(1).rps),
            ("agent_rps_16", self.agent_point(16).rps),
            ("agent_rps_64", self.agent_point(64).rps),
            ("serve_p99_ms_64", self.serve_point(64).p99_ms),
            ("agent_p99_ms_64", self.agent_point(64).p99_ms),
            ("serve_rss_mb", self.serve.hwm_mb),
            ("agent_rss_mb", agent_hwm),
            (
                "serve_rps_ratio_vs_agent_16",
                self.serve_point(16).rps / self.agent_point(16).rps,
            ),
            (
                "serve_rps_ratio_vs_agent_64",
                self.serve_point(64).rps / self.agent_point(64).rps,
            ),
            ("floor_rps_16", self.floor_point(16).rps),
            ("floor_rps_64", self.floor_point(64).rps),
            ("floor_p99_ms_64", self.floor_point(64).p99_ms),
            (
                "floor_rss_mb",
                self.floor.as_ref().map_or(f64::NAN, |f| f.hwm_mb),
            ),
            (
                "serve_vs_agent_rps_c16",
                self.serve_point(16).rps / self.agent_point(16).rps,
            ),
            (
                "serve_vs_agent_rps_c64",
                self.serve_point(64).rps / self.agent_point(64).rps,
            ),
            (
                "serve_vs_agent_p99_c64",
                self.serve_point(64).p99_ms / self.agent_point(64).p99_ms,
            ),
            (
                "serve_vs_floor_rps_c64",
                self.serve_point(64).rps / self.floor_point(64).rps,
            ),
            ("serve_rss_vs_agent", self.serve.hwm_mb / agent_hwm),
        ]
    }

    /// The table: one row per connection count, then memory and the targets.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nload run: cache hits over HTTP, {} s per point, {}",
            self.seconds, self.generator
        );
        if let Some(why) = &self.agent_skipped {
            let _ = writeln!(out, "AWS agent skipped: {why}");
        }
        let _ = writeln!(
            out,
            "in-process Cache::get (cache_hit/lockbox_one_thread): {:.1} ns",
            self.cache_get_ns
        );
        let _ = writeln!(
            out,
            "| connections | lockbox serve req/s | p50 / p99 ms | AWS agent req/s | p50 / p99 ms | floor req/s | p50 / p99 ms | vs agent | vs floor |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
        for c in CONNECTIONS {
            let (s, a, f) = (
                self.serve_point(c),
                self.agent_point(c),
                self.floor_point(c),
            );
            let _ = writeln!(
                out,
                "| {c} | {:.0}{} | {:.3} / {:.3} | {:.0}{} | {:.3} / {:.3} | {:.0} | {:.3} / {:.3} | x{:.2} | x{:.2} |",
                s.rps,
                errors_note(s.errors),
                s.p50_ms,
                s.p99_ms,
                a.rps,
                errors_note(a.errors),
                a.p50_ms,
                a.p99_ms,
                f.rps,
                f.p50_ms,
                f.p99_ms,
                s.rps / a.rps,
                s.rps / f.rps
            );
        }
        let agent = self.agent.clone().unwrap_or(ServerResult {
            hwm_mb: f64::NAN,
            rss_mb: f64::NAN,
            ..ServerResult::default()
        });
        let floor_hwm = self.floor.as_ref().map_or(f64::NAN, |f| f.hwm_mb);
        let _ = writeln!(
            out,
            "| RSS peak (now) | {:.1} MiB ({:.1}) | | {:.1} MiB ({:.1}) | | {floor_hwm:.1} MiB | | | |",
            self.serve.hwm_mb, self.serve.rss_mb, agent.hwm_mb, agent.rss_mb
        );
        let check = |ok: bool| if ok { "met" } else { "MISSED" };
        let r16 = self.serve_point(16).rps / self.agent_point(16).rps;
        let r64 = self.serve_point(64).rps / self.agent_point(64).rps;
        let p99 = self.serve_point(64).p99_ms / self.agent_point(64).p99_ms;
        let _ = writeln!(
            out,
            "targets: req/s >= 1.5x the agent's at 16 ({}) and 64 ({}); p99 at 64 <= 0.5x (x{p99:.2}: {}); \
             RSS <= agent's ({}); req/s >= 0.9x the floor's at 64 (x{:.2}: {})",
            check(r16 >= 1.5),
            check(r64 >= 1.5),
            check(p99 <= 0.5),
            check(self.serve.hwm_mb <= agent.hwm_mb),
            self.serve_point(64).rps / self.floor_point(64).rps,
            check(self.serve_point(64).rps / self.floor_point(64).rps >= 0.9)
        );
        out
    }
}

/// ` (N errors)` after a figure, or nothing.
fn errors_note(errors: u64) -> String {
    if errors == 0 {
        String::new()
    } else {
        format!(" ({errors} errors)")
    }
}

/// A point not measured.
fn nan_point() -> Point {
    Point {
        rps: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        errors: 0,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;
    use crate::load::merge_summary;

    #[test]
    fn summary_has_every_key_and_ratio() {
        let mut r = LoadResults::default();
        for c in CONNECTIONS {
            r.serve.points.insert(
                c,
                Point {
                    rps: 300.0,
                    p50_ms: 0.1,
                    p99_ms: 1.0,
                    errors: 0,
                },
            );
        }
        let mut agent = ServerResult::default();
        agent.points.insert(
            16,
            Point {
                rps: 100.0,
                ..Point::default()
            },
        );
        r.agent = Some(agent);
        let s: BTreeMap<_, _> = r.summary().into_iter().collect();
        assert_eq!(s.len(), 21);
        assert_eq!(s["serve_rps_ratio_vs_agent_16"], 3.0);
        assert_eq!(s["serve_vs_agent_rps_c16"], 3.0);
        assert!(s["serve_vs_floor_rps_c64"].is_nan());
        assert!(s["serve_rps_ratio_vs_agent_64"].is_nan());
        assert!(r.table().contains("| 16 | 300 |"));
        let merged = merge_summary("{\n  \"cache_hit_ns\": 29.9,\n  \"x\": 1\n}\n", &r);
        let json: serde_json::Map<String, Value> = serde_json::from_str(&merged).unwrap();
        assert_eq!(json.len(), 23);
        assert_eq!(json["serve_rps_16"], Value::from(300.0));
        assert_eq!(json["agent_rps_64"], Value::Null);
        let alone: serde_json::Map<String, Value> =
            serde_json::from_str(&merge_summary("{\n}\n", &r)).unwrap();
        assert_eq!(alone.len(), 21);
    }
}
