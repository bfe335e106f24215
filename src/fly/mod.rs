//! Everything that speaks Fly's Machines API: wire types, conversions from desired
//! resources, the HTTP client with retries and client-side rate limits, and the observer.

pub mod client;
pub mod convert;
pub mod observe;
pub mod ratelimit;
pub mod types;
