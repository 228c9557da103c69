//! Limits on what a request may ask for: the lengths of names and texts, and the ranges of sizes.
//!
//! They are checked where requests enter the control plane (job specs by the rules in
//! `rules.rs`, sessions, statements and Livy batches in `spool-control`), so nothing over them is
//! stored, placed or launched; the HTTP layer bounds whole bodies before that. Placement still
//! uses checked arithmetic: these ranges keep numbers sane, not overflow-free in every product.

use std::collections::BTreeMap;
use std::time::Duration;

use spool_core::MemoryMb;

/// Names of jobs, sessions, batches and experiments, and display names (bytes).
pub const MAX_NAME_BYTES: usize = 255;
/// Keys of `tags` and `properties` (bytes).
pub const MAX_TAG_KEY_BYTES: usize = 255;
/// Values of `tags` and `properties` (bytes).
pub const MAX_TAG_VALUE_BYTES: usize = 4 * 1024;
/// Spark property names in `conf` (bytes).
pub const MAX_CONF_KEY_BYTES: usize = 255;
/// Spark property values in `conf` (bytes); a conda file sent through Livy's `conf` counts too.
pub const MAX_CONF_VALUE_BYTES: usize = 64 * 1024;
/// Free texts: a job's `description` and `args` (bytes).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// A statement's code (bytes).
pub const MAX_CODE_BYTES: usize = 1024 * 1024;
/// Cores of one driver or executor.
pub const MAX_CORES: u64 = 1024;
/// Memory of one driver or executor: 16 TiB.
pub const MAX_MEMORY: MemoryMb = MemoryMb(16 * 1024 * 1024);
/// Executors of one job or session (also the bounds of dynamic allocation).
pub const MAX_EXECUTORS: u64 = 10_000;
/// A session's idle timeout: 30 days.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

/// A value over a limit: the field, what it was and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("`{field}` is {length} bytes long; at most {max} bytes are accepted")]
    TooLong {
        field: String,
        length: usize,
        max: usize,
    },
    #[error("`{field}` must be between {min} and {max}, got {value}")]
    OutOfRange {
        field: String,
        value: String,
        min: String,
        max: String,
    },
}

impl LimitError {
    /// The field the error is about, e.g. `name` or `conf.spark.app.name`.
    pub fn field(&self) -> &str {
        match self {
            LimitError::TooLong { field, .. } | LimitError::OutOfRange { field, .. } => field,
        }
    }
}

/// Checks that `text` is at most `max` bytes long.
pub fn check_len(field: &str, text: &str, max: usize) -> Result<(), LimitError> {
    if text.len() > max {
        return Err(LimitError::TooLong {
            field: field.to_string(),
            length: text.len(),
            max,
        });
    }
    Ok(())
}

/// Checks a name (of a job, session, batch or experiment).
pub fn check_name(field: &str, name: &str) -> Result<(), LimitError> {
    check_len(field, name, MAX_NAME_BYTES)
}

fn range(field: &str, value: u64, min: u64, max: u64) -> Result<(), LimitError> {
    if value < min || value > max {
        return Err(LimitError::OutOfRange {
            field: field.to_string(),
            value: value.to_string(),
            min: min.to_string(),
            max: max.to_string(),
        });
    }
    Ok(())
}

/// Checks the cores of one driver or executor: 1 to [`MAX_CORES`].
pub fn check_cores(field: &str, cores: u64) -> Result<(), LimitError> {
    range(field, cores, 1, MAX_CORES)
}

/// Checks a number of executors: 0 to [`MAX_EXECUTORS`].
pub fn check_executors(field: &str, executors: u64) -> Result<(), LimitError> {
    range(field, executors, 0, MAX_EXECUTORS)
}

/// Checks the memory of one driver or executor: 1 MiB to [`MAX_MEMORY`].
pub fn check_memory(field: &str, memory: MemoryMb) -> Result<(), LimitError> {
    if memory.0 == 0 || memory > MAX_MEMORY {
        return Err(LimitError::OutOfRange {
            field: field.to_string(),
            value: memory.to_spark(),
            min: "1m".into(),
            max: MAX_MEMORY.to_spark(),
        });
    }
    Ok(())
}

/// Checks an idle timeout given in seconds (any number): at least one second, at most
/// [`MAX_IDLE_TIMEOUT`]. `as_written` is the value as the caller wrote it, for the message.
pub fn check_idle_timeout(
    field: &str,
    seconds: f64,
    as_written: &str,
) -> Result<Duration, LimitError> {
    let out_of_range = || LimitError::OutOfRange {
        field: field.to_string(),
        value: as_written.to_string(),
        min: "1s".into(),
        max: format!("{}d", MAX_IDLE_TIMEOUT.as_secs() / 86400),
    };
    if !seconds.is_finite() || seconds < 1.0 || seconds > MAX_IDLE_TIMEOUT.as_secs_f64() {
        return Err(out_of_range());
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| out_of_range())
}

/// Checks the keys and values of a `conf` mapping; fields are named `<prefix>.<key>`.
pub fn check_conf<'a>(
    prefix: &str,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), LimitError> {
    for (key, value) in entries {
        if key.len() > MAX_CONF_KEY_BYTES {
            // The key itself is the long part: name the mapping, not the whole key.
            return Err(LimitError::TooLong {
                field: format!("{prefix} key `{}...`", truncated(key)),
                length: key.len(),
                max: MAX_CONF_KEY_BYTES,
            });
        }
        check_len(&format!("{prefix}.{key}"), value, MAX_CONF_VALUE_BYTES)?;
    }
    Ok(())
}

/// Checks the keys and values of `tags` or `properties`; fields are named `<prefix>.<key>`.
pub fn check_tags(prefix: &str, tags: &BTreeMap<String, String>) -> Result<(), LimitError> {
    for (key, value) in tags {
        if key.len() > MAX_TAG_KEY_BYTES {
            return Err(LimitError::TooLong {
                field: format!("{prefix} key `{}...`", truncated(key)),
                length: key.len(),
                max: MAX_TAG_KEY_BYTES,
            });
        }
        check_len(&format!("{prefix}.{key}"), value, MAX_TAG_VALUE_BYTES)?;
    }
    Ok(())
}

/// The first 32 bytes of `text` (on a character boundary), to name an overlong key in a message.
fn truncated(text: &str) -> &str {
    let mut end = text.len().min(32);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render<T: std::fmt::Debug>(result: Result<T, LimitError>) -> String {
        match result {
            Ok(value) => format!("ok {value:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn texts_are_refused_over_their_maximum_with_the_length() {
        assert_eq!(render(check_name("name", &"n".repeat(255))), "ok ()");
        assert_eq!(
            render(check_name("name", &"n".repeat(256))),
            "`name` is 256 bytes long; at most 255 bytes are accepted"
        );
        let long_key = "k".repeat(300);
        assert_eq!(
            render(check_conf("conf", [(long_key.as_str(), "v")])),
            "`conf key `kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...`` is 300 bytes long; at most 255 bytes are accepted"
        );
        let long_value = "v".repeat(MAX_CONF_VALUE_BYTES + 1);
        assert_eq!(
            render(check_conf(
                "conf",
                [("spark.app.name", long_value.as_str())]
            )),
            "`conf.spark.app.name` is 65537 bytes long; at most 65536 bytes are accepted"
        );
    }

    #[test]
    fn sizes_are_refused_outside_their_range() {
        assert_eq!(
            render(check_cores("executor_cores", 4_294_967_295)),
            "`executor_cores` must be between 1 and 1024, got 4294967295"
        );
        assert_eq!(
            render(check_cores("driver_cores", 0)),
            "`driver_cores` must be between 1 and 1024, got 0"
        );
        assert_eq!(render(check_executors("executors", 10_000)), "ok ()");
        assert_eq!(
            render(check_memory("executor_memory", MemoryMb(32 * 1024 * 1024))),
            "`executor_memory` must be between 1m and 16384g, got 32768g"
        );
    }

    #[test]
    fn idle_timeouts_are_positive_and_at_most_thirty_days() {
        assert_eq!(
            render(check_idle_timeout("idleTimeout", 600.0, "10m")),
            "ok 600s"
        );
        assert_eq!(
            render(check_idle_timeout(
                "idleTimeout",
                8.64e24,
                "99999999999999999999d"
            )),
            "`idleTimeout` must be between 1s and 30d, got 99999999999999999999d"
        );
        assert_eq!(
            render(check_idle_timeout(
                "timeout_minutes",
                f64::NAN,
                "NaN minutes"
            )),
            "`timeout_minutes` must be between 1s and 30d, got NaN minutes"
        );
        assert_eq!(
            render(check_idle_timeout("timeout_minutes", -60.0, "-1 minutes")),
            "`timeout_minutes` must be between 1s and 30d, got -1 minutes"
        );
    }
}
