//! One module per noun; each holds its verbs.

pub mod agent;
pub mod audit;
pub mod cluster;
pub mod component;
pub mod compute;
pub mod datastore;
pub mod env;
pub mod identity;
pub mod job;
pub mod role;
pub mod runtime;
pub mod serve;
pub mod session;
pub mod user;
pub mod workspace;
