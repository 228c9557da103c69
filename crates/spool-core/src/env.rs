//! Environment variables Spool reads. Every `SPOOL_*` variable is declared here, once.

/// Data dir of the server (`spool serve`) and the default location of `admin.token` for the CLI.
/// Defaults to `~/.spool`.
pub const SPOOL_HOME: &str = "SPOOL_HOME";

/// Base URL of the server the CLI talks to. Defaults to `http://127.0.0.1:8998`.
pub const SPOOL_URL: &str = "SPOOL_URL";

/// Bearer token the CLI sends. Defaults to the contents of `<SPOOL_HOME>/admin.token`.
pub const SPOOL_TOKEN: &str = "SPOOL_TOKEN";

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
