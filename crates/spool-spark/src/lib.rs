//! Spark's command lines: the master, workers and `spark-submit` for Python and JVM mains, with
//! the JVM options and environment each needs; and reading what Spark writes to its logs.
//!
//! This is the only place that writes a Spark command line: the server's clusters, job and
//! session drivers and the agents' workers all take theirs from here, so they cannot drift.
//! Pure: it builds argv and environment maps; it never starts a process, reads a file or looks
//! at the process environment (callers pass the host's `PATH` and the Java to run).

mod command;
mod logs;

pub use command::{
    AUTH_PROPERTIES, CONNECT_PLUGIN, CONNECT_TOKEN_ENV, CommandLine, ConnectServer, Daemon,
    Install, Main, PythonSetup, Submit, auth_properties, auth_secret_of, master, submit,
    train_class_archive, with_properties_file, worker,
};
pub use logs::{driver_error, find_app_id};
