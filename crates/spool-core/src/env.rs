//! Environment variables Spool reads. Every `SPOOL_*` variable is declared here, once.

/// Data dir of the server (`spool serve`) and the default location of `admin.token` for the CLI.
/// Defaults to `~/.spool`.
pub const SPOOL_HOME: &str = "SPOOL_HOME";

/// Base URL of the server the CLI talks to. Defaults to `http://127.0.0.1:8998`.
pub const SPOOL_URL: &str = "SPOOL_URL";

/// Bearer token the CLI sends (`--token-file` is the other way that keeps it out of `ps`).
/// Defaults to the contents of `<SPOOL_HOME>/admin.token`.
pub const SPOOL_TOKEN: &str = "SPOOL_TOKEN";

/// Token of `spool agent` (from `spool agents add NAME`); `--token-file` is the other way to
/// give it without showing it in `ps`.
pub const SPOOL_AGENT_TOKEN: &str = "SPOOL_AGENT_TOKEN";

/// Machine-wide cache of runtimes and tools, shared by every data dir of the user.
/// Defaults to `$XDG_CACHE_HOME/spool`, else `~/.cache/spool`.
pub const SPOOL_CACHE_DIR: &str = "SPOOL_CACHE_DIR";

/// Java installation used to run Spark. Falls back to `java` on `PATH`.
pub const JAVA_HOME: &str = "JAVA_HOME";

/// Python interpreter used to create runtime virtualenvs. Defaults to `python3` on `PATH`.
pub const SPOOL_PYTHON: &str = "SPOOL_PYTHON";

/// Log filter for the server and CLI (tracing `EnvFilter` syntax). Defaults to `info` for the
/// server and `warn` for the CLI.
pub const SPOOL_LOG: &str = "SPOOL_LOG";

/// Seconds the YAML loaders' mutation fuzz test runs (`crates/spool-spec/tests/fuzz.rs`).
/// Defaults to 3, for CI; `cargo xtask fuzz --secs N` runs it longer.
pub const SPOOL_FUZZ_SECS: &str = "SPOOL_FUZZ_SECS";

/// Seed of the YAML fuzz test's random mutations, to replay a run it printed. Defaults to one
/// taken from the clock.
pub const SPOOL_FUZZ_SEED: &str = "SPOOL_FUZZ_SEED";

/// The secret a session's REPL driver (`spool-repl`'s `driver.py`) requires as the first line
/// of every connection, set by the server in the driver's environment only (which no other OS
/// account can read). A connection that does not present it is closed unanswered.
pub const SPOOL_REPL_SECRET: &str = "SPOOL_REPL_SECRET";

/// Variables of Spool's own environment that the processes it starts inherit; everything else
/// (`SPOOL_TOKEN`, `SPOOL_AGENT_TOKEN`, cloud credentials, whatever the server was started with)
/// is dropped, because statement and job code must not gain the server's powers.
///
/// What a child needs beyond these, Spool sets itself: Spark's and PySpark's variables
/// (`SPARK_HOME`, `SPARK_LOCAL_IP`, `PYSPARK_PYTHON`, `PYTHONPATH` for executors on agents, ...)
/// come from `spool-spark`'s command lines, never from the server's environment. Entries ending
/// in `*` are prefixes.
pub const INHERITED: &[&str] = &[
    // Where programs and the user's files are; `java` and `python3` are found on `PATH`.
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "TMPDIR",
    // Locale and time zone: Python's and the JVM's default encoding and clock.
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    JAVA_HOME,
    // The network the server reaches: proxies and CA certificates, so environment builds (uv)
    // and user code reach package indexes as the host does.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Returns true when a child process inherits variable `name` from Spool (see [`INHERITED`]).
pub fn is_inherited(name: &str) -> bool {
    INHERITED
        .iter()
        .any(|allowed| match allowed.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *allowed,
        })
}

/// The part of this process's environment a child inherits: the variables [`INHERITED`] names.
/// Start children from a cleared environment with these, then add what the child needs.
pub fn inherited() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| name.to_str().is_some_and(is_inherited))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::is_inherited;

    #[test]
    fn children_inherit_only_the_allow_list() {
        for name in [
            "PATH",
            "HOME",
            "LANG",
            "LC_ALL",
            "LC_CTYPE",
            "TZ",
            "JAVA_HOME",
            "https_proxy",
        ] {
            assert!(is_inherited(name), "{name} should be inherited");
        }
        for name in [
            "SPOOL_TOKEN",
            "SPOOL_AGENT_TOKEN",
            "SPOOL_HOME",
            "SPOOL_LOG",
            "AWS_SECRET_ACCESS_KEY",
            "SPARK_HOME",
            "PYSPARK_PYTHON",
            "PYTHONPATH",
            "LD_PRELOAD",
            "PATHX",
            "LC",
            "",
        ] {
            assert!(!is_inherited(name), "{name} should not be inherited");
        }
    }
}
