//! Fly facts about the pass-through Machine config fields, shared by the spec's
//! checks, the wire mapping and the simulator: the stop signals and schedules Fly
//! accepts, and Go's duration syntax, in which Fly reads and writes `stop_config.timeout`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Signals Fly accepts in `stop_config.signal`.
pub const SIGNALS: &[&str] = &[
    "SIGINT", "SIGTERM", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGKILL", "SIGHUP", "SIGSTOP",
];

/// Intervals Fly accepts in `schedule`.
pub const SCHEDULES: &[&str] = &["hourly", "daily", "weekly", "monthly"];

/// A duration, in nanoseconds, written the way Go (and so Fly) writes one: `30s`,
/// `1m30s`, `500ms`. Reads Go's text form or a number of nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GoDuration(pub u64);

const NS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

impl GoDuration {
    /// Parses Go's duration syntax (`1h2m3.5s`, `300ms`); `None` if it is not one or is
    /// negative.
    pub fn parse(s: &str) -> Option<GoDuration> {
        if s == "0" {
            return Some(GoDuration(0));
        }
        let mut rest = s;
        let mut total: u64 = 0;
        if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let (num, tail) = rest.split_at(num_len);
            if num.is_empty() || num == "." {
                return None;
            }
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let &(_, scale) = NS.iter().find(|(u, _)| *u == unit)?;
            let (int, frac) = num.split_once('.').unwrap_or((num, ""));
            let int: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
            let mut part = int.checked_mul(scale)?;
            let mut div = scale;
            for d in frac.chars() {
                div /= 10;
                let digit = u64::from(d.to_digit(10)?);
                part = part.checked_add(digit.checked_mul(div)?)?;
            }
            total = total.checked_add(part)?;
            rest = tail;
        }
        Some(GoDuration(total))
    }

    pub fn from_secs(s: u64) -> GoDuration {
        GoDuration(s.saturating_mul(1_000_000_000))
    }

    pub fn as_nanos(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GoDuration {
    /// Go's `time.Duration.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns == 0 {
            return f.write_str("0s");
        }
        let frac = |v: u64, digits: u32| -> String {
            let s = format!("{v:0width$}", width = digits as usize);
            s.trim_end_matches('0').to_string()
        };
        let small = |f: &mut fmt::Formatter<'_>, unit: u64, digits: u32, name: &str| {
            let (i, r) = (ns / unit, ns % unit);
            if r == 0 {
                write!(f, "{i}{name}")
            } else {
                write!(f, "{i}.{}{name}", frac(r, digits))
            }
        };
        if ns < 1_000 {
            return write!(f, "{ns}ns");
        }
        if ns < 1_000_000 {
            return small(f, 1_000, 3, "µs");
        }
        if ns < 1_000_000_000 {
            return small(f, 1_000_000, 6, "ms");
        }
        let (h, rest) = (ns / 3_600_000_000_000, ns % 3_600_000_000_000);
        let (m, rest) = (rest / 60_000_000_000, rest % 60_000_000_000);
        let (s, sub) = (rest / 1_000_000_000, rest % 1_000_000_000);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if h > 0 || m > 0 {
            write!(f, "{m}m")?;
        }
        if sub == 0 {
            write!(f, "{s}s")
        } else {
            write!(f, "{s}.{}s", frac(sub, 9))
        }
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GoDuration, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => GoDuration::parse(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("not a duration: {s:?}"))),
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(GoDuration)
                .ok_or_else(|| serde::de::Error::custom("not a duration in nanoseconds")),
            _ => Err(serde::de::Error::custom("expected a duration")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_like_go() {
        for (text, ns, go) in [
            ("30s", 30_000_000_000, "30s"),
            ("90s", 90_000_000_000, "1m30s"),
            ("1m", 60_000_000_000, "1m0s"),
            ("1h", 3_600_000_000_000, "1h0m0s"),
            ("1.5s", 1_500_000_000, "1.5s"),
            ("300ms", 300_000_000, "300ms"),
            ("2m3.25s", 123_250_000_000, "2m3.25s"),
            ("0", 0, "0s"),
        ] {
            let d = GoDuration::parse(text).unwrap();
            assert_eq!(d.as_nanos(), ns, "{text}");
            assert_eq!(d.to_string(), go, "{text}");
            assert_eq!(GoDuration::parse(go), Some(d), "{go}");
        }
        for bad in [
            "",
            "s",
            "10",
            "-1s",
            "1x",
            "1.2.3s",
            "99999999999999999999h",
        ] {
            assert_eq!(GoDuration::parse(bad), None, "{bad}");
        }
        let from_ns: GoDuration = serde_json::from_str("30000000000").unwrap();
        assert_eq!(from_ns, GoDuration::from_secs(30));
    }
}
