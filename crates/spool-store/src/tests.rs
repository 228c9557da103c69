use super::*;
use spool_core::{IsolationMode, JobKind, SessionState};

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).await.unwrap();
    (dir, store)
}

fn new_job(name: &str, owner_id: UserId) -> NewJob {
    NewJob {
        name: name.into(),
        kind: JobKind::Spark,
        owner_id,
        display_name: name.into(),
        experiment_name: "default".into(),
        status: JobStatus::NotStarted,
        spec_json: "{}".into(),
        sizing_json: "{}".into(),
        runtime: "3.4".into(),
        compute: "serverless".into(),
        identity: "user_identity".into(),
        environment_json: None,
        principal: "owner".into(),
        runs_as: "user:owner".into(),
        launch_json: None,
    }
}

#[tokio::test]
async fn a_pipeline_and_its_nodes_are_recorded_together_and_nodes_wait_for_their_inputs() {
    let (_dir, store) = store().await;
    let owner = store
        .create_user("owner", "h", WorkspaceRole::Owner)
        .await
        .unwrap();
    let mut parent = new_job("p", owner.id);
    parent.kind = JobKind::Pipeline;
    let node = |name: &str, deps: &[&str], key: &str| NewNode {
        job: new_job(name, owner.id),
        node: name.to_string(),
        component_id: "azureml_anonymous:1".into(),
        reuse_key: Some(key.to_string()),
        reused_job_id: None,
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
    };
    let row = store
        .insert_pipeline(
            &parent,
            true,
            false,
            &[node("a", &[], "ka"), node("b", &["a"], "kb")],
        )
        .await
        .unwrap();
    assert_eq!(row.kind, JobKind::Pipeline);
    let waiting = |jobs: Vec<JobRow>| jobs.into_iter().map(|j| j.name).collect::<Vec<_>>();
    // The pipeline itself is never placed, and `b` waits for `a`.
    assert_eq!(
        waiting(store.jobs_in_status(JobStatus::WAITING).await.unwrap()),
        ["a"]
    );
    let nodes = store.nodes(row.id).await.unwrap();
    assert_eq!(nodes[1].depends_on(), ["a"]);
    let a = store.job_by_name("a").await.unwrap().unwrap();
    assert_eq!(a.parent_id, Some(row.id));
    assert!(store.reusable_node("ka").await.unwrap().is_none());
    store
        .set_job_status(a.id, JobStatus::Completed, None)
        .await
        .unwrap();
    assert_eq!(
        waiting(store.jobs_in_status(JobStatus::WAITING).await.unwrap()),
        ["b"]
    );
    assert_eq!(store.reusable_node("ka").await.unwrap().unwrap().name, "a");
    // Pipeline nodes are listed under their pipeline, not among top-level jobs.
    assert_eq!(waiting(store.list_jobs(None, 10).await.unwrap()), ["p"]);
    // A name taken by a node fails the whole pipeline, leaving nothing.
    let mut again = new_job("p2", owner.id);
    again.kind = JobKind::Pipeline;
    assert!(
        store
            .insert_pipeline(
                &again,
                true,
                false,
                &[node("c", &[], "kc"), node("a", &[], "x")]
            )
            .await
            .is_err()
    );
    assert!(store.job_by_name("p2").await.unwrap().is_none());
    assert!(store.job_by_name("c").await.unwrap().is_none());
}

#[tokio::test]
async fn users_are_found_by_token_hash_only() {
    let (_dir, store) = store().await;
    let admin = store
        .create_user("admin", "h1", WorkspaceRole::Owner)
        .await
        .unwrap();
    assert_eq!(admin.role, WorkspaceRole::Owner);
    assert_eq!(
        store.user_by_token_hash("h1").await.unwrap().unwrap().name,
        "admin"
    );
    assert!(store.user_by_token_hash("h2").await.unwrap().is_none());
    assert!(matches!(
        store
            .create_user("admin", "h3", WorkspaceRole::DEFAULT)
            .await,
        Err(StoreError::Conflict(_))
    ));
}

#[tokio::test]
async fn job_status_records_phases_and_terminal_is_final() {
    let (_dir, store) = store().await;
    let user = store
        .create_user("u", "h", WorkspaceRole::DEFAULT)
        .await
        .unwrap();
    let job = store.insert_job(&new_job("j1", user.id)).await.unwrap();
    assert!(
        store
            .set_job_status(job.id, JobStatus::Queued, Some("waiting"))
            .await
            .unwrap()
    );
    assert!(
        store
            .set_job_status(job.id, JobStatus::Running, None)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_job_status(job.id, JobStatus::Completed, None)
            .await
            .unwrap()
    );
    // A late update must not change how the job ended.
    assert!(
        !store
            .set_job_status(job.id, JobStatus::Failed, None)
            .await
            .unwrap()
    );
    let job = store.job_by_name("j1").await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert!(job.ended_at.is_some());
    let phases: Vec<String> = job.phases().into_iter().map(|p| p.status).collect();
    assert_eq!(phases, ["NotStarted", "Queued", "Running", "Completed"]);
    assert!(matches!(
        store.insert_job(&new_job("j1", user.id)).await,
        Err(StoreError::Conflict(_))
    ));
}

#[tokio::test]
async fn jobs_are_listed_per_owner() {
    let (_dir, store) = store().await;
    let a = store
        .create_user("a", "ha", WorkspaceRole::DEFAULT)
        .await
        .unwrap();
    let b = store
        .create_user("b", "hb", WorkspaceRole::DEFAULT)
        .await
        .unwrap();
    store.insert_job(&new_job("ja", a.id)).await.unwrap();
    store.insert_job(&new_job("jb", b.id)).await.unwrap();
    assert_eq!(store.list_jobs(Some(a.id), 10).await.unwrap().len(), 1);
    assert_eq!(store.list_jobs(None, 10).await.unwrap().len(), 2);
    let running = store
        .jobs_in_status(&[JobStatus::NotStarted])
        .await
        .unwrap();
    assert_eq!(running.len(), 2);
}

#[tokio::test]
async fn a_job_keeps_its_kind() {
    let (_dir, store) = store().await;
    let user = store
        .create_user("u", "h", WorkspaceRole::DEFAULT)
        .await
        .unwrap();
    let spark = store.insert_job(&new_job("s", user.id)).await.unwrap();
    let command = store
        .insert_job(&NewJob {
            kind: JobKind::Command,
            ..new_job("c", user.id)
        })
        .await
        .unwrap();
    assert_eq!(spark.kind, JobKind::Spark);
    assert_eq!(command.kind, JobKind::Command);
    assert_eq!(
        store.job(command.id).await.unwrap().unwrap().kind,
        JobKind::Command
    );
}

#[tokio::test]
async fn processes_are_recorded_before_spawn_and_ended_once() {
    let (_dir, store) = store().await;
    let id = store
        .insert_process(Owner::Cluster(ClusterId(1)), "master", "java", "/logs")
        .await
        .unwrap();
    assert_eq!(store.live_processes().await.unwrap().len(), 1);
    store.set_process_running(id, 4242, Some(99)).await.unwrap();
    store
        .set_process_ended(id, ProcessOutcome::Stopped, Some(143))
        .await
        .unwrap();
    store
        .set_process_ended(id, ProcessOutcome::Reaped, None)
        .await
        .unwrap();
    assert!(store.live_processes().await.unwrap().is_empty());
    let rows = store
        .processes_of(Owner::Cluster(ClusterId(1)))
        .await
        .unwrap();
    assert_eq!(rows[0].outcome, Some(ProcessOutcome::Stopped));
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = Store::open(&path).await.unwrap();
        let user = store
            .create_user("u", "h", WorkspaceRole::DEFAULT)
            .await
            .unwrap();
        store.insert_job(&new_job("kept", user.id)).await.unwrap();
    }
    let store = Store::open(&path).await.unwrap();
    assert!(store.job_by_name("kept").await.unwrap().is_some());
}

#[tokio::test]
async fn sessions_list_with_their_owner_and_fields() {
    let (_dir, store) = store().await;
    let alice = store
        .create_user("alice", "ha", WorkspaceRole::DEFAULT)
        .await
        .unwrap();
    let bob = store
        .create_user("bob", "hb", WorkspaceRole::DEFAULT)
        .await
        .unwrap();
    for (owner, name) in [
        (alice.id, Some("a1")),
        (bob.id, None),
        (alice.id, Some("a2")),
    ] {
        store
            .insert_session(&NewSession {
                name: name.map(str::to_string),
                owner_id: owner,
                kind: "pyspark".into(),
                runtime: "3.4".into(),
                sizing_json: "{}".into(),
                conf_json: "{}".into(),
                idle_timeout_s: 60,
                prewarmed: false,
                environment_json: None,
                compute: "serverless".into(),
                runs_as: String::new(),
                files_json: None,
            })
            .await
            .unwrap();
    }
    let all = store.list_sessions(None).await.unwrap();
    assert_eq!(all.len(), 3);
    let mine = store.list_sessions(Some(alice.id)).await.unwrap();
    let names: Vec<_> = mine.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, [Some("a1".to_string()), Some("a2".to_string())]);
    assert_eq!(mine[0].owner_name, "alice");
    assert_eq!(mine[0].state, SessionState::NotStarted);
    assert_eq!(mine[0].phases().len(), 1);
    // The one-row JSON listing matches the row-by-row lookup.
    let one = store.session(mine[1].id).await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&one).unwrap(),
        serde_json::to_value(&mine[1]).unwrap()
    );
    assert!(
        store
            .list_sessions(Some(UserId(999)))
            .await
            .unwrap()
            .is_empty()
    );
    // A listing is kept between calls, and any change to a session shows in the next one.
    let again = store.list_sessions(Some(alice.id)).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&mine, &again));
    store
        .set_session_state(mine[0].id, SessionState::Starting, None)
        .await
        .unwrap();
    let changed = store.list_sessions(Some(alice.id)).await.unwrap();
    assert_eq!(changed[0].state, SessionState::Starting);
    assert_eq!(
        store.list_sessions(None).await.unwrap()[0].state,
        SessionState::Starting
    );
}

#[tokio::test]
async fn statements_get_consecutive_numbers_under_concurrent_writes() {
    let (_dir, store) = store().await;
    let user = store
        .create_user("u", "h", WorkspaceRole::DEFAULT)
        .await
        .unwrap();
    let session = store
        .insert_session(&NewSession {
            name: None,
            owner_id: user.id,
            kind: "pyspark".into(),
            runtime: "3.4".into(),
            sizing_json: "{}".into(),
            conf_json: "{}".into(),
            idle_timeout_s: 60,
            prewarmed: false,
            environment_json: None,
            compute: "serverless".into(),
            runs_as: String::new(),
            files_json: None,
        })
        .await
        .unwrap();
    // Another writer keeps touching the session while statements are added.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..200 {
                store.touch_session(session.id).await.unwrap();
            }
        })
    };
    let mut seqs = Vec::new();
    for i in 0..50 {
        let statement = store
            .insert_statement(session.id, "pyspark", &format!("{i}"))
            .await
            .unwrap();
        seqs.push(statement.seq);
    }
    writer.await.unwrap();
    assert_eq!(seqs, (0..50).collect::<Vec<i64>>());
}

/// Issue 11: a queued session deleted by its user could end with the scheduler's reason, when
/// the scheduler recorded what it waited for from a snapshot taken before the delete.
#[tokio::test]
async fn regression_11_a_finished_sessions_reason_is_final() {
    let (_dir, store) = store().await;
    let alice = store
        .create_user("alice", "ha", WorkspaceRole::DEFAULT)
        .await
        .unwrap();
    let session = store
        .insert_session(&NewSession {
            name: Some("big".into()),
            owner_id: alice.id,
            kind: "pyspark".into(),
            runtime: "3.4".into(),
            sizing_json: "{}".into(),
            conf_json: "{}".into(),
            idle_timeout_s: 60,
            prewarmed: false,
            environment_json: None,
            compute: "serverless".into(),
            runs_as: String::new(),
            files_json: None,
        })
        .await
        .unwrap();
    store
        .add_session_phase(session.id, "queued", Some("waiting for capacity"))
        .await
        .unwrap();
    store
        .set_session_state(session.id, SessionState::Dead, Some("deleted by its user"))
        .await
        .unwrap();
    let ended = store.session(session.id).await.unwrap().unwrap();
    // The scheduler, acting on its snapshot from before the delete.
    store
        .set_session_reason(session.id, "waiting for capacity: needs 9 cores")
        .await
        .unwrap();
    store
        .add_session_phase(session.id, "queued", Some("waiting for capacity"))
        .await
        .unwrap();
    let after = store.session(session.id).await.unwrap().unwrap();
    assert_eq!(after.state, SessionState::Dead);
    assert_eq!(after.state_reason.as_deref(), Some("deleted by its user"));
    assert_eq!(after.phases().len(), ended.phases().len());
}

#[tokio::test]
async fn a_deleted_user_is_found_by_nothing_and_keeps_their_jobs() {
    let (_dir, store) = store().await;
    let admin = store
        .create_user("admin", "h0", WorkspaceRole::Owner)
        .await
        .unwrap();
    let alice = store
        .create_user("alice", "ha", WorkspaceRole::DEFAULT)
        .await
        .unwrap();
    let job = store.insert_job(&new_job("j1", alice.id)).await.unwrap();
    assert_eq!(store.owner_count().await.unwrap(), 1);
    // Live work refuses the delete, and names the work.
    assert_eq!(
        store.delete_user(alice.id).await.unwrap(),
        UserDeletion::HasLiveWork {
            jobs: vec!["j1".into()],
            sessions: vec![]
        }
    );
    assert!(store.user_by_token_hash("ha").await.unwrap().is_some());
    store
        .set_job_status(job.id, JobStatus::Canceled, None)
        .await
        .unwrap();
    assert_eq!(
        store.delete_user(alice.id).await.unwrap(),
        UserDeletion::Deleted
    );
    assert!(store.user_by_token_hash("ha").await.unwrap().is_none());
    assert!(store.user_by_name("alice").await.unwrap().is_none());
    assert_eq!(store.list_users().await.unwrap().len(), 1);
    assert_eq!(store.user_count().await.unwrap(), 1);
    // Their history stays, under their name.
    let jobs = store.list_jobs(None, 10).await.unwrap();
    assert_eq!(jobs[0].owner_name, "alice");
    // Once only; a rotation does not bring them back.
    assert_eq!(
        store.delete_user(alice.id).await.unwrap(),
        UserDeletion::NotFound
    );
    store.set_token_hash(alice.id, "hb").await.unwrap();
    assert!(store.user_by_token_hash("hb").await.unwrap().is_none());
    assert!(store.user_by_name("admin").await.unwrap().unwrap().id == admin.id);
}

#[tokio::test]
async fn a_role_changes_unless_it_would_leave_no_owner() {
    let (_dir, store) = store().await;
    store
        .create_user("admin", "h0", WorkspaceRole::Owner)
        .await
        .unwrap();
    store
        .create_user("alice", "ha", WorkspaceRole::Reader)
        .await
        .unwrap();
    let role_of = |change: RoleChange| match change {
        RoleChange::Changed(row) => format!("{}: {}", row.name, row.role),
        other => format!("{other:?}"),
    };
    let mut log = Vec::new();
    for (name, role) in [
        ("admin", WorkspaceRole::Reader),
        ("admin", WorkspaceRole::Owner),
        ("alice", WorkspaceRole::Owner),
        ("admin", WorkspaceRole::Contributor),
        ("alice", WorkspaceRole::DataScientist),
        ("nobody", WorkspaceRole::Reader),
    ] {
        log.push(role_of(store.set_user_role(name, role).await.unwrap()));
    }
    assert_eq!(
        log,
        [
            "LastOwner",
            "admin: Owner",
            "alice: Owner",
            "admin: Contributor",
            "LastOwner",
            "NotFound"
        ]
    );
    assert_eq!(store.owner_count().await.unwrap(), 1);
    let alice = store.user_by_token_hash("ha").await.unwrap().unwrap();
    assert_eq!(alice.role, WorkspaceRole::Owner);
    // Nor does a delete leave no Owner.
    assert_eq!(
        store.delete_user(alice.id).await.unwrap(),
        UserDeletion::LastOwner
    );
    let admin = store.user_by_name("admin").await.unwrap().unwrap();
    assert_eq!(
        store.delete_user(admin.id).await.unwrap(),
        UserDeletion::Deleted
    );
}

/// Migration 0011: admins become Owners, every other user an AzureML Data Scientist, which is
/// what they could do before.
#[tokio::test]
async fn migration_0011_gives_admins_owner_and_users_data_scientist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = SqlitePool::connect_with(options).await.unwrap();
    let mut before = sqlx::migrate!("./migrations");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < 11)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.unwrap();
    for (name, is_admin) in [("admin", true), ("alice", false)] {
        sqlx::query(
            "INSERT INTO users (name, token_hash, is_admin, created_at) VALUES (?, ?, ?, '')",
        )
        .bind(name)
        .bind(format!("hash-{name}"))
        .bind(is_admin)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let store = Store::open(&path).await.unwrap();
    let roles: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| format!("{}: {}", u.name, u.role))
        .collect();
    assert_eq!(roles, ["admin: Owner", "alice: AzureML Data Scientist"]);
    // The role column accepts only the four roles.
    let bad = sqlx::query("UPDATE users SET role = 'Admin' WHERE name = 'alice'")
        .execute(&store.pool)
        .await;
    assert!(bad.is_err(), "{bad:?}");
}

#[tokio::test]
async fn network_settings_change_only_from_the_version_they_were_read_at() {
    let (dir, store) = store().await;
    assert!(store.workspace_network().await.unwrap().is_none());
    // Not set yet: only an update that read "never set" applies.
    assert!(
        store
            .set_workspace_network(1, IsolationMode::Disabled, "[]", "admin")
            .await
            .unwrap()
            .is_none()
    );
    let first = store
        .set_workspace_network(0, IsolationMode::AllowInternetOutbound, "[]", "admin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.version, 1);
    // A second update decided on "never set" lost the race.
    assert!(
        store
            .set_workspace_network(0, IsolationMode::Disabled, "[]", "admin")
            .await
            .unwrap()
            .is_none()
    );
    let second = store
        .set_workspace_network(1, IsolationMode::Disabled, r#"[{"type":"fqdn"}]"#, "alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            second.version,
            second.isolation_mode.as_str(),
            second.updated_by.as_str()
        ),
        (2, "disabled", "alice")
    );
    // It had internet outbound once, and that is not forgotten.
    assert!(first.had_internet_outbound && second.had_internet_outbound);
    // Kept across a reopen.
    drop(store);
    let store = Store::open(&dir.path().join("state.db")).await.unwrap();
    let kept = store.workspace_network().await.unwrap().unwrap();
    assert_eq!(
        (kept.version, kept.rules_json.as_str()),
        (2, r#"[{"type":"fqdn"}]"#)
    );
}

#[tokio::test]
async fn a_datastore_and_its_owner_grant_are_recorded_together() {
    let (_dir, store) = store().await;
    let row = store
        .create_owned_datastore("team", "/data/team", "alice")
        .await
        .unwrap();
    assert_eq!(row.name, "team");
    let grants = store
        .role_assignments(Some(("user", "alice")))
        .await
        .unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].datastore, "team");
    assert_eq!(grants[0].role, spool_core::DataRole::Owner);
    // A grant that cannot be recorded (here: already there, left by hand) takes the datastore
    // with it.
    store
        .create_role_assignment(&NewRoleAssignment {
            assignee_kind: "user",
            assignee: "bob",
            role: spool_core::DataRole::Owner,
            datastore: "lab",
            prefix: "",
            created_by: "bob",
        })
        .await
        .unwrap();
    let err = store
        .create_owned_datastore("lab", "/data/lab", "bob")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(store.datastore("lab").await.unwrap().is_none());
    // A taken name is a conflict, and records no second grant.
    let err = store
        .create_owned_datastore("team", "/data/other", "carol")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(
        store
            .role_assignments(Some(("user", "carol")))
            .await
            .unwrap()
            .is_empty()
    );
}
