//! The audit log: what the HTTP layer records of every state-changing call and every denial,
//! who may read it, and how long it is kept (`[server] audit_retention`).
//!
//! An entry holds names, an action, a target (names and ids from the path, or what a handler
//! set) and a status: never a token, a request body or a response body.

use std::time::Duration;

use spool_api_types as api;
use spool_core::AuditResult;
use spool_store::{AuditQuery, AuditRow, NewAuditEntry};

use crate::{Caller, Control, LogError, Result, invalid};

/// Who an unauthenticated call is recorded as. No user may take this name
/// (`auth::check_user_name`), so no one reads these entries as their own.
pub const ANONYMOUS: &str = "anonymous";

/// Entries a listing returns unless it asks for another number.
const DEFAULT_LIMIT: i64 = 100;

/// The most entries one listing returns; older ones are read page by page (`before`).
const MAX_LIMIT: i64 = 1000;

/// Longest target kept, in bytes; a longer one is cut at a character boundary.
const MAX_TARGET_BYTES: usize = 512;

/// How often the retention loop prunes entries past `audit_retention`.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// A call to record, as the HTTP layer answered it. Holds no token and no body.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// The authenticated user, or [`ANONYMOUS`] (see [`Control::claimed_principal`]).
    pub principal: String,
    /// Who the call's work acts as, where the call set that (a job's identity).
    pub identity: Option<String>,
    /// A stable name of what was asked, e.g. `job.create`.
    pub action: String,
    pub target: Option<String>,
    /// The HTTP status of the answer.
    pub status: u16,
}

/// Whether `caller` reads every entry, or only those of calls they made. The one place this is
/// decided.
fn reads_every_entry(caller: &Caller) -> bool {
    caller.sees_everything()
}

/// The stored form of `since`: an RFC 3339 time as is (in UTC), or `now` less a duration.
fn parse_since(
    text: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> std::result::Result<String, String> {
    let text = text.trim();
    let refused = || {
        format!(
            "`since`: `{text}` is neither a duration back from now (`30m`, `1h`, `7d`) nor an RFC 3339 time (`2025-01-31T12:00:00Z`)"
        )
    };
    let at = if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        time.with_timezone(&chrono::Utc)
    } else {
        let back = crate::config::parse_duration(text).map_err(|_| refused())?;
        chrono::Duration::from_std(back)
            .ok()
            .and_then(|back| now.checked_sub_signed(back))
            .ok_or_else(|| {
                format!("`since`: `{text}` reaches back too far; use a shorter duration or a time")
            })?
    };
    Ok(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn limit(requested: Option<i64>) -> Result<i64> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(invalid(
            "limit",
            format!(
                "`limit` must be 1 to {MAX_LIMIT}, not `{n}`; read older entries page by page with `before`"
            ),
        )),
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn entry_view(row: AuditRow) -> api::AuditEntryView {
    api::AuditEntryView {
        id: row.id,
        at: row.at,
        principal: row.principal,
        identity: row.identity,
        action: row.action,
        target: row.target,
        status: u16::try_from(row.status).unwrap_or(0),
        result: row.result,
    }
}

impl Control {
    /// Appends an entry to the audit log. The HTTP layer calls it for every state-changing call
    /// and every denial, before the answer is sent.
    pub async fn record_audit(&self, record: AuditRecord) -> Result<()> {
        let target = record.target.map(|t| bounded(t, MAX_TARGET_BYTES));
        self.store()
            .insert_audit(&NewAuditEntry {
                principal: &record.principal,
                identity: record.identity.as_deref(),
                action: &record.action,
                target: target.as_deref(),
                status: record.status,
                result: AuditResult::of_status(record.status),
            })
            .await?;
        Ok(())
    }

    /// Who an unauthenticated call is recorded as: the user name its basic credentials claim
    /// when a user has that name, else [`ANONYMOUS`]. A name that is no user's is not kept: a
    /// client that put its token where the name goes must not have the token in the log.
    pub async fn claimed_principal(&self, claimed: Option<&str>) -> Result<String> {
        let Some(name) = claimed else {
            return Ok(ANONYMOUS.to_string());
        };
        Ok(match self.store().user_by_name(name).await? {
            Some(user) => user.name,
            None => ANONYMOUS.to_string(),
        })
    }

    /// Audit entries, newest first: every entry for the admin, a user's own calls for a user
    /// (a `principal` filter naming someone else finds nothing for them).
    pub async fn audit_list(
        &self,
        caller: &Caller,
        filter: api::AuditQuery,
    ) -> Result<api::AuditList> {
        caller.require(crate::actions::Action::ViewAudit)?;
        let limit = limit(filter.limit)?;
        let since = filter
            .since
            .as_deref()
            .map(|text| parse_since(text, chrono::Utc::now()))
            .transpose()
            .map_err(|message| invalid("since", message))?;
        let principal = if reads_every_entry(caller) {
            filter.principal
        } else {
            match filter.principal {
                Some(name) if name != caller.name => {
                    return Ok(api::AuditList {
                        entries: Vec::new(),
                        next_before: None,
                    });
                }
                _ => Some(caller.name.clone()),
            }
        };
        let rows = self
            .store()
            .audit_entries(&AuditQuery {
                since: since.as_deref(),
                principal: principal.as_deref(),
                before: filter.before,
                limit,
            })
            .await?;
        let next_before = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| r.id))
            .flatten();
        Ok(api::AuditList {
            entries: rows.into_iter().map(entry_view).collect(),
            next_before,
        })
    }

    /// Deletes entries older than `audit_retention` (none when it is zero).
    pub(crate) async fn prune_audit(&self) -> Result<()> {
        let retention = self.config().audit_retention;
        if retention.is_zero() {
            return Ok(());
        }
        let Some(before) = chrono::Duration::from_std(retention)
            .ok()
            .and_then(|r| chrono::Utc::now().checked_sub_signed(r))
        else {
            return Ok(());
        };
        let before = before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let pruned = self.store().prune_audit(&before).await?;
        if pruned > 0 {
            tracing::info!(pruned, before = %before, "pruned audit entries past their retention");
        }
        Ok(())
    }
}

/// Prunes the audit log every hour, so a server that runs for months keeps only its retention.
pub(crate) async fn retention_loop(control: Control) {
    let mut shutdown = control.inner().shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        control.prune_audit().await.log_error("prune the audit log");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

    use super::*;

    #[track_caller]
    fn check(text: &str, expected: &str) {
        let now = chrono::DateTime::parse_from_rfc3339("2025-03-10T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let actual = match parse_since(text, now) {
            Ok(at) => at,
            Err(message) => format!("error: {message}"),
        };
        assert_eq!(actual, expected, "since `{text}`");
    }

    #[test]
    fn since_is_a_time_or_a_duration_back_from_now() {
        check("1h", "2025-03-10T11:00:00.000Z");
        check("90s", "2025-03-10T11:58:30.000Z");
        check("7d", "2025-03-03T12:00:00.000Z");
        check("2025-01-31T12:00:00Z", "2025-01-31T12:00:00.000Z");
        check("2025-01-31T14:00:00+02:00", "2025-01-31T12:00:00.000Z");
        check(
            "yesterday",
            "error: `since`: `yesterday` is neither a duration back from now (`30m`, `1h`, `7d`) nor an RFC 3339 time (`2025-01-31T12:00:00Z`)",
        );
        check(
            "99999999d",
            "error: `since`: `99999999d` reaches back too far; use a shorter duration or a time",
        );
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), 100);
        assert_eq!(limit(Some(1000)).unwrap(), 1000);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(1001)).is_err());
    }

    #[test]
    fn long_targets_are_cut_at_a_character_boundary() {
        assert_eq!(bounded("abc".into(), 5), "abc");
        assert_eq!(bounded("ééé".into(), 5), "éé");
    }

    #[test]
    fn only_owners_read_every_entry() {
        let user = |role| Caller {
            id: spool_core::UserId(1),
            name: "u".into(),
            role,
        };
        assert!(reads_every_entry(&user(spool_core::WorkspaceRole::Owner)));
        for role in [
            spool_core::WorkspaceRole::Contributor,
            spool_core::WorkspaceRole::DataScientist,
            spool_core::WorkspaceRole::Reader,
        ] {
            assert!(!reads_every_entry(&user(role)));
        }
    }
}
