//! What Spark needs from us: command lines for the master, workers and drivers, and reading
//! their logs (application id, the driver's error).

use std::net::TcpListener;

/// Picks a free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Spark properties for dynamic allocation on a standalone cluster, or none without it.
/// `user_sets` tells whether the user's own conf already sets a key.
pub fn dynamic_allocation_conf(
    sizing: &spool_spec::SparkSizing,
    user_sets: impl Fn(&str) -> bool,
) -> Vec<String> {
    let Some(da) = sizing.dynamic_allocation else {
        return Vec::new();
    };
    let mut conf = vec![
        "spark.dynamicAllocation.enabled=true".to_string(),
        format!("spark.dynamicAllocation.minExecutors={}", da.min_executors),
        format!("spark.dynamicAllocation.maxExecutors={}", da.max_executors),
        format!(
            "spark.dynamicAllocation.initialExecutors={}",
            sizing.executor_instances
        ),
    ];
    if !user_sets("spark.dynamicAllocation.shuffleTracking.enabled")
        && !user_sets("spark.shuffle.service.enabled")
    {
        // Standalone clusters have no external shuffle service; track shuffle files instead.
        conf.push("spark.dynamicAllocation.shuffleTracking.enabled=true".into());
    }
    conf
}

/// Finds the application id a driver logs once the master accepted it.
pub fn find_app_id(driver_log: &str) -> Option<String> {
    const MARKER: &str = "Connected to Spark cluster with app ID ";
    let start = driver_log.find(MARKER)? + MARKER.len();
    let id: String = driver_log[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!id.is_empty()).then_some(id)
}

/// Returns the last line of the last Python traceback in a driver's stderr: the error a user
/// needs to see (`ValueError: boom`).
pub fn driver_error(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("Traceback (most recent call last):"))?;
    lines[start + 1..]
        .iter()
        .find(|l| !l.trim().is_empty() && !l.starts_with(' ') && !l.starts_with('\t'))
        .map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_app_id() {
        let log = "26/11/24 INFO StandaloneSchedulerBackend: Connected to Spark cluster with app ID app-20261124101010-0003\nmore";
        assert_eq!(find_app_id(log).as_deref(), Some("app-20261124101010-0003"));
        assert_eq!(find_app_id("nothing"), None);
    }

    #[test]
    fn finds_last_traceback_line() {
        let stderr = "INFO starting\nTraceback (most recent call last):\n  File \"x.py\", line 3, in <module>\n    raise ValueError(\"boom\")\nValueError: boom\n26/11/24 INFO ShutdownHookManager: Shutdown hook called\n";
        assert_eq!(driver_error(stderr).as_deref(), Some("ValueError: boom"));
        assert_eq!(driver_error("INFO all good\n"), None);
    }
}
