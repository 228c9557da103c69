//! Shared vocabulary of Spool: environment variables, well-known paths, units, and the states
//! and ids of its nouns.
//!
//! This crate is pure and dependency-light; it must not do IO beyond reading the process environment.

pub mod env;
pub mod paths;
pub mod state;
pub mod units;

pub use state::{
    AgentId, AgentState, BatchState, ClusterId, ClusterState, ComputeId, DataRole, DriverPath,
    IsolationMode, JobId, JobKind, JobStatus, Lifecycle, NetnsState, Owner, OwnerKind, ProcessId,
    ProcessOutcome, ProcessState, RoleAssignmentId, SessionId, SessionState, StartKind,
    StatementState, UnknownState, UserId, WorkspaceRole,
};
pub use state::{AuditEntryId, AuditResult};
pub use units::{MemoryMb, ParseMemoryError};
