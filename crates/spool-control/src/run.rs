//! Running one job: runtime, cluster, driver, and how it ended.

use spool_core::{ClusterId, JobId, JobStatus, Owner, ProcessOutcome};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use spool_spark::{Main, Submit};
use spool_spec::{ConfValue, Entry, JobSpec};
use spool_store::{JobRow, Store};
use spool_supervisor::{Exit, ProcessSpec};
use tokio::sync::watch;

use crate::environments;
use crate::job_setup::{self, check_canceled};
use crate::metrics::StartKind;
use crate::{Control, Launch, LogError, datastore, spark};

/// Time a canceled driver gets to stop its SparkContext (which frees the executors) before it
/// is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(3);

/// Registers a job this server runs and returns its cancel switch (already on when a cancel was
/// requested before).
pub(crate) fn track(control: &Control, job_id: JobId, canceled: bool) -> watch::Receiver<bool> {
    let (cancel_tx, cancel_rx) = watch::channel(canceled);
    control
        .inner()
        .running
        .lock()
        .expect("running map lock")
        .insert(job_id, cancel_tx);
    cancel_rx
}

/// Runs a placed job to its end, then hands its cluster back.
pub(crate) async fn run_job(
    control: Control,
    job_id: JobId,
    cluster_id: ClusterId,
    warm: bool,
    mut cancel: watch::Receiver<bool>,
) {
    let result = drive(&control, job_id, cluster_id, warm, &mut cancel).await;
    let mut cluster_broken = false;
    if let Err(e) = result {
        let canceled = *cancel.borrow();
        let canceled =
            canceled.then_some((JobStatus::Canceled, "canceled before the driver started"));
        cluster_broken = canceled.is_none() && !warm;
        job_setup::record_unstarted(&control, job_id, canceled, &e, "its driver ran").await;
    }
    finish(&control, job_id, cluster_id, cluster_broken).await;
}

pub(crate) async fn finish(
    control: &Control,
    job_id: JobId,
    cluster_id: ClusterId,
    cluster_broken: bool,
) {
    control
        .inner()
        .running
        .lock()
        .expect("running map lock")
        .remove(&job_id);
    let broken = cluster_broken.then_some("its first job failed during start-up");
    control.provisioner().hand_back(cluster_id, broken).await;
    // Spark sets plain modes on what it writes (0755 folders); the roles' ACLs are put back
    // where the job could write.
    if let Ok(Some(job)) = control.store().job(job_id).await
        && job.enforced
    {
        control
            .sync_datastore_acls(Some(&job.runs_as))
            .await
            .log_error("set the datastores' ACLs after a job");
    }
    control.inner().pipeline_wake.notify_one();
}

async fn drive(
    control: &Control,
    job_id: JobId,
    cluster_id: ClusterId,
    warm: bool,
    cancel: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let store = control.store();
    let job = store
        .job(job_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job {job_id} vanished"))?;
    let launch: Launch = serde_json::from_str(job.launch_json.as_deref().unwrap_or("null"))?;
    let spec: JobSpec = serde_json::from_str(&job.spec_json)?;
    let sizing =
        Control::job_sizing(&job).ok_or_else(|| anyhow::anyhow!("stored sizing is unreadable"))?;

    let runtime = job_setup::ensure_runtime(control, &job, cancel).await?;
    job_setup::copy_working_folder(control, &launch, Some(&spec.code))?;
    // The driver runs as the job's principal, in a working copy that is that account's.
    let account = job_setup::working_account(control, &job, &launch).await?;
    // The job's environment: its driver and executors run the environment's Python; the cluster
    // (master, worker) stays on the runtime's.
    let driver_env =
        job_setup::prepare_environment(control, &job, &launch, &runtime, cancel).await?;
    let (python, driver_runtime) =
        environments::driver_python(control, &runtime, driver_env.as_ref(), cluster_id).await;
    check_canceled(cancel)?;

    let cluster_row = store
        .cluster(cluster_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("cluster {cluster_id} vanished"))?;
    if warm {
        store
            .set_job_status(
                job_id,
                JobStatus::Provisioning,
                Some(&format!("reusing warm cluster {cluster_id}")),
            )
            .await?;
    } else {
        store
            .set_job_status(
                job_id,
                JobStatus::Provisioning,
                Some(&format!(
                    "starting Spark master and worker of cluster {cluster_id}"
                )),
            )
            .await?;
        control
            .provisioner()
            .start_cluster(&cluster_row, &runtime)
            .await?;
    }
    check_canceled(cancel)?;
    let cluster_row = store
        .cluster(cluster_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("cluster {cluster_id} vanished"))?;
    let master_url = cluster_row
        .master_url
        .ok_or_else(|| anyhow::anyhow!("cluster {cluster_id} has no master"))?;

    // On an isolated cluster the driver runs in the cluster's namespace, at its address.
    let net = control.provisioner().cluster_net(cluster_id).await?;
    let ui_port = spark::free_port()?;
    // Users reach an isolated driver's UI only through the server: the view links there.
    let ui = crate::spark_ui::driver_ui(&net, ui_port, &control.job_dir(&job.name), || {
        crate::spark_ui::job_ui_path(&job.name)
    })?;
    let driver_logs = launch.log_dir.join("azureml").join("driver");
    let properties = control.provisioner().auth_properties(cluster_id);
    let mut spec_for_driver = driver_spec(
        &job,
        &spec,
        &sizing,
        &launch,
        &driver_runtime.spark_install(&net.address),
        &master_url,
        ui_port,
        &driver_logs,
        &python,
        properties.as_deref(),
    );
    spec_for_driver.run_as = account
        .as_ref()
        .map(|account| control.inner().accounts.run_as(account, &launch.work_dir));
    spec_for_driver.netns = net.netns;
    let spawned = control
        .provisioner()
        .launch(Owner::Job(job_id), "driver", &spec_for_driver)
        .await?;
    store
        .set_job_launch(
            job_id,
            job.launch_json.as_deref().unwrap_or("null"),
            &ui.url,
        )
        .await?;
    store
        .set_job_status(job_id, JobStatus::Starting, Some("driver starting"))
        .await?;
    let pid = spawned.pid;
    let start = if job.compute != "serverless" {
        StartKind::Pool
    } else if warm {
        StartKind::Warm
    } else {
        StartKind::Cold
    };
    let (exit, canceled) = watch_driver(
        control,
        &job,
        pid,
        spawned.wait(),
        cancel,
        &driver_logs,
        Some(start),
    )
    .await;
    conclude(
        control,
        &job,
        Some(cluster_id),
        exit,
        canceled,
        &driver_logs,
    )
    .await;
    Ok(())
}

/// The job's driver: its sizing, conf and files from the spec, its code from its working copy.
#[allow(clippy::too_many_arguments)]
fn driver_spec(
    job: &JobRow,
    spec: &JobSpec,
    sizing: &spool_spec::SparkSizing,
    launch: &Launch,
    install: &spool_spark::Install,
    master_url: &str,
    ui_port: u16,
    log_dir: &Path,
    python: &spool_spark::PythonSetup,
    properties_file: Option<&Path>,
) -> ProcessSpec {
    let work = &launch.work_dir;
    let in_work = |rel: &String| -> PathBuf {
        datastore::resolve_inside(work, rel).unwrap_or_else(|_| work.join(rel))
    };
    let in_work_all = |list: &[String]| -> Vec<PathBuf> { list.iter().map(in_work).collect() };
    let user_conf: BTreeMap<String, String> = spec
        .conf
        .iter()
        .map(|(key, value)| {
            let value = match value {
                ConfValue::Str(s) => s.clone(),
                other => other.to_spark(),
            };
            (key.clone(), value)
        })
        .collect();
    let main = match &spec.entry {
        Entry::File(file) => Main::Python {
            file: in_work(file),
            jars: in_work_all(&spec.jars),
            args: launch.argv.clone(),
        },
        Entry::ClassName(class_name) => {
            let (primary, rest) = spec.jars.split_first().expect("class_name jobs have jars");
            Main::Jvm {
                class_name: class_name.clone(),
                jar: in_work(primary),
                jars: in_work_all(rest),
                args: launch.argv.clone(),
            }
        }
    };
    let command = spool_spark::submit(
        install,
        &Submit {
            master_url,
            app_name: &job.display_name,
            sizing,
            ui_port,
            python,
            user_conf: &user_conf,
            py_files: &in_work_all(&spec.py_files),
            files: &in_work_all(&spec.files),
            archives: &in_work_all(&spec.archives),
            main: &main,
            properties_file,
            connect: None,
        },
    );
    spark::process(command, work, log_dir)
}

/// Waits for a driver to end, moving the job to Running once the master accepted it, and
/// stopping the driver when the job is canceled. Returns how it ended and whether it was
/// canceled.
pub(crate) async fn watch_driver(
    control: &Control,
    job: &JobRow,
    pid: u32,
    wait: impl Future<Output = Exit>,
    cancel: &mut watch::Receiver<bool>,
    driver_logs: &Path,
    start: Option<StartKind>,
) -> (Exit, bool) {
    let note_app_id = |canceled| note_app_id(control, job, driver_logs, canceled, start);
    let mut wait = std::pin::pin!(wait);
    let mut app_seen = job.spark_app_id.is_some();
    let mut canceled = *cancel.borrow();
    if canceled {
        tokio::spawn(spool_supervisor::stop_group(pid, CANCEL_GRACE));
    }
    loop {
        tokio::select! {
            exit = &mut wait => {
                if !app_seen {
                    note_app_id(canceled).await;
                }
                return (exit, canceled);
            }
            changed = cancel.changed(), if !canceled => {
                if changed.is_err() || *cancel.borrow() {
                    canceled = true;
                    tokio::spawn(spool_supervisor::stop_group(pid, CANCEL_GRACE));
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(200)), if !app_seen => {
                app_seen = note_app_id(canceled).await;
            }
        }
    }
}

/// Records the job's application id and `Running` once the driver logged it; `start` says how
/// the job started, for the start-time metric (none for a driver adopted after a restart).
async fn note_app_id(
    control: &Control,
    job: &JobRow,
    driver_logs: &Path,
    canceled: bool,
    start: Option<StartKind>,
) -> bool {
    let store = control.store();
    let stderr = datastore::read_log(driver_logs, "stderr");
    match spool_spark::find_app_id(&stderr) {
        Some(app_id) => {
            store
                .set_job_app_id(job.id, &app_id)
                .await
                .log_error("record the job's application id");
            if !canceled {
                let running = store
                    .set_job_status(job.id, JobStatus::Running, None)
                    .await
                    .log_error("record the job's status");
                if running == Some(true)
                    && let Some(kind) = start
                {
                    store
                        .set_job_start_kind(job.id, kind)
                        .await
                        .log_error("record how the job started");
                    control
                        .metrics()
                        .job_started(kind, crate::metrics::since(&job.created_at));
                }
            }
            true
        }
        None => false,
    }
}

/// Records how a job ended: collects executor logs, then Completed, Failed or Canceled.
pub(crate) async fn conclude(
    control: &Control,
    job: &JobRow,
    cluster_id: Option<ClusterId>,
    exit: Exit,
    canceled: bool,
    driver_logs: &Path,
) {
    let store = control.store();
    let outcome = if canceled {
        ProcessOutcome::Stopped
    } else {
        ProcessOutcome::Exited
    };
    control
        .provisioner()
        .record_ended(Owner::Job(job.id), |_| true, outcome, exit.code())
        .await;
    // Read before `Finalizing` replaces it: why the job is being canceled, if it is.
    let cancel_why = cancel_reason(store, job.id).await;
    store
        .set_job_status(job.id, JobStatus::Finalizing, None)
        .await
        .log_error("record the job's status");
    if let Some(cluster_id) = cluster_id
        && let Ok(Some(job_now)) = store.job(job.id).await
        && let Some(app_id) = &job_now.spark_app_id
    {
        let work = control
            .data_dir()
            .join("clusters")
            .join(cluster_id.to_string())
            .join("work");
        if work.join(app_id).is_dir()
            && let Err(e) = copy_logs(&work, app_id, &control.job_log_dir(job))
        {
            tracing::warn!(job = %job.name, error = %e, "copy executor logs");
        }
    }
    let server_stopping = *control.inner().shutdown.borrow();
    if canceled && server_stopping {
        // Stopped with the server, not by its user: a failure, whose reason the shutdown
        // recorded as the job's error.
        store
            .set_job_status(job.id, JobStatus::Failed, Some("the server stopped"))
            .await
            .log_error("record the job's status");
        tracing::info!(job = %job.name, "job stopped with the server");
    } else if canceled {
        store
            .set_job_status(job.id, JobStatus::Canceled, Some(&cancel_why))
            .await
            .log_error("record the job's status");
        tracing::info!(job = %job.name, "job canceled");
    } else if exit.success() {
        store
            .set_job_status(job.id, JobStatus::Completed, None)
            .await
            .log_error("record the job's status");
        tracing::info!(job = %job.name, "job completed");
    } else {
        let error = match (driver_failure(driver_logs), exit) {
            (Some(error), _) => error,
            (None, Exit::Code(code)) => {
                format!("the driver exited with code {code}; see logs/azureml/driver/stderr")
            }
            (None, Exit::Signal(signal)) => format!("the driver was ended by signal {signal}"),
            (None, Exit::Unknown) => {
                "the driver ended while no server watched it, and its exit status is unknown"
                    .to_string()
            }
        };
        let error = match store.job(job.id).await {
            Ok(Some(now)) if now.enforced => explain_denial(&error, &now.runs_as),
            _ => error,
        };
        store
            .set_job_error(job.id, &error)
            .await
            .log_error("record the job's error");
        store
            .set_job_status(job.id, JobStatus::Failed, None)
            .await
            .log_error("record the job's status");
        tracing::info!(job = %job.name, %error, "job failed");
    }
}

/// Why a job being canceled is: the reason recorded with `CancelRequested` (a pipeline that
/// stops its nodes says why), else its user's request.
pub(crate) async fn cancel_reason(store: &Store, job_id: JobId) -> String {
    match store.job(job_id).await {
        Ok(Some(job)) if job.status == JobStatus::CancelRequested => job.status_reason,
        _ => None,
    }
    .unwrap_or_else(|| "canceled by the user".to_string())
}

/// The error a driver whose logs are in `driver_logs` died of, if its logs say: PySpark's
/// runner (and the session REPL) put Python's traceback on stdout; JVM errors go to stderr.
pub(crate) fn driver_failure(driver_logs: &Path) -> Option<String> {
    ["stdout", "stderr"]
        .into_iter()
        .find_map(|name| spool_spark::driver_error(&datastore::read_log(driver_logs, name)))
}

/// A driver error that is the operating system refusing a path says who was refused and why:
/// the job ran under its principal's OS account, which only its data roles open.
pub(crate) fn explain_denial(error: &str, runs_as: &str) -> String {
    let denied = [
        "Permission denied",
        "AccessDeniedException",
        "PermissionError",
    ];
    if !denied.iter().any(|d| error.contains(d)) {
        return error.to_string();
    }
    let principal = runs_as.replace(':', " `");
    format!(
        "{error}\nthe job ran as {principal}`, and the operating system let it open only the datastore paths its data roles cover\nhint: `spool role assignment list` shows the roles; an Owner grants one with `spool role assignment create --assignee <name> --role \"Storage Blob Data Reader\" --scope azureml://datastores/<datastore>`"
    )
}

/// Copies the executors' logs of application `app_id` from the worker's work dir into the job's
/// log dir (`azureml/executors/<id>/`).
fn copy_logs(work: &Path, app_id: &str, log_dir: &Path) -> std::io::Result<()> {
    // Executor dirs hold logs and the files Spark shipped; keep only the logs. Executors run the
    // job's code, which can plant symlinks in both trees: neither is followed out.
    let executors = datastore::UserTree::open(work)?.subtree(Path::new(app_id))?;
    let logs = datastore::UserTree::open(log_dir)?;
    for executor in executors.folders()? {
        let target = Path::new("azureml/executors").join(&executor);
        for name in ["stdout", "stderr"] {
            // Missing, or not a regular file inside: nothing to collect.
            let Ok(mut source) = executors.open_file(&Path::new(&executor).join(name)) else {
                continue;
            };
            logs.create_dir_all(&target)?;
            std::io::copy(&mut source, &mut logs.create_file(&target.join(name))?)?;
        }
    }
    Ok(())
}

/// Follows a driver a previous server started (adopted after a restart) to its end.
pub(crate) async fn follow_adopted(
    control: Control,
    job: JobRow,
    pid: u32,
    ticks: Option<u64>,
    exit_dir: PathBuf,
    cluster_id: Option<ClusterId>,
    mut cancel: watch::Receiver<bool>,
) {
    let driver_logs = control.job_log_dir(&job).join("azureml").join("driver");
    // The exit file is in the process's own log folder (a pre-warmed driver's is its session's).
    let wait = spool_supervisor::wait_adopted(pid, ticks, &exit_dir);
    let (exit, canceled) =
        watch_driver(&control, &job, pid, wait, &mut cancel, &driver_logs, None).await;
    conclude(&control, &job, cluster_id, exit, canceled, &driver_logs).await;
    match cluster_id {
        Some(cluster_id) => finish(&control, job.id, cluster_id, false).await,
        None => {
            control
                .inner()
                .running
                .lock()
                .expect("running map lock")
                .remove(&job.id);
        }
    }
}
