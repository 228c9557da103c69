//! Default locations on disk.

use std::path::PathBuf;

use crate::env;

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Returns the data dir: `$SPOOL_HOME`, else `~/.spool`.
pub fn default_data_dir() -> PathBuf {
    match std::env::var_os(env::SPOOL_HOME) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => home_dir().join(".spool"),
    }
}

/// Returns the machine-wide cache dir: `$SPOOL_CACHE_DIR`, else `$XDG_CACHE_HOME/spool`, else
/// `~/.cache/spool`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(env::SPOOL_CACHE_DIR).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("spool");
    }
    home_dir().join(".cache").join("spool")
}

/// Name of the file in the data dir that holds the admin's token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Default address of the server: Livy's port, so Livy clients work without configuration.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8998";

/// Default URL the CLI talks to.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8998";
