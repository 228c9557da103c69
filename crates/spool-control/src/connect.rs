//! Spark Connect sessions: which sessions run a Connect server beside their REPL, which runtimes
//! can, and where the server's gRPC proxy sends a caller's calls.
//!
//! A `connect` session is an ordinary session whose driver also loads Spark's Connect plugin
//! (`spool_spark::ConnectServer`): Livy statements keep working, and Connect clients reach the
//! same SparkSession's cluster through the server. The driver's Connect server binds the
//! cluster's address and answers only calls presenting the session's secret, which only the
//! server holds; users present their own token to the server instead.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use spool_core::{SessionId, SessionState, UserId};

use crate::{Caller, Control, ControlError, Result, invalid};

/// The Livy conf key (and the native API's `kind: connect`) that asks for a Connect server.
pub const CONNECT_CONF: &str = "spark.spool.connect";

/// Whether a session's conf asks for a Connect server, checking the value.
pub(crate) fn asked(conf: &BTreeMap<String, String>) -> Result<bool> {
    match conf.get(CONNECT_CONF).map(|v| v.trim()) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(invalid(
            format!("conf.{CONNECT_CONF}"),
            format!("`{CONNECT_CONF}` must be `true` or `false`, not `{v}`"),
        )),
    }
}

/// Refuses Connect on a runtime whose Spark does not ship its server, naming those that do.
pub(crate) fn check_runtime(field: &str, runtime: &str) -> Result<()> {
    if spool_runtime::find(runtime).is_some_and(|r| r.connect) {
        return Ok(());
    }
    let have = spool_runtime::connect_versions().join(", ");
    Err(invalid(
        field,
        format!(
            "Spark Connect needs a runtime whose Spark ships its Connect server, and runtime {runtime} does not (its pyspark wheel leaves the spark-connect jar out); runtimes with Spark Connect: {have}. Ask for runtime_version {have}"
        ),
    ))
}

/// Where the proxy sends a caller's Connect calls: the session's driver.
#[derive(Debug, Clone)]
pub struct ConnectTarget {
    pub session: SessionId,
    /// `host:port` of the driver's Connect server.
    pub authority: String,
    /// What the driver's Connect server asks every call to present (`Authorization: Bearer`).
    pub secret: String,
}

/// How often a session's idle clock is moved by Connect calls: often enough for a timeout
/// counted in minutes, rarely enough that a chatty client does not write the store per call.
const TOUCH_EVERY: Duration = Duration::from_secs(5);

/// When each session's idle clock was last moved by a Connect call.
#[derive(Debug, Default)]
pub(crate) struct Activity(Mutex<HashMap<SessionId, Instant>>);

impl Activity {
    /// Whether a call now should move the session's clock (and notes that it does).
    fn due(&self, session: SessionId, now: Instant) -> bool {
        let mut last = self.0.lock().expect("connect activity lock");
        match last.get(&session) {
            Some(at) if now.duration_since(*at) < TOUCH_EVERY => false,
            _ => {
                // Entries past their window say nothing any more: ended sessions' go too.
                last.retain(|_, at| now.duration_since(*at) < TOUCH_EVERY);
                last.insert(session, now);
                true
            }
        }
    }
}

/// How long a looked-up target is used again without asking the store: a client's calls come
/// in bursts (a query is an `ExecutePlan` and several `ReleaseExecute`s), and a session that
/// ends meanwhile only turns the next calls into "does not answer" for this long.
const TARGET_FRESH: Duration = Duration::from_secs(2);

/// Sessions' Connect targets as last looked up, with their owners (who may call them is
/// checked on every call; only where the call goes is remembered).
#[derive(Debug, Default)]
pub(crate) struct Targets(Mutex<HashMap<String, (Instant, UserId, ConnectTarget)>>);

impl Targets {
    fn get(&self, key: &str, now: Instant) -> Option<(UserId, ConnectTarget)> {
        let mut targets = self.0.lock().expect("connect targets lock");
        match targets.get(key) {
            Some((at, owner, target)) if now.duration_since(*at) < TARGET_FRESH => {
                Some((*owner, target.clone()))
            }
            Some(_) => {
                targets.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&self, key: &str, now: Instant, owner: UserId, target: &ConnectTarget) {
        let mut targets = self.0.lock().expect("connect targets lock");
        targets.retain(|_, (at, _, _)| now.duration_since(*at) < TARGET_FRESH);
        targets.insert(key.to_string(), (now, owner, target.clone()));
    }
}

impl Control {
    /// The Connect server of session `key` (its id or name), for a caller who may run code
    /// in it; another user's session is "not found", as for statements.
    pub async fn connect_target(&self, caller: &Caller, key: &str) -> Result<ConnectTarget> {
        caller.require(crate::Action::RunStatements)?;
        let not_found = || ControlError::NotFound {
            kind: "session",
            name: key.to_string(),
        };
        let now = Instant::now();
        if let Some((owner, target)) = self.inner().connect_targets.get(key, now) {
            return caller.sees(owner).then_some(target).ok_or_else(not_found);
        }
        let row = match key.parse::<i64>() {
            Ok(id) => self.store().session(SessionId(id)).await?,
            Err(_) => self.store().session_by_name(key).await?,
        }
        .filter(|s| !s.prewarmed && caller.sees(s.owner_id))
        .ok_or_else(not_found)?;
        let conf: BTreeMap<String, String> =
            serde_json::from_str(&row.conf_json).unwrap_or_default();
        if !asked(&conf).unwrap_or(false) {
            return Err(ControlError::Conflict {
                target: "session".into(),
                message: format!(
                    "session {} was not created with Spark Connect; create one with `spool session create --connect --runtime {}` (or Livy conf `{CONNECT_CONF}: true`)",
                    row.id,
                    spool_runtime::connect_versions().join("|")
                ),
            });
        }
        if !matches!(row.state, SessionState::Idle | SessionState::Busy) {
            let when = if row.state.is_finished() {
                "has ended"
            } else {
                "is not ready; wait until it is `idle`"
            };
            return Err(ControlError::Conflict {
                target: "state".into(),
                message: format!("session {} is `{}`: it {when}", row.id, row.state),
            });
        }
        let (Some(port), Some(cluster)) = (row.connect_port, row.cluster_id) else {
            return Err(ControlError::Conflict {
                target: "state".into(),
                message: format!("session {} has no Connect server yet", row.id),
            });
        };
        let net = self.provisioner().cluster_net(cluster).await?;
        let secret = std::fs::read_to_string(
            self.session_dir(row.id)
                .join(crate::sessions::REPL_SECRET_FILE),
        )
        .map_err(|e| anyhow::anyhow!("read session {}'s secret: {e}", row.id))?;
        let target = ConnectTarget {
            session: row.id,
            authority: format!("{}:{port}", net.address),
            secret: secret.trim().to_string(),
        };
        self.inner()
            .connect_targets
            .put(key, now, row.owner_id, &target);
        Ok(target)
    }

    /// A Connect call reached session `id`: it counts as activity for its idle timeout. The
    /// write runs beside the call, which does not wait for it.
    pub fn connect_activity(&self, id: SessionId) {
        if self.inner().connect_activity.due(id, Instant::now()) {
            let store = self.store().clone();
            tokio::spawn(async move {
                if let Err(e) = store.touch_session(id).await {
                    tracing::error!(session = %id, error = %e, "record a Connect call as activity");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conf_flag_is_true_false_or_an_error() {
        let conf = |v: &str| BTreeMap::from([(CONNECT_CONF.to_string(), v.to_string())]);
        assert!(!asked(&BTreeMap::new()).expect("no flag"));
        assert!(asked(&conf("true")).expect("true"));
        assert!(asked(&conf(" TRUE ")).expect("case and spaces"));
        assert!(!asked(&conf("false")).expect("false"));
        let e = asked(&conf("yes")).expect_err("not a boolean");
        assert_eq!(
            e.to_string(),
            "`spark.spool.connect` must be `true` or `false`, not `yes`"
        );
    }

    #[test]
    fn only_runtimes_that_ship_the_server_take_connect() {
        check_runtime("runtime_version", "4.3").expect("4.3 ships it");
        for old in ["3.4", "3.5", "9.9"] {
            let e = check_runtime("runtime_version", old).expect_err(old);
            assert!(
                e.to_string().contains(&format!("runtime {old} does not"))
                    && e.to_string().ends_with("Ask for runtime_version 4.3"),
                "{e}"
            );
        }
    }

    #[test]
    fn targets_are_used_again_for_a_moment_then_looked_up_afresh() {
        let targets = Targets::default();
        let t0 = Instant::now();
        let target = ConnectTarget {
            session: SessionId(3),
            authority: "127.0.0.1:15002".into(),
            secret: "s".into(),
        };
        assert!(targets.get("3", t0).is_none());
        targets.put("3", t0, UserId(7), &target);
        let (owner, again) = targets
            .get("3", t0 + Duration::from_secs(1))
            .expect("fresh");
        assert_eq!(
            (owner, again.authority.as_str()),
            (UserId(7), "127.0.0.1:15002")
        );
        assert!(targets.get("3", t0 + TARGET_FRESH).is_none(), "stale");
        assert!(targets.get("3", t0).is_none(), "a stale entry is gone");
    }

    #[test]
    fn activity_is_recorded_at_most_every_few_seconds_per_session() {
        let activity = Activity::default();
        let t0 = Instant::now();
        assert!(activity.due(SessionId(1), t0));
        assert!(!activity.due(SessionId(1), t0 + Duration::from_secs(1)));
        assert!(activity.due(SessionId(2), t0 + Duration::from_secs(1)));
        assert!(activity.due(SessionId(1), t0 + TOUCH_EVERY));
    }
}
