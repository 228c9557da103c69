//! The Spark Connect endpoint: gRPC calls of Spark's `SparkConnectService` on the API's own
//! port, authenticated with the caller's token and proxied to the Connect server of the session
//! the call names.
//!
//! A client connects with `sc://localhost:<port>/;token=<token>;x-spool-session=<id>`: PySpark
//! sends the token as `authorization: Bearer <token>` and every other parameter as a header of
//! its own. PySpark sends `token` only over TLS unless the host is `localhost`, so a client of
//! a server listening on another address (with TLS ended by a proxy in front, or none) names
//! it as `;x-spool-token=<token>` instead, which arrives as a header of that name and never
//! reaches the driver. The proxy checks the token and that the caller may run code in the
//! session, replaces the credentials with the session's secret (the only ones its driver
//! accepts), and streams the call both ways unchanged, trailers included; it never decodes a
//! message. A refusal is a gRPC status (`UNAUTHENTICATED`, `NOT_FOUND`, ...) with Spool's
//! message, as a gRPC client shows it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use axum::http::{HeaderValue, StatusCode, Uri, Version};
use axum::response::Response;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use spool_core::SessionId;

use crate::AppState;
use crate::audit::Note;
use crate::error::ApiError;

/// The route of every method of the service.
pub const ROUTE: &str = "/spark.connect.SparkConnectService/{method}";

/// The header (a parameter of the Connect URL) that names the session.
pub const SESSION_HEADER: &str = "x-spool-session";

/// The header (a parameter of the Connect URL) that carries the caller's token in place of
/// `authorization`: PySpark sends `;token=` only over TLS unless the host is `localhost`, so a
/// client reaching a plain-HTTP server at another address names its token this way.
pub const TOKEN_HEADER: &str = "x-spool-token";

/// The HTTP/2 client the proxy forwards with: one multiplexed connection per driver.
#[derive(Clone)]
pub struct Proxy {
    client: Client<HttpConnector, Body>,
}

impl Default for Proxy {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Proxy {
            client: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build(connector),
        }
    }
}

/// The Connect URL of session `id` on this server, without the token, once the server listens.
pub fn url(state: &AppState, id: SessionId) -> Option<String> {
    state.listen.get().map(|address| {
        format!(
            "sc://{}:{}/;{SESSION_HEADER}={id}",
            url_host(address.ip()),
            address.port()
        )
    })
}

/// The host a client names to reach a server listening on `ip`: `localhost` for loopback and
/// for every address (from this host, which is all Spool can know), else the address itself.
fn url_host(ip: std::net::IpAddr) -> String {
    match ip {
        ip if ip.is_loopback() || ip.is_unspecified() => "localhost".to_string(),
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// A gRPC status code (the numbers of `google.rpc.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Code {
    Unknown = 2,
    InvalidArgument = 3,
    NotFound = 5,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl Code {
    /// The code a refusal of the native API stands for.
    fn of(status: StatusCode) -> Code {
        match status.as_u16() {
            400 => Code::InvalidArgument,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::NotFound,
            409 => Code::FailedPrecondition,
            413 | 422 | 429 => Code::ResourceExhausted,
            500 => Code::Internal,
            503 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }
}

/// gRPC's `grpc-message` is percent-encoded: printable ASCII but `%` stays as it is.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A trailers-only gRPC answer: status `code` with `message`.
fn status(code: Code, message: &str) -> Response {
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(u16::from(code as u8)));
    if let Ok(value) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert("grpc-message", value);
    }
    response
}

/// Serves one gRPC call: checks it, then streams it to the session's driver and back.
pub async fn call(State(state): State<AppState>, request: Request) -> Response {
    let note = request.extensions().get::<Note>().cloned();
    match forward(&state, note.as_ref(), request).await {
        Ok(response) => response,
        Err(Refusal::Api(e)) => {
            if let (Some(note), 401 | 403) = (&note, e.status().as_u16()) {
                note.status(e.status().as_u16());
            }
            status(Code::of(e.status()), e.message())
        }
        Err(Refusal::Driver(message)) => status(Code::Unavailable, &message),
    }
}

enum Refusal {
    /// Refused as the native API would refuse it.
    Api(ApiError),
    /// The session's driver could not be reached.
    Driver(String),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl From<spool_control::ControlError> for Refusal {
    fn from(e: spool_control::ControlError) -> Self {
        Refusal::Api(e.into())
    }
}

async fn forward(
    state: &AppState,
    note: Option<&Note>,
    request: Request,
) -> Result<Response, Refusal> {
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(AUTHORIZATION)
        && let Some(token) = parts.headers.get(TOKEN_HEADER)
        && let Ok(bearer) = HeaderValue::from_str(&format!(
            "Bearer {}",
            token.to_str().unwrap_or_default().trim()
        ))
    {
        parts.headers.insert(AUTHORIZATION, bearer);
    }
    // The caller's token never reaches the driver.
    parts.headers.remove(TOKEN_HEADER);
    let user = crate::auth::caller(state, &parts.headers, note).await?;
    let key = parts
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                SESSION_HEADER,
                format!(
                    "name the session: add `;{SESSION_HEADER}=<session id>` to the Connect URL (`spool session show` prints the whole URL)"
                ),
            )
        })?
        .to_string();
    let target = state.control.connect_target(&user, &key).await?;
    if let Some(note) = note {
        note.target(target.session.to_string());
    }
    state.control.connect_activity(target.session);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    parts.uri = Uri::builder()
        .scheme("http")
        .authority(target.authority.as_str())
        .path_and_query(path)
        .build()
        .map_err(|e| Refusal::Driver(format!("the session's Connect address: {e}")))?;
    parts.version = Version::HTTP_2;
    parts.headers.remove(HOST);
    parts.headers.remove(SESSION_HEADER);
    parts.headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {}", target.secret))
            .map_err(|_| Refusal::Driver("the session's secret is not a header value".into()))?,
    );
    let response = state
        .connect
        .client
        .request(Request::from_parts(parts, body))
        .await
        .map_err(|e| {
            tracing::warn!(session = %target.session, error = %e, "reach a session's Connect server");
            Refusal::Driver(format!(
                "session {}'s Spark Connect server does not answer: {e}",
                target.session
            ))
        })?;
    Ok(response.map(Body::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_the_address_the_server_listens_on() {
        let cases = [
            ("127.0.0.1", "localhost"),
            ("::1", "localhost"),
            ("0.0.0.0", "localhost"),
            ("::", "localhost"),
            ("10.213.0.1", "10.213.0.1"),
            ("fd00::5", "[fd00::5]"),
        ];
        for (ip, host) in cases {
            assert_eq!(url_host(ip.parse().unwrap()), host, "{ip}");
        }
    }

    #[test]
    fn messages_are_percent_encoded_as_grpc_asks() {
        assert_eq!(percent_encode("plain text: ok"), "plain text: ok");
        assert_eq!(percent_encode("100% sure"), "100%25 sure");
        assert_eq!(percent_encode("line\nbreak é"), "line%0Abreak %C3%A9");
    }

    #[test]
    fn refusals_map_to_the_grpc_codes_clients_expect() {
        for (http, code) in [
            (400, Code::InvalidArgument),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::NotFound),
            (409, Code::FailedPrecondition),
            (422, Code::ResourceExhausted),
            (500, Code::Internal),
            (418, Code::Unknown),
        ] {
            let status = StatusCode::from_u16(http).expect("a status");
            assert_eq!(Code::of(status), code, "{http}");
        }
    }

    #[test]
    fn a_refusal_is_a_trailers_only_answer() {
        let response = status(Code::NotFound, "session `9` not found");
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert_eq!(headers["content-type"], "application/grpc");
        assert_eq!(headers["grpc-status"], "5");
        assert_eq!(headers["grpc-message"], "session `9` not found");
    }
}
