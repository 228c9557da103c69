//! Role assignments: data roles of principals on datastores and path prefixes.

use serde::Serialize;
use spool_core::{DataRole, RoleAssignmentId};
use sqlx::FromRow;

use crate::{Result, Store, conflict_on_unique, now};

#[derive(Debug, Clone, FromRow, Serialize)]
pub struct RoleAssignmentRow {
    pub id: RoleAssignmentId,
    pub assignee_kind: String,
    pub assignee: String,
    pub role: DataRole,
    pub datastore: String,
    pub prefix: String,
    pub created_by: String,
    pub created_at: String,
}

/// A role assignment, before it has an id.
#[derive(Debug, Clone)]
pub struct NewRoleAssignment<'a> {
    /// `user` or `identity`.
    pub assignee_kind: &'a str,
    pub assignee: &'a str,
    pub role: DataRole,
    pub datastore: &'a str,
    pub prefix: &'a str,
    pub created_by: &'a str,
}

impl Store {
    /// Records a role assignment; `Conflict` when the same one exists.
    pub async fn create_role_assignment(
        &self,
        new: &NewRoleAssignment<'_>,
    ) -> Result<RoleAssignmentRow> {
        sqlx::query_as(
            "INSERT INTO role_assignments (assignee_kind, assignee, role, datastore, prefix, created_by, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(new.assignee_kind)
        .bind(new.assignee)
        .bind(new.role)
        .bind(new.datastore)
        .bind(new.prefix)
        .bind(new.created_by)
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_on_unique("role assignment".into()))
    }

    /// Every assignment, or one principal's only (`kind` is `user` or `identity`).
    pub async fn role_assignments(
        &self,
        assignee: Option<(&str, &str)>,
    ) -> Result<Vec<RoleAssignmentRow>> {
        let (kind, name) = assignee.unzip();
        Ok(sqlx::query_as(
            "SELECT * FROM role_assignments WHERE ?1 IS NULL OR (assignee_kind = ?1 AND assignee = ?2) \
             ORDER BY id",
        )
        .bind(kind)
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn role_assignment(&self, id: RoleAssignmentId) -> Result<Option<RoleAssignmentRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM role_assignments WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Deletes an assignment; returns whether there was one.
    pub async fn delete_role_assignment(&self, id: RoleAssignmentId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM role_assignments WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
