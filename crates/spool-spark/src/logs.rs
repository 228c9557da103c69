//! What Spark writes that Spool reads: a driver's application id and its error.

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
