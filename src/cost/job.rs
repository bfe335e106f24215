//! What a one-shot job costs: a Machine started for some seconds and a volume kept for
//! some seconds (a backup export's fork), at a pricing table's per-30-day rates prorated
//! by the second, with the region's compute multiplier. Exact decimals; rounding is for
//! display only.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::money::{HOURS_PER_MONTH, Usd};
use crate::pricing::{LookupError, PriceTable};

/// Seconds in Fly's billing month.
fn month_secs() -> Decimal {
    Decimal::from(HOURS_PER_MONTH) * Decimal::from(3600)
}

/// The cost of one job, by part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobCost {
    /// The Machine's compute for the seconds it was started.
    pub machine: Usd,
    /// The volume's provisioned capacity for the seconds it existed.
    pub volume: Usd,
    pub total: Usd,
    /// The pricing version used (`YYYY-MM-DD`).
    pub pricing_version: String,
}

/// What the job sizes and durations are.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub region: &'a str,
    /// A Machine preset (`shared-cpu-1x`).
    pub preset: &'a str,
    pub machine_secs: u64,
    pub volume_gb: u32,
    pub volume_secs: u64,
}

/// Prices `job` with `table`.
pub fn price(table: &PriceTable, job: &Job<'_>) -> Result<JobCost, LookupError> {
    let region = table.region(job.region)?;
    let preset = table.preset(job.preset)?;
    let machine =
        preset.price_per_30d * region.compute_multiplier * Decimal::from(job.machine_secs)
            / month_secs();
    let volume =
        table.storage.volume.price * Decimal::from(job.volume_gb) * Decimal::from(job.volume_secs)
            / month_secs();
    Ok(JobCost {
        machine,
        volume,
        total: machine + volume,
        pricing_version: table.version().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_priced_by_the_second() {
        let cat = crate::pricing::Catalog::embedded().unwrap();
        let table = cat.latest().unwrap();
        let job = Job {
            region: "ams",
            preset: "shared-cpu-1x",
            machine_secs: 2_592_000,
            volume_gb: 3,
            volume_secs: 1_296_000,
        };
        let c = price(table, &job).unwrap();
        // A whole month of the Machine is its monthly price; half a month of 3 GB is
        // 1.5 GB-months.
        let preset = table.preset("shared-cpu-1x").unwrap();
        let mult = table.region("ams").unwrap().compute_multiplier;
        assert_eq!(c.machine, preset.price_per_30d * mult);
        assert_eq!(c.volume, table.storage.volume.price * Decimal::new(15, 1));
        assert_eq!(c.total, c.machine + c.volume);
        assert!(
            price(
                table,
                &Job {
                    region: "nowhere",
                    ..job
                }
            )
            .is_err()
        );
    }
}
