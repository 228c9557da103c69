//! The audit log's HTTP side: a middleware around every route (native, Livy and agents) that
//! records each state-changing call and each denial (401 or 403, on any method and any path,
//! unauthenticated ones included) through `Control::record_audit`, before the answer is sent.
//!
//! What an entry says comes from the route and from what runs inside: the action from the
//! matched route ([`ACTIONS`], one table), the target from the path's parameters, the
//! principal from authentication, and a target or effective identity that only a handler knows
//! (a new job's name and identity) from the [`Note`] it writes. Nothing here reads a body or
//! keeps a header: no token can reach an entry.

use std::sync::{Arc, Mutex};

use axum::extract::{Extension, MatchedPath, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use spool_api_types as api;
use spool_control::{AuditRecord, Caller};

use crate::AppState;
use crate::error::ApiResult;
use crate::extract::{Json, Query};

/// Whether a route's successful calls are recorded; every route's denials are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Changes state: every call is recorded.
    Change,
    /// Reads (or reports, as an agent's heartbeat every second): recorded only when denied.
    Read,
}

use Kind::{Change, Read};

/// Every route of the router: method, route as the router spells it, its action's stable name,
/// and its kind. `HEAD` is looked up as `GET`.
#[rustfmt::skip]
const ACTIONS: &[(&str, &str, &str, Kind)] = &[
    // Native API.
    ("GET", "/api/v1/whoami", "whoami", Read),
    ("GET", "/api/v1/catalog", "catalog.show", Read),
    ("GET", "/api/v1/openapi.json", "openapi.show", Read),
    ("GET", "/api/v1/users", "user.list", Read),
    ("POST", "/api/v1/users", "user.create", Change),
    ("GET", "/api/v1/users/{name}", "user.show", Read),
    ("PATCH", "/api/v1/users/{name}", "user.update", Change),
    ("DELETE", "/api/v1/users/{name}", "user.delete", Change),
    ("POST", "/api/v1/users/{name}/token", "user.rotate_token", Change),
    ("GET", "/api/v1/datastores", "datastore.list", Read),
    ("POST", "/api/v1/datastores", "datastore.create", Change),
    ("POST", "/api/v1/datastores/{name}/upload", "datastore.upload", Change),
    ("POST", "/api/v1/snapshots", "snapshot.create", Change),
    ("GET", "/api/v1/jobs", "job.list", Read),
    ("POST", "/api/v1/jobs", "job.create", Change),
    ("GET", "/api/v1/identities", "identity.list", Read),
    ("POST", "/api/v1/identities", "identity.create", Change),
    ("GET", "/api/v1/identities/{*name}", "identity.show", Read),
    ("DELETE", "/api/v1/identities/{*name}", "identity.delete", Change),
    ("GET", "/api/v1/workspace", "workspace.show", Read),
    ("PUT", "/api/v1/workspace", "workspace.update", Change),
    ("GET", "/api/v1/workspace/identities", "workspace_identity.list", Read),
    ("PUT", "/api/v1/workspace/identities/{name}", "workspace_identity.add", Change),
    ("DELETE", "/api/v1/workspace/identities/{name}", "workspace_identity.remove", Change),
    ("GET", "/api/v1/role-assignments", "role_assignment.list", Read),
    ("POST", "/api/v1/role-assignments", "role_assignment.create", Change),
    ("DELETE", "/api/v1/role-assignments/{id}", "role_assignment.delete", Change),
    ("GET", "/api/v1/jobs/{name}", "job.show", Read),
    ("POST", "/api/v1/jobs/{name}/cancel", "job.cancel", Change),
    ("GET", "/api/v1/jobs/{name}/logs", "job.logs", Read),
    ("GET", "/api/v1/jobs/{name}/logs/{*path}", "job.log_file", Read),
    ("GET", "/api/v1/jobs/{name}/sparkui", "job.spark_ui", Read),
    ("GET", "/api/v1/jobs/{name}/sparkui/", "job.spark_ui_root", Read),
    ("GET", "/api/v1/jobs/{name}/sparkui/{*path}", "job.spark_ui_page", Read),
    ("GET", "/api/v1/jobs/{name}/download/logs", "job.download_logs", Read),
    ("GET", "/api/v1/jobs/{name}/download/outputs/{output}", "job.download_output", Read),
    ("GET", "/api/v1/sessions", "session.list", Read),
    ("POST", "/api/v1/sessions", "session.create", Change),
    ("GET", "/api/v1/sessions/{key}", "session.show", Read),
    ("DELETE", "/api/v1/sessions/{key}", "session.delete", Change),
    ("GET", "/api/v1/sessions/{key}/sparkui", "session.spark_ui", Read),
    ("GET", "/api/v1/sessions/{key}/sparkui/", "session.spark_ui_root", Read),
    ("GET", "/api/v1/sessions/{key}/sparkui/{*path}", "session.spark_ui_page", Read),
    ("POST", "/api/v1/sessions/{key}/statements", "statement.create", Change),
    ("GET", "/api/v1/sessions/{key}/statements/{seq}", "statement.show", Read),
    ("POST", "/api/v1/sessions/{key}/statements/{seq}/cancel", "statement.cancel", Change),
    ("GET", "/api/v1/clusters", "cluster.list", Read),
    ("GET", "/api/v1/clusters/{id}", "cluster.show", Read),
    ("GET", "/api/v1/components", "component.list", Read),
    ("POST", "/api/v1/components", "component.create", Change),
    ("GET", "/api/v1/components/{name}", "component.show", Read),
    ("POST", "/api/v1/components/{name}/archive", "component.archive", Change),
    ("POST", "/api/v1/components/{name}/restore", "component.restore", Change),
    ("GET", "/api/v1/computes", "compute.list", Read),
    ("POST", "/api/v1/computes", "compute.attach", Change),
    ("GET", "/api/v1/computes/{name}", "compute.show", Read),
    ("DELETE", "/api/v1/computes/{name}", "compute.detach", Change),
    ("GET", "/api/v1/agents", "agent.list", Read),
    ("POST", "/api/v1/agents", "agent.create", Change),
    ("GET", "/api/v1/environments", "environment.list", Read),
    ("POST", "/api/v1/environments/prune", "environment.prune", Change),
    ("GET", "/api/v1/environments/{key}", "environment.show", Read),
    ("GET", "/api/v1/environments/{key}/log", "environment.log", Read),
    ("GET", "/api/v1/events", "event.list", Read),
    ("GET", "/api/v1/audit", "audit.list", Read),
    // Agents, with their own tokens.
    ("POST", "/api/v1/agents/heartbeat", "agent.heartbeat", Read),
    ("GET", "/api/v1/agents/runtimes/{version}", "agent.download_runtime", Read),
    // Livy, at the root.
    ("GET", "/version", "livy.version", Read),
    ("GET", "/sessions", "livy.session.list", Read),
    ("POST", "/sessions", "livy.session.create", Change),
    ("GET", "/sessions/{id}", "livy.session.show", Read),
    ("DELETE", "/sessions/{id}", "livy.session.delete", Change),
    ("GET", "/sessions/{id}/state", "livy.session.state", Read),
    ("GET", "/sessions/{id}/log", "livy.session.log", Read),
    ("GET", "/sessions/{id}/statements", "livy.statement.list", Read),
    ("POST", "/sessions/{id}/statements", "livy.statement.create", Change),
    ("GET", "/sessions/{id}/statements/{seq}", "livy.statement.show", Read),
    ("POST", "/sessions/{id}/statements/{seq}/cancel", "livy.statement.cancel", Change),
    // Code completion changes nothing.
    ("POST", "/sessions/{id}/completion", "livy.session.completion", Read),
    ("GET", "/batches", "livy.batch.list", Read),
    ("POST", "/batches", "livy.batch.create", Change),
    ("GET", "/batches/{id}", "livy.batch.show", Read),
    ("DELETE", "/batches/{id}", "livy.batch.delete", Change),
    ("GET", "/batches/{id}/state", "livy.batch.state", Read),
    ("GET", "/batches/{id}/log", "livy.batch.log", Read),
    // Spool Studio, its pages signed in by cookie.
    ("GET", "/studio", "studio.root", Read),
    ("GET", "/studio/", "studio.home", Read),
    ("GET", "/studio/assets/studio.css", "studio.stylesheet", Read),
    ("GET", "/studio/assets/studio.js", "studio.script", Read),
    ("GET", "/studio/signin", "studio.signin_form", Read),
    ("POST", "/studio/signin", "studio.signin", Change),
    ("POST", "/studio/signout", "studio.signout", Change),
    ("GET", "/studio/jobs", "studio.job.list", Read),
    ("GET", "/studio/jobs/{name}", "studio.job.show", Read),
    ("GET", "/studio/jobs/{name}/status", "studio.job.status", Read),
    ("POST", "/studio/jobs/{name}/cancel", "studio.job.cancel", Change),
    ("GET", "/studio/jobs/{name}/logs/{*path}", "studio.job.log_file", Read),
    ("GET", "/studio/jobs/{name}/download/logs", "studio.job.download_logs", Read),
    ("GET", "/studio/sessions", "studio.session.list", Read),
    ("GET", "/studio/sessions/{id}", "studio.session.show", Read),
    ("POST", "/studio/sessions/{id}/statements", "studio.statement.create", Change),
    ("POST", "/studio/sessions/{id}/delete", "studio.session.delete", Change),
    ("GET", "/studio/compute", "studio.compute", Read),
    ("GET", "/studio/datastores", "studio.datastore.list", Read),
    ("GET", "/studio/datastores/{name}", "studio.datastore.browse", Read),
    ("GET", "/studio/datastores/{name}/files/{*path}", "studio.datastore.file", Read),
    ("POST", "/studio/datastores/{name}/upload", "studio.datastore.upload", Change),
    ("GET", "/studio/environments", "studio.environment.list", Read),
    ("GET", "/studio/environments/{key}/log", "studio.environment.log", Read),
    ("GET", "/studio/starts", "studio.start_times", Read),
    // Prometheus metrics.
    ("GET", "/metrics", "metrics.show", Read),
    // Spark Connect, proxied to a session's driver: each gRPC call.
    ("POST", "/spark.connect.SparkConnectService/{method}", "connect.call", Read),
];

/// The action of a request no route serves (an unknown path, or a denial before routing).
const UNKNOWN_ROUTE: &str = "route.unknown";

/// The action and kind of `method` on `route`, if the router has that route.
fn action(method: &Method, route: &str) -> Option<(&'static str, Kind)> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ACTIONS
        .iter()
        .find(|(m, r, _, _)| *m == method && *r == route)
        .map(|(_, _, action, kind)| (*action, *kind))
}

/// Whether a call with this kind of route and this status goes into the audit log.
fn recorded(kind: Option<Kind>, status: u16) -> bool {
    matches!(status, 401 | 403) || kind == Some(Change)
}

/// What the code serving a request tells the audit log about it, beyond what the route says:
/// who the caller is (authentication), and a target or effective identity only a handler knows.
/// The middleware puts one into each request's extensions and reads it once the answer is made.
#[derive(Debug, Clone, Default)]
pub struct Note(Arc<Mutex<Noted>>);

#[derive(Debug, Default)]
struct Noted {
    principal: Option<String>,
    identity: Option<String>,
    target: Option<String>,
    /// The HTTP status the call stands for when its answer carries another (a gRPC call is
    /// refused inside a `200`).
    status: Option<u16>,
}

impl Note {
    fn with<T>(&self, write: impl FnOnce(&mut Noted) -> T) -> T {
        write(&mut self.0.lock().expect("no one panics holding an audit note"))
    }

    /// The authenticated user who makes the call.
    pub fn principal(&self, name: &str) {
        self.with(|n| n.principal = Some(name.to_string()));
    }

    /// What the call acts on, in place of the path's parameters (e.g. a new job's name).
    pub fn target(&self, target: impl Into<String>) {
        let target = target.into();
        self.with(|n| n.target = Some(target));
    }

    /// Who the call's work acts as (a job's user or managed identity).
    pub fn identity(&self, identity: impl Into<String>) {
        let identity = identity.into();
        self.with(|n| n.identity = Some(identity));
    }

    /// Records the call as answered with `status` (401 or 403 for a gRPC call refused in its
    /// trailers), so it is audited as the denial it is.
    pub fn status(&self, status: u16) {
        self.with(|n| n.status = Some(status));
    }

    fn take(&self) -> Noted {
        self.with(std::mem::take)
    }
}

/// The middleware: runs the request, then records it if it changed state or was denied. A
/// failed write is logged and the answer still sent; the entry is in the store before it is.
pub async fn record(
    State(state): State<AppState>,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let claimed = crate::auth::claimed_name(request.headers());
    let note = Note::default();
    request.extensions_mut().insert(note.clone());

    let response = next.run(request).await;

    let status = note
        .with(|n| n.status)
        .unwrap_or_else(|| response.status().as_u16());
    let found = route.as_deref().and_then(|r| action(&method, r));
    // Only an answer a handler gave counts: a wrong method (405) or a caller refused before the
    // router's method check (401) is not a route missing from the table.
    if found.is_none()
        && response.status().is_success()
        && let Some(route) = route.as_deref().filter(|r| !r.contains("__private__"))
    {
        // A route added to the router but not to `ACTIONS`: its calls would be recorded as an
        // unknown route. Every test that calls it fails on this line.
        tracing::error!(method = %method, route, "route has no audit action in `audit::ACTIONS`");
    }
    if !recorded(found.map(|(_, kind)| kind), status) {
        return response;
    }
    let noted = note.take();
    let principal = match noted.principal {
        Some(principal) => principal,
        None => match state.control.claimed_principal(claimed.as_deref()).await {
            Ok(principal) => principal,
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "look up who an unauthenticated call claims to be"
                );
                spool_control::ANONYMOUS.to_string()
            }
        },
    };
    let (action, target) = match found {
        Some((action, _)) => {
            let from_path = params.ok().and_then(|params| {
                let values: Vec<&str> = params.iter().map(|(_, value)| value).collect();
                (!values.is_empty()).then(|| values.join("/"))
            });
            (action, noted.target.or(from_path))
        }
        None => (UNKNOWN_ROUTE, Some(path)),
    };
    let record = AuditRecord {
        principal,
        identity: noted.identity,
        action: action.to_string(),
        target,
        status,
    };
    if let Err(e) = state.control.record_audit(record).await {
        tracing::error!(
            error = format!("{e:#}"),
            action,
            status,
            "record a call in the audit log"
        );
    }
    response
}

/// What the audit log says of a new session: its id (and name), and that it acts as its user
/// (sessions run with user identity passthrough).
pub fn note_session(note: &Note, session: &spool_control::Session) {
    note.target(match &session.name {
        Some(name) => format!("{} ({name})", session.id),
        None => session.id.to_string(),
    });
    note.identity(&session.owner);
}

/// Audit entries, newest first: all of them for the admin, their own calls for a user.
pub async fn list(
    State(state): State<AppState>,
    Extension(user): Extension<Caller>,
    Query(query): Query<api::AuditQuery>,
) -> ApiResult<Json<api::AuditList>> {
    Ok(Json(state.control.audit_list(&user, query).await?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

    use std::collections::BTreeSet;

    use super::*;

    /// The OpenAPI document's `{name}` for the router's `{*name}`.
    fn documented(route: &str) -> String {
        route.replace("{*", "{")
    }

    #[test]
    fn every_documented_operation_has_an_action() {
        let doc: serde_json::Value = serde_json::from_str(crate::OPENAPI).unwrap();
        let mut missing = Vec::new();
        for (path, operations) in doc["paths"].as_object().unwrap() {
            for method in operations.as_object().unwrap().keys() {
                let method = method.to_uppercase();
                let known = ACTIONS
                    .iter()
                    .any(|(m, r, _, _)| *m == method && documented(r) == *path);
                if !known {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "routes without an audit action in `ACTIONS`:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn routes_and_action_names_are_listed_once() {
        let mut routes = BTreeSet::new();
        let mut names = BTreeSet::new();
        for (method, route, name, _) in ACTIONS {
            assert!(routes.insert((method, route)), "{method} {route} twice");
            assert!(names.insert(name), "action `{name}` twice");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "action `{name}`: lowercase words, `.` and `_` only"
            );
        }
    }

    /// The only routes that answer without credentials: what the studio's sign-in form needs.
    const PUBLIC: &[(&str, &str)] = &[
        ("GET", "/studio/assets/studio.css"),
        ("GET", "/studio/assets/studio.js"),
        ("GET", "/studio/signin"),
    ];

    /// Each route of `ACTIONS`, called without credentials on the real router, is denied and
    /// recorded under its own action: every route the table names exists, spelled as the
    /// router matches it (with `every_documented_operation_has_an_action`, the table covers
    /// the router).
    #[tokio::test]
    async fn every_listed_route_is_recorded_under_its_action() {
        let dir = tempfile::tempdir().unwrap();
        // No Spark runs here: no OS accounts either (they would outlive the temp dir).
        let file = spool_control::config::ConfigFile {
            access: spool_control::config::AccessFile {
                enforce: Some(spool_control::config::EnforceSetting::Off),
            },
            ..Default::default()
        };
        let config = spool_control::Config::from_file(&file).unwrap();
        let control = spool_control::Control::open(
            &dir.path().join("data"),
            &dir.path().join("cache"),
            config,
        )
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(control.clone());
        tokio::spawn(crate::serve(listener, state, std::future::pending()));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        for (method, route, _, _) in ACTIONS {
            let path = route
                .replace("{*path}", "azureml/driver/stdout")
                .replace("{*name}", "x")
                .replace("{name}", "x")
                .replace("{key}", "x")
                .replace("{id}", "1")
                .replace("{seq}", "0")
                .replace("{output}", "out")
                .replace("{version}", "3.5");
            let response = http
                .request(method.parse().unwrap(), format!("{url}{path}"))
                .send()
                .await
                .unwrap();
            if PUBLIC.contains(&(*method, *route)) {
                assert_eq!(response.status(), 200, "{method} {path}");
            } else if (*method, *route) == ("POST", "/studio/signin") {
                // Signing in is how one gets credentials: without a form it is refused.
                assert!(response.status().is_client_error(), "{method} {path}");
            } else if *route == crate::connect::ROUTE {
                // gRPC answers 200 and carries its status in the (trailers-only) headers.
                let code = response.headers().get("grpc-status");
                assert_eq!(code.unwrap(), "16", "{method} {path}: UNAUTHENTICATED");
            } else {
                assert_eq!(response.status(), 401, "{method} {path}");
            }
        }
        let admin = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
        let admin = control.authenticate(admin.trim()).await.unwrap().unwrap();
        let filter = api::AuditQuery {
            limit: Some(1000),
            ..Default::default()
        };
        let mut recorded: Vec<String> = control
            .audit_list(&admin, filter)
            .await
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.action)
            .collect();
        recorded.reverse();
        let listed: Vec<String> = ACTIONS
            .iter()
            .filter(|(method, route, _, _)| !PUBLIC.contains(&(*method, *route)))
            .map(|(_, _, a, _)| a.to_string())
            .collect();
        assert_eq!(recorded, listed);
    }

    #[test]
    fn changes_are_recorded_and_reads_only_when_denied() {
        let cases = [
            ("POST", "/api/v1/jobs", 201),
            ("POST", "/api/v1/jobs", 400),
            ("GET", "/api/v1/jobs", 200),
            ("GET", "/api/v1/jobs", 403),
            ("HEAD", "/api/v1/jobs", 401),
            ("POST", "/api/v1/agents/heartbeat", 200),
            ("POST", "/api/v1/agents/heartbeat", 401),
            ("POST", "/sessions/{id}/completion", 200),
            ("DELETE", "/batches/{id}", 404),
            ("PATCH", "/api/v1/jobs", 405),
            ("POST", "/api/v1/no-such-route", 404),
            ("GET", "/api/v1/no-such-route", 401),
        ];
        let rendered: Vec<String> = cases
            .iter()
            .map(|(method, route, status)| {
                let found = action(&method.parse().unwrap(), route);
                let name = found.map_or(UNKNOWN_ROUTE, |(name, _)| name);
                let kept = recorded(found.map(|(_, kind)| kind), *status);
                format!(
                    "{method} {route} {status}: {name} {}",
                    if kept { "recorded" } else { "-" }
                )
            })
            .collect();
        expect_test::expect![[r#"
            POST /api/v1/jobs 201: job.create recorded
            POST /api/v1/jobs 400: job.create recorded
            GET /api/v1/jobs 200: job.list -
            GET /api/v1/jobs 403: job.list recorded
            HEAD /api/v1/jobs 401: job.list recorded
            POST /api/v1/agents/heartbeat 200: agent.heartbeat -
            POST /api/v1/agents/heartbeat 401: agent.heartbeat recorded
            POST /sessions/{id}/completion 200: livy.session.completion -
            DELETE /batches/{id} 404: livy.batch.delete recorded
            PATCH /api/v1/jobs 405: route.unknown -
            POST /api/v1/no-such-route 404: route.unknown -
            GET /api/v1/no-such-route 401: route.unknown recorded"#]]
        .assert_eq(&rendered.join("\n"));
    }
}
