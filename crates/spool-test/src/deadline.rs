//! How long a test waits for each kind of thing before it fails.
//!
//! Each deadline is named after what is waited for, and sized for a machine about twice as slow
//! as the 2-core one the suite was written on, while another Spark test runs beside it (load
//! average near 9): the figure measured here, times 2 for the slower machine, times 2-3 for the
//! load, and rounded up generously. A deadline is a bound on a hang, not a performance check:
//! when one passes, the wait prints what it waited for with the log tails.
//!
//! Measured on the 2-core machine with another suite running beside (load average 7-28): a cold
//! job `Running` in 11-13 s, a cold session `idle` in 17-24 s (6 s on the idle machine), a
//! pre-warmed driver ready in 22 s, a driver's executor registered 16-21 s after the driver, an
//! attached pool's worker registered in 22 s, the 552 MiB runtime unpacked on an agent in 30 s.

use std::time::Duration;

/// `spool serve` answering its API (no JVM is involved).
pub const SERVER_UP: Duration = Duration::from_secs(60);

/// A cold cluster and a driver on it: master and worker JVMs up, the driver's JVM and Python
/// started, its SparkContext registered (a session `idle`, a job `Running`).
pub const COLD_START: Duration = Duration::from_secs(300);

/// An executor JVM launched by a registered worker and registered with its driver.
pub const EXECUTOR: Duration = Duration::from_secs(180);

/// Short work (a statement, a tiny Spark job) on a driver whose executors are up.
pub const SHORT_WORK: Duration = Duration::from_secs(120);

/// A runtime reaching an agent host from the server: the server packs it (once), the agent
/// downloads and unpacks it (552 MiB for 3.4), and its worker starts from the copy.
pub const RUNTIME_TRANSFER: Duration = Duration::from_secs(600);

/// Processes stopping: SIGTERM, the 5 s grace period, SIGKILL, and reaping.
pub const STOP: Duration = Duration::from_secs(60);

/// A change of state the server makes by itself within a few seconds of its cause (a heartbeat
/// missed, a loop's next round, a REPL reply).
pub const STATE_CHANGE: Duration = Duration::from_secs(60);

/// A small environment (two pure-Python packages) built by uv, downloads included.
pub const ENV_BUILD: Duration = Duration::from_secs(180);
