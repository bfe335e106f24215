//! Capacity what-if reports: what each architecture costs, and how many Machines of which
//! size it needs, from a handful of tenants to thousands, under several usage patterns.
//!
//! A scenario file ([`scenario`]) names a per-tenant base (a spec and/or an inline
//! profile, and a memory model), sweep axes (tenants, active fraction, active hours per
//! day, region mixes, pricing dates) and architectures. Each architecture at each usage
//! point is a cost model ([`model`]) whose units are priced by the cost engine, so a
//! what-if and `flotilla cost` can never disagree; the capacity model ([`capacity`])
//! sizes pools; [`breakeven`] finds exact crossing tenant counts; [`report`] runs the
//! sweep and the advice; [`render`] writes text, JSON, Markdown and a self-contained HTML
//! page with SVG charts ([`charts`]). Pure: the CLI reads and writes the files.

pub mod breakeven;
pub mod capacity;
pub mod charts;
pub mod model;
pub mod render;
pub mod report;
pub mod scenario;

#[cfg(test)]
mod tests;

pub use report::{Report, RunOptions, run};
pub use scenario::{Scenario, load_bytes, load_file};
