//! Spool Studio: server-rendered pages under `/studio/` over the same `Control` calls as the
//! API, so a page shows exactly what the API would show its user.
//!
//! Sign-in takes a user's token once and keeps it in the server's memory only, under the SHA-256
//! of a random cookie (`HttpOnly`, `SameSite=Strict`); every page authenticates
//! the token again, so deleting the user or rotating the token ends the studio session at once,
//! and a restart signs everyone out. Forms carry the session's CSRF token, which a `POST` must
//! return. Templates, the stylesheet and the script are compiled into the binary.

mod graph;
mod pages;
pub mod timeline;

pub use pages::{Html, error_page};

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use spool_control::Caller;

use crate::AppState;
use crate::error::StudioError;
use crate::respond::SeeOther;

/// The sign-in cookie.
const COOKIE: &str = "spool_studio";
/// The cookie that carries the sign-in form's CSRF token, before there is a session.
const SIGNIN_COOKIE: &str = "spool_studio_signin";
/// A studio session ends this long after sign-in.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// At most this many studio sessions are kept; signing in past it drops the oldest.
const MAX_SESSIONS: usize = 10_000;

const CSS: &str = include_str!("studio.css");
const JS: &str = include_str!("studio.js");

struct WebSession {
    /// The user's token, in memory only: each page authenticates it again.
    token: String,
    csrf: String,
    started: Instant,
}

/// Signed-in studio sessions, by the SHA-256 of their cookie.
#[derive(Default)]
pub struct WebSessions {
    map: Mutex<HashMap<String, WebSession>>,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(cookie: &str) -> String {
    Sha256::digest(cookie.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl WebSessions {
    /// Starts a session for `token`; returns the cookie's value.
    fn start(&self, token: String) -> String {
        let cookie = random_hex();
        let mut map = self.map.lock().expect("studio sessions lock");
        map.retain(|_, s| s.started.elapsed() < LIFETIME);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            digest(&cookie),
            WebSession {
                token,
                csrf: random_hex(),
                started: Instant::now(),
            },
        );
        cookie
    }

    /// The token and CSRF token of the session `cookie` names, while it lasts.
    fn get(&self, cookie: &str) -> Option<(String, String)> {
        let map = self.map.lock().expect("studio sessions lock");
        map.get(&digest(cookie))
            .filter(|s| s.started.elapsed() < LIFETIME)
            .map(|s| (s.token.clone(), s.csrf.clone()))
    }

    fn end(&self, cookie: &str) {
        self.map
            .lock()
            .expect("studio sessions lock")
            .remove(&digest(cookie));
    }
}

/// The signed-in user of a studio page. Without a valid session the page answers 401 with the
/// sign-in form, which comes back to the page.
pub struct StudioUser {
    pub caller: Caller,
    pub csrf: String,
}

impl StudioUser {
    /// Checks the CSRF token a form sent.
    fn check_csrf(&self, sent: &str) -> Result<(), StudioError> {
        if sent.is_empty() || sent != self.csrf {
            return Err(StudioError::forbidden(
                "the form's CSRF token is missing or stale; reload the page and try again",
            ));
        }
        Ok(())
    }
}

/// What the pages' header shows of the user.
pub struct Viewer {
    pub name: String,
    pub role: String,
    pub csrf: String,
}

impl From<&StudioUser> for Viewer {
    fn from(user: &StudioUser) -> Viewer {
        Viewer {
            name: user.caller.name.clone(),
            role: user.caller.role.to_string(),
            csrf: user.csrf.clone(),
        }
    }
}

impl FromRequestParts<AppState> for StudioUser {
    type Rejection = StudioError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<StudioUser, StudioError> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/studio/", |p| p.as_str())
            .to_string();
        let jar = CookieJar::from_headers(&parts.headers);
        let Some((token, csrf)) = jar.get(COOKIE).and_then(|c| state.studio.get(c.value())) else {
            return Err(StudioError::SignIn { next });
        };
        let Some(caller) = state.control.authenticate(&token).await? else {
            // The token was rotated or its user deleted since sign-in.
            return Err(StudioError::SignIn { next });
        };
        if let Some(note) = parts.extensions.get::<crate::audit::Note>() {
            note.principal(&caller.name);
        }
        Ok(StudioUser { caller, csrf })
    }
}

/// The studio's routes, all under `/studio`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/studio", get(home))
        .route("/studio/", get(home))
        .route("/studio/assets/studio.css", get(css))
        .route("/studio/assets/studio.js", get(js))
        .route("/studio/signin", get(signin_form).post(signin))
        .route("/studio/signout", post(signout))
        .route("/studio/jobs", get(pages::jobs))
        .route("/studio/jobs/{name}", get(pages::job))
        .route("/studio/jobs/{name}/status", get(pages::job_status))
        .route("/studio/jobs/{name}/cancel", post(pages::cancel_job))
        .route("/studio/jobs/{name}/logs/{*path}", get(pages::job_log))
        .route(
            "/studio/jobs/{name}/download/logs",
            get(pages::download_logs),
        )
        .route("/studio/sessions", get(pages::sessions))
        .route("/studio/sessions/{id}", get(pages::session))
        .route(
            "/studio/sessions/{id}/statements",
            post(pages::run_statement),
        )
        .route("/studio/sessions/{id}/delete", post(pages::delete_session))
        .route("/studio/compute", get(pages::compute))
        .route("/studio/datastores", get(pages::datastores))
        .route("/studio/datastores/{name}", get(pages::datastore))
        .route(
            "/studio/datastores/{name}/files/{*path}",
            get(pages::datastore_file),
        )
        // Bounded by `max_upload` as the file streams in, not by the JSON limit.
        .route(
            "/studio/datastores/{name}/upload",
            post(pages::upload_to_datastore).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/studio/environments", get(pages::environments))
        .route(
            "/studio/environments/{key}/log",
            get(pages::environment_log),
        )
        .route("/studio/starts", get(pages::starts))
}

async fn home(_user: StudioUser) -> SeeOther {
    SeeOther("/studio/jobs".into())
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// Where a sign-in may send the browser back to: a studio page, nothing else.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with("/studio/")
                && !next.starts_with("/studio//")
                && !next.contains('\\') =>
        {
            next.to_string()
        }
        _ => "/studio/jobs".to_string(),
    }
}

/// The token of the studio session whose cookie `headers` carry, while it lasts.
pub fn cookie_token(state: &AppState, headers: &axum::http::HeaderMap) -> Option<String> {
    let jar = CookieJar::from_headers(headers);
    let cookie = jar.get(COOKIE)?;
    state.studio.get(cookie.value()).map(|(token, _)| token)
}

/// A studio cookie. The sign-in cookie's path is `/` so that the Spark UI pages the API serves
/// (`/api/v1/jobs/<name>/sparkui/...`) get it too; `require_user` accepts it there only.
fn cookie(name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .path(if name == COOKIE { "/" } else { "/studio" })
        .http_only(true)
        .same_site(SameSite::Strict)
        .build()
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

async fn signin_form(Query(query): Query<NextQuery>) -> Result<(CookieJar, Html), StudioError> {
    signin_answer(query.next.as_deref().unwrap_or_default())
}

/// The sign-in form, returning to `next`, with its CSRF cookie.
pub fn signin_answer(next: &str) -> Result<(CookieJar, Html), StudioError> {
    let csrf = random_hex();
    let page = pages::signin_page(&csrf, &safe_next(Some(next)), None)?;
    Ok((CookieJar::new().add(cookie(SIGNIN_COOKIE, csrf)), page))
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

async fn signin(
    State(state): State<AppState>,
    note: Option<axum::Extension<crate::audit::Note>>,
    jar: CookieJar,
    axum::Form(form): axum::Form<SignInForm>,
) -> Result<Response, StudioError> {
    let next = safe_next(form.next.as_deref());
    let expected = jar.get(SIGNIN_COOKIE).map(|c| c.value().to_string());
    if form.csrf.is_empty() || expected.as_deref() != Some(form.csrf.as_str()) {
        return Err(StudioError::forbidden(
            "the sign-in form is stale (its CSRF token does not match); open /studio/signin again",
        ));
    }
    let token = form.token.trim().to_string();
    let Some(caller) = state.control.authenticate(&token).await? else {
        let page = pages::signin_page(
            &form.csrf,
            &next,
            Some("That token belongs to no user. Check it, or ask an Owner for a new one."),
        )?;
        return Err(StudioError::Unauthorized(page));
    };
    if let Some(axum::Extension(note)) = note {
        note.principal(&caller.name);
    }
    let session = state.studio.start(token);
    let jar = jar
        .remove(Cookie::build(SIGNIN_COOKIE).path("/studio"))
        .add(cookie(COOKIE, session));
    Ok((jar, SeeOther(next)).into_response())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn signout(
    State(state): State<AppState>,
    user: StudioUser,
    jar: CookieJar,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, StudioError> {
    user.check_csrf(&form.csrf)?;
    if let Some(c) = jar.get(COOKIE) {
        state.studio.end(c.value());
    }
    let jar = jar.remove(Cookie::build(COOKIE).path("/"));
    Ok((jar, SeeOther("/studio/signin".into())).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn sign_in_returns_only_to_studio_pages() {
        let cases = [
            None,
            Some("/studio/jobs/x?status=Failed"),
            Some("/studio//evil.example"),
            Some("https://evil.example/studio/"),
            Some("/api/v1/jobs"),
            Some("/studio/\\evil"),
        ];
        let out: Vec<String> = cases
            .iter()
            .map(|c| format!("{c:?} -> {}", safe_next(*c)))
            .collect();
        expect_test::expect![[r#"
            None -> /studio/jobs
            Some("/studio/jobs/x?status=Failed") -> /studio/jobs/x?status=Failed
            Some("/studio//evil.example") -> /studio/jobs
            Some("https://evil.example/studio/") -> /studio/jobs
            Some("/api/v1/jobs") -> /studio/jobs
            Some("/studio/\\evil") -> /studio/jobs"#]]
        .assert_eq(&out.join("\n"));
    }

    #[test]
    fn sessions_are_found_by_their_cookie_only_and_end() {
        let sessions = WebSessions::default();
        let cookie = sessions.start("spool_token".into());
        let (token, csrf) = sessions.get(&cookie).unwrap();
        assert_eq!(token, "spool_token");
        assert_eq!(csrf.len(), 64);
        assert!(sessions.get("spool_token").is_none());
        assert!(
            sessions.get(&digest(&cookie)).is_none(),
            "the stored key is not a cookie"
        );
        sessions.end(&cookie);
        assert!(sessions.get(&cookie).is_none());
    }
}
