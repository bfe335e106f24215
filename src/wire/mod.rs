//! The shapes flotilla exchanges with Fly: the Machines API wire types ([`api`]) and the
//! observed-state snapshot built from them ([`snapshot`], the `--state FILE` format).
//!
//! A leaf: it knows nothing of resources, plans or the client, so the client and the
//! observer (`fly`) and the interpretation (`state`) both depend on it and not on each
//! other's internals.

pub mod api;
pub mod network;
pub mod snapshot;

pub use api::*;
pub use network::{Certificate, IpAssignment};
pub use snapshot::{AppSnapshot, STATE_FORMAT_VERSION, Snapshot};
