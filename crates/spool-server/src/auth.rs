//! Authentication of every request: `Authorization: Bearer <token>`, or HTTP basic auth with
//! the user's name and their token as password (what Livy clients send). Schemes are
//! case-insensitive (RFC 9110, section 11.1). Both run before any body is read: users in the
//! `require_user` middleware, agents in the `Agent` extractor, which comes before the body.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use spool_control::AgentCaller;

use crate::AppState;
use crate::error::ApiError;

/// What an `Authorization` header claims.
enum Credentials {
    Bearer(String),
    /// User name and token.
    Basic(String, String),
}

fn credentials(headers: &HeaderMap) -> Result<Credentials, ApiError> {
    let Some(header) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "missing `Authorization` header; send `Authorization: Bearer <token>`",
        ));
    };
    let header = header
        .to_str()
        .map_err(|_| ApiError::unauthorized("the `Authorization` header is not ASCII"))?;
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Credentials::Bearer(rest.trim().to_string()))
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| ApiError::unauthorized("malformed basic credentials"))?;
        let (name, token) = decoded
            .split_once(':')
            .ok_or_else(|| ApiError::unauthorized("malformed basic credentials"))?;
        Ok(Credentials::Basic(name.to_string(), token.to_string()))
    } else {
        Err(ApiError::unauthorized(
            "unsupported `Authorization` scheme; use `Bearer <token>`",
        ))
    }
}

/// The user name a request's basic credentials claim, if it sends any; the audit log records
/// a denied call under it when a user has that name (`Control::claimed_principal`).
pub fn claimed_name(headers: &HeaderMap) -> Option<String> {
    match credentials(headers) {
        Ok(Credentials::Basic(name, _)) => Some(name),
        _ => None,
    }
}

/// The user whose credentials `headers` carry, noted as the call's principal.
pub(crate) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    note: Option<&crate::audit::Note>,
) -> Result<spool_control::Caller, ApiError> {
    let (claimed_name, token) = match credentials(headers)? {
        Credentials::Bearer(token) => (None, token),
        Credentials::Basic(name, token) => (Some(name), token),
    };
    let user = state
        .control
        .authenticate(&token)
        .await
        .map_err(ApiError::from)?
        .filter(|user| claimed_name.as_deref().is_none_or(|name| name == user.name))
        .ok_or_else(|| ApiError::unauthorized("invalid token"))?;
    if let Some(note) = note {
        note.principal(&user.name);
    }
    Ok(user)
}

/// Whether a request may authenticate with the studio's sign-in cookie instead of a token:
/// only reads of a driver's Spark UI through the server, which a browser signed in to the studio
/// follows from a job or session page (the UI's own links lead back to these paths). A cookie
/// never authorizes anything that changes state.
fn studio_cookie_allowed(method: &axum::http::Method, path: &str) -> bool {
    if method != axum::http::Method::GET {
        return false;
    }
    let Some(rest) = path
        .strip_prefix("/api/v1/jobs/")
        .or_else(|| path.strip_prefix("/api/v1/sessions/"))
    else {
        return false;
    };
    let mut parts = rest.splitn(3, '/');
    let (Some(name), Some(ui)) = (parts.next(), parts.next()) else {
        return false;
    };
    !name.is_empty() && ui == "sparkui"
}

pub async fn require_user(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let note = request.extensions().get::<crate::audit::Note>().cloned();
    let user = match crate::studio::cookie_token(&state, request.headers()) {
        Some(token)
            if !request.headers().contains_key(AUTHORIZATION)
                && studio_cookie_allowed(request.method(), request.uri().path()) =>
        {
            let user = state.control.authenticate(&token).await?.ok_or_else(|| {
                ApiError::unauthorized("the studio session has ended; sign in again")
            })?;
            if let Some(note) = &note {
                note.principal(&user.name);
            }
            user
        }
        _ => caller(&state, request.headers(), note.as_ref()).await?,
    };
    request.extensions_mut().insert(user);
    Ok(next.run(request).await)
}

/// An agent authenticated by its own bearer token. As an extractor it runs before the body is
/// read, so a stranger's body is never parsed.
pub struct Agent(pub AgentCaller);

impl FromRequestParts<AppState> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Agent, ApiError> {
        let token = match credentials(&parts.headers) {
            Ok(Credentials::Bearer(token)) => token,
            _ => {
                return Err(ApiError::unauthorized(
                    "agents send `Authorization: Bearer <agent token>`",
                ));
            }
        };
        state
            .control
            .authenticate_agent(&token)
            .await?
            .map(Agent)
            .ok_or_else(|| ApiError::unauthorized("invalid agent token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_studio_cookie_opens_only_spark_ui_reads() {
        let cases = [
            ("GET", "/api/v1/jobs/j/sparkui"),
            ("GET", "/api/v1/jobs/j/sparkui/jobs/"),
            ("GET", "/api/v1/sessions/3/sparkui/static/x.js"),
            ("POST", "/api/v1/jobs/j/sparkui"),
            ("GET", "/api/v1/jobs/j"),
            ("GET", "/api/v1/jobs/j/logs/sparkui"),
            ("GET", "/api/v1/jobs//sparkui"),
            ("GET", "/api/v1/users/sparkui"),
            ("GET", "/sessions/1/sparkui"),
        ];
        let out: Vec<String> = cases
            .iter()
            .map(|(m, p)| {
                format!(
                    "{m} {p}: {}",
                    studio_cookie_allowed(&m.parse().expect("method"), p)
                )
            })
            .collect();
        expect_test::expect![[r#"
            GET /api/v1/jobs/j/sparkui: true
            GET /api/v1/jobs/j/sparkui/jobs/: true
            GET /api/v1/sessions/3/sparkui/static/x.js: true
            POST /api/v1/jobs/j/sparkui: false
            GET /api/v1/jobs/j: false
            GET /api/v1/jobs/j/logs/sparkui: false
            GET /api/v1/jobs//sparkui: false
            GET /api/v1/users/sparkui: false
            GET /sessions/1/sparkui: false"#]]
        .assert_eq(&out.join("\n"));
    }
}
