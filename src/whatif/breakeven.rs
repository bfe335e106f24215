//! Break-even points: the tenant counts where the cheaper of two architectures changes.
//!
//! Every architecture's monthly cost is a non-decreasing function of the number of
//! tenants `N` (each count in the model grows with `N`, and the organization's free
//! allowances only ever lower the cost by a capped amount). So on an interval `[l, r]`,
//! A costs between `A(l)` and `A(r)`, and B between `B(l)` and `B(r)`. When those ranges
//! do not overlap, the cheaper architecture is the same throughout and the interval holds
//! no crossing; otherwise it is halved. Intervals of width one that change winner are the
//! crossings: `N` such that the cheaper architecture at `N − 1` and at `N` differ. The
//! search is exact over the integers — affine stretches, pool step changes and
//! `ceil(N × f)` steps alike — and evaluates the model near the crossings only.

use std::cmp::Ordering;

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
    /// False when the evaluation budget ran out (costs alternating over a long stretch);
    /// `unresolved` then holds the first interval left unsearched.
    pub complete: bool,
    pub unresolved: Option<(u64, u64)>,
    pub evaluations: usize,
}

/// Finds every crossing of `a` and `b` over `lo..=hi`, evaluating each at most `budget`
/// times in all (both must be non-decreasing in `N`).
pub fn crossings(
    mut a: impl FnMut(u64) -> Usd,
    mut b: impl FnMut(u64) -> Usd,
    lo: u64,
    hi: u64,
    budget: usize,
) -> Search {
    let mut out = Search {
        crossings: Vec::new(),
        complete: true,
        unresolved: None,
        evaluations: 0,
    };
    if hi <= lo {
        return out;
    }
    let mut eval = |n: u64, out: &mut Search| {
        out.evaluations += 1;
        (a(n), b(n))
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
        if out.evaluations >= budget {
            out.complete = false;
            out.unresolved.get_or_insert((l, r));
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
    use rust_decimal::Decimal;

    fn d(v: i64) -> Decimal {
        Decimal::from(v)
    }

    #[test]
    fn affine_lines_cross_once_at_the_known_tenant_count() {
        // A = 50 + 0.84 N (a shared tier and cheap sessions), B = 11.14 N (a Machine per
        // tenant). A < B ⇔ 50 < 10.30 N ⇔ N > 4.85: B is cheaper up to 4, A from 5.
        let a = |n: u64| Decimal::new(50, 0) + Decimal::new(84, 2) * Decimal::from(n);
        let b = |n: u64| Decimal::new(1114, 2) * Decimal::from(n);
        let s = crossings(a, b, 1, 10_000, 10_000);
        assert!(s.complete);
        assert_eq!(s.crossings.len(), 1);
        let c = s.crossings[0];
        assert_eq!(c.tenants, 5);
        assert_eq!((c.before, c.after), (Ordering::Greater, Ordering::Less));
        // Bisection: a few dozen evaluations, not ten thousand.
        assert!(s.evaluations < 60, "{}", s.evaluations);
    }

    #[test]
    fn a_step_function_against_a_line() {
        // A pool: 10 per Machine of 8 tenants, ceil(N / 8) × 10; B = N. At N = 1..7 the pool
        // (10) is dearer than B (N < 10) … B reaches 10 at N = 10 while the pool is 20 from
        // N = 9: crossings are where the winner flips, checked against brute force.
        let a = |n: u64| d(10) * Decimal::from(n.div_ceil(8));
        let b = |n: u64| Decimal::from(n);
        let s = crossings(a, b, 1, 100, 100_000);
        let mut brute = Vec::new();
        for n in 2..=100u64 {
            let before = a(n - 1).cmp(&b(n - 1));
            let after = a(n).cmp(&b(n));
            if before != after {
                brute.push(n);
            }
        }
        let found: Vec<u64> = s.crossings.iter().map(|c| c.tenants).collect();
        assert_eq!(found, brute);
        assert!(!found.is_empty());
    }

    #[test]
    fn no_crossing_and_budget() {
        let s = crossings(
            |n| Decimal::from(n),
            |n| Decimal::from(n) + d(1),
            1,
            1000,
            100,
        );
        assert!(s.crossings.is_empty() && s.complete);
        // Identical costs everywhere: ranges always overlap; the budget stops the search.
        let s = crossings(|n| Decimal::from(n), |n| Decimal::from(n), 1, 1_000_000, 50);
        assert!(!s.complete);
        assert!(s.unresolved.is_some());
        assert!(s.evaluations <= 52);
    }
}
