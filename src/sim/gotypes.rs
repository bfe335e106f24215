//! Values Fly's API reads the way its Go server does: durations (`fly.Duration`: a Go
//! duration string, a number of nanoseconds, `{"time.Duration": N}` or null) and
//! POSIX signals (by name, or by number as fly-go's `Kill` sends `9`). Requests that
//! carry anything else get Fly's 400.

use serde_json::Value;

use super::error::ApiError;
use crate::platform::machine_config::GoDuration;

/// The signals `POST /signal` accepts (Fly's `SignalRequest` enum), with their Linux
/// numbers.
pub(crate) const SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", 1),
    ("SIGINT", 2),
    ("SIGQUIT", 3),
    ("SIGILL", 4),
    ("SIGTRAP", 5),
    ("SIGABRT", 6),
    ("SIGFPE", 8),
    ("SIGKILL", 9),
    ("SIGUSR1", 10),
    ("SIGSEGV", 11),
    ("SIGUSR2", 12),
    ("SIGPIPE", 13),
    ("SIGALRM", 14),
    ("SIGTERM", 15),
];

/// A signal by name (`SIGTERM`, also `TERM`) or number; `None` if unknown.
pub(crate) fn signal(v: &Value) -> Option<(&'static str, i32)> {
    match v {
        Value::String(s) => {
            let upper = s.trim().to_ascii_uppercase();
            let name = if upper.starts_with("SIG") {
                upper
            } else {
                format!("SIG{upper}")
            };
            SIGNALS.iter().find(|(n, _)| *n == name).copied()
        }
        Value::Number(n) => {
            let n = n.as_i64()?;
            SIGNALS
                .iter()
                .find(|(_, num)| i64::from(*num) == n)
                .copied()
        }
        _ => None,
    }
}

/// Whether a signal ends the Machine's main process (and so the Machine).
pub(crate) fn stops_machine(number: i32) -> bool {
    matches!(number, 2 | 9 | 15)
}

/// Parses a Go duration string (`300ms`, `1h2m3.5s`, `-1.5h`, `0`) into nanoseconds:
/// the magnitude as `platform::machine_config::GoDuration` reads it, with Go's sign.
pub(crate) fn parse_go_duration(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let ns = i128::from(GoDuration::parse(rest)?.as_nanos());
    Some(if neg { -ns } else { ns })
}

/// A `fly.Duration` in nanoseconds; `Err` carries what is wrong with it.
pub(crate) fn duration_ns(v: &Value) -> Result<i128, String> {
    match v {
        Value::Null => Ok(0),
        Value::String(s) => {
            parse_go_duration(s).ok_or_else(|| format!("time: invalid duration {s:?}"))
        }
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i128))
            .ok_or_else(|| format!("invalid duration {n}")),
        Value::Object(o) if o.len() == 1 && o.contains_key("time.Duration") => {
            duration_ns(&o["time.Duration"])
        }
        other => Err(format!("unknown duration type: {other}")),
    }
}

/// Checks a duration field `field` of a request: it parses and is not negative.
pub(crate) fn check_duration(field: &str, v: &Value) -> Result<(), ApiError> {
    match duration_ns(v) {
        Ok(ns) if ns >= 0 => Ok(()),
        Ok(_) => Err(ApiError::bad_request(format!(
            "invalid {field}: a duration cannot be negative"
        ))),
        Err(e) => Err(ApiError::bad_request(format!("invalid {field}: {e}"))),
    }
}

/// The duration fields of a Machine check.
const CHECK_DURATIONS: [&str; 3] = ["interval", "timeout", "grace_period"];

/// Checks the durations of the checks in `checks` (an object of named checks, or a
/// service's list of checks), naming each field by `prefix`.
pub(crate) fn check_check_durations(prefix: &str, checks: &Value) -> Result<(), ApiError> {
    let entries: Vec<(String, &Value)> = match checks {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| (format!("{prefix}.{k}"), v))
            .collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{prefix}[{i}]"), v))
            .collect(),
        _ => return Ok(()),
    };
    for (name, check) in entries {
        for field in CHECK_DURATIONS {
            if let Some(v) = check.get(field) {
                check_duration(&format!("{name}.{field}"), v)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10s"), Some(10_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_go_duration("-2s"), Some(-2_000_000_000));
        assert_eq!(parse_go_duration("0"), Some(0));
        for bad in ["", "10", "s", "10 s", "1d", "abc", "1..5s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
        assert_eq!(duration_ns(&json!(5_000_000_000i64)), Ok(5_000_000_000));
        assert_eq!(duration_ns(&json!({"time.Duration": 7})), Ok(7));
        assert!(duration_ns(&json!(true)).is_err());
        assert!(check_duration("timeout", &json!("-1s")).is_err());
    }

    #[test]
    fn signals() {
        assert_eq!(signal(&json!("SIGTERM")), Some(("SIGTERM", 15)));
        assert_eq!(signal(&json!("kill")), Some(("SIGKILL", 9)));
        assert_eq!(signal(&json!(9)), Some(("SIGKILL", 9)));
        assert_eq!(signal(&json!("SIGWINCH")), None);
        assert_eq!(signal(&json!(99)), None);
        assert!(stops_machine(9) && stops_machine(15) && stops_machine(2));
        assert!(!stops_machine(1));
    }

    #[test]
    fn check_fields() {
        let ok = json!({"alive": {"interval": "15s", "timeout": "2s", "grace_period": 0}});
        assert!(check_check_durations("config.checks", &ok).is_ok());
        let bad = json!({"alive": {"interval": "soon"}});
        let e = check_check_durations("config.checks", &bad).unwrap_err();
        assert!(
            e.message.contains("config.checks.alive.interval"),
            "{}",
            e.message
        );
        let list = json!([{"timeout": "x"}]);
        assert!(check_check_durations("config.services[0].checks", &list).is_err());
    }
}
