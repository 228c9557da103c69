//! Running Spark's command lines (written by `spool-spark`) on this host: the runtime's paths,
//! the bind address and the host's `PATH`, and free ports.

use std::net::TcpListener;
use std::path::Path;

use spool_spark::CommandLine;
use spool_supervisor::ProcessSpec;

use crate::config::Config;

/// Picks a free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The master's and workers' JVM options.
pub(crate) fn daemon(config: &Config) -> spool_spark::Daemon {
    spool_spark::Daemon {
        heap: config.daemon_memory,
    }
}

/// A command line as the supervisor starts it: in `cwd`, logging to `log_dir`.
pub(crate) fn process(command: CommandLine, cwd: &Path, log_dir: &Path) -> ProcessSpec {
    ProcessSpec {
        program: command.program,
        args: command.args,
        env: command.env.into_iter().collect(),
        cwd: cwd.to_path_buf(),
        log_dir: log_dir.to_path_buf(),
        run_as: None,
        combined_log: None,
        netns: None,
        nice: 0,
    }
}
