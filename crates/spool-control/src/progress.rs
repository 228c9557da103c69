//! What a pipeline does next, from its nodes' statuses (pure): which waiting nodes will never
//! run, which running ones to cancel, and the pipeline's own status.

use std::collections::BTreeMap;

use spool_core::JobStatus;

/// A node of the pipeline as the store has it now.
#[derive(Debug, Clone)]
pub(crate) struct NodeState<'a> {
    pub node: &'a str,
    pub status: JobStatus,
    /// The reason shown with its status now.
    pub reason: Option<&'a str>,
    pub depends_on: Vec<String>,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A node that waits for others to complete: the reason to show while it does.
    Wait { node: String, reason: String },
    /// A node that waits and never will run: it ends `Canceled` with the reason.
    NotRun { node: String, reason: String },
    /// A node under way to stop.
    Cancel { node: String, reason: String },
    /// The pipeline's own status, when it changes.
    Parent {
        status: JobStatus,
        reason: Option<String>,
    },
}

/// Decides the next steps. `parent` is the pipeline's status (`CancelRequested` once its user
/// asked to cancel it).
pub(crate) fn advance(
    parent: JobStatus,
    nodes: &[NodeState<'_>],
    continue_on_step_failure: bool,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut status: BTreeMap<&str, JobStatus> = nodes.iter().map(|n| (n.node, n.status)).collect();
    let canceling = parent == JobStatus::CancelRequested;
    let first_failed = nodes
        .iter()
        .find(|n| n.status == JobStatus::Failed)
        .map(|n| n.node);
    let stop_all = canceling || (!continue_on_step_failure && first_failed.is_some());
    let stop_reason = if canceling {
        "the pipeline was canceled".to_string()
    } else {
        format!(
            "step `{}` failed and the pipeline stops on a failed step (`continue_on_step_failure: false`)",
            first_failed.unwrap_or_default()
        )
    };

    // Waiting nodes that cannot run, until nothing changes (a node that will not run makes its
    // dependants not run too).
    loop {
        let mut changed = false;
        for node in nodes {
            if !JobStatus::WAITING.contains(&status[node.node]) {
                continue;
            }
            let reason = if stop_all {
                Some(format!("not run: {stop_reason}"))
            } else {
                node.depends_on.iter().find_map(|dep| {
                    let s = status.get(dep.as_str())?;
                    matches!(s, JobStatus::Failed | JobStatus::Canceled)
                        .then(|| format!("not run: step `{dep}`, whose output it reads, ended {s}"))
                })
            };
            if let Some(reason) = reason {
                status.insert(node.node, JobStatus::Canceled);
                steps.push(Step::NotRun {
                    node: node.node.to_string(),
                    reason,
                });
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // Nodes still waiting for others say for which.
    for node in nodes {
        if status[node.node] != JobStatus::NotStarted {
            continue;
        }
        let pending: Vec<String> = node
            .depends_on
            .iter()
            .filter(|d| status.get(d.as_str()) != Some(&JobStatus::Completed))
            .map(|d| format!("`{d}`"))
            .collect();
        if pending.is_empty() {
            continue;
        }
        let noun = if pending.len() == 1 { "step" } else { "steps" };
        let reason = format!("waiting for {noun} {} to complete", pending.join(", "));
        if node.reason != Some(reason.as_str()) {
            steps.push(Step::Wait {
                node: node.node.to_string(),
                reason,
            });
        }
    }
    if stop_all {
        for node in nodes {
            let s = status[node.node];
            if !s.is_terminal()
                && s != JobStatus::CancelRequested
                && !JobStatus::WAITING.contains(&s)
            {
                steps.push(Step::Cancel {
                    node: node.node.to_string(),
                    reason: stop_reason.clone(),
                });
            }
        }
    }

    // The pipeline's status.
    let all_ended = status.values().all(|s| s.is_terminal());
    let next = if all_ended {
        let failed: Vec<&str> = nodes
            .iter()
            .filter(|n| status[n.node] == JobStatus::Failed)
            .map(|n| n.node)
            .collect();
        if status.values().all(|s| *s == JobStatus::Completed) {
            Some((JobStatus::Completed, None))
        } else if !failed.is_empty() {
            let listed = failed
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let noun = if failed.len() == 1 { "step" } else { "steps" };
            Some((JobStatus::Failed, Some(format!("{noun} {listed} failed"))))
        } else if canceling {
            Some((
                JobStatus::Canceled,
                Some("canceled by the user".to_string()),
            ))
        } else {
            let canceled: Vec<String> = nodes
                .iter()
                .filter(|n| status[n.node] == JobStatus::Canceled)
                .map(|n| format!("`{}`", n.node))
                .collect();
            let said = if canceled.len() == 1 {
                format!("step {} was canceled", canceled.join(", "))
            } else {
                format!("steps {} were canceled", canceled.join(", "))
            };
            Some((JobStatus::Canceled, Some(said)))
        }
    } else if parent == JobStatus::NotStarted
        && status.values().any(|s| !JobStatus::WAITING.contains(s))
    {
        Some((JobStatus::Running, None))
    } else {
        None
    };
    if let Some((s, reason)) = next
        && s != parent
    {
        steps.push(Step::Parent { status: s, reason });
    }
    steps
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    /// `spec`: one node per line, `name status [deps...]`.
    fn check(parent: JobStatus, continue_on_step_failure: bool, spec: &str, expect: Expect) {
        let parsed: Vec<(String, JobStatus, Vec<String>)> = spec
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut parts = l.split_whitespace();
                let name = parts.next().unwrap().to_string();
                let status = parts.next().unwrap().parse().unwrap();
                (name, status, parts.map(str::to_string).collect())
            })
            .collect();
        let nodes: Vec<NodeState<'_>> = parsed
            .iter()
            .map(|(n, s, d)| NodeState {
                node: n,
                status: *s,
                reason: None,
                depends_on: d.clone(),
            })
            .collect();
        let steps = advance(parent, &nodes, continue_on_step_failure);
        let rendered: Vec<String> = steps
            .iter()
            .map(|s| match s {
                Step::Wait { node, reason } => format!("wait {node}: {reason}"),
                Step::NotRun { node, reason } => format!("not run {node}: {reason}"),
                Step::Cancel { node, reason } => format!("cancel {node}: {reason}"),
                Step::Parent { status, reason } => {
                    format!(
                        "pipeline {status}{}",
                        reason
                            .as_deref()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    )
                }
            })
            .collect();
        expect.assert_eq(&rendered.join("\n"));
    }

    #[test]
    fn a_started_node_starts_the_pipeline() {
        check(
            JobStatus::NotStarted,
            true,
            "a Running\nb NotStarted a",
            expect![[r#"
                wait b: waiting for step `a` to complete
                pipeline Running"#]],
        );
        check(
            JobStatus::NotStarted,
            true,
            "a Queued\nb NotStarted a",
            expect!["wait b: waiting for step `a` to complete"],
        );
    }

    #[test]
    fn all_completed_completes() {
        check(
            JobStatus::Running,
            true,
            "a Completed\nb Completed a",
            expect!["pipeline Completed"],
        );
    }

    #[test]
    fn a_reused_pipeline_completes_at_once() {
        check(
            JobStatus::NotStarted,
            true,
            "a Completed\nb Completed a",
            expect!["pipeline Completed"],
        );
    }

    #[test]
    fn a_failure_stops_its_dependants_but_not_other_branches() {
        check(
            JobStatus::Running,
            true,
            "a Failed\nb NotStarted a\nc NotStarted b\nd Running",
            expect![[r#"
                not run b: not run: step `a`, whose output it reads, ended Failed
                not run c: not run: step `b`, whose output it reads, ended Canceled"#]],
        );
        check(
            JobStatus::Running,
            true,
            "a Failed\nb Canceled a\nd Completed",
            expect!["pipeline Failed: step `a` failed"],
        );
    }

    #[test]
    fn without_continue_on_step_failure_a_failure_stops_everything() {
        check(
            JobStatus::Running,
            false,
            "a Failed\nb NotStarted a\nd Running\ne Queued",
            expect![[r#"
                not run b: not run: step `a` failed and the pipeline stops on a failed step (`continue_on_step_failure: false`)
                not run e: not run: step `a` failed and the pipeline stops on a failed step (`continue_on_step_failure: false`)
                cancel d: step `a` failed and the pipeline stops on a failed step (`continue_on_step_failure: false`)"#]],
        );
        check(
            JobStatus::Running,
            false,
            "a Failed\nb Canceled a\nd Canceled",
            expect!["pipeline Failed: step `a` failed"],
        );
    }

    #[test]
    fn canceling_the_pipeline_cancels_its_nodes() {
        check(
            JobStatus::CancelRequested,
            true,
            "a Running\nb NotStarted a\nc CancelRequested",
            expect![[r#"
                not run b: not run: the pipeline was canceled
                cancel a: the pipeline was canceled"#]],
        );
        check(
            JobStatus::CancelRequested,
            true,
            "a Canceled\nb Canceled a\nc Completed",
            expect!["pipeline Canceled: canceled by the user"],
        );
    }

    #[test]
    fn a_node_canceled_alone_cancels_the_pipeline_once_the_rest_ended() {
        check(
            JobStatus::Running,
            true,
            "a Canceled\nb NotStarted a\nc Completed",
            expect![[r#"
                not run b: not run: step `a`, whose output it reads, ended Canceled
                pipeline Canceled: steps `a`, `b` were canceled"#]],
        );
    }
}
