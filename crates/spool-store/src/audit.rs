//! The audit log: append-only entries of state-changing calls and denials.

use serde::Serialize;
use spool_core::{AuditEntryId, AuditResult};
use sqlx::FromRow;

use crate::{Result, Store, now};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct AuditRow {
    pub id: AuditEntryId,
    /// When the call was answered, as [`now`] writes it.
    pub at: String,
    /// The user who made the call, or `anonymous`.
    pub principal: String,
    /// Who the call's work acts as, when that is not the principal (a job's identity).
    pub identity: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub status: i64,
    pub result: AuditResult,
}

/// An entry, before it has an id and a time.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    pub principal: &'a str,
    pub identity: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub status: u16,
    pub result: AuditResult,
}

/// Which entries to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery<'a> {
    /// Only entries at or after this time (as [`now`] writes it).
    pub since: Option<&'a str>,
    pub principal: Option<&'a str>,
    /// Only entries older than this one (the next page).
    pub before: Option<AuditEntryId>,
    pub limit: i64,
}

impl Store {
    /// Appends an entry, stamped with the current time.
    pub async fn insert_audit(&self, entry: &NewAuditEntry<'_>) -> Result<AuditEntryId> {
        Ok(sqlx::query_scalar(
            "INSERT INTO audit_log (at, principal, identity, action, target, status, result) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(now())
        .bind(entry.principal)
        .bind(entry.identity)
        .bind(entry.action)
        .bind(entry.target)
        .bind(i64::from(entry.status))
        .bind(entry.result)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Entries matching `query`, newest first.
    pub async fn audit_entries(&self, query: &AuditQuery<'_>) -> Result<Vec<AuditRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM audit_log WHERE (?1 IS NULL OR at >= ?1) \
             AND (?2 IS NULL OR principal = ?2) AND (?3 IS NULL OR id < ?3) \
             ORDER BY id DESC LIMIT ?4",
        )
        .bind(query.since)
        .bind(query.principal)
        .bind(query.before)
        .bind(query.limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes the entries older than `before` (as [`now`] writes times); returns how many.
    pub async fn prune_audit(&self, before: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM audit_log WHERE at < ?")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // Test code: a failed unwrap is a failed test.

    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).await.unwrap();
        (dir, store)
    }

    fn entry<'a>(principal: &'a str, action: &'a str, status: u16) -> NewAuditEntry<'a> {
        NewAuditEntry {
            principal,
            identity: None,
            action,
            target: Some("j1"),
            status,
            result: AuditResult::of_status(status),
        }
    }

    fn render(rows: &[AuditRow]) -> String {
        rows.iter()
            .map(|r| {
                format!(
                    "{} {} {} {} {}",
                    r.id, r.principal, r.action, r.status, r.result
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn entries_are_read_newest_first_with_filters_and_pages() {
        let (_dir, store) = store().await;
        store
            .insert_audit(&entry("alice", "job.create", 201))
            .await
            .unwrap();
        store
            .insert_audit(&entry("bob", "job.cancel", 404))
            .await
            .unwrap();
        store
            .insert_audit(&entry("anonymous", "job.create", 401))
            .await
            .unwrap();
        store
            .insert_audit(&entry("alice", "job.cancel", 200))
            .await
            .unwrap();
        let all = AuditQuery {
            limit: 100,
            ..Default::default()
        };
        assert_eq!(
            render(&store.audit_entries(&all).await.unwrap()),
            "4 alice job.cancel 200 ok\n3 anonymous job.create 401 denied\n2 bob job.cancel 404 failed\n1 alice job.create 201 ok"
        );
        let alices = AuditQuery {
            principal: Some("alice"),
            limit: 100,
            ..Default::default()
        };
        assert_eq!(
            render(&store.audit_entries(&alices).await.unwrap()),
            "4 alice job.cancel 200 ok\n1 alice job.create 201 ok"
        );
        let page = AuditQuery {
            before: Some(AuditEntryId(4)),
            limit: 2,
            ..Default::default()
        };
        assert_eq!(
            render(&store.audit_entries(&page).await.unwrap()),
            "3 anonymous job.create 401 denied\n2 bob job.cancel 404 failed"
        );
        let future = AuditQuery {
            since: Some("9999-01-01T00:00:00.000Z"),
            limit: 100,
            ..Default::default()
        };
        assert!(store.audit_entries(&future).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn entries_cannot_be_changed_and_only_old_ones_are_pruned() {
        let (_dir, store) = store().await;
        store
            .insert_audit(&entry("alice", "job.create", 201))
            .await
            .unwrap();
        let err = sqlx::query("UPDATE audit_log SET principal = 'mallory'")
            .execute(&store.pool)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        assert_eq!(
            store.prune_audit("2000-01-01T00:00:00.000Z").await.unwrap(),
            0
        );
        assert_eq!(
            store.prune_audit("9999-01-01T00:00:00.000Z").await.unwrap(),
            1
        );
        // Ids are never reused, even after the newest entry was pruned.
        let id = store
            .insert_audit(&entry("bob", "job.create", 201))
            .await
            .unwrap();
        assert_eq!(id, AuditEntryId(2));
    }
}
