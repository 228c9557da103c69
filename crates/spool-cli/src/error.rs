//! Printing errors as a sentence: `error: <context>: <cause>`, then what to do on `hint:` lines
//! of their own after a blank line (STYLE.md §3).
//!
//! A layer of the chain may carry hints as lines starting with `hint:` (the server's messages
//! do, and so do the CLI's contexts made with [`hinted`]); they are moved to the end, so the
//! message stays one sentence however deep the hint was.

use std::error::Error as StdError;

use spool_client::ClientError;

/// A context that also tells the user what to do: `hinted("read `x`", "set SPOOL_TOKEN")`.
pub(crate) fn hinted(context: impl std::fmt::Display, hint: &str) -> String {
    format!("{context}\nhint: {hint}")
}

/// Adds a hint alone to an error, without a context of its own.
pub(crate) fn with_hint(error: impl Into<anyhow::Error>, hint: &str) -> anyhow::Error {
    error.into().context(format!("hint: {hint}"))
}

/// Renders an error chain for stderr, ending in a newline.
pub fn render_error(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut hints: Vec<String> = Vec::new();
    let mut previous = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        let (body, layer_hints) = split_hints(&text);
        hints.extend(layer_hints);
        // The HTTP client's own layers ("error sending request for url", "client error
        // (Connect)") say nothing that the URL and the root cause do not.
        if let Some(client_error) = cause.downcast_ref::<ClientError>() {
            match client_error {
                ClientError::Connect { url, source } => {
                    parts.push(format!("connect to the server at {url}"));
                    parts.push(describe(root_cause(source)));
                    break;
                }
                ClientError::Transport { url, source } => {
                    parts.push(format!("request to {url}"));
                    parts.push(describe(root_cause(source)));
                    break;
                }
                _ => {}
            }
        }
        let body = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => describe(io),
            None => body,
        };
        // A message that already ends in its source (`"{context}: {source}"`) is not repeated.
        if !body.is_empty() && !previous.contains(&body) {
            parts.push(body);
        }
        previous = text;
    }
    let mut out = format!("error: {}\n", parts.join(": "));
    let mut seen = Vec::new();
    for hint in hints {
        if seen.contains(&hint) {
            continue;
        }
        if seen.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("hint: {hint}\n"));
        seen.push(hint);
    }
    out
}

/// Splits a message into its text and its `hint:` lines.
fn split_hints(text: &str) -> (String, Vec<String>) {
    let mut body = Vec::new();
    let mut hints = Vec::new();
    for line in text.lines() {
        match line.trim_start().strip_prefix("hint:") {
            Some(hint) => hints.push(hint.trim().to_string()),
            None => body.push(line),
        }
    }
    (body.join("\n").trim_end().to_string(), hints)
}

fn root_cause<'a>(error: &'a (dyn StdError + 'static)) -> &'a (dyn StdError + 'static) {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause
}

/// An error's message; the operating system's (`Connection refused (os error 111)`) in the
/// house style (`connection refused`).
fn describe(error: &(dyn StdError + 'static)) -> String {
    let text = error.to_string();
    let Some(io) = error.downcast_ref::<std::io::Error>() else {
        return text;
    };
    let Some(code) = io.raw_os_error() else {
        return text;
    };
    let text = text
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context;
    use expect_test::{Expect, expect};

    use super::*;

    #[track_caller]
    fn check(error: anyhow::Error, expect: Expect) {
        expect.assert_eq(&render_error(&error));
    }

    #[test]
    fn a_chain_reads_as_one_sentence() {
        let error = Err::<(), _>(std::io::Error::from_raw_os_error(2))
            .context("read job file `job.yml`")
            .context("create job")
            .unwrap_err();
        check(
            error,
            expect![[r#"
                error: create job: read job file `job.yml`: no such file or directory
            "#]],
        );
    }

    #[test]
    fn hints_from_any_layer_go_last_on_their_own_lines() {
        let error = anyhow::anyhow!("the job needs 7 cores\nhint: ask for fewer executors")
            .context(hinted("submit `job.yml`", "see `spool job list`"));
        check(
            error,
            expect![[r#"
                error: submit `job.yml`: the job needs 7 cores

                hint: see `spool job list`
                hint: ask for fewer executors
            "#]],
        );
    }

    #[test]
    fn a_hint_alone_adds_no_context() {
        let error = with_hint(
            anyhow::anyhow!("job `nope` not found"),
            "list jobs with `x`",
        );
        check(
            error,
            expect![[r#"
                error: job `nope` not found

                hint: list jobs with `x`
            "#]],
        );
    }

    #[test]
    fn a_message_that_includes_its_source_is_not_repeated() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "bind 127.0.0.1:7077: {}", self.0)
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let inner = std::io::Error::other("address in use");
        check(
            anyhow::Error::new(Outer(inner)).context("start spark master"),
            expect![[r#"
                error: start spark master: bind 127.0.0.1:7077: address in use
            "#]],
        );
    }

    #[test]
    fn a_multi_line_message_keeps_its_lines() {
        check(
            anyhow::anyhow!("job spec `a.yml` has 1 problem:\na.yml:1:1: `x`: bad\n"),
            expect![[r#"
                error: job spec `a.yml` has 1 problem:
                a.yml:1:1: `x`: bad
            "#]],
        );
    }
}
