//! The HTTP server: the native API under `/api/v1`, authentication, and `spool serve`'s start-up
//! and shutdown (signals, config file, the default runtime on first use).
//!
//! Handlers only translate between HTTP and `spool-control`; they make no decisions of their own.

mod audit;
mod auth;
mod components;
mod connect;
mod download;
mod error;
mod extract;
mod livy;
mod metrics;
mod respond;
mod routes;
mod sessions;
mod studio;

use std::any::Any;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::handler::Handler;
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use spool_control::{Config, Control};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

pub use error::ApiError;
pub use spool_control::config::parse_duration;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub control: Control,
    /// The log tails of finished sessions, which no longer change (`GET /sessions` shows one
    /// per session; reading three files for each was most of its cost).
    finished_tails: std::sync::Arc<livy::FinishedTails>,
    /// Forwards Spark Connect calls to sessions' drivers.
    connect: connect::Proxy,
    /// Who is signed in to the studio.
    studio: std::sync::Arc<studio::WebSessions>,
    /// The address the API listens on (set by `serve`), for the Connect URLs in session views.
    listen: std::sync::Arc<std::sync::OnceLock<std::net::SocketAddr>>,
}

impl AppState {
    pub fn new(control: Control) -> AppState {
        AppState {
            control,
            finished_tails: std::sync::Arc::default(),
            connect: connect::Proxy::default(),
            studio: std::sync::Arc::default(),
            listen: std::sync::Arc::default(),
        }
    }
}

/// The OpenAPI document of the native API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// JSON bodies may be this large on every route unless it says otherwise; names, conf and the
/// like have their own, smaller limits (`spool_spec::limits`).
const MAX_JSON_BODY: usize = 1024 * 1024;

/// Bodies that carry code may be this large: job specs, and statements (whose code may be up to
/// `spool_spec::limits::MAX_CODE_BYTES`, escaped in JSON).
const MAX_CODE_BODY: usize = 4 * 1024 * 1024;

/// Builds the router. Every route requires authentication, which runs before any body is read;
/// bodies are bounded per route (`MAX_JSON_BODY`, `MAX_CODE_BODY`); uploads are streamed to disk
/// and bounded by the `max_upload` setting (`extract::Upload`).
/// Rejections, unknown routes and wrong methods answer in the error shape of their API.
pub fn router(state: AppState) -> Router {
    let code = || DefaultBodyLimit::max(MAX_CODE_BODY);
    let api = Router::new()
        .route("/whoami", get(routes::whoami))
        .route("/catalog", get(routes::catalog))
        .route("/openapi.json", get(openapi))
        .route("/users", get(routes::list_users).post(routes::create_user))
        .route(
            "/users/{name}",
            get(routes::show_user)
                .patch(routes::update_user)
                .delete(routes::delete_user),
        )
        .route("/users/{name}/token", post(routes::rotate_token))
        .route(
            "/datastores",
            get(routes::list_datastores).post(routes::create_datastore),
        )
        .route(
            "/datastores/{name}/upload",
            post(routes::upload_to_datastore),
        )
        .route("/snapshots", post(routes::create_snapshot))
        .route(
            "/jobs",
            get(routes::list_jobs).post(routes::create_job.layer(code())),
        )
        .route(
            "/identities",
            get(routes::list_identities).post(routes::create_identity),
        )
        .route(
            "/identities/{*name}",
            get(routes::show_identity).delete(routes::delete_identity),
        )
        .route(
            "/workspace/identities",
            get(routes::list_workspace_identities),
        )
        .route(
            "/workspace/identities/{name}",
            axum::routing::put(routes::add_workspace_identity)
                .delete(routes::remove_workspace_identity),
        )
        .route(
            "/role-assignments",
            get(routes::list_role_assignments).post(routes::create_role_assignment),
        )
        .route(
            "/role-assignments/{id}",
            axum::routing::delete(routes::delete_role_assignment),
        )
        .route("/jobs/{name}", get(routes::show_job))
        .route("/jobs/{name}/cancel", post(routes::cancel_job))
        .route("/jobs/{name}/logs", get(routes::job_logs))
        .route("/jobs/{name}/logs/{*path}", get(routes::job_log_file))
        .route("/jobs/{name}/sparkui", get(routes::job_ui_root))
        .route("/jobs/{name}/sparkui/", get(routes::job_ui_root))
        .route("/jobs/{name}/sparkui/{*path}", get(routes::job_ui))
        .route("/jobs/{name}/download/logs", get(routes::download_logs))
        .route(
            "/jobs/{name}/download/outputs/{output}",
            get(routes::download_output),
        )
        .route("/sessions", get(sessions::list).post(sessions::create))
        .route(
            "/sessions/{key}",
            get(sessions::show).delete(sessions::delete),
        )
        .route("/sessions/{key}/sparkui", get(routes::session_ui_root))
        .route("/sessions/{key}/sparkui/", get(routes::session_ui_root))
        .route("/sessions/{key}/sparkui/{*path}", get(routes::session_ui))
        .route(
            "/sessions/{key}/statements",
            post(sessions::create_statement).layer(code()),
        )
        .route(
            "/sessions/{key}/statements/{seq}",
            get(sessions::show_statement),
        )
        .route(
            "/sessions/{key}/statements/{seq}/cancel",
            post(sessions::cancel_statement),
        )
        .route(
            "/workspace",
            get(routes::show_workspace).put(routes::update_workspace),
        )
        .route("/clusters", get(routes::list_clusters))
        .route("/clusters/{id}", get(routes::show_cluster))
        .route(
            "/components",
            get(components::list).post(components::create.layer(code())),
        )
        .route("/components/{name}", get(components::show))
        .route("/components/{name}/archive", post(components::archive))
        .route("/components/{name}/restore", post(components::restore))
        .route(
            "/computes",
            get(routes::list_computes).post(routes::attach_compute),
        )
        .route(
            "/computes/{name}",
            get(routes::show_compute).delete(routes::detach_compute),
        )
        .route(
            "/agents",
            get(routes::list_agents).post(routes::create_agent),
        )
        .route("/environments", get(routes::list_environments))
        .route("/environments/prune", post(routes::prune_environments))
        .route("/environments/{key}", get(routes::show_environment))
        .route("/environments/{key}/log", get(routes::environment_log))
        .route("/events", get(routes::events))
        .route("/audit", get(audit::list))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let livy = Router::new()
        .route("/version", get(livy::version))
        .route(
            "/sessions",
            get(livy::list_sessions).post(livy::create_session),
        )
        .route(
            "/sessions/{id}",
            get(livy::show_session).delete(livy::delete_session),
        )
        .route("/sessions/{id}/state", get(livy::session_state))
        .route("/sessions/{id}/log", get(livy::session_log))
        .route(
            "/sessions/{id}/statements",
            get(livy::list_statements).post(livy::create_statement.layer(code())),
        )
        .route("/sessions/{id}/statements/{seq}", get(livy::show_statement))
        .route(
            "/sessions/{id}/statements/{seq}/cancel",
            post(livy::cancel_statement),
        )
        .route("/sessions/{id}/completion", post(livy::completion))
        .route("/batches", get(livy::list_batches).post(livy::create_batch))
        .route(
            "/batches/{id}",
            get(livy::show_batch).delete(livy::delete_batch),
        )
        .route("/batches/{id}/state", get(livy::batch_state))
        .route("/batches/{id}/log", get(livy::batch_log_route))
        .method_not_allowed_fallback(livy_method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            livy::csrf,
        ));
    // Paths under `/api/v1` get the native API's 404 (the nested router's fallback), all others
    // Livy's, as the Livy API is served at the root.
    let users = Router::new()
        .nest("/api/v1", api)
        .merge(livy)
        .fallback(livy_not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_user,
        ));
    // Agents authenticate with their own tokens, not as users (the `Agent` extractor).
    // Spark Connect calls authenticate in the proxy, which answers refusals in gRPC's terms.
    let agents = Router::new()
        .route(connect::ROUTE, post(connect::call))
        // Open to scrapers without a token when `[server] metrics_auth = false`.
        .route(metrics::ROUTE, get(metrics::show))
        .route("/api/v1/agents/heartbeat", post(routes::agent_heartbeat))
        .route(
            "/api/v1/agents/runtimes/{version}",
            get(routes::agent_runtime),
        )
        .method_not_allowed_fallback(method_not_allowed);
    agents
        .merge(studio::router())
        .merge(users)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        // The last line of defence: a handler that panics answers 500 in the native error
        // shape, and the panic is logged, instead of the connection closing without a reply.
        .layer(CatchPanicLayer::custom(|panic: Box<dyn Any + Send>| {
            ApiError::panicked(panic.as_ref()).into_response()
        }))
        // Outside authentication and the panic handler: it sees every answer, denials
        // included, and records it before it is sent.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .with_state(state)
}

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

// The fallbacks take `OriginalUri`: inside the nested `/api/v1` router, `Uri` lacks the prefix.

async fn not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::no_route(uri.path())
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}

async fn livy_not_found(OriginalUri(uri): OriginalUri) -> error::LivyError {
    error::LivyError::no_route(uri.path())
}

async fn livy_method_not_allowed(
    method: Method,
    OriginalUri(uri): OriginalUri,
) -> error::LivyError {
    error::LivyError::method_not_allowed(method.as_str(), uri.path())
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        state.listen.get_or_init(|| address);
    }
    // Small gRPC frames and REPL polls go out at once, not after the peer's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY on an accepted connection: {e}");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Options of `spool serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub listen: String,
    pub teardown_after: Option<Duration>,
    /// Pre-warmed drivers (overrides `sessions.prewarm` in the config file).
    pub prewarm: Option<u32>,
    /// Leave drivers and clusters running on a graceful stop, for the next server to adopt.
    pub keep_running_on_stop: bool,
    /// Install the default runtime in the background at start if it is missing.
    pub install_default_runtime: bool,
    /// Show a progress bar for runtime installs (when stderr is a terminal).
    pub progress_bar: bool,
}

/// Reads `<data_dir>/config.toml` (if present) into a `Config`.
pub fn load_config(data_dir: &std::path::Path) -> anyhow::Result<Config> {
    let path = data_dir.join("config.toml");
    let file: spool_control::config::ConfigFile = match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("config file `{}`: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
        Err(e) => {
            return Err(anyhow::anyhow!(
                "read config file `{}`: {e}",
                path.display()
            ));
        }
    };
    Config::from_file(&file).map_err(|e| anyhow::anyhow!("config file `{}`: {e}", path.display()))
}

/// Runs `spool serve` until SIGTERM or Ctrl-C.
pub async fn run(options: ServeOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.data_dir)?;
    let mut config = load_config(&options.data_dir)?;
    if let Some(teardown_after) = options.teardown_after {
        config.teardown_after = teardown_after;
    }
    if let Some(prewarm) = options.prewarm {
        config.prewarmed_sessions = prewarm;
    }
    config
        .check_prewarm_capacity()
        .map_err(|e| anyhow::anyhow!("{}: {e}", options.data_dir.join("config.toml").display()))?;
    let listener = TcpListener::bind(&options.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listen on {}: {e}", options.listen))?;
    let address = listener.local_addr()?;
    let control = Control::open(&options.data_dir, &options.cache_dir, config).await?;
    tracing::info!(
        url = %format!("http://{address}"),
        data_dir = %options.data_dir.display(),
        admin_token = %options.data_dir.join(spool_core::paths::ADMIN_TOKEN_FILE).display(),
        cores = control.config().schedulable_cores(),
        memory = %control.config().host_memory,
        teardown_after = ?control.config().teardown_after,
        access = %match control.access_enforcement() {
            None => "enforced by the OS (an account per identity)".to_string(),
            Some(reason) => format!("checked at submit only: {reason}"),
        },
        "spool is serving"
    );
    if options.install_default_runtime {
        spawn_default_runtime_install(control.clone(), options.progress_bar);
    }
    control.start_background();
    serve(listener, AppState::new(control.clone()), shutdown_signal()).await?;
    tracing::info!(keep_running = options.keep_running_on_stop, "stopping");
    control.shutdown(options.keep_running_on_stop).await;
    tracing::info!("stopped");
    Ok(())
}

fn spawn_default_runtime_install(control: Control, progress_bar: bool) {
    let version = spool_runtime::DEFAULT_RUNTIME;
    // An installed runtime that predates its bytecode or class archive gets them now, in the
    // background: work runs meanwhile, as it did without them.
    if spool_runtime::RuntimeCache::new(control_cache(&control))
        .complete(version)
        .is_some()
    {
        return;
    }
    tokio::spawn(async move {
        let progress = InstallProgress::new(progress_bar, version);
        match control.install_runtime(version, &progress).await {
            Ok(runtime) => {
                progress.finish();
                tracing::info!(
                    version,
                    seconds = runtime.install_seconds,
                    "default runtime installed"
                )
            }
            Err(e) => {
                progress.finish();
                tracing::warn!(version, error = %e, "default runtime install failed; jobs will retry it")
            }
        }
    });
}

fn control_cache(control: &Control) -> PathBuf {
    control.runtime_cache_dir().to_path_buf()
}

/// Shows a runtime install's steps as a progress bar on stderr, or as log lines.
pub struct InstallProgress {
    bar: Option<indicatif::ProgressBar>,
    version: String,
}

impl InstallProgress {
    pub fn new(show_bar: bool, version: &str) -> InstallProgress {
        let bar = show_bar.then(|| {
            let bar = indicatif::ProgressBar::new(5);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} runtime {prefix} [{bar:20}] {pos}/{len} {elapsed:>4} {wide_msg}",
                )
                .expect("valid progress template")
                .progress_chars("=> "),
            );
            bar.set_prefix(version.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        InstallProgress {
            bar,
            version: version.to_string(),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl spool_runtime::Progress for InstallProgress {
    fn step(&self, index: u64, total: u64, message: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(index);
                bar.set_message(message.to_string());
            }
            None => tracing::info!(runtime = %self.version, step = index, of = total, "{message}"),
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    // SIGTERM (service managers, `kill`) and SIGINT (Ctrl-C) both mean a graceful stop.
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
