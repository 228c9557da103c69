//! Batch jobs on pre-warmed drivers: a Spark job whose runtime, environment, identity, size and
//! start-time settings match the pool's takes a pre-warmed session's driver (its SparkContext
//! up, executors registered, a warm-up job run), which runs the job's entry file as `__main__`
//! with what `spark-submit` would have given it, then exits with its exit code and is never
//! reused. Everything else runs with its own `spark-submit`, and the job says why.
//!
//! [`fit`] decides (pure); [`take`] claims a driver for a job; [`run_job`] runs it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use spool_core::{ClusterId, DriverPath, JobId, JobStatus, Owner, ProcessState, SessionId};
use spool_spec::{ConfValue, Entry, JobSpec, SparkSizing};
use spool_store::JobRow;
use spool_supervisor::Exit;
use tokio::sync::watch;

use crate::job_setup::{self, check_canceled};
use crate::{Control, Launch, datastore, run, sessions};

/// A job's settings a warm driver cannot take once its SparkContext runs: it asks for its own
/// `spark-submit` with this conf set to `false`.
pub(crate) const WARM_DRIVER_CONF: &str = "spark.spool.warmDriver";

/// `spark.sql.*` settings that are fixed when the session starts (static SQL conf): a job
/// setting any of them runs with `spark-submit`.
const STATIC_SQL: &[&str] = &[
    "spark.sql.broadcastExchange.maxThreadThreshold",
    "spark.sql.cache.serializer",
    "spark.sql.catalogImplementation",
    "spark.sql.codegen.cache.maxEntries",
    "spark.sql.defaultUrlStreamHandlerFactory.enabled",
    "spark.sql.event.truncate.length",
    "spark.sql.extensions",
    "spark.sql.globalTempDatabase",
    "spark.sql.legacy.sessionInitWithConfigDefaults",
    "spark.sql.metadataCacheTTLSeconds",
    "spark.sql.queryExecutionListeners",
    "spark.sql.resultQueryStage.maxThreadThreshold",
    "spark.sql.sources.disabledJdbcConnProviderList",
    "spark.sql.streaming.streamingQueryListeners",
    "spark.sql.streaming.ui.enabled",
    "spark.sql.streaming.ui.retainedProgressUpdates",
    "spark.sql.streaming.ui.retainedQueries",
    "spark.sql.subquery.maxThreadThreshold",
    "spark.sql.ui.retainedExecutions",
    "spark.sql.warehouse.dir",
];

/// Prefixes of `spark.sql.*` settings read once, when a catalog or the metastore client is
/// made: treated as fixed at start.
const STATIC_SQL_PREFIXES: &[&str] = &["spark.sql.hive.", "spark.sql.catalog."];

/// Keys that only size the job: compared as its sizing, not as settings.
const SIZING: &[&str] = &[
    spool_spec::DRIVER_CORES,
    spool_spec::DRIVER_MEMORY,
    spool_spec::EXECUTOR_CORES,
    spool_spec::EXECUTOR_MEMORY,
    spool_spec::EXECUTOR_INSTANCES,
    spool_spec::DA_ENABLED,
    spool_spec::DA_MIN,
    spool_spec::DA_MAX,
];

/// What a job asks for, as far as a warm driver cares.
pub(crate) struct Ask<'a> {
    pub runtime: &'a str,
    /// `serverless` or an attached pool's name.
    pub compute: &'a str,
    /// Whether it names an environment (a conda file).
    pub environment: bool,
    pub sizing: &'a SparkSizing,
    pub spec: &'a JobSpec,
}

/// What the pre-warmed drivers are.
pub(crate) struct Pool<'a> {
    pub runtime: &'a str,
    pub sizing: &'a SparkSizing,
    /// How many the server keeps (`--prewarm`).
    pub size: u32,
}

/// Whether a job can run on a pre-warmed driver: the settings to apply to the session before
/// its entry runs, or why it runs with its own `spark-submit`.
pub(crate) fn fit(ask: &Ask, pool: &Pool) -> Result<BTreeMap<String, String>, String> {
    if pool.size == 0 {
        return Err("the server keeps no pre-warmed drivers (`--prewarm 0`)".into());
    }
    if ask.compute != "serverless" {
        return Err(format!("it runs on attached pool `{}`", ask.compute));
    }
    if let Entry::ClassName(class) = &ask.spec.entry {
        return Err(format!(
            "a JVM job (`entry.class_name: {class}`) starts its own JVM"
        ));
    }
    if ask.runtime != pool.runtime {
        return Err(format!(
            "pre-warmed drivers run runtime {}, the job asks for {}",
            pool.runtime, ask.runtime
        ));
    }
    if ask.environment {
        return Err(
            "it names an environment; pre-warmed drivers run the runtime's own Python".into(),
        );
    }
    if ask.sizing != pool.sizing {
        return Err(format!(
            "it asks for {}; pre-warmed drivers have {}",
            describe(ask.sizing),
            describe(pool.sizing)
        ));
    }
    if !ask.spec.jars.is_empty() {
        return Err("`jars` join the driver's class path when it starts".into());
    }
    if !ask.spec.archives.is_empty() {
        return Err("`archives` are unpacked when the driver starts".into());
    }
    let mut conf = BTreeMap::new();
    for (key, value) in &ask.spec.conf {
        let value = match value {
            ConfValue::Str(s) => s.clone(),
            other => other.to_spark(),
        };
        if key == WARM_DRIVER_CONF {
            if value.eq_ignore_ascii_case("false") {
                return Err(format!("`{WARM_DRIVER_CONF}: false` asks for spark-submit"));
            }
            continue;
        }
        if SIZING.contains(&key.as_str()) {
            continue;
        }
        if key == "spark.submit.deployMode" {
            return Err("`spark.submit.deployMode` is a spark-submit setting".into());
        }
        let runtime_settable = key.starts_with("spark.sql.")
            && !STATIC_SQL.contains(&key.as_str())
            && !STATIC_SQL_PREFIXES.iter().any(|p| key.starts_with(p));
        if !runtime_settable {
            return Err(format!("`{key}` is fixed when the SparkContext starts"));
        }
        conf.insert(key.clone(), value);
    }
    Ok(conf)
}

/// A sizing as a reason shows it.
fn describe(s: &SparkSizing) -> String {
    let executors = match s.dynamic_allocation {
        Some(da) => format!(
            "{}–{} executors (dynamic allocation)",
            da.min_executors, da.max_executors
        ),
        None => format!("{} executor(s)", s.executor_instances),
    };
    format!(
        "a {}-core {} driver and {executors} of {} core(s), {}",
        s.driver_cores, s.driver_memory, s.executor_cores, s.executor_memory
    )
}

/// What [`take`] found for a waiting job.
pub(crate) enum Taken {
    /// The job now holds a pre-warmed driver and its cluster; its runner is started.
    Driver,
    /// It runs with `spark-submit`; placement goes on as for any job.
    SparkSubmit,
}

/// Gives a waiting Spark job a pre-warmed driver when it fits one and one is ready, starting
/// its runner; otherwise records why it runs with `spark-submit` (only when that changed).
pub(crate) async fn take(control: &Control, job: &JobRow) -> crate::Result<Taken> {
    let store = control.store();
    let decided = match (
        serde_json::from_str::<JobSpec>(&job.spec_json),
        Control::job_sizing(job),
    ) {
        (Ok(spec), Some(sizing)) => {
            // The pool of the job's runtime and shape; else, for the reason, the first of its
            // runtime, else the first.
            let pools = control.config().prewarm_pools();
            let pool = crate::prewarm::pool_for(&pools, &job.runtime, &sizing)
                .or_else(|| pools.iter().find(|p| p.runtime == job.runtime))
                .or(pools.first());
            let empty = crate::config::PrewarmPool {
                runtime: spool_runtime::DEFAULT_RUNTIME.to_string(),
                sizing: crate::config::default_prewarm_sizing(),
                size: 0,
            };
            let pool = pool.unwrap_or(&empty);
            fit(
                &Ask {
                    runtime: &job.runtime,
                    compute: &job.compute,
                    environment: job.environment_json.is_some(),
                    sizing: &sizing,
                    spec: &spec,
                },
                &Pool {
                    runtime: &pool.runtime,
                    sizing: &pool.sizing,
                    size: pool.size,
                },
            )
            .map(|conf| (conf, serde_json::to_string(&sizing).unwrap_or_default()))
        }
        _ => Err("its stored spec is unreadable".into()),
    };
    let reason = match decided {
        Ok((_, sizing_json)) => {
            let same_account = control.inner().accounts.enforced();
            match store
                .claim_prewarmed_driver_for_job(&job.runtime, &sizing_json, job, same_account)
                .await?
            {
                Some((session_id, cluster_id)) => {
                    start(control, job, session_id, cluster_id).await?;
                    return Ok(Taken::Driver);
                }
                None => "no pre-warmed driver was ready for it".to_string(),
            }
        }
        Err(reason) => reason,
    };
    if job.driver_reason.as_deref() != Some(reason.as_str()) {
        store
            .set_job_driver_path(job.id, DriverPath::SparkSubmit, &reason)
            .await?;
    }
    Ok(Taken::SparkSubmit)
}

async fn start(
    control: &Control,
    job: &JobRow,
    session_id: SessionId,
    cluster_id: ClusterId,
) -> crate::Result<()> {
    let store = control.store();
    store
        .set_job_status(
            job.id,
            JobStatus::Preparing,
            Some(&format!("on the pre-warmed driver of session {session_id}")),
        )
        .await?;
    let cancel = run::track(control, job.id, false);
    tracing::info!(job = %job.name, session = %session_id, cluster = %cluster_id, "job placed on a pre-warmed driver");
    // The pool refills (once no user work is starting).
    control.inner().prewarm_wake.notify_one();
    tokio::spawn(run_job(
        control.clone(),
        job.id,
        session_id,
        cluster_id,
        cancel,
    ));
    Ok(())
}

/// Runs a job on the pre-warmed driver it took, to its end, then hands the cluster back.
async fn run_job(
    control: Control,
    job_id: JobId,
    session_id: SessionId,
    cluster_id: ClusterId,
    mut cancel: watch::Receiver<bool>,
) {
    let result = drive(&control, job_id, session_id, cluster_id, &mut cancel).await;
    if let Err(e) = result {
        // The driver may have been handed the job or not: either way it is not reused.
        stop_driver(&control, job_id).await;
        let canceled = *cancel.borrow();
        let canceled =
            canceled.then_some((JobStatus::Canceled, "canceled before the driver started"));
        crate::job_setup::record_unstarted(
            &control,
            job_id,
            canceled,
            &e,
            "its warm driver ran it",
        )
        .await;
    }
    run::finish(&control, job_id, cluster_id, false).await;
}

/// The job's driver process (the pre-warmed session's, now the job's): pid, start ticks and
/// log folder.
async fn driver_process(
    control: &Control,
    job_id: JobId,
) -> anyhow::Result<(u32, Option<u64>, PathBuf)> {
    control
        .store()
        .processes_of(Owner::Job(job_id))
        .await?
        .into_iter()
        .find(|p| p.role == "driver" && p.state != ProcessState::Ended)
        .and_then(|p| {
            Some((
                p.pid? as u32,
                p.start_ticks.map(|t| t as u64),
                PathBuf::from(p.log_dir),
            ))
        })
        .ok_or_else(|| anyhow::anyhow!("the pre-warmed driver is no longer running"))
}

async fn stop_driver(control: &Control, job_id: JobId) {
    if let Ok((pid, _, _)) = driver_process(control, job_id).await {
        spool_supervisor::stop_group(pid, control.config().stop_grace).await;
    }
    control
        .provisioner()
        .record_ended(
            Owner::Job(job_id),
            |_| true,
            spool_core::ProcessOutcome::Stopped,
            None,
        )
        .await;
}

async fn drive(
    control: &Control,
    job_id: JobId,
    session_id: SessionId,
    cluster_id: ClusterId,
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
    // Decided at placement; asked again for the settings to apply.
    let conf = fit(
        &Ask {
            runtime: &job.runtime,
            compute: &job.compute,
            environment: false,
            sizing: &sizing,
            spec: &spec,
        },
        &Pool {
            runtime: &job.runtime,
            sizing: &sizing,
            size: 1,
        },
    )
    .map_err(|reason| anyhow::anyhow!("the job no longer fits a warm driver: {reason}"))?;
    let repl = sessions::hand_over(control, session_id)
        .await
        .ok_or_else(|| {
            anyhow::anyhow!("the pre-warmed driver of session {session_id} is no longer connected")
        })?;

    job_setup::copy_working_folder(control, &launch, Some(&spec.code))?;
    let account = job_setup::working_account(control, &job, &launch).await?;
    // The driver runs as the job's principal: its log files are that account's to write.
    let driver_logs = launch.log_dir.join("azureml").join("driver");
    std::fs::create_dir_all(&driver_logs)?;
    for name in ["stdout", "stderr"] {
        std::fs::File::create(driver_logs.join(name))?;
    }
    if let Some(account) = &account {
        crate::accounts::give_tree(&driver_logs, account)?;
    }
    check_canceled(cancel)?;

    let session = store
        .session(session_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("session {session_id} vanished"))?;
    if let Some(app_id) = &session.spark_app_id {
        store.set_job_app_id(job_id, app_id).await?;
    }
    let ui_url = job_ui(control, &job, &session);
    store
        .set_job_launch(
            job_id,
            job.launch_json.as_deref().unwrap_or("null"),
            &ui_url,
        )
        .await?;
    let (pid, ticks, process_logs) = driver_process(control, job_id).await?;
    // Pre-warmed drivers run at a lower CPU priority; a job's runs at the normal one.
    control.raise_job_priority(job_id, cluster_id).await;
    store
        .set_job_status(
            job_id,
            JobStatus::Starting,
            Some("handing the job's entry to the pre-warmed driver"),
        )
        .await?;

    let work = &launch.work_dir;
    let in_work = |rel: &String| -> PathBuf {
        datastore::resolve_inside(work, rel).unwrap_or_else(|_| work.join(rel))
    };
    let Entry::File(file) = &spec.entry else {
        anyhow::bail!("a JVM job cannot run on a warm driver");
    };
    let entry = in_work(file);
    let mut argv = vec![entry.display().to_string()];
    argv.extend(launch.argv.iter().cloned());
    let log = driver_logs.join("stdout");
    // Spark's own log (the driver JVM's stderr) stays in the session's folder; the part written
    // from here on is the job's, copied to its `stderr` when it ends, as `spark-submit` has it.
    let jvm_log = process_logs.join("stderr");
    let jvm_log_from = std::fs::metadata(&jvm_log).map_or(0, |m| m.len());
    repl.run_main(&spool_repl::RunMain {
        file: &entry,
        argv,
        cwd: work,
        py_files: spec.py_files.iter().map(in_work).collect(),
        files: spec.files.iter().map(in_work).collect(),
        conf,
        log: &log,
    })
    .await?;
    let running = store
        .set_job_status(job_id, JobStatus::Running, None)
        .await?;
    let job = store
        .job(job_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job {job_id} vanished"))?;
    if running {
        store
            .set_job_start_kind(job_id, crate::metrics::StartKind::Prewarmed)
            .await?;
        control.metrics().job_started(
            crate::metrics::StartKind::Prewarmed,
            crate::metrics::since(&job.created_at),
        );
    }
    let wait = spool_supervisor::wait_adopted(pid, ticks, &process_logs);
    let (exit, canceled): (Exit, bool) =
        run::watch_driver(control, &job, pid, wait, cancel, &driver_logs, None).await;
    if let Err(e) = copy_from(&jvm_log, jvm_log_from, &driver_logs) {
        tracing::warn!(job = %job.name, error = %e, "copy the warm driver's Spark log");
    }
    run::conclude(
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

/// Copies `from` past its first `offset` bytes to `stderr` in the job's driver log folder
/// (the job's account's: never written through a link it put there).
fn copy_from(from: &Path, offset: u64, driver_logs: &Path) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut source = std::fs::File::open(from)?;
    source.seek(SeekFrom::Start(offset))?;
    let mut target = datastore::UserTree::open(driver_logs)?.create_file(Path::new("stderr"))?;
    std::io::copy(&mut source, &mut target)?;
    Ok(())
}

/// The job's Spark UI link: its driver's, through the job's own path when it is isolated.
fn job_ui(control: &Control, job: &JobRow, session: &spool_store::SessionRow) -> String {
    let shown = session.spark_ui_url.as_deref().unwrap_or_default();
    crate::spark_ui::link_to_session_ui(
        &control.session_dir(session.id),
        shown,
        &control.job_dir(&job.name),
        &job.name,
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests;
