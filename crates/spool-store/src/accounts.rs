//! The OS accounts Spool creates, one per principal that runs work.

use sqlx::FromRow;

use crate::{Result, Store, now};

#[derive(Debug, Clone, FromRow)]
pub struct OsAccountRow {
    pub id: i64,
    /// `user:<name>` or `identity:<name>`.
    pub principal: String,
    /// The account's login name.
    pub name: String,
    /// Set once the account exists; `None` while (or if a crash left it) half made.
    pub uid: Option<i64>,
    pub gid: Option<i64>,
    pub created_at: String,
}

impl Store {
    /// Records the account of a principal before it is created; the name is derived from the
    /// row's id by `name_of`. Returns the row (an existing one if another request was first).
    pub async fn record_os_account(
        &self,
        principal: &str,
        name_of: impl Fn(i64) -> String,
    ) -> Result<OsAccountRow> {
        let mut tx = self.pool.begin().await?;
        if let Some(row) =
            sqlx::query_as::<_, OsAccountRow>("SELECT * FROM os_accounts WHERE principal = ?")
                .bind(principal)
                .fetch_optional(&mut *tx)
                .await?
        {
            return Ok(row);
        }
        let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM os_accounts")
            .fetch_one(&mut *tx)
            .await?;
        let row = sqlx::query_as(
            "INSERT INTO os_accounts (id, principal, name, created_at) VALUES (?, ?, ?, ?) RETURNING *",
        )
        .bind(next)
        .bind(principal)
        .bind(name_of(next))
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Records the uid and gid an account was created with.
    pub async fn set_os_account_ids(&self, id: i64, uid: u32, gid: u32) -> Result<()> {
        sqlx::query("UPDATE os_accounts SET uid = ?, gid = ? WHERE id = ?")
            .bind(i64::from(uid))
            .bind(i64::from(gid))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn os_account(&self, principal: &str) -> Result<Option<OsAccountRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM os_accounts WHERE principal = ?")
                .bind(principal)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn os_accounts(&self) -> Result<Vec<OsAccountRow>> {
        Ok(sqlx::query_as("SELECT * FROM os_accounts ORDER BY id")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Forgets an account once it is removed from the system.
    pub async fn delete_os_account(&self, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM os_accounts WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
