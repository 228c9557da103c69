//! Managed identities: user-assigned, and the system-assigned identity of each attached pool.

use serde::Serialize;
use sqlx::FromRow;

use crate::{Result, Store, conflict_on_unique, now};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct IdentityRow {
    pub id: i64,
    pub name: String,
    /// `user_assigned` or `system_assigned`.
    pub kind: String,
    pub client_id: String,
    pub principal_id: String,
    /// The attached pool a system-assigned identity belongs to.
    pub pool: Option<String>,
    pub in_workspace: bool,
    pub created_by: String,
    pub created_at: String,
}

/// An identity, before it has an id.
#[derive(Debug, Clone)]
pub struct NewIdentity<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub client_id: &'a str,
    pub principal_id: &'a str,
    pub pool: Option<&'a str>,
    pub created_by: &'a str,
}

impl Store {
    /// Records an identity; `Conflict` when the name is taken.
    pub async fn create_identity(&self, new: &NewIdentity<'_>) -> Result<IdentityRow> {
        sqlx::query_as(
            "INSERT INTO identities (name, kind, client_id, principal_id, pool, created_by, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(new.name)
        .bind(new.kind)
        .bind(new.client_id)
        .bind(new.principal_id)
        .bind(new.pool)
        .bind(new.created_by)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on_unique(format!("identity {}", new.name)))
    }

    pub async fn identities(&self) -> Result<Vec<IdentityRow>> {
        Ok(sqlx::query_as("SELECT * FROM identities ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn identity_by_name(&self, name: &str) -> Result<Option<IdentityRow>> {
        Ok(sqlx::query_as("SELECT * FROM identities WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Attaches an identity to the workspace or detaches it; returns whether it exists.
    pub async fn set_identity_in_workspace(&self, name: &str, in_workspace: bool) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE identities SET in_workspace = ? WHERE name = ? AND kind = 'user_assigned'",
        )
        .bind(in_workspace)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes an identity and its role assignments, in one transaction.
    pub async fn delete_identity(&self, name: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM role_assignments WHERE assignee_kind = 'identity' AND assignee = ?",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM identities WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}
