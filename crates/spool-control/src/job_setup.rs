//! Setting a job up on this host before its process starts: the runtime, the job's environment
//! and its working copy, owned by the job's principal. The Spark runner (`run.rs`) and the
//! command runner (`command.rs`) both go through here, each in its own order.

use spool_core::{JobId, JobStatus, Owner};
use spool_runtime::{BuiltEnv, InstalledRuntime};
use spool_store::{JobRow, Store};
use tokio::sync::watch;

use crate::accounts::Account;
use crate::environments::{self, EnvRequest};
use crate::{Control, Launch, LogError, datastore};

/// Fails when the job was canceled meanwhile.
pub(crate) fn check_canceled(cancel: &watch::Receiver<bool>) -> anyhow::Result<()> {
    if *cancel.borrow() {
        anyhow::bail!("canceled");
    }
    Ok(())
}

/// Installs the job's runtime if it is not yet, each step the job's status reason.
pub(crate) async fn ensure_runtime(
    control: &Control,
    job: &JobRow,
    cancel: &watch::Receiver<bool>,
) -> anyhow::Result<InstalledRuntime> {
    let progress = StoreProgress {
        store: control.store().clone(),
        job_id: job.id,
        version: job.runtime.clone(),
    };
    let runtime = control
        .provisioner()
        .ensure_runtime(&job.runtime, &progress)
        .await
        .map_err(anyhow::Error::from)?;
    check_canceled(cancel)?;
    Ok(runtime)
}

/// Finds or builds the environment the job names, if it names one (`Preparing`, saying what is
/// installed and then how it went); a cancel stops the build.
pub(crate) async fn prepare_environment(
    control: &Control,
    job: &JobRow,
    launch: &Launch,
    runtime: &InstalledRuntime,
    cancel: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<BuiltEnv>> {
    let Some(json) = job.environment_json.as_deref() else {
        return Ok(None);
    };
    let store = control.store();
    let request: EnvRequest = serde_json::from_str(json)?;
    store
        .set_job_status(
            job.id,
            JobStatus::Preparing,
            Some(&format!(
                "preparing environment from `{}`: {}",
                request.file,
                request.conda.requirements.join(" ")
            )),
        )
        .await?;
    let log = launch
        .log_dir
        .join("azureml")
        .join("library_manager")
        .join("environment.log");
    let (env, cached) = tokio::select! {
        result = control.prepare_env(Owner::Job(job.id), runtime, &request, &log) => result?,
        _ = cancel.changed() => anyhow::bail!("canceled"),
    };
    store
        .set_job_environment(job.id, &environments::with_key(&request, &env))
        .await?;
    store
        .set_job_status(
            job.id,
            JobStatus::Preparing,
            Some(&environments::ready_message(&env, cached)),
        )
        .await?;
    Ok(Some(env))
}

/// Makes the job's own working copy of its code snapshot in `launch.work_dir`, replacing any
/// earlier one (an empty folder for a job without code).
pub(crate) fn copy_working_folder(
    control: &Control,
    launch: &Launch,
    code: Option<&str>,
) -> anyhow::Result<()> {
    let snapshot = code
        .map(|code| control.snapshot_dir(code))
        .transpose()
        .map_err(anyhow::Error::from)?;
    let _ = std::fs::remove_dir_all(&launch.work_dir);
    match snapshot {
        Some(snapshot) => datastore::copy_tree(&snapshot, &launch.work_dir)?,
        None => std::fs::create_dir_all(&launch.work_dir)?,
    }
    Ok(())
}

/// The OS account the job runs as (made if it is new), now owning the working copy, or `None`
/// when access is not enforced; records which of the two it is on the job.
pub(crate) async fn working_account(
    control: &Control,
    job: &JobRow,
    launch: &Launch,
) -> anyhow::Result<Option<Account>> {
    let account = control.inner().accounts.ensure(&job.runs_as).await?;
    if let Some(account) = &account {
        crate::accounts::give_tree(&launch.work_dir, account)?;
    }
    control
        .store()
        .set_job_enforced(job.id, account.is_some())
        .await?;
    Ok(account)
}

/// Reports the steps of a runtime install as the job's status reason.
struct StoreProgress {
    store: Store,
    job_id: JobId,
    version: String,
}

impl spool_runtime::Progress for StoreProgress {
    fn step(&self, index: u64, total: u64, message: &str) {
        let reason = format!(
            "installing runtime {} ({index}/{total}): {message}",
            self.version
        );
        tracing::info!(job_id = %self.job_id, "{reason}");
        let store = self.store.clone();
        let job_id = self.job_id;
        tokio::spawn(async move {
            store
                .set_job_reason(job_id, Some(&reason))
                .await
                .log_error("record the job's status reason");
        });
    }
}

/// Records the end of a job that failed or was canceled before its driver or command ran:
/// `canceled` gives the status and reason when it was canceled; otherwise it failed with
/// `error` (logged as a warning, `before` naming what never ran).
pub(crate) async fn record_unstarted(
    control: &Control,
    job_id: JobId,
    canceled: Option<(JobStatus, &str)>,
    error: &anyhow::Error,
    before: &str,
) {
    let store = control.store();
    match canceled {
        Some((status, reason)) => {
            store
                .set_job_status(job_id, status, Some(reason))
                .await
                .log_error("record the job's status");
        }
        None => {
            let message = format!("{error:#}");
            tracing::warn!(%job_id, error = %message, "job failed before {before}");
            store
                .set_job_error(job_id, &message)
                .await
                .log_error("record the job's error");
            store
                .set_job_status(job_id, JobStatus::Failed, None)
                .await
                .log_error("record the job's status");
        }
    }
}
