//! Everything that speaks Fly's Machines API: wire types, and (in the client) HTTP,
//! retries, rate limiting and leases.

pub mod convert;
pub mod types;
