//! Everything that speaks Fly's Machines API: the mapping between resources and Fly's
//! shapes (both directions), the HTTP client with retries and client-side rate limits,
//! and the observer. The wire types themselves live in [`crate::wire`], a leaf that
//! `state` shares without depending on this module.

pub mod client;
pub mod convert;
pub mod errors;
pub mod machine_config;
pub mod observe;
pub mod procs;
pub mod ratelimit;
pub mod request_ids;
pub mod steps;
