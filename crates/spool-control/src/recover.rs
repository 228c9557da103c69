//! What a starting server does with what the previous one left: processes still running are
//! adopted (their cluster or job goes on), the rest are reaped, and every decision is recorded
//! as an event.

use spool_core::{ClusterState, JobKind, JobStatus, Owner, ProcessOutcome, SessionState};
use std::collections::HashMap;

use spool_store::ProcessRow;
use spool_supervisor::Exit;

use crate::{Control, command, run, sessions};

fn alive(process: &ProcessRow) -> bool {
    match process.pid {
        Some(pid) => spool_supervisor::is_alive(pid as u32, process.start_ticks.map(|t| t as u64)),
        None => false,
    }
}

/// Stops a process a previous server left and records it as reaped.
async fn reap(control: &Control, process: &ProcessRow) -> anyhow::Result<()> {
    if let Some(pid) = process.pid {
        spool_supervisor::stop_group(pid as u32, control.config().stop_grace).await;
    }
    control
        .store()
        .set_process_ended(process.id, ProcessOutcome::Reaped, None)
        .await?;
    Ok(())
}

/// Of the live processes of a job or session, keeps its driver to adopt; anything else it ran
/// (an environment build) cannot be followed and is reaped.
async fn keep_driver(
    control: &Control,
    running: Vec<ProcessRow>,
) -> anyhow::Result<Option<ProcessRow>> {
    let (drivers, others): (Vec<ProcessRow>, Vec<ProcessRow>) =
        running.into_iter().partition(|p| p.role == "driver");
    for process in &others {
        reap(control, process).await?;
    }
    Ok(drivers.into_iter().next())
}

pub(crate) async fn recover(control: &Control) -> anyhow::Result<()> {
    let store = control.store();
    let processes = store.live_processes().await?;
    let mut alive_by_owner: HashMap<Owner, Vec<ProcessRow>> = HashMap::new();
    for process in processes {
        if alive(&process) {
            alive_by_owner
                .entry(process.owner())
                .or_default()
                .push(process);
        } else {
            let code = spool_supervisor::read_exit_file(std::path::Path::new(&process.log_dir));
            let outcome = if code.is_some() {
                ProcessOutcome::Exited
            } else {
                ProcessOutcome::Lost
            };
            store
                .set_process_ended(process.id, outcome, code.map(i64::from))
                .await?;
        }
    }

    // An attached pool stays attached until it is detached, whatever a server before did to
    // its row (servers before this fix let the teardown loop mark them gone).
    // Each keeps a system-assigned identity (pools attached before identities existed get one).
    for compute in store.computes().await? {
        control.ensure_pool_identity(&compute.name, "spool").await?;
        if let Some(cluster) = store.cluster(compute.cluster_id).await?
            && cluster.state != ClusterState::Attached
        {
            store
                .set_cluster_state(cluster.id, ClusterState::Attached, None)
                .await?;
            store
                .add_event(
                    "repaired",
                    &format!("compute {}", compute.name),
                    &format!(
                        "the attached pool's cluster {} was `{}`; it is attached again",
                        cluster.id, cluster.state
                    ),
                )
                .await?;
        }
    }

    // Serverless clusters: adopt when the master and worker both still run, otherwise reap.
    // Attached pools run without Spool: they are still there, with the drivers on them.
    let mut adopted_clusters = Vec::new();
    let mut attached_pools = Vec::new();
    for cluster in store.live_clusters().await? {
        if cluster.state == ClusterState::Attached {
            attached_pools.push(cluster.id);
            continue;
        }
        let running = alive_by_owner
            .remove(&Owner::Cluster(cluster.id))
            .unwrap_or_default();
        // A cluster whose executors all run on agents has no worker on this host.
        let planned = store.cluster_workers(cluster.id).await?;
        let local_worker = planned.is_empty() || planned.iter().any(|w| w.agent.is_none());
        let complete = running.iter().any(|p| p.role == "master")
            && (!local_worker || running.iter().any(|p| p.role == "worker"))
            && cluster.state != ClusterState::TearingDown;
        if complete {
            for process in &running {
                store.set_process_adopted(process.id).await?;
                let control = control.clone();
                let (pid, ticks, role, id) = (
                    process.pid.unwrap_or_default() as u32,
                    process.start_ticks.map(|t| t as u64),
                    process.role.clone(),
                    cluster.id,
                );
                let log_dir = std::path::PathBuf::from(&process.log_dir);
                tokio::spawn(async move {
                    let exit = spool_supervisor::wait_adopted(pid, ticks, &log_dir).await;
                    control
                        .provisioner()
                        .on_daemon_exit(id, &role, pid, exit)
                        .await;
                });
            }
            store
                .add_event(
                    "adopted",
                    &format!("cluster {}", cluster.id),
                    "its Spark master and worker were still running after a restart",
                )
                .await?;
            tracing::info!(cluster = %cluster.id, "adopted cluster after restart");
            adopted_clusters.push(cluster.id);
        } else {
            for process in &running {
                reap(control, process).await?;
            }
            store
                .set_cluster_state(
                    cluster.id,
                    ClusterState::Gone,
                    Some("lost while the server was down"),
                )
                .await?;
            store
                .add_event("reaped", &format!("cluster {}", cluster.id), &format!("{} leftover process(es) stopped; the cluster was incomplete after a restart", running.len()))
                .await?;
            tracing::info!(
                cluster = %cluster.id,
                "reaped cluster left by a previous server"
            );
        }
    }

    // Namespaces in which nothing runs any more go now (clusters not adopted, command jobs
    // whose process ended); adopted work keeps its own.
    control.provisioner().namespaces().reap().await?;

    // Jobs that were under way.
    for job in store.jobs_in_status(JobStatus::ACTIVE).await? {
        let running = alive_by_owner
            .remove(&Owner::Job(job.id))
            .unwrap_or_default();
        if job.kind == JobKind::Command {
            command::recover(control, &job, running).await?;
            continue;
        }
        let cluster_ok = job
            .cluster_id
            .is_some_and(|id| adopted_clusters.contains(&id) || attached_pools.contains(&id));
        let driver = keep_driver(control, running).await?;
        let driver_logs = control.job_log_dir(&job).join("azureml").join("driver");
        // A pre-warmed driver handed to the job before it was told to run the job's entry
        // (`Running` is recorded right after) may sit idle forever: it is stopped, and the job
        // placed again.
        let warm_not_told = job.driver_path == Some(spool_core::DriverPath::WarmDriver)
            && matches!(
                job.status,
                JobStatus::Preparing | JobStatus::Provisioning | JobStatus::Starting
            );
        if warm_not_told {
            if let Some(driver) = &driver {
                reap(control, driver).await?;
            }
            store
                .set_job_status(
                    job.id,
                    JobStatus::Queued,
                    Some("requeued after a server restart"),
                )
                .await?;
            store
                .add_event(
                    "requeued",
                    &format!("job {}", job.name),
                    "its pre-warmed driver had not been given the job when the server stopped",
                )
                .await?;
            continue;
        }
        match driver {
            Some(driver) if cluster_ok => {
                store.set_process_adopted(driver.id).await?;
                let cancel_rx =
                    run::track(control, job.id, job.status == JobStatus::CancelRequested);
                store
                    .add_event(
                        "adopted",
                        &format!("job {}", job.name),
                        "its driver was still running after a restart",
                    )
                    .await?;
                tracing::info!(job = %job.name, "adopted running driver after restart");
                tokio::spawn(run::follow_adopted(
                    control.clone(),
                    job.clone(),
                    driver.pid.unwrap_or_default() as u32,
                    driver.start_ticks.map(|t| t as u64),
                    std::path::PathBuf::from(&driver.log_dir),
                    job.cluster_id,
                    cancel_rx,
                ));
            }
            Some(driver) => {
                // Its cluster is gone, so the driver cannot finish: stop it.
                reap(control, &driver).await?;
                store
                    .set_job_error(
                        job.id,
                        "the job's cluster was lost while the server was down",
                    )
                    .await?;
                store
                    .set_job_status(job.id, JobStatus::Failed, None)
                    .await?;
                store
                    .add_event(
                        "reaped",
                        &format!("job {}", job.name),
                        "driver stopped: its cluster was lost",
                    )
                    .await?;
            }
            None => {
                let drivers = store.processes_of(Owner::Job(job.id)).await?;
                if let Some(driver) = drivers.iter().rev().find(|p| p.role == "driver") {
                    // The driver ended while no server watched: its exit file says how (in
                    // its own log folder: a pre-warmed driver's is its session's).
                    let exit_dir = std::path::Path::new(&driver.log_dir);
                    let exit = match spool_supervisor::read_exit_file(exit_dir) {
                        Some(code) => Exit::Code(code),
                        None => Exit::Unknown,
                    };
                    let canceled = job.status == JobStatus::CancelRequested;
                    run::conclude(control, &job, job.cluster_id, exit, canceled, &driver_logs)
                        .await;
                    store
                        .add_event(
                            "recovered",
                            &format!("job {}", job.name),
                            &format!("its driver ended while the server was down ({exit:?})"),
                        )
                        .await?;
                } else {
                    // It had not reached its driver: place it again from the start.
                    store
                        .set_job_status(
                            job.id,
                            JobStatus::Queued,
                            Some("requeued after a server restart"),
                        )
                        .await?;
                    store
                        .add_event(
                            "requeued",
                            &format!("job {}", job.name),
                            "it had not started its driver when the server stopped",
                        )
                        .await?;
                }
            }
        }
    }

    // Sessions that were up: adopt the driver if it and its cluster live, else they are dead.
    for session in store
        .sessions_in_state(&[
            SessionState::NotStarted,
            SessionState::Starting,
            SessionState::Idle,
            SessionState::Busy,
            SessionState::ShuttingDown,
        ])
        .await?
    {
        let running = alive_by_owner
            .remove(&Owner::Session(session.id))
            .unwrap_or_default();
        let cluster_ok = session
            .cluster_id
            .is_some_and(|id| adopted_clusters.contains(&id) || attached_pools.contains(&id));
        let driver = keep_driver(control, running).await?;
        if session.state == SessionState::NotStarted {
            continue;
        }
        match driver {
            Some(driver)
                if cluster_ok
                    && matches!(session.state, SessionState::Idle | SessionState::Busy)
                    && sessions::adopt(
                        control,
                        &session,
                        driver.pid.unwrap_or_default() as u32,
                        driver.start_ticks.map(|t| t as u64),
                    )
                    .await =>
            {
                store.set_process_adopted(driver.id).await?;
                store
                    .add_event(
                        "adopted",
                        &format!("session {}", session.id),
                        "its driver was still running after a restart",
                    )
                    .await?;
                tracing::info!(session = %session.id, "adopted session after restart");
            }
            other => {
                if let Some(driver) = other {
                    reap(control, &driver).await?;
                }
                store
                    .set_session_state(
                        session.id,
                        SessionState::Dead,
                        Some("its driver or cluster was lost while the server was down"),
                    )
                    .await?;
                store
                    .add_event(
                        "reaped",
                        &format!("session {}", session.id),
                        "its driver or cluster was gone after a restart",
                    )
                    .await?;
            }
        }
    }

    // Processes of owners that no longer need them.
    for (_, processes) in alive_by_owner {
        for process in processes {
            reap(control, &process).await?;
            store
                .add_event(
                    "reaped",
                    &format!("process {}", process.id),
                    &format!(
                        "{} of {} {} was left running",
                        process.role, process.owner_kind, process.owner_id
                    ),
                )
                .await?;
        }
    }

    // Adopted serverless clusters that no job or session holds are idle: the teardown window
    // starts now. Attached pools are never idle: Spool does not tear them down.
    for id in adopted_clusters {
        if store.active_jobs_on_cluster(id).await? + store.active_sessions_on_cluster(id).await?
            == 0
        {
            store
                .set_cluster_state(id, ClusterState::Idle, None)
                .await?;
        }
    }
    Ok(())
}
