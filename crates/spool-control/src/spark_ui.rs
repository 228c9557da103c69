//! A driver's Spark UI through the server: an isolated cluster's drivers listen inside its
//! namespace, which only the host reaches, so job and session views link to a path of the
//! server (`/api/v1/jobs/<name>/sparkui`, `/api/v1/sessions/<id>/sparkui`) that fetches the
//! page for a caller who may see the job or session, with that path in Spark's
//! `X-Forwarded-Context` header: the driver puts it before the UI's own links, so they lead
//! back through the server (the same driver serves a session and then the job it was handed
//! to, each at its own path). An isolated driver's own address is kept in a `spark-ui` file of
//! the job's or session's folder (the server's alone); any other driver's UI is served from
//! the address its view shows (the studio links every running driver's UI through the server).

use std::path::{Path, PathBuf};

use crate::netns::NetPlace;
use crate::{Caller, Control, ControlError, Result};

/// The largest page passed through (Spark's pages and REST answers are far smaller).
const MAX_PAGE: usize = 32 << 20;

/// Where the server serves a job's driver UI.
pub(crate) fn job_ui_path(name: &str) -> String {
    format!("/api/v1/jobs/{name}/sparkui")
}

/// Where the server serves a session's driver UI: by its id, or by the key a caller named it
/// with (its name).
pub(crate) fn session_ui_path(key: impl std::fmt::Display) -> String {
    format!("/api/v1/sessions/{key}/sparkui")
}

/// The file keeping an isolated driver's own UI address.
const TARGET_FILE: &str = "spark-ui";

/// A driver's UI, as its job's or session's view links it.
pub(crate) struct DriverUi {
    /// The link the view shows: the server's path for an isolated driver, else its address.
    pub url: String,
}

/// The UI of a driver placed at `net` with its UI on `port`: an isolated one is linked through
/// the server at `served_at()`, its own address recorded in `dir` (the job's or session's
/// folder) for the proxy.
pub(crate) fn driver_ui(
    net: &NetPlace,
    port: u16,
    dir: &Path,
    served_at: impl FnOnce() -> String,
) -> std::io::Result<DriverUi> {
    let address = format!("http://{}:{port}", net.address);
    if net.netns.is_none() {
        return Ok(DriverUi { url: address });
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(TARGET_FILE), &address)?;
    Ok(DriverUi { url: served_at() })
}

/// The UI link of a job run by a session's driver (a pre-warmed driver handed to it): the
/// session's own link when it is an address, else the job's path through the server, with the
/// driver's address copied into the job's folder (`job_dir`) for the proxy.
pub(crate) fn link_to_session_ui(
    session_dir: &Path,
    session_link: &str,
    job_dir: &Path,
    job_name: &str,
) -> std::io::Result<String> {
    if !session_link.starts_with('/') {
        return Ok(session_link.to_string());
    }
    std::fs::create_dir_all(job_dir)?;
    std::fs::copy(session_dir.join(TARGET_FILE), job_dir.join(TARGET_FILE))?;
    Ok(job_ui_path(job_name))
}

/// Where a view's UI link leads: the recorded address for a link through the server, else
/// the link itself.
fn target(dir: PathBuf, shown: &str) -> Option<String> {
    if shown.starts_with('/') {
        std::fs::read_to_string(dir.join(TARGET_FILE))
            .ok()
            .map(|t| t.trim().to_string())
    } else {
        Some(shown.to_string())
    }
}

/// A redirect of the driver at `driver` (its address) as the browser must follow it: back
/// through the server at `served_at`. Spark redirects to absolute URLs of its own address,
/// and its root page to `/jobs/` without the context; other targets pass unchanged.
fn served_location(to: &str, driver: &str, served_at: &str) -> String {
    let path = match to.strip_prefix(driver.trim_end_matches('/')) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') => rest,
        _ if to.starts_with('/') => to,
        _ => return to.to_string(),
    };
    if path == served_at || path.starts_with(&format!("{served_at}/")) {
        path.to_string()
    } else {
        format!("{served_at}/{}", path.trim_start_matches('/'))
    }
}

/// Whose UI is asked for.
#[derive(Debug, Clone, Copy)]
pub enum UiOf<'a> {
    Job(&'a str),
    /// A session by id or name, as Livy resolves it.
    Session(&'a str),
}

/// A page of the UI, as the driver answered.
#[derive(Debug)]
pub struct UiPage {
    pub status: u16,
    pub content_type: Option<String>,
    /// A redirect's target, under the server's path.
    pub location: Option<String>,
    pub body: Vec<u8>,
}

impl Control {
    /// Fetches `path` (with `query`) of the UI of a job's or session's driver, for a caller who
    /// may see it; not found when it has no UI running.
    pub async fn spark_ui(
        &self,
        caller: &Caller,
        of: UiOf<'_>,
        path: &str,
        query: Option<&str>,
    ) -> Result<UiPage> {
        // The path this UI is served at, which the driver puts before its own links.
        let served_at = match of {
            UiOf::Job(name) => job_ui_path(name),
            UiOf::Session(key) => session_ui_path(key),
        };
        let (url, what) = match of {
            UiOf::Job(name) => {
                let job = self.job(caller, name).await?;
                let running = !job.status.is_terminal();
                let dir = self.job_dir(&job.name);
                (
                    job.spark_ui_url
                        .filter(|_| running)
                        .and_then(|shown| target(dir, &shown)),
                    format!("job {name}"),
                )
            }
            UiOf::Session(key) => {
                let session = self.session_by_key(caller, key).await?;
                let running = !session.state.is_finished();
                let dir = self.session_dir(session.id);
                (
                    session
                        .spark_ui_url
                        .filter(|_| running)
                        .and_then(|shown| target(dir, &shown)),
                    format!("session {key}"),
                )
            }
        };
        let Some(base) = url else {
            return Err(ControlError::NotFound {
                kind: "Spark UI of",
                name: format!("{what} (it runs only while the driver does)"),
            });
        };
        let mut target = format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        if let Some(query) = query {
            target.push('?');
            target.push_str(query);
        }
        let unreachable = |e: &dyn std::fmt::Display| ControlError::NotFound {
            kind: "Spark UI of",
            name: format!("{what}: the driver did not answer ({e})"),
        };
        // No redirect is followed: the browser follows it, back through the server.
        let response = self
            .inner()
            .ui_http
            .get(&target)
            .header("X-Forwarded-Context", &served_at)
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let status = response.status().as_u16();
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let location =
            header(reqwest::header::LOCATION).map(|to| served_location(&to, &base, &served_at));
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(&e))? {
            if body.len() + chunk.len() > MAX_PAGE {
                return Err(ControlError::TooLarge {
                    message: format!(
                        "the Spark UI page of {what} is larger than {} MiB",
                        MAX_PAGE >> 20
                    ),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(UiPage {
            status,
            content_type,
            location,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::served_location;

    #[test]
    fn redirects_lead_back_through_the_server() {
        let base = "/api/v1/jobs/j/sparkui";
        let driver = "http://127.0.0.1:4041";
        let cases = [
            // Spark's root page, to its own address without the context.
            (
                "http://127.0.0.1:4041/jobs/",
                "/api/v1/jobs/j/sparkui/jobs/",
            ),
            // A driver that put the forwarded path before its own.
            (
                "http://127.0.0.1:4041/api/v1/jobs/j/sparkui/jobs/",
                "/api/v1/jobs/j/sparkui/jobs/",
            ),
            (
                "/api/v1/jobs/j/sparkui/stages/",
                "/api/v1/jobs/j/sparkui/stages/",
            ),
            ("/stages/?id=1", "/api/v1/jobs/j/sparkui/stages/?id=1"),
            ("http://127.0.0.1:4041", "/api/v1/jobs/j/sparkui/"),
            // Another address (a worker's log page) is left as it is.
            (
                "http://127.0.0.1:8081/logPage/",
                "http://127.0.0.1:8081/logPage/",
            ),
            (
                "http://127.0.0.1:40411/jobs/",
                "http://127.0.0.1:40411/jobs/",
            ),
            (
                "/api/v1/jobs/jx/sparkui",
                "/api/v1/jobs/j/sparkui/api/v1/jobs/jx/sparkui",
            ),
        ];
        for (to, expected) in cases {
            assert_eq!(served_location(to, driver, base), expected, "{to}");
        }
    }
}
