//! Shared vocabulary of Spool: environment variables, well-known paths and units.
//!
//! This crate is pure and dependency-light; it must not do IO beyond reading the process environment.

pub mod env;
pub mod paths;
pub mod units;

pub use units::{MemoryMb, ParseMemoryError};
