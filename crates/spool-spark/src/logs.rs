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
/// needs to see (`ValueError: boom`). A Java exception raised through py4j is named by the JVM's
/// line after it (`Py4JJavaError: java.lang.IllegalArgumentException: ...`), as py4j's own
/// line says only which call failed.
pub fn driver_error(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("Traceback (most recent call last):"))?;
    let at = start
        + 1
        + lines[start + 1..]
            .iter()
            .position(|l| !l.trim().is_empty() && !l.starts_with(' ') && !l.starts_with('\t'))?;
    let line = lines[at].trim();
    if line.starts_with("py4j.protocol.Py4JJavaError") {
        let java = lines[at + 1..]
            .iter()
            .take(3)
            .find_map(|l| l.strip_prefix(": "))
            .map(str::trim);
        if let Some(java) = java {
            return Some(format!("Py4JJavaError: {java}"));
        }
    }
    Some(line.to_string())
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

    #[test]
    fn a_java_error_through_py4j_is_named_by_the_jvm() {
        let stderr = "Traceback (most recent call last):\n  File \"driver.py\", line 449, in main\n    spark = SparkSession.builder.getOrCreate()\npy4j.protocol.Py4JJavaError: An error occurred while calling None.org.apache.spark.api.java.JavaSparkContext.\n: java.lang.IllegalArgumentException: URI has a fragment component\n\tat java.base/java.io.File.<init>(File.java:427)\n";
        assert_eq!(
            driver_error(stderr).as_deref(),
            Some("Py4JJavaError: java.lang.IllegalArgumentException: URI has a fragment component")
        );
        // Without the JVM's line, py4j's own is what there is.
        let bare =
            "Traceback (most recent call last):\npy4j.protocol.Py4JJavaError: An error occurred\n";
        assert_eq!(
            driver_error(bare).as_deref(),
            Some("py4j.protocol.Py4JJavaError: An error occurred")
        );
    }
}
