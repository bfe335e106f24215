//! Money: exact decimal US dollars. Arithmetic never rounds; only display does.

use rust_decimal::{Decimal, RoundingStrategy};

/// An exact amount of US dollars.
pub type Usd = Decimal;

/// Hours in Fly's billing month (30 days × 24 h).
pub const HOURS_PER_MONTH: u32 = 720;

/// Rounds to cents (half away from zero) for display only.
pub fn to_cents(v: Usd) -> Usd {
    v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// `$12.34`, `$11,415.38` (negative: `-$12.34`): the one money formatter of every
/// report (cost, plan, what-if).
pub fn fmt_usd(v: Usd) -> String {
    let mut out = String::with_capacity(12);
    write_usd(&mut out, v);
    out
}

/// [`fmt_usd`] appended to `out` (renderers of large plans write figures in place).
pub fn write_usd(out: &mut String, v: Usd) {
    let c = to_cents(v);
    if c.is_sign_negative() && !c.is_zero() {
        out.push_str("-$");
        write_two_places(out, -c);
    } else {
        out.push('$');
        write_two_places(out, c.abs());
    }
}

/// A non-negative amount already rounded to cents, with exactly two decimals: the same
/// text as `{:.2}`, from integer cents (a plan of a large fleet prints hundreds of
/// thousands of figures, and decimal formatting is the slow part of each).
#[cfg(test)]
fn two_places(c: Decimal) -> String {
    let mut out = String::with_capacity(8);
    write_two_places(&mut out, c);
    out
}

/// [`two_places`] appended to `out`.
fn write_two_places(out: &mut String, c: Decimal) {
    // A figure rounded to cents has at most two decimals: its mantissa scaled to two
    // places is the number of cents (no decimal arithmetic needed).
    let cents = match c.scale() {
        0 => c.mantissa().checked_mul(100),
        1 => c.mantissa().checked_mul(10),
        2 => Some(c.mantissa()),
        _ => None,
    }
    .and_then(|m| u64::try_from(m).ok());
    match cents {
        Some(cents) => {
            let digits = itoa_u64(cents / 100);
            write_grouped(out, digits.as_str());
            out.push('.');
            let rest = (cents % 100) as u8;
            out.push(char::from(b'0' + rest / 10));
            out.push(char::from(b'0' + rest % 10));
        }
        None => {
            let text = format!("{c:.2}");
            let (int, frac) = text.split_once('.').unwrap_or((text.as_str(), ""));
            write_grouped(out, int);
            if !frac.is_empty() {
                out.push('.');
                out.push_str(frac);
            }
        }
    }
}

/// `digits` (ASCII, optionally after a `-`) with a comma between each group of three.
pub fn write_grouped(out: &mut String, digits: &str) {
    let (sign, d) = match digits.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", digits),
    };
    out.push_str(sign);
    let head = d.len() % 3;
    out.push_str(&d[..head]);
    for (i, chunk) in d.as_bytes()[head..].chunks(3).enumerate() {
        if head > 0 || i > 0 {
            out.push(',');
        }
        // Only ASCII digits: every chunk is valid text.
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
    }
}

/// `n` with thousands separators (`1,014`).
pub fn fmt_count(n: u64) -> String {
    let mut out = String::with_capacity(8);
    write_grouped(&mut out, itoa_u64(n).as_str());
    out
}

/// The change between two amounts as shown: the difference of the rounded figures, so
/// `$0.10 → $0.13` reads `+$0.03` whatever the unrounded amounts were.
pub fn shown_delta(before: Usd, after: Usd) -> Usd {
    to_cents(after) - to_cents(before)
}

/// Decimal digits of `n` without the formatting machinery.
fn itoa_u64(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

/// The digits [`itoa_u64`] wrote, at the end of a fixed buffer.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_str(&self) -> &str {
        // Only ASCII digits are ever written.
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("")
    }
}

/// `+`, `-` or nothing (zero) before `prefix`, the absolute value with `dp` decimals and
/// `suffix`: the shape of every signed figure shown (deltas, percentages).
fn signed(rounded: Decimal, dp: usize, prefix: &str, suffix: &str) -> String {
    let mut out = String::with_capacity(12);
    write_signed(&mut out, rounded, dp, prefix, suffix);
    out
}

/// [`signed`] appended to `out`.
fn write_signed(out: &mut String, rounded: Decimal, dp: usize, prefix: &str, suffix: &str) {
    use std::fmt::Write as _;
    if !rounded.is_zero() {
        out.push(if rounded.is_sign_negative() { '-' } else { '+' });
    }
    out.push_str(prefix);
    if dp == 2 {
        write_two_places(out, rounded.abs());
    } else {
        let _ = write!(out, "{:.dp$}", rounded.abs());
    }
    out.push_str(suffix);
}

/// `+$1.23` / `-$1.23` / `$0.00`, for deltas.
pub fn fmt_delta(v: Usd) -> String {
    signed(to_cents(v), 2, "$", "")
}

/// [`fmt_delta`] appended to `out`.
pub fn write_delta(out: &mut String, v: Usd) {
    write_signed(out, to_cents(v), 2, "$", "");
}

/// Parses `25`, `$25`, `25.50` as dollars (not negative), e.g. a budget limit.
pub fn parse_usd(s: &str) -> Result<Usd, String> {
    let t = s.trim();
    let t = t.strip_prefix('$').unwrap_or(t);
    let v = <Decimal as std::str::FromStr>::from_str(t)
        .map_err(|_| format!("`{s}` is not an amount of dollars (e.g. 250 or 99.50)"))?;
    if v.is_sign_negative() {
        return Err(format!("`{s}` is negative"));
    }
    Ok(v)
}

/// A unit price for display: cents when it has at most two decimals (`$0.15`), else up
/// to six decimals (`$0.002694`), since per-hour prices are fractions of a cent.
pub fn fmt_rate(v: Usd) -> String {
    let r = v.round_dp_with_strategy(6, RoundingStrategy::MidpointAwayFromZero);
    let sign = if r.is_sign_negative() && !r.is_zero() {
        "-"
    } else {
        ""
    };
    let a = r.abs();
    let text = if a.normalize().scale() <= 2 {
        format!("{a:.2}")
    } else {
        a.normalize().to_string()
    };
    let (int, frac) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let mut out = format!("{sign}$");
    write_grouped(&mut out, int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// `+12.3%` / `-4.0%` / `0.0%` (one decimal, for display).
pub fn fmt_percent(p: Decimal) -> String {
    signed(
        p.round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero),
        1,
        "",
        "%",
    )
}

/// A JSON number with at most `dp` decimals (display-only conversion).
pub fn json_decimal(v: Decimal, dp: u32) -> serde_json::Value {
    let r = v
        .round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
        .normalize();
    serde_json::from_str::<serde_json::Number>(&r.to_string())
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

/// The JSON form of money: a number in dollars with at most 4 decimals.
pub fn json_usd(v: Usd) -> serde_json::Value {
    // Display-only conversion: a value with at most 4 decimals (and far below 2^53 cents)
    // prints back as the same shortest decimal text.
    json_decimal(v, 4)
}

#[cfg(test)]
mod tests {

    #[test]
    fn two_places_from_cents_is_decimal_formatting() {
        for text in [
            "0",
            "0.01",
            "0.10",
            "1",
            "1.5",
            "12.34",
            "1000000.99",
            "79228162514264337593543950.33",
        ] {
            let c: Decimal = text.parse().unwrap();
            assert_eq!(two_places(c).replace(',', ""), format!("{c:.2}"), "{text}");
        }
        // Not rounded to cents: decimal formatting decides.
        let c: Decimal = "1.005".parse().unwrap();
        assert_eq!(two_places(c), format!("{c:.2}"));
        assert_eq!(two_places("1000000.99".parse().unwrap()), "1,000,000.99");
    }

    use super::*;
    use std::str::FromStr;

    #[test]
    fn display_rounds_half_away_from_zero() {
        assert_eq!(fmt_usd(Decimal::from_str("10.685").unwrap()), "$10.69");
        assert_eq!(fmt_usd(Decimal::from_str("-0.004").unwrap()), "$0.00");
        assert_eq!(fmt_usd(Decimal::from_str("-2.5").unwrap()), "-$2.50");
        assert_eq!(fmt_delta(Decimal::from_str("1.905").unwrap()), "+$1.91");
        assert_eq!(fmt_delta(Decimal::from_str("-1.905").unwrap()), "-$1.91");
    }

    #[test]
    fn thousands_are_separated() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(fmt_usd(d("11415.375")), "$11,415.38");
        assert_eq!(fmt_usd(d("-1234567.891")), "-$1,234,567.89");
        assert_eq!(fmt_usd(d("999.999")), "$1,000.00");
        assert_eq!(fmt_usd(d("100")), "$100.00");
        assert_eq!(fmt_delta(d("-2500")), "-$2,500.00");
        assert_eq!(fmt_rate(d("1234.5")), "$1,234.50");
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(1014), "1,014");
        assert_eq!(fmt_count(123456789), "123,456,789");
        // Beyond 64-bit cents: decimal formatting, still grouped.
        assert_eq!(
            fmt_usd(d("79228162514264337593543950.33")),
            "$79,228,162,514,264,337,593,543,950.33"
        );
    }

    #[test]
    fn deltas_are_those_of_the_figures_shown() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        // $0.10 → $0.13: the exact difference (0.035) would round to +$0.04.
        let (b, a) = (d("0.0996"), d("0.1346"));
        assert_eq!((fmt_usd(b), fmt_usd(a)), ("$0.10".into(), "$0.13".into()));
        assert_eq!(fmt_delta(a - b), "+$0.04");
        assert_eq!(fmt_delta(shown_delta(b, a)), "+$0.03");
        assert_eq!(fmt_delta(shown_delta(a, a)), "$0.00");
        assert_eq!(fmt_delta(shown_delta(d("167.844"), d("159.495"))), "-$8.34");
    }

    #[test]
    fn rates_and_percentages() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(fmt_rate(d("0.15")), "$0.15");
        assert_eq!(fmt_rate(d("5")), "$5.00");
        assert_eq!(fmt_rate(d("1.94") / d("720")), "$0.002694");
        assert_eq!(fmt_rate(d("-0.08")), "-$0.08");
        assert_eq!(fmt_percent(d("12.345")), "+12.3%");
        assert_eq!(fmt_percent(d("-4")), "-4.0%");
        assert_eq!(fmt_percent(d("0.01")), "0.0%");
        assert_eq!(json_decimal(d("0.0026944444"), 6).to_string(), "0.002694");
    }

    #[test]
    fn json_keeps_four_decimals() {
        let v = json_usd(Decimal::from_str("1.781666666").unwrap());
        assert_eq!(v.to_string(), "1.7817");
        assert_eq!(
            json_usd(Decimal::from_str("10.69").unwrap()).to_string(),
            "10.69"
        );
        assert_eq!(json_usd(Decimal::ZERO).to_string(), "0");
    }
}

/// Serde for `Option<Usd>` as a JSON number with at most 4 decimals. Reads back decimal
/// strings exactly, and numbers through `f64`: exact for what flotilla writes (at most 4
/// decimals, far below 2^53), the nearest `f64`'s shortest form for other numbers.
pub mod usd_opt {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::str::FromStr;

    pub fn serialize<S: Serializer>(v: &Option<Usd>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => serde::Serialize::serialize(&json_usd(*x), s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Usd>, D::Error> {
        match Option::<serde_json::Value>::deserialize(d)? {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => Decimal::from_str(&n.to_string())
                .map(Some)
                .map_err(serde::de::Error::custom),
            Some(serde_json::Value::String(s)) => Decimal::from_str(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
            Some(other) => Err(serde::de::Error::custom(format!(
                "expected an amount in dollars, found {other}"
            ))),
        }
    }
}

/// Serde for `Usd` as a JSON number with at most 4 decimals.
pub mod usd {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Usd, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&json_usd(*v), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        super::usd_opt::deserialize(d)?
            .ok_or_else(|| serde::de::Error::custom("an amount is required"))
    }
}
