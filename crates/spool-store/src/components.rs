//! Registered components: versions by name, and the archive flags of versions and of whole
//! names (containers).

use spool_core::UserId;
use sqlx::FromRow;

use crate::{Result, Store, StoreError, conflict_on_unique, now};

/// One version of a registered component.
#[derive(Debug, Clone, FromRow)]
pub struct ComponentRow {
    pub name: String,
    pub version: String,
    /// The component as checked (`spool_spec::component::ComponentSpec`).
    pub spec_json: String,
    pub owner_id: UserId,
    /// Who registered it (a deleted user keeps their name).
    pub owner_name: String,
    pub created_at: String,
    /// This version's own flag.
    pub archived: bool,
    /// The flag of the name as a whole: when set, every version is archived.
    pub container_archived: bool,
}

/// What registering a version records.
#[derive(Debug, Clone)]
pub struct NewComponent {
    pub name: String,
    pub version: String,
    pub spec_json: String,
    pub owner_id: UserId,
}

/// What an archive or restore changes: one version, or the name with all its versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveScope<'a> {
    Version(&'a str),
    Container,
}

const SELECT: &str = "SELECT c.name, c.version, c.spec_json, c.owner_id, u.name AS owner_name, \
     c.created_at, c.archived, k.archived AS container_archived \
     FROM components c JOIN component_containers k ON k.name = c.name \
     JOIN users u ON u.id = c.owner_id";

impl Store {
    /// Records a version (and its name's container on first use); `Conflict` when the name has
    /// that version already.
    pub async fn insert_component(&self, new: &NewComponent) -> Result<ComponentRow> {
        let mut tx = self.pool.begin().await?;
        let at = now();
        sqlx::query(
            "INSERT INTO component_containers (name, created_at) VALUES (?, ?) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&new.name)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO components (name, version, spec_json, owner_id, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&new.name)
        .bind(&new.version)
        .bind(&new.spec_json)
        .bind(new.owner_id)
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique(format!(
            "component {}:{}",
            new.name, new.version
        )))?;
        tx.commit().await?;
        self.component(&new.name, &new.version)
            .await?
            .ok_or_else(|| StoreError::Query(sqlx::Error::RowNotFound))
    }

    pub async fn component(&self, name: &str, version: &str) -> Result<Option<ComponentRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE c.name = ? AND c.version = ?"
        )))
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every version of a name, most recently created first.
    pub async fn component_versions(&self, name: &str) -> Result<Vec<ComponentRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE c.name = ? ORDER BY c.id DESC"
        )))
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every version of every name, by name, each name's most recently created first.
    pub async fn all_components(&self) -> Result<Vec<ComponentRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} ORDER BY c.name, c.id DESC"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sets or clears an archive flag; returns whether the version (or name) exists.
    pub async fn set_component_archived(
        &self,
        name: &str,
        scope: ArchiveScope<'_>,
        archived: bool,
    ) -> Result<bool> {
        let done = match scope {
            ArchiveScope::Version(version) => {
                sqlx::query("UPDATE components SET archived = ? WHERE name = ? AND version = ?")
                    .bind(archived)
                    .bind(name)
                    .bind(version)
                    .execute(&self.pool)
                    .await?
            }
            ArchiveScope::Container => {
                sqlx::query("UPDATE component_containers SET archived = ? WHERE name = ?")
                    .bind(archived)
                    .bind(name)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use spool_core::WorkspaceRole;

    use super::*;

    #[tokio::test]
    async fn versions_are_unique_per_name_newest_first_and_archived_by_version_or_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).await.unwrap();
        let alice = store
            .create_user("alice", "h", WorkspaceRole::DataScientist)
            .await
            .unwrap();
        let new = |name: &str, version: &str| NewComponent {
            name: name.into(),
            version: version.into(),
            spec_json: format!("{{\"v\":\"{version}\"}}"),
            owner_id: alice.id,
        };
        for (name, version) in [("wc", "2"), ("wc", "10"), ("wc", "1"), ("prep", "1")] {
            store.insert_component(&new(name, version)).await.unwrap();
        }
        // The same version of the same name is a conflict; of another name it is not.
        assert!(matches!(
            store.insert_component(&new("wc", "10")).await,
            Err(StoreError::Conflict(what)) if what == "component wc:10"
        ));
        let versions = |rows: Vec<ComponentRow>| {
            rows.iter()
                .map(|r| {
                    format!(
                        "{}:{}{}{}",
                        r.name,
                        r.version,
                        if r.archived { " archived" } else { "" },
                        if r.container_archived {
                            " (name archived)"
                        } else {
                            ""
                        }
                    )
                })
                .collect::<Vec<_>>()
        };
        // Newest first, whatever the version strings say.
        assert_eq!(
            versions(store.component_versions("wc").await.unwrap()),
            ["wc:1", "wc:10", "wc:2"]
        );
        let row = store.component("wc", "10").await.unwrap().unwrap();
        assert_eq!(row.owner_name, "alice");
        assert_eq!(row.spec_json, r#"{"v":"10"}"#);
        assert!(store.component("wc", "3").await.unwrap().is_none());

        assert!(
            store
                .set_component_archived("wc", ArchiveScope::Version("10"), true)
                .await
                .unwrap()
        );
        assert!(
            store
                .set_component_archived("prep", ArchiveScope::Container, true)
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_component_archived("nope", ArchiveScope::Container, true)
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_component_archived("wc", ArchiveScope::Version("9"), true)
                .await
                .unwrap()
        );
        assert_eq!(
            versions(store.all_components().await.unwrap()),
            ["prep:1 (name archived)", "wc:1", "wc:10 archived", "wc:2"]
        );
        // Restoring the name leaves a version archived on its own as it was.
        store
            .set_component_archived("prep", ArchiveScope::Container, false)
            .await
            .unwrap();
        store
            .insert_component(&new("prep", "2"))
            .await
            .expect("a second version of an existing name");
        assert_eq!(
            versions(store.component_versions("prep").await.unwrap()),
            ["prep:2", "prep:1"]
        );
    }
}
