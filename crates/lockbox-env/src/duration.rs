//! Durations as `--watch`, `--grace` and `--max-stale` take them: `30s`, `5m`, `1h`, `500ms`,
//! or a bare number of seconds.

use std::time::Duration;

use lockbox_core::{Error, Result};

/// Parses `500ms`, `30s`, `5m`, `1h`, `1.5s` or `30` (seconds); `field` names the option in
/// the error.
pub fn parse_duration(field: &str, text: &str) -> Result<Duration> {
    let bad = || {
        Error::invalid_config(
            field,
            format!("{text:?} is not a duration: write it like 30s, 5m, 1h or 500ms"),
        )
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        let d = |t| parse_duration("--watch", t).unwrap();
        assert_eq!(d("30s"), Duration::from_secs(30));
        assert_eq!(d("5m"), Duration::from_secs(300));
        assert_eq!(d("1h"), Duration::from_secs(3600));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("2"), Duration::from_secs(2));
        assert_eq!(d("1.5s"), Duration::from_millis(1500));
        for bad in ["", "s", "5x", "-1s", "1d"] {
            let e = parse_duration("--watch", bad).unwrap_err().to_string();
            assert!(e.contains("--watch") && e.contains("30s"), "{e}");
        }
    }
}
