//! Phases as a timeline: each phase lasts until the next one began (the last until the work
//! ended, or until now while it goes on). Pure, so its arithmetic has data-driven tests.

use chrono::{DateTime, Utc};

/// One phase on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub name: String,
    /// When it began, as stored.
    pub at: String,
    pub duration: String,
    /// Its share of the bar: its length in milliseconds (at least 1, so it stays visible).
    pub weight: i64,
    /// The colour family: `wait`, `prepare`, `start`, `run` or `end`.
    pub class: &'static str,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Timeline {
    pub segments: Vec<Segment>,
    pub total: String,
    /// Whether the last phase is still going on.
    pub running: bool,
}

/// The colour family of a phase, by the names jobs (Azure's statuses) and sessions (Livy's
/// states and Spool's start phases) use.
fn class(phase: &str) -> &'static str {
    match phase {
        "NotStarted" | "Queued" | "queued" | "not_started" => "wait",
        "Preparing"
        | "Provisioning"
        | "environment"
        | "environment_ready"
        | "cluster_provisioning"
        | "claimed" => "prepare",
        "Starting" | "starting" | "driver_starting" | "executors_ready" => "start",
        "Running" | "Finalizing" | "idle" | "busy" => "run",
        _ => "end",
    }
}

fn parse(at: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A duration as people read it: `850 ms`, `12.3 s`, `4 min 5 s`, `2 h 3 min`.
pub fn human(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    } else if ms < 3_600_000 {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// The timeline of `phases` (name, start time), in the order recorded. `ended` is when the work
/// ended, if it did; `until` cuts the timeline where the first phase of that name begins (a
/// session's start ends when it is first `idle`); `now` is the time to measure a running
/// phase to.
pub fn timeline(
    phases: &[(String, String)],
    ended: Option<&str>,
    until: Option<&str>,
    now: DateTime<Utc>,
) -> Timeline {
    let cut = until.and_then(|name| phases.iter().position(|(n, _)| n == name));
    let shown = &phases[..cut.unwrap_or(phases.len())];
    let mut segments = Vec::new();
    let mut total = 0;
    let mut running = false;
    for (i, (name, at)) in shown.iter().enumerate() {
        let Some(start) = parse(at) else { continue };
        let end = match phases.get(i + 1) {
            Some((_, next)) => parse(next),
            None => match ended.and_then(parse) {
                Some(ended) => Some(ended),
                None => {
                    // A terminal phase has no length; anything else lasts until now.
                    if class(name) == "end" {
                        continue;
                    }
                    running = true;
                    Some(now)
                }
            },
        };
        let Some(end) = end else { continue };
        let ms = (end - start).num_milliseconds().max(0);
        total += ms;
        segments.push(Segment {
            name: name.clone(),
            at: at.clone(),
            duration: human(ms),
            weight: ms.max(1),
            class: class(name),
        });
    }
    Timeline {
        segments,
        total: human(total),
        running,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.
mod tests {
    use super::*;

    fn render(t: &Timeline) -> String {
        let mut out: Vec<String> = t
            .segments
            .iter()
            .map(|s| format!("{} [{}] {} w={}", s.name, s.class, s.duration, s.weight))
            .collect();
        out.push(format!(
            "total {}{}",
            t.total,
            if t.running { ", running" } else { "" }
        ));
        out.join("\n")
    }

    fn phases(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, at)| (n.to_string(), format!("2026-12-04T10:{at}Z")))
            .collect()
    }

    fn now() -> DateTime<Utc> {
        parse("2026-12-04T10:05:00Z").unwrap()
    }

    #[test]
    fn a_completed_job_ends_at_its_terminal_phase() {
        let p = phases(&[
            ("NotStarted", "00:00.000"),
            ("Preparing", "00:00.250"),
            ("Provisioning", "00:01.000"),
            ("Starting", "00:03.500"),
            ("Running", "00:09.000"),
            ("Finalizing", "01:10.000"),
            ("Completed", "01:11.000"),
        ]);
        let ended = "2026-12-04T10:01:11Z";
        expect_test::expect![[r#"
            NotStarted [wait] 250 ms w=250
            Preparing [prepare] 750 ms w=750
            Provisioning [prepare] 2.5 s w=2500
            Starting [start] 5.5 s w=5500
            Running [run] 1 min 1 s w=61000
            Finalizing [run] 1.0 s w=1000
            Completed [end] 0 ms w=1
            total 1 min 11 s"#]]
        .assert_eq(&render(&timeline(&p, Some(ended), None, now())));
    }

    #[test]
    fn a_running_phase_lasts_until_now() {
        let p = phases(&[("NotStarted", "00:00.000"), ("Running", "04:00.000")]);
        expect_test::expect![[r#"
            NotStarted [wait] 4 min 0 s w=240000
            Running [run] 1 min 0 s w=60000
            total 5 min 0 s, running"#]]
        .assert_eq(&render(&timeline(&p, None, None, now())));
    }

    #[test]
    fn a_session_start_ends_when_it_is_first_idle() {
        let p = phases(&[
            ("not_started", "00:00.000"),
            ("starting", "00:00.040"),
            ("driver_starting", "00:00.100"),
            ("idle", "00:08.100"),
            ("busy", "00:09.000"),
            ("idle", "00:10.000"),
        ]);
        expect_test::expect![[r#"
            not_started [wait] 40 ms w=40
            starting [start] 60 ms w=60
            driver_starting [start] 8.0 s w=8000
            total 8.1 s"#]]
        .assert_eq(&render(&timeline(&p, None, Some("idle"), now())));
    }

    #[test]
    fn unreadable_times_and_an_unended_terminal_phase_are_left_out() {
        let p = vec![
            ("NotStarted".to_string(), "yesterday".to_string()),
            ("Failed".to_string(), "2026-12-04T10:00:00Z".to_string()),
        ];
        expect_test::expect!["total 0 ms"].assert_eq(&render(&timeline(&p, None, None, now())));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        let out: Vec<String> = [0, 999, 1000, 12_345, 59_999, 61_000, 3_600_000, 7_380_000]
            .iter()
            .map(|ms| human(*ms))
            .collect();
        expect_test::expect![[r#"
            0 ms
            999 ms
            1.0 s
            12.3 s
            59.9 s
            1 min 1 s
            1 h 0 min
            2 h 3 min"#]]
        .assert_eq(&out.join("\n"));
    }
}
