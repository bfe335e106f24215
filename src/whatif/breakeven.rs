//! Break-even points: the tenant counts where the cheaper of two architectures changes.
//!
//! Costs are affine in `N` between step changes (`ceil(N × f)` session Machines, pool
//! Machines, the organization's free allowances running out), and the model knows how
//! much one more tenant can change a cost: the exact slope of the affine parts, widened
//! by the largest step ([`super::model::ArchModel::increments`]). So the difference
//! `d(N) = A(N) − B(N)` on an interval `[l, r]` lies between two envelopes drawn from
//! `d(l)` and `d(r)` with the lowest and highest possible increments; when both envelopes
//! stay on one side of zero the cheaper architecture is the same throughout and the
//! interval holds no crossing; otherwise it is halved. (Costs also never decrease with
//! `N`, so ranges `[A(l), A(r)]` and `[B(l), B(r)]` that do not overlap prune too.)
//! Intervals of width one that change winner are the crossings: `N` such that the cheaper
//! architecture at `N − 1` and at `N` differ. The search is exact over the integers and
//! evaluates the model near the crossings only: where both costs are affine (no steps)
//! one evaluation at each end of an interval settles it.

use std::cmp::Ordering;

use rust_decimal::Decimal;

use crate::money::Usd;

/// A tenant count at which the cheaper of A and B changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crossing {
    pub tenants: u64,
    /// A against B at `tenants − 1`: `Less` means A was cheaper.
    pub before: Ordering,
    /// A against B at `tenants`.
    pub after: Ordering,
    pub cost_a: Usd,
    pub cost_b: Usd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// In ascending order of tenants.
    pub crossings: Vec<Crossing>,
    /// False when the evaluation budget ran out (costs equal or alternating over a long
    /// stretch); `unresolved` then spans the intervals left unsearched.
    pub complete: bool,
    pub unresolved: Option<(u64, u64)>,
    pub evaluations: usize,
    /// A and B cost the same at every tenant count evaluated.
    pub all_equal: bool,
}

/// Bounds of `d(N + 1) − d(N)` for every `N ≥ l`.
pub type Slope<'a> = &'a dyn Fn(u64) -> (Usd, Usd);

/// Costs closer than this count as equal (the models round to the micro-dollar).
fn margin() -> Usd {
    Decimal::new(2, 6)
}

/// The lowest and highest `d` can be on `[0, k]` (offsets from `l`), knowing `d(0)`,
/// `d(k)` and that each step changes `d` by between `lo` and `hi`.
fn envelope(dl: Usd, dr: Usd, k: Usd, lo: Usd, hi: Usd) -> (Usd, Usd) {
    if hi <= lo {
        return (dl.min(dr), dl.max(dr));
    }
    let span = hi - lo;
    let clamp = |t: Usd| t.max(Decimal::ZERO).min(k);
    // Lowest: the minimum of max(dl + t·lo, dr − (k − t)·hi), a convex function of t: at
    // an end or at the kink.
    let floor = |t: Usd| (dl + t * lo).max(dr - (k - t) * hi);
    let kink = clamp((dl - dr + k * hi) / span);
    let low = floor(Decimal::ZERO).min(floor(k)).min(floor(kink));
    // Highest: the maximum of min(dl + t·hi, dr − (k − t)·lo), concave.
    let ceiling = |t: Usd| (dl + t * hi).min(dr - (k - t) * lo);
    let kink = clamp((dr - k * lo - dl) / span);
    let high = ceiling(Decimal::ZERO).max(ceiling(k)).max(ceiling(kink));
    (low, high)
}

/// Finds every crossing of `a` and `b` over `lo..=hi`, evaluating each at most `budget`
/// times in all. Both must be non-decreasing in `N`, and `slope(l)` must bound
/// `d(N + 1) − d(N)` for `N ≥ l`.
pub fn crossings(
    mut a: impl FnMut(u64) -> Usd,
    mut b: impl FnMut(u64) -> Usd,
    slope: Slope<'_>,
    lo: u64,
    hi: u64,
    budget: usize,
) -> Search {
    let mut out = Search {
        crossings: Vec::new(),
        complete: true,
        unresolved: None,
        evaluations: 0,
        all_equal: hi > lo,
    };
    if hi <= lo {
        return out;
    }
    let mut eval = |n: u64, out: &mut Search| {
        out.evaluations += 1;
        let v = (a(n), b(n));
        out.all_equal &= v.0 == v.1;
        v
    };
    let left = eval(lo, &mut out);
    let right = eval(hi, &mut out);
    // (l, r, costs at l, costs at r); the leftmost interval is on top.
    let mut stack = vec![(lo, hi, left, right)];
    while let Some((l, r, (al, bl), (ar, br))) = stack.pop() {
        if r - l == 1 {
            let (before, after) = (al.cmp(&bl), ar.cmp(&br));
            if before != after {
                out.crossings.push(Crossing {
                    tenants: r,
                    before,
                    after,
                    cost_a: ar,
                    cost_b: br,
                });
            }
            continue;
        }
        // A at most A(r) < B(l) at least: A cheaper throughout (and symmetrically).
        if ar < bl || br < al {
            continue;
        }
        let (slo, shi) = slope(l);
        let (low, high) = envelope(al - bl, ar - br, Decimal::from(r - l), slo, shi);
        let m = margin();
        if low > m || high < -m || (slo.is_zero() && shi.is_zero() && al == bl && ar == br) {
            continue;
        }
        if out.evaluations >= budget {
            out.complete = false;
            out.unresolved = Some(match out.unresolved {
                Some((a, b)) => (a.min(l), b.max(r)),
                None => (l, r),
            });
            continue;
        }
        let m = l + (r - l) / 2;
        let mid = eval(m, &mut out);
        stack.push((m, r, mid, (ar, br)));
        stack.push((l, m, (al, bl), mid));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(v: i64) -> Decimal {
        Decimal::from(v)
    }

    #[test]
    fn affine_lines_cross_once_at_the_known_tenant_count() {
        // A = 50 + 0.84 N (a shared tier and cheap sessions), B = 11.14 N (a Machine per
        // tenant). A < B ⇔ 50 < 10.30 N ⇔ N > 4.85: B is cheaper up to 4, A from 5.
        let a = |n: u64| Decimal::new(50, 0) + Decimal::new(84, 2) * Decimal::from(n);
        let b = |n: u64| Decimal::new(1114, 2) * Decimal::from(n);
        // d(N + 1) − d(N) = 0.84 − 11.14 exactly.
        let slope = |_: u64| (Decimal::new(-1030, 2), Decimal::new(-1030, 2));
        let s = crossings(a, b, &slope, 1, 10_000, 10_000);
        assert!(s.complete);
        assert_eq!(s.crossings.len(), 1);
        let c = s.crossings[0];
        assert_eq!(c.tenants, 5);
        assert_eq!((c.before, c.after), (Ordering::Greater, Ordering::Less));
        // Bisection: a few dozen evaluations, not ten thousand.
        assert!(s.evaluations < 40, "{}", s.evaluations);
    }

    #[test]
    fn a_step_function_against_a_line() {
        // A pool: 10 per Machine of 8 tenants, ceil(N / 8) × 10; B = 2 N. The winner flips
        // around every step until 2 N outgrows the steps (1.25 N + 10 < 2 N from N = 14):
        // the search finds exactly the flips brute force finds.
        let a = |n: u64| d(10) * Decimal::from(n.div_ceil(8));
        let b = |n: u64| d(2) * Decimal::from(n);
        // A's increments are 0 or 10, B's exactly 2.
        let slope = |_: u64| (d(-2), d(8));
        let s = crossings(a, b, &slope, 1, 1000, 100_000);
        let mut brute = Vec::new();
        for n in 2..=1000u64 {
            let before = a(n - 1).cmp(&b(n - 1));
            let after = a(n).cmp(&b(n));
            if before != after {
                brute.push(n);
            }
        }
        let found: Vec<u64> = s.crossings.iter().map(|c| c.tenants).collect();
        assert_eq!(found, brute);
        assert_eq!(found.first(), Some(&5));
        assert!(s.evaluations < 300, "{}", s.evaluations);
    }

    #[test]
    fn envelopes_hold_every_path() {
        // d falls from 10 to −20 over 10 steps of −4 to −1 each: it can reach at most the
        // ends, and at least −20 (it must end there); a path touching 10 − 4·t first and
        // then falling slower reaches no lower than −20.
        let (low, high) = envelope(d(10), d(-20), d(10), d(-4), d(-1));
        assert_eq!((low, high), (d(-20), d(10)));
        // Rising by 1 to 3 a step from −5 to 5 over 4 steps: lowest −5 … but it may first
        // dip? No: increments are positive, so the bounds are the ends.
        let (low, high) = envelope(d(-5), d(5), d(4), d(1), d(3));
        assert_eq!((low, high), (d(-5), d(5)));
        // Steps of −3 to +3 from 0 to 0 over 4 steps: down 6 then up 6 at worst.
        let (low, high) = envelope(d(0), d(0), d(4), d(-3), d(3));
        assert_eq!((low, high), (d(-6), d(6)));
    }

    #[test]
    fn parallel_lines_and_the_budget() {
        // Same slope, B a constant 1 dearer: never a crossing, settled at once.
        let one = |_: u64| (d(0), d(0));
        let s = crossings(
            Decimal::from,
            |n| Decimal::from(n) + d(1),
            &one,
            1,
            1000,
            100,
        );
        assert!(s.crossings.is_empty() && s.complete);
        assert!(s.evaluations <= 2);
        // Identical costs: settled at once too.
        let s = crossings(Decimal::from, Decimal::from, &one, 1, 1_000_000, 50);
        assert!(s.crossings.is_empty() && s.complete && s.all_equal);
        // Bounds that say nothing (any increment): the budget stops the search.
        let any = |_: u64| (d(-1000), d(1000));
        let s = crossings(Decimal::from, Decimal::from, &any, 1, 1_000_000, 50);
        assert!(!s.complete && s.unresolved.is_some());
        assert!(s.evaluations <= 52);
    }
}
