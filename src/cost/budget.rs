//! Budget guardrails: `--max-monthly USD` and `--max-increase USD|PCT%`, turned into a
//! verdict with a one-line reason (the CLI exits with code 3 when exceeded); for plans
//! also `--deny-destroy` ([`check_plan`]).

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::money::{Usd, fmt_delta, fmt_percent, fmt_usd, parse_usd, to_cents};

/// The largest allowed increase over the base: dollars, or a percentage of the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IncreaseLimit {
    Usd(Usd),
    Percent(Decimal),
}

impl fmt::Display for IncreaseLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IncreaseLimit::Usd(v) => f.write_str(&fmt_usd(*v)),
            IncreaseLimit::Percent(p) => write!(f, "{}%", p.normalize()),
        }
    }
}

impl FromStr for IncreaseLimit {
    type Err = String;
    /// `25` / `$25` (dollars) or `10%` (of the base).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let v = Decimal::from_str(p.trim())
                .map_err(|_| format!("`{s}` is not a percentage (e.g. 10%)"))?;
            if v.is_sign_negative() {
                return Err(format!("`{s}` is negative"));
            }
            Ok(IncreaseLimit::Percent(v))
        } else {
            parse_usd(t)
                .map(IncreaseLimit::Usd)
                .map_err(|e| format!("{e}; or a percentage such as 10%"))
        }
    }
}

/// The guardrails of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Budget {
    pub max_monthly: Option<Usd>,
    pub max_increase: Option<IncreaseLimit>,
}

impl Budget {
    pub fn is_empty(&self) -> bool {
        self.max_monthly.is_none() && self.max_increase.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    Within,
    /// One line saying which limit was exceeded and by what.
    Exceeded {
        reason: String,
    },
}

impl Verdict {
    pub fn exceeded(&self) -> bool {
        matches!(self, Verdict::Exceeded { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("--max-increase needs a base to compare with")]
    IncreaseNeedsBase,
    #[error("--max-monthly and --max-increase need the plan's costs, and it has none")]
    PlanNotPriced,
}

impl BudgetError {
    /// How to fix it.
    pub fn hint(&self) -> &'static str {
        match self {
            BudgetError::IncreaseNeedsBase => {
                "pass --base OTHER_SPEC (in a plan, the base is the current fleet)"
            }
            BudgetError::PlanNotPriced => {
                "fix the pricing problems shown above, or drop the cost guardrails"
            }
        }
    }

    /// The error as a diagnostic, with its hint.
    pub fn to_diagnostic(&self) -> crate::diag::Diagnostic {
        crate::diag::Diagnostic::error(self.to_string()).hint(self.hint())
    }
}

/// Checks `after` (and the increase over `before`, when given) against the budget.
/// Amounts are compared in cents, as they are displayed.
pub fn check_budget(
    budget: &Budget,
    after: Usd,
    before: Option<Usd>,
) -> Result<Verdict, BudgetError> {
    let reasons = budget_reasons(budget, after, before)?;
    Ok(verdict_of(&reasons, "budget exceeded"))
}

/// The guardrails of a plan: the budget, applied to the fleet before and after the plan
/// (the base of `--max-increase` is the current fleet), and `--deny-destroy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanGuardrails {
    pub budget: Budget,
    /// Refuse a plan that deletes or replaces anything.
    pub deny_destroy: bool,
}

impl PlanGuardrails {
    pub fn is_empty(&self) -> bool {
        self.budget.is_empty() && !self.deny_destroy
    }
}

/// Checks a plan against its guardrails: `costs` is the fleet's monthly cost (before,
/// after) when the plan was priced, `destroyed` the addresses the plan deletes or
/// replaces. A budget without costs is an error.
pub fn check_plan(
    guards: &PlanGuardrails,
    costs: Option<(Usd, Usd)>,
    destroyed: &[String],
) -> Result<Verdict, BudgetError> {
    let mut reasons = Vec::new();
    if !guards.budget.is_empty() {
        let (before, after) = costs.ok_or(BudgetError::PlanNotPriced)?;
        reasons = budget_reasons(&guards.budget, after, Some(before))?;
    }
    if guards.deny_destroy && !destroyed.is_empty() {
        const SHOWN: usize = 5;
        let mut list = destroyed[..destroyed.len().min(SHOWN)].join(", ");
        if destroyed.len() > SHOWN {
            list.push_str(&format!(" and {} more", destroyed.len() - SHOWN));
        }
        let n = destroyed.len();
        let s = if n == 1 { "" } else { "s" };
        reasons.push(format!(
            "the plan deletes or replaces {n} resource{s} ({list}), refused by --deny-destroy"
        ));
    }
    Ok(verdict_of(&reasons, "guardrail exceeded"))
}

fn verdict_of(reasons: &[String], what: &str) -> Verdict {
    if reasons.is_empty() {
        Verdict::Within
    } else {
        Verdict::Exceeded {
            reason: format!("{what}: {}", reasons.join("; ")),
        }
    }
}

/// One line per exceeded budget limit, naming the limit and the figures.
fn budget_reasons(
    budget: &Budget,
    after: Usd,
    before: Option<Usd>,
) -> Result<Vec<String>, BudgetError> {
    let mut reasons = Vec::new();
    let after_c = to_cents(after);
    if let Some(max) = budget.max_monthly
        && after_c > max
    {
        reasons.push(format!(
            "monthly cost {} exceeds --max-monthly {}",
            fmt_usd(after),
            fmt_usd(max)
        ));
    }
    if let Some(limit) = budget.max_increase {
        let before = before.ok_or(BudgetError::IncreaseNeedsBase)?;
        let inc = after - before;
        let inc_c = to_cents(inc);
        let pct = (!before.is_zero()).then(|| inc * Decimal::from(100) / before);
        let over = match limit {
            IncreaseLimit::Usd(max) => inc_c > max,
            IncreaseLimit::Percent(p) => match pct {
                Some(x) => x > p,
                None => inc_c > Decimal::ZERO,
            },
        };
        if over {
            let pct_s = match pct {
                Some(x) => format!(" ({})", fmt_percent(x)),
                None => " (from $0.00)".to_string(),
            };
            reasons.push(format!(
                "monthly increase {}{pct_s} exceeds --max-increase {limit}",
                fmt_delta(inc)
            ));
        }
    }
    Ok(reasons)
}
