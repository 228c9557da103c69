//! Prometheus metrics: what happened (start durations, statements, environment builds, API
//! requests), counted as it happens in [`Metrics`], and what is (work by state, clusters,
//! capacity, the queue, agents), read from the store when a scraper asks
//! ([`Control::render_metrics`]). Names follow Prometheus' conventions: a `spool_` prefix, base
//! units in the name (`_seconds`, `_bytes`), `_total` on counters.
//!
//! Counted events live in memory, so a restart resets them, as Prometheus expects of counters;
//! the state gauges come from the store and survive it.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::{Control, Result};

/// The content type of the exposition [`Control::render_metrics`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

/// How a session or job got its driver: the label of the start histograms.
pub use spool_core::StartKind;

/// Buckets of start durations: 50 ms to about 7 minutes.
fn start_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.05, 2.0, 14)
}

/// Buckets of request and statement latencies: 0.5 ms to about 16 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 16)
}

/// The events counted since the server started.
pub struct Metrics {
    registry: Registry,
    session_start: Family<Labels, Histogram>,
    job_start: Family<Labels, Histogram>,
    statement: Histogram,
    env_requests: Family<Labels, Counter>,
    env_build: Histogram,
    http_requests: Family<Labels, Counter>,
    http_duration: Family<Labels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("spool");
        let session_start =
            Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(start_buckets()));
        registry.register_with_unit(
            "session_start",
            "Time from a session's request to its driver being ready, by how it started",
            Unit::Seconds,
            session_start.clone(),
        );
        let job_start =
            Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(start_buckets()));
        registry.register_with_unit(
            "job_start",
            "Time from a job's submission to its driver running, by how it started",
            Unit::Seconds,
            job_start.clone(),
        );
        let statement = Histogram::new(latency_buckets());
        registry.register_with_unit(
            "statement",
            "Time a statement took to run in its session's driver",
            Unit::Seconds,
            statement.clone(),
        );
        let env_requests = Family::<Labels, Counter>::default();
        registry.register(
            "environment_requests",
            "Environments asked for, by whether the cache had them (hit) or they were built (miss)",
            env_requests.clone(),
        );
        let env_build = Histogram::new(exponential_buckets(0.5, 2.0, 12));
        registry.register_with_unit(
            "environment_build",
            "Time an environment build took",
            Unit::Seconds,
            env_build.clone(),
        );
        let http_requests = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "API requests answered, by method, route and status",
            http_requests.clone(),
        );
        let http_duration =
            Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an API request, by method and route",
            Unit::Seconds,
            http_duration.clone(),
        );
        Metrics {
            registry,
            session_start,
            job_start,
            statement,
            env_requests,
            env_build,
            http_requests,
            http_duration,
        }
    }
}

impl Metrics {
    pub fn session_started(&self, kind: StartKind, took: Duration) {
        self.session_start
            .get_or_create(&vec![("kind", kind.as_str().to_string())])
            .observe(took.as_secs_f64());
    }

    pub fn job_started(&self, kind: StartKind, took: Duration) {
        self.job_start
            .get_or_create(&vec![("kind", kind.as_str().to_string())])
            .observe(took.as_secs_f64());
    }

    pub fn statement_done(&self, took: Duration) {
        self.statement.observe(took.as_secs_f64());
    }

    /// An environment was asked for: from the cache, or built in `build_seconds`.
    pub fn environment(&self, hit: bool, build_seconds: f64) {
        let result = if hit { "hit" } else { "miss" };
        self.env_requests
            .get_or_create(&vec![("result", result.to_string())])
            .inc();
        if !hit {
            self.env_build.observe(build_seconds);
        }
    }

    /// An API request was answered. `route` is the router's template (`/api/v1/jobs/{name}`),
    /// never the path itself, so names and ids do not become label values.
    pub fn http_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.http_requests
            .get_or_create(&vec![
                ("method", method.to_string()),
                ("route", route.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
        self.http_duration
            .get_or_create(&vec![
                ("method", method.to_string()),
                ("route", route.to_string()),
            ])
            .observe(took.as_secs_f64());
    }
}

/// Time since `at` (RFC 3339, as the store writes it); zero when it cannot be read.
pub(crate) fn since(at: &str) -> Duration {
    chrono::DateTime::parse_from_rfc3339(at)
        .ok()
        .and_then(|at| {
            (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
                .to_std()
                .ok()
        })
        .unwrap_or_default()
}

/// A gauge family set from one reading, so labels that went away are not reported.
fn gauges(
    registry: &mut Registry,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    values: impl IntoIterator<Item = (Labels, f64)>,
) {
    let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).set(value);
    }
    match unit {
        Some(unit) => registry.register_with_unit(name, help, unit, family),
        None => registry.register(name, help, family),
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// This host's capacity for Spark and what holds it now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// Cores that may be handed out (oversubscription included).
    pub cores: u32,
    pub used_cores: u32,
    pub memory_mb: u64,
    pub used_memory_mb: u64,
}

impl Control {
    pub fn metrics(&self) -> &Metrics {
        &self.inner().metrics
    }

    /// This host's capacity and what live clusters and active drivers hold of it.
    pub async fn capacity(&self) -> Result<Capacity> {
        let (used_cores, used_memory_mb) = crate::scheduler::used_capacity(self).await?;
        let host = crate::scheduler::host_capacity(self.config());
        Ok(Capacity {
            cores: host.schedulable_cores,
            used_cores,
            memory_mb: host.memory.0,
            used_memory_mb,
        })
    }

    /// The metrics in the OpenMetrics text format ([`CONTENT_TYPE`]): the state read from the
    /// store now, then the events counted since start.
    pub async fn render_metrics(&self) -> Result<String> {
        let store = self.store();
        let mut now = Registry::with_prefix("spool");
        let jobs = store.job_counts().await?;
        gauges(
            &mut now,
            "jobs",
            "Jobs in the store, by kind and status",
            None,
            jobs.into_iter()
                .map(|(kind, status, n)| (vec![("kind", kind), ("status", status)], n as f64)),
        );
        let sessions = store.session_counts().await?;
        gauges(
            &mut now,
            "sessions",
            "Sessions in the store, by state and whether they are pre-warmed drivers no user has claimed",
            None,
            sessions.into_iter().map(|(state, prewarmed, n)| {
                (
                    vec![("state", state), ("prewarmed", prewarmed.to_string())],
                    n as f64,
                )
            }),
        );
        let clusters = store.live_clusters().await?;
        let mut by_state = std::collections::BTreeMap::<String, f64>::new();
        let mut executors = 0.0;
        for cluster in &clusters {
            *by_state.entry(cluster.state.to_string()).or_default() += 1.0;
            if cluster.state == spool_core::ClusterState::Attached {
                continue;
            }
            if let Ok(shape) = serde_json::from_str::<crate::placement::Shape>(&cluster.shape_json)
            {
                executors += f64::from(shape.executors);
            }
        }
        gauges(
            &mut now,
            "clusters",
            "Clusters not yet gone, by state (attached pools included)",
            None,
            by_state
                .into_iter()
                .map(|(state, n)| (vec![("state", state)], n)),
        );
        gauges(
            &mut now,
            "executors",
            "Executors of the clusters Spool runs",
            None,
            [(Labels::new(), executors)],
        );
        let Capacity {
            cores,
            used_cores,
            memory_mb,
            used_memory_mb,
        } = self.capacity().await?;
        let free_cores = f64::from(cores) - f64::from(used_cores);
        let free_memory = (memory_mb as f64 - used_memory_mb as f64) * MIB;
        gauges(
            &mut now,
            "capacity_cores",
            "Cores of this host's capacity (oversubscription included), used and free",
            None,
            [
                (vec![("state", "used".to_string())], f64::from(used_cores)),
                (vec![("state", "free".to_string())], free_cores.max(0.0)),
            ],
        );
        gauges(
            &mut now,
            "capacity_memory",
            "Memory of this host's capacity, used and free",
            Some(Unit::Bytes),
            [
                (
                    vec![("state", "used".to_string())],
                    used_memory_mb as f64 * MIB,
                ),
                (vec![("state", "free".to_string())], free_memory.max(0.0)),
            ],
        );
        let waiting = store.waiting_work().await?;
        let oldest = waiting.oldest.map_or(0.0, |at| since(&at).as_secs_f64());
        gauges(
            &mut now,
            "queue_length",
            "Jobs and sessions waiting to be placed",
            None,
            [(Labels::new(), waiting.count as f64)],
        );
        gauges(
            &mut now,
            "queue_oldest_wait",
            "How long the oldest waiting job or session has waited (0 when none waits)",
            Some(Unit::Seconds),
            [(Labels::new(), oldest)],
        );
        let mut agents = std::collections::BTreeMap::<String, f64>::new();
        for agent in store.agents().await? {
            *agents.entry(agent.state.to_string()).or_default() += 1.0;
        }
        gauges(
            &mut now,
            "agents",
            "Registered agents, by state",
            None,
            agents
                .into_iter()
                .map(|(state, n)| (vec![("state", state)], n)),
        );
        let mut text = String::with_capacity(16 * 1024);
        encode_registry(&mut text, &now).expect("writing to a String cannot fail");
        encode_registry(&mut text, &self.metrics().registry)
            .expect("writing to a String cannot fail");
        encode_eof(&mut text).expect("writing to a String cannot fail");
        Ok(text)
    }
}
