//! Fault injection: configuration, the `--faults` grammar and seeded decisions.
//!
//! Grammar (comma-separated items, whitespace ignored; `none` or an empty string means
//! no faults):
//!
//! ```text
//! STATUS=P            answer STATUS (429, 500, 502 or 503) before the change, with probability P
//! STATUS@after=P      apply the change, then answer STATUS anyway
//! latency=D | D1..D2  add a fixed or uniformly random delay to every request
//! timeout=P           hang (see `hang`), then drop the connection without answering
//! hang=D              how long a timed-out request hangs (default 30s)
//! lost_response=P     apply the change, then drop the connection without answering
//! capacity=R1+R2      Machine and volume creates in these regions fail with 422
//!                     `insufficient_capacity`; `R:FORM` picks another of Fly's forms for
//!                     Machine creates in R (volume creates ignore those): `412` "insufficient
//!                     resources to create new machine with existing volume" (only Machines
//!                     that mount a volume; JSON code `volume_placement_capacity`), `409`
//!                     "insufficient memory available", `403` "over the allowed quota";
//!                     `400` is the volume create's "no capacity" (Machine creates ignore it)
//! eventual=P          a new Machine or app stays invisible (404 to GET and wait; an app
//!                     also to Machine and volume creates and secret updates in it) for a
//!                     short simulated moment, with probability P per create
//! bad_image=I1+I2     Machines whose image contains one of these strings crash at boot
//!                     (`starting` → `failed`, checks critical)
//! job_fail=I1+I2      one-shot Machines (auto_destroy, restart `no`) whose image contains
//!                     one of these strings run, then exit with status 1
//! fail_after=N        serve N requests, then answer 503 to every later one
//! ```
//!
//! P is a probability in [0, 1]; D is a number with a unit `ms`, `s` or `m`.
//! The probabilities of the before-faults (`STATUS=P` and `timeout`) add up to at most 1,
//! and so do those of the after-faults (`STATUS@after=P` and `lost_response`): each
//! takes its own share of one random draw, so `timeout=0.3,500=0.3` times out 30% of
//! the requests and answers 500 to another 30%.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Status codes that can be injected.
pub const FAULT_STATUSES: [u16; 4] = [429, 500, 502, 503];

/// What faults to inject. `FaultConfig::default()` injects none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultConfig {
    /// `(status, probability)` answered before the change takes effect.
    pub errors_before: Vec<(u16, f64)>,
    /// `(status, probability)` answered after the change took effect.
    pub errors_after: Vec<(u16, f64)>,
    /// Added latency: uniformly random between the two bounds (equal for a fixed delay).
    pub latency: Option<(Duration, Duration)>,
    /// Probability that a request hangs for `hang` and then loses its connection.
    pub timeout: f64,
    /// How long a timed-out request hangs before the connection drops.
    pub hang: Duration,
    /// Probability that a request takes effect but its connection drops unanswered.
    pub lost_response: f64,
    /// Regions where creates fail for lack of capacity, and in which of Fly's forms.
    #[serde(default)]
    pub capacity: Vec<CapacityFault>,
    /// Probability that a new Machine or app is briefly invisible to reads.
    #[serde(default)]
    pub eventual: f64,
    /// Images (substrings) whose Machines crash at boot.
    #[serde(default)]
    pub bad_images: Vec<String>,
    /// Images (substrings) whose one-shot Machines exit with status 1.
    #[serde(default)]
    pub failing_jobs: Vec<String>,
    /// Serve this many requests normally, then answer 503 to all.
    pub fail_after: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            errors_before: Vec::new(),
            errors_after: Vec::new(),
            latency: None,
            timeout: 0.0,
            hang: Duration::from_secs(30),
            lost_response: 0.0,
            capacity: Vec::new(),
            eventual: 0.0,
            bad_images: Vec::new(),
            failing_jobs: Vec::new(),
            fail_after: None,
        }
    }
}

/// The form of a capacity error, as Fly answers them (see the module grammar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapacityForm {
    /// 422 `insufficient_capacity`: Machine and volume creates.
    Unprocessable,
    /// 412 "insufficient resources to create new machine with existing volume", code
    /// `volume_placement_capacity`: Machine creates that mount a volume.
    ExistingVolume,
    /// 409 "could not reserve resource for machine: insufficient memory available".
    Memory,
    /// 403 "over the allowed quota" (the organization's memory quota in the region).
    Quota,
    /// 400 "no capacity": volume creates only.
    NoCapacity,
}

impl CapacityForm {
    fn parse(code: &str) -> Result<CapacityForm, String> {
        match code {
            "422" => Ok(CapacityForm::Unprocessable),
            "412" => Ok(CapacityForm::ExistingVolume),
            "409" => Ok(CapacityForm::Memory),
            "403" => Ok(CapacityForm::Quota),
            "400" => Ok(CapacityForm::NoCapacity),
            other => Err(format!(
                "unknown capacity form {other:?}; expected 422, 412, 409, 403 or 400"
            )),
        }
    }

    fn code(self) -> &'static str {
        match self {
            CapacityForm::Unprocessable => "422",
            CapacityForm::ExistingVolume => "412",
            CapacityForm::Memory => "409",
            CapacityForm::Quota => "403",
            CapacityForm::NoCapacity => "400",
        }
    }
}

/// One `capacity=` entry: creates in `region` fail in `form`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityFault {
    pub region: String,
    pub form: CapacityForm,
}

/// `R1+R2:FORM`: regions, each optionally with its form.
fn parse_capacity(value: &str) -> Result<Vec<CapacityFault>, String> {
    let mut out = Vec::new();
    for item in value.split('+').map(str::trim) {
        let (region, form) = match item.split_once(':') {
            Some((r, code)) => (r.trim(), CapacityForm::parse(code.trim())?),
            None => (item, CapacityForm::Unprocessable),
        };
        if crate::platform::region(region).is_none() {
            return Err(format!("unknown region {region:?}"));
        }
        out.push(CapacityFault {
            region: region.to_string(),
            form,
        });
    }
    Ok(out)
}

/// `I1+I2`: at least one image (or part of one).
fn parse_images(value: &str) -> Result<Vec<String>, String> {
    let images: Vec<String> = value
        .split('+')
        .map(|i| i.trim().to_string())
        .filter(|i| !i.is_empty())
        .collect();
    if images.is_empty() {
        return Err("name at least one image (or part of one)".into());
    }
    Ok(images)
}

/// A `--faults` string that could not be understood.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid fault spec item {item:?}: {reason}")]
pub struct FaultSpecError {
    pub item: String,
    pub reason: String,
}

/// Parses a duration such as `250ms`, `1.5s` or `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return Err(format!("{s:?} has no unit; write e.g. 250ms, 2s or 1m"));
    };
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number followed by ms, s or m"))?;
    let secs = value * unit;
    if !secs.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms.fract() == 0.0 {
        format!("{}ms", ms as u64)
    } else {
        format!("{ms}ms")
    }
}

fn parse_probability(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a probability between 0 and 1"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("{p} is not between 0 and 1"));
    }
    Ok(p)
}

impl FromStr for FaultConfig {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut cfg = FaultConfig::default();
        let spec = spec.trim();
        if spec.is_empty() || spec == "none" {
            return Ok(cfg);
        }
        for raw in spec.split(',') {
            let item = raw.trim();
            let err = |reason: String| FaultSpecError {
                item: item.to_string(),
                reason,
            };
            let Some((key, value)) = item.split_once('=') else {
                return Err(err("expected KEY=VALUE".into()));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "latency" => {
                    let (lo, hi) = match value.split_once("..") {
                        Some((a, b)) => (parse_duration(a), parse_duration(b)),
                        None => (parse_duration(value), parse_duration(value)),
                    };
                    let (lo, hi) = (lo.map_err(&err)?, hi.map_err(&err)?);
                    if lo > hi {
                        return Err(err("the lower bound exceeds the upper bound".into()));
                    }
                    cfg.latency = Some((lo, hi));
                }
                "timeout" => cfg.timeout = parse_probability(value).map_err(&err)?,
                "hang" => cfg.hang = parse_duration(value).map_err(&err)?,
                "lost_response" => cfg.lost_response = parse_probability(value).map_err(&err)?,
                "capacity" => cfg.capacity = parse_capacity(value).map_err(&err)?,
                "eventual" => cfg.eventual = parse_probability(value).map_err(&err)?,
                "bad_image" => cfg.bad_images = parse_images(value).map_err(&err)?,
                "job_fail" => cfg.failing_jobs = parse_images(value).map_err(&err)?,
                "fail_after" => {
                    let n: u64 = value
                        .parse()
                        .map_err(|_| err(format!("{value:?} is not a whole number")))?;
                    cfg.fail_after = Some(n);
                }
                _ => {
                    let (status, after) = match key.strip_suffix("@after") {
                        Some(s) => (s, true),
                        None => (key, false),
                    };
                    let status: u16 = status.parse().map_err(|_| {
                        err(format!(
                            "unknown key {key:?}; expected 429, 500, 502, 503 (optionally with @after), latency, timeout, hang, lost_response, capacity, eventual, bad_image, job_fail or fail_after"
                        ))
                    })?;
                    if !FAULT_STATUSES.contains(&status) {
                        return Err(err(format!(
                            "status {status} cannot be injected; use 429, 500, 502 or 503"
                        )));
                    }
                    let p = parse_probability(value).map_err(&err)?;
                    let list = if after {
                        &mut cfg.errors_after
                    } else {
                        &mut cfg.errors_before
                    };
                    list.retain(|(s, _)| *s != status);
                    list.push((status, p));
                }
            }
        }
        let before: f64 = cfg.errors_before.iter().map(|(_, p)| p).sum::<f64>() + cfg.timeout;
        let after: f64 = cfg.errors_after.iter().map(|(_, p)| p).sum::<f64>() + cfg.lost_response;
        if before > 1.0 + 1e-9 || after > 1.0 + 1e-9 {
            return Err(FaultSpecError {
                item: spec.to_string(),
                reason:
                    "probabilities of faults before (or after) the change add up to more than 1"
                        .into(),
            });
        }
        Ok(cfg)
    }
}

impl fmt::Display for FaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items: Vec<String> = Vec::new();
        for (s, p) in &self.errors_before {
            items.push(format!("{s}={p}"));
        }
        for (s, p) in &self.errors_after {
            items.push(format!("{s}@after={p}"));
        }
        if let Some((lo, hi)) = self.latency {
            if lo == hi {
                items.push(format!("latency={}", format_duration(lo)));
            } else {
                items.push(format!(
                    "latency={}..{}",
                    format_duration(lo),
                    format_duration(hi)
                ));
            }
        }
        if self.timeout > 0.0 {
            items.push(format!("timeout={}", self.timeout));
        }
        if self.hang != FaultConfig::default().hang {
            items.push(format!("hang={}", format_duration(self.hang)));
        }
        if self.lost_response > 0.0 {
            items.push(format!("lost_response={}", self.lost_response));
        }
        if !self.capacity.is_empty() {
            let entries: Vec<String> = self
                .capacity
                .iter()
                .map(|c| match c.form {
                    CapacityForm::Unprocessable => c.region.clone(),
                    form => format!("{}:{}", c.region, form.code()),
                })
                .collect();
            items.push(format!("capacity={}", entries.join("+")));
        }
        if self.eventual > 0.0 {
            items.push(format!("eventual={}", self.eventual));
        }
        if !self.bad_images.is_empty() {
            items.push(format!("bad_image={}", self.bad_images.join("+")));
        }
        if !self.failing_jobs.is_empty() {
            items.push(format!("job_fail={}", self.failing_jobs.join("+")));
        }
        if let Some(n) = self.fail_after {
            items.push(format!("fail_after={n}"));
        }
        if items.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&items.join(","))
        }
    }
}

/// What to do with a request before it reaches its handler.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Before {
    Proceed,
    /// Answer this status without running the handler.
    Error(u16, &'static str),
    /// Hang, then drop the connection.
    Timeout,
}

/// What to do with a response after the handler ran.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum After {
    Proceed,
    Error(u16, &'static str),
    Lost,
}

/// The fault configuration in force plus the seeded random source.
pub(crate) struct FaultState {
    pub config: FaultConfig,
    rng: StdRng,
    served: u64,
}

pub(crate) fn status_fault_name(status: u16, after: bool) -> &'static str {
    match (status, after) {
        (429, false) => "429",
        (500, false) => "500",
        (502, false) => "502",
        (503, false) => "503",
        (429, true) => "429@after",
        (500, true) => "500@after",
        (502, true) => "502@after",
        (503, true) => "503@after",
        _ => "error",
    }
}

/// Partitions the unit interval: `[0, first)` is `first`'s share, then each status
/// takes the next `p` of it. `u` is one draw in `[0, 1)`.
fn partition(u: f64, first: f64, choices: &[(u16, f64)]) -> Option<Option<u16>> {
    let mut acc = first;
    if u < acc {
        return Some(None);
    }
    for (status, p) in choices {
        acc += p;
        if u < acc {
            return Some(Some(*status));
        }
    }
    None
}

impl FaultState {
    pub fn new(config: FaultConfig, seed: u64) -> FaultState {
        FaultState {
            config,
            rng: StdRng::seed_from_u64(seed),
            served: 0,
        }
    }

    pub fn replace(&mut self, config: FaultConfig) {
        self.config = config;
        self.served = 0;
    }

    /// Decides the fate of the next request. One draw decides between a timeout and
    /// the statuses (each takes its own share of the unit interval, so their
    /// probabilities are exactly as configured), another the latency; both are drawn
    /// whatever the outcome, so a seed gives one sequence of decisions.
    pub fn before(&mut self) -> (Before, Option<Duration>) {
        self.served = self.served.saturating_add(1);
        let u: f64 = self.rng.random();
        let u_latency: f64 = self.rng.random();
        let latency = self.config.latency.map(|(lo, hi)| {
            let span = hi.saturating_sub(lo).as_secs_f64();
            lo + Duration::from_secs_f64(span * u_latency)
        });
        if let Some(n) = self.config.fail_after
            && self.served > n
        {
            return (Before::Error(503, "fail_after"), latency);
        }
        // The timeout takes the bottom of the unit interval; the statuses follow.
        let before = match partition(u, self.config.timeout, &self.config.errors_before) {
            Some(None) => Before::Timeout,
            Some(Some(s)) => Before::Error(s, status_fault_name(s, false)),
            None => Before::Proceed,
        };
        (before, latency)
    }

    /// Decides what happens to a response: one draw, partitioned like [`Self::before`]
    /// (the lost response first, then the statuses).
    pub fn after(&mut self) -> After {
        let u: f64 = self.rng.random();
        match partition(u, self.config.lost_response, &self.config.errors_after) {
            Some(None) => After::Lost,
            Some(Some(s)) => After::Error(s, status_fault_name(s, true)),
            None => After::Proceed,
        }
    }

    /// The capacity error form for a create in `region`, if one is configured: volume
    /// creates (`mounts_volume` false, `volume` true) only see the 422 and 400 forms,
    /// and the 412 form only hits Machines that mount a volume.
    pub fn capacity_form(
        &self,
        region: &str,
        volume: bool,
        mounts_volume: bool,
    ) -> Option<CapacityForm> {
        self.config
            .capacity
            .iter()
            .filter(|c| c.region == region)
            .map(|c| c.form)
            .find(|f| match f {
                CapacityForm::Unprocessable => true,
                CapacityForm::ExistingVolume => !volume && mounts_volume,
                CapacityForm::Memory | CapacityForm::Quota => !volume,
                CapacityForm::NoCapacity => volume,
            })
    }

    /// Whether a just-created Machine or app starts invisible (`eventual`): one draw,
    /// taken only when the fault is configured so that other decisions keep their
    /// sequence.
    pub fn hides_new(&mut self) -> bool {
        if self.config.eventual <= 0.0 {
            return false;
        }
        let u: f64 = self.rng.random();
        u < self.config.eventual
    }

    /// Whether a one-shot Machine running this image exits with a failure.
    pub fn job_fails(&self, image: &str) -> bool {
        self.config
            .failing_jobs
            .iter()
            .any(|b| image.contains(b.as_str()))
    }

    /// Whether a Machine running this image crashes at boot.
    pub fn image_fails(&self, image: &str) -> bool {
        self.config
            .bad_images
            .iter()
            .any(|b| image.contains(b.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let c: FaultConfig =
            "429=0.2,500=0.05,latency=10ms..200ms,timeout=0.02,lost_response=0.05,capacity=sjc+gru,fail_after=100"
                .parse()
                .unwrap();
        assert_eq!(c.errors_before, vec![(429, 0.2), (500, 0.05)]);
        assert_eq!(
            c.latency,
            Some((Duration::from_millis(10), Duration::from_millis(200)))
        );
        assert_eq!(c.timeout, 0.02);
        assert_eq!(c.lost_response, 0.05);
        assert_eq!(
            c.capacity
                .iter()
                .map(|c| c.region.as_str())
                .collect::<Vec<_>>(),
            vec!["sjc", "gru"]
        );
        assert_eq!(c.fail_after, Some(100));
        let again: FaultConfig = c.to_string().parse().unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "418=0.1",
            "500=1.5",
            "500",
            "latency=10",
            "latency=200ms..10ms",
            "capacity=xxx",
            "capacity=sjc:418",
            "eventual=2",
            "fail_after=-1",
            "bogus=1",
            "500=0.6,503=0.6",
            "timeout=abc",
        ] {
            assert!(bad.parse::<FaultConfig>().is_err(), "{bad} should fail");
        }
        assert_eq!(
            "none".parse::<FaultConfig>().unwrap(),
            FaultConfig::default()
        );
        assert_eq!("".parse::<FaultConfig>().unwrap(), FaultConfig::default());
        let c: FaultConfig = " 503@after = 0.5 , hang=2s ".parse().unwrap();
        assert_eq!(c.errors_after, vec![(503, 0.5)]);
        assert_eq!(c.hang, Duration::from_secs(2));
    }

    #[test]
    fn decisions_are_deterministic_per_seed() {
        let cfg: FaultConfig = "500=0.3,timeout=0.1,lost_response=0.2".parse().unwrap();
        let run = |seed| {
            let mut s = FaultState::new(cfg.clone(), seed);
            (0..200)
                .map(|_| format!("{:?}{:?}", s.before().0, s.after()))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let outcomes = run(7);
        assert!(outcomes.iter().any(|o| o.contains("Error(500")));
        assert!(outcomes.iter().any(|o| o.contains("Timeout")));
        assert!(outcomes.iter().any(|o| o.contains("Lost")));
    }

    #[test]
    fn each_fault_gets_its_configured_share() {
        const N: usize = 20_000;
        let share = |n: usize| n as f64 / N as f64;
        let cfg: FaultConfig = "timeout=0.3,500=0.3,502=0.1,lost_response=0.3,503@after=0.3"
            .parse()
            .unwrap();
        let mut s = FaultState::new(cfg, 11);
        let (mut timeouts, mut e500, mut e502, mut lost, mut e503) = (0, 0, 0, 0, 0);
        for _ in 0..N {
            match s.before().0 {
                Before::Timeout => timeouts += 1,
                Before::Error(500, _) => e500 += 1,
                Before::Error(502, _) => e502 += 1,
                Before::Error(..) => panic!("unexpected status"),
                Before::Proceed => {}
            }
            match s.after() {
                After::Lost => lost += 1,
                After::Error(503, _) => e503 += 1,
                After::Error(..) => panic!("unexpected status"),
                After::Proceed => {}
            }
        }
        // A status fault must not be thinned by the timeout (0.3 × 0.7 = 0.21 would be).
        for (name, got, want) in [
            ("timeout", share(timeouts), 0.3),
            ("500", share(e500), 0.3),
            ("502", share(e502), 0.1),
            ("lost_response", share(lost), 0.3),
            ("503@after", share(e503), 0.3),
        ] {
            assert!((got - want).abs() < 0.02, "{name}: {got}, expected {want}");
        }
    }

    #[test]
    fn the_400_form_hits_volume_creates_only() {
        let c: FaultConfig = "capacity=iad:400".parse().unwrap();
        assert_eq!(c.to_string(), "capacity=iad:400");
        let s = FaultState::new(c, 1);
        assert_eq!(
            s.capacity_form("iad", true, false),
            Some(CapacityForm::NoCapacity)
        );
        assert_eq!(s.capacity_form("iad", false, false), None);
        assert_eq!(s.capacity_form("iad", false, true), None);
    }

    #[test]
    fn capacity_forms_and_eventual_round_trip() {
        let c: FaultConfig = "capacity=sjc+gru:409+bom:412+ams:403,eventual=0.5"
            .parse()
            .unwrap();
        let forms: Vec<_> = c.capacity.iter().map(|c| c.form).collect();
        assert_eq!(
            forms,
            vec![
                CapacityForm::Unprocessable,
                CapacityForm::Memory,
                CapacityForm::ExistingVolume,
                CapacityForm::Quota
            ]
        );
        assert_eq!(c.eventual, 0.5);
        assert_eq!(c.to_string().parse::<FaultConfig>().unwrap(), c);
        let s = FaultState::new(c, 1);
        assert_eq!(s.capacity_form("gru", true, false), None);
        assert_eq!(
            s.capacity_form("gru", false, false),
            Some(CapacityForm::Memory)
        );
        assert_eq!(s.capacity_form("bom", false, false), None);
        assert_eq!(
            s.capacity_form("bom", false, true),
            Some(CapacityForm::ExistingVolume)
        );
        assert_eq!(
            s.capacity_form("sjc", true, false),
            Some(CapacityForm::Unprocessable)
        );
        let mut never = FaultState::new(FaultConfig::default(), 1);
        assert!(!never.hides_new());
    }

    #[test]
    fn fail_after_counts_requests() {
        let mut s = FaultState::new("fail_after=2".parse().unwrap(), 1);
        assert_eq!(s.before().0, Before::Proceed);
        assert_eq!(s.before().0, Before::Proceed);
        assert_eq!(s.before().0, Before::Error(503, "fail_after"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5").is_err());
    }
}
