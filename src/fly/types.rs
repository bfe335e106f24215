//! The Fly Machines API wire types, under their historical path: they live in
//! [`crate::wire`] so that the observed-state interpretation can use them without
//! depending on the client.

pub use crate::wire::api::*;
