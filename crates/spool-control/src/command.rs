//! Command jobs (`type: command`): checked and recorded at submit like Spark jobs, started by
//! the scheduler without a cluster (at most `[jobs] max_command_steps` at once), and run as one
//! supervised process on this host: `/bin/sh -c <bound command>` in a fresh copy of the code
//! snapshot, as the principal's OS account, with the environment's Python first on `PATH`.
//!
//! Lifecycle: `NotStarted` (or `Queued` for a free slot) → `Preparing` (runtime and environment)
//! → `Running` → `Completed`, `Failed` (the log's last line as the error; a timeout says so) or
//! `Canceled`. Its output (stdout and stderr together) is `logs/user_logs/std_log.txt`.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use spool_core::{JobId, JobKind, JobStatus, Owner, ProcessOutcome};
use spool_spec::{CommandSpec, IdentityKind};
use spool_store::{JobRow, NewJob, ProcessRow, StoreError};
use spool_supervisor::{Exit, ProcessSpec};
use tokio::sync::watch;

use crate::environments;
use crate::job_setup::{self, check_canceled};
use crate::{
    Action, Caller, Control, ControlError, Job, Launch, LogError, Result, datastore, identity,
    invalid, name_taken, names, run,
};

/// The process's role in the store.
const ROLE: &str = "command";
/// Time a canceled or timed-out command gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How much of the end of the log is read for the error of a failed command.
const LOG_TAIL_BYTES: u64 = 64 * 1024;

/// Where a command's output goes, inside the job's log dir (Azure ML's name for it).
const STD_LOG: &str = "user_logs/std_log.txt";

/// The folder of the command process's exit-code file, inside the job's log dir.
fn process_log_dir(log_dir: &Path) -> PathBuf {
    log_dir.join("azureml").join("command")
}

impl Control {
    /// Validates and records a command job; the scheduler starts it. Nothing is recorded when a
    /// check fails: the workspace role, the spec's rules, the conda file, the identity, the data
    /// roles on inputs (read) and outputs (write), and that inputs exist.
    pub async fn create_command_job(&self, owner: &Caller, spec: CommandSpec) -> Result<Job> {
        owner.require(Action::SubmitJobs)?;
        let name = match &spec.name {
            Some(name) => {
                if let Some(existing) = self.store().job_by_name(name).await? {
                    return Err(name_taken("job", name, existing.owner_id == owner.id));
                }
                name.clone()
            }
            None => names::job_name(),
        };
        let (new, _) = self
            .prepare_command_job(owner, &spec, name.clone(), &Default::default())
            .await?;
        let job = match self.store().insert_job(&new).await {
            Ok(job) => job,
            Err(StoreError::Conflict(_)) => {
                let mine = self
                    .store()
                    .job_by_name(&name)
                    .await?
                    .is_some_and(|j| j.owner_id == owner.id);
                return Err(name_taken("job", &name, mine));
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(job = %job.name, owner = %owner.name, "command job submitted");
        self.inner().wake.notify_one();
        Ok(self.job_view(job))
    }

    /// Everything `create_command_job` checks and fixes for a command job named `name`, short
    /// of recording it. Inputs in `produced` are written by an earlier pipeline node first.
    pub(crate) async fn prepare_command_job(
        &self,
        owner: &Caller,
        spec: &CommandSpec,
        name: String,
        produced: &std::collections::BTreeSet<String>,
    ) -> Result<(NewJob, Launch)> {
        spool_spec::check_command(spec).map_err(|diags| {
            let first = diags.first().map(|d| d.field.clone()).unwrap_or_default();
            let text: Vec<String> = diags.iter().map(|d| d.render("job")).collect();
            invalid(first, text.join("\n"))
        })?;
        // A command runs in the default runtime's Python, or an environment layered on it.
        let runtime = self.spec_catalog().default_runtime;
        let environment = match &spec.environment {
            Some(env) => {
                let value = serde_json::to_value(env).map_err(anyhow::Error::from)?;
                let (file, text) = environments::conda_from_job(&value)?;
                Some(
                    self.check_conda(&runtime, &file, &text, false, "environment.conda_file")
                        .await?,
                )
            }
            None => None,
        };
        if let Some(code) = &spec.code {
            self.snapshot_dir(code)?;
        }
        let compute = identity::Compute::Serverless {
            workspace: self.workspace_identities().await?,
        };
        let principal = identity::resolve(
            spec.identity,
            &spec.identity_selector,
            &compute,
            &owner.name,
        )
        .map_err(|m| invalid("identity", m))?;
        let data = self.principal_access(owner, &principal).await?;
        let resolved = self
            .resolve_data(&data, &name, &spec.inputs, &spec.outputs, produced)
            .await?;
        let inputs = resolved
            .inputs
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        let bound = spool_spec::bind_command(&spec.command, &inputs, &resolved.outputs)
            .map_err(|m| invalid("command", m))?;
        let job_dir = self.job_dir(&name);
        let launch = Launch {
            argv: vec![bound],
            outputs: resolved.output_uris,
            work_dir: job_dir.join("work"),
            log_dir: job_dir.join("logs"),
        };
        let new = NewJob {
            name: name.clone(),
            kind: JobKind::Command,
            owner_id: owner.id,
            display_name: spec.display_name.clone().unwrap_or_else(|| name.clone()),
            experiment_name: spec
                .experiment_name
                .clone()
                .unwrap_or_else(|| "Default".into()),
            status: JobStatus::NotStarted,
            spec_json: json(spec)?,
            // A command holds no Spark driver or executors.
            sizing_json: "null".into(),
            runtime,
            compute: "serverless".into(),
            identity: spec
                .identity
                .unwrap_or(IdentityKind::UserIdentity)
                .as_str()
                .to_string(),
            principal: principal.name().to_string(),
            runs_as: principal.key(),
            launch_json: Some(json(&launch)?),
            environment_json: environment.as_ref().map(json).transpose()?,
        };
        Ok((new, launch))
    }
}

/// What a job row stores, as JSON.
fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| ControlError::Internal(e.into()))
}

/// What the scheduler does with waiting command jobs: start the oldest while fewer than
/// `max_command_steps` run, and say why the rest wait. Runs under the placement lock.
pub(crate) async fn schedule(control: &Control) -> Result<()> {
    let store = control.store();
    let waiting: Vec<JobRow> = {
        let jobs = store.jobs_in_status(JobStatus::WAITING).await?;
        let running = control.inner().running.lock().expect("running map lock");
        jobs.into_iter()
            .filter(|j| j.kind == JobKind::Command && !running.contains_key(&j.id))
            .collect()
    };
    if waiting.is_empty() {
        return Ok(());
    }
    let limit = control.config().max_command_steps;
    let mut active = store
        .jobs_in_status(JobStatus::ACTIVE)
        .await?
        .iter()
        .filter(|j| j.kind == JobKind::Command)
        .count() as u32;
    for job in waiting {
        if *control.inner().shutdown.borrow() {
            return Ok(());
        }
        if active < limit {
            store
                .set_job_status(job.id, JobStatus::Preparing, Some("on the Spool host"))
                .await?;
            let cancel = run::track(control, job.id, false);
            tracing::info!(job = %job.name, "command job started");
            tokio::spawn(run_command(control.clone(), job.id, cancel));
            active += 1;
        } else {
            let reason = format!(
                "waiting for a command slot: {active} of {limit} running (`[jobs] max_command_steps`)"
            );
            if job.status != JobStatus::Queued || job.status_reason.as_deref() != Some(&reason) {
                store
                    .set_job_status(job.id, JobStatus::Queued, Some(&reason))
                    .await?;
            }
        }
    }
    Ok(())
}

/// Runs a started command job to its end.
async fn run_command(control: Control, job_id: JobId, mut cancel: watch::Receiver<bool>) {
    if let Err(e) = drive(&control, job_id, &mut cancel).await {
        let canceled = *cancel.borrow();
        let canceled = canceled.then(|| {
            if *control.inner().shutdown.borrow() {
                (JobStatus::Failed, "the server stopped")
            } else {
                (JobStatus::Canceled, "canceled before the command started")
            }
        });
        crate::job_setup::record_unstarted(&control, job_id, canceled, &e, "its command ran").await;
    }
    finish(&control, job_id).await;
}

/// After a command job: its slot is free, its namespace (if isolated) is gone, and the ACLs go
/// back where it could write.
async fn finish(control: &Control, job_id: JobId) {
    control
        .provisioner()
        .namespaces()
        .remove_of(Owner::Job(job_id))
        .await;
    control
        .inner()
        .running
        .lock()
        .expect("running map lock")
        .remove(&job_id);
    if let Ok(Some(job)) = control.store().job(job_id).await
        && job.enforced
    {
        control
            .sync_datastore_acls(Some(&job.runs_as))
            .await
            .log_error("set the datastores' ACLs after a job");
    }
    control.inner().wake.notify_one();
}

async fn drive(
    control: &Control,
    job_id: JobId,
    cancel: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let store = control.store();
    let job = store
        .job(job_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job {job_id} vanished"))?;
    let launch: Launch = serde_json::from_str(job.launch_json.as_deref().unwrap_or("null"))?;
    let spec: CommandSpec = serde_json::from_str(&job.spec_json)?;
    let command = launch
        .argv
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the stored command is missing"))?;

    let runtime = job_setup::ensure_runtime(control, &job, cancel).await?;
    let venv = job_setup::prepare_environment(control, &job, &launch, &runtime, cancel)
        .await?
        .map_or_else(|| runtime.venv.clone(), |env| env.venv);
    check_canceled(cancel)?;
    job_setup::copy_working_folder(control, &launch, spec.code.as_deref())?;
    // A folder output is there to write into, as Azure ML's mounted outputs are (Spark makes
    // its own; a shell command expects it).
    for (output, uri) in &launch.outputs {
        if spec
            .outputs
            .get(output)
            .is_some_and(|o| o.data_type == spool_spec::DataType::UriFolder)
            && let Some(Ok(uri)) = datastore::DatastoreUri::parse(uri)
        {
            let (tree, relative) = control
                .datastore_path(&uri)
                .await
                .map_err(anyhow::Error::from)?;
            tree.create_dir_all(&relative)?;
        }
    }
    let account = job_setup::working_account(control, &job, &launch).await?;

    let mut process = process_spec(&command, &spec, &launch, &venv);
    // In an isolated workspace the command runs in a namespace of its own, under the rules.
    let (place, _) = control.provisioner().isolate(Owner::Job(job_id)).await?;
    process.netns = place.netns;
    process.run_as = account
        .as_ref()
        .map(|account| control.inner().accounts.run_as(account, &launch.work_dir));
    let spawned = control
        .provisioner()
        .launch(Owner::Job(job_id), ROLE, &process)
        .await?;
    store
        .set_job_status(job_id, JobStatus::Running, None)
        .await?;
    let pid = spawned.pid;
    let timeout = spec.timeout_seconds.map(Duration::from_secs);
    let ended = watch_command(pid, spawned.wait(), cancel, timeout, Duration::ZERO).await;
    conclude(control, &job, ended, &launch.log_dir, timeout).await;
    Ok(())
}

/// The command's process: `/bin/sh -c` with the bound command, the environment's `bin` first
/// on `PATH`, the job's variables, its output into `user_logs/std_log.txt`.
fn process_spec(command: &str, spec: &CommandSpec, launch: &Launch, venv: &Path) -> ProcessSpec {
    let inherited_path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let mut env: std::collections::HashMap<String, String> = spec
        .environment_variables
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.insert(
        "PATH".into(),
        format!("{}:{inherited_path}", venv.join("bin").display()),
    );
    env.insert("VIRTUAL_ENV".into(), venv.display().to_string());
    ProcessSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), command.to_string()],
        env,
        cwd: launch.work_dir.clone(),
        log_dir: process_log_dir(&launch.log_dir),
        run_as: None,
        combined_log: Some(launch.log_dir.join(STD_LOG)),
        netns: None,
        nice: 0,
    }
}

/// How a command's process ended.
struct Ended {
    exit: Exit,
    canceled: bool,
    timed_out: bool,
}

/// Waits for the command to end, stopping its process group when the job is canceled or runs
/// past its timeout (`ran_for` is how long it already ran, for an adopted command).
async fn watch_command(
    pid: u32,
    wait: impl std::future::Future<Output = Exit>,
    cancel: &mut watch::Receiver<bool>,
    timeout: Option<Duration>,
    ran_for: Duration,
) -> Ended {
    let mut wait = std::pin::pin!(wait);
    let mut canceled = *cancel.borrow();
    let mut timed_out = false;
    if canceled {
        tokio::spawn(spool_supervisor::stop_group(pid, STOP_GRACE));
    }
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t.saturating_sub(ran_for));
    loop {
        tokio::select! {
            exit = &mut wait => return Ended { exit, canceled, timed_out },
            changed = cancel.changed(), if !canceled => {
                if changed.is_err() || *cancel.borrow() {
                    canceled = true;
                    tokio::spawn(spool_supervisor::stop_group(pid, STOP_GRACE));
                }
            }
            _ = sleep_until(deadline), if !timed_out && !canceled && deadline.is_some() => {
                timed_out = true;
                tokio::spawn(spool_supervisor::stop_group(pid, STOP_GRACE));
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Records how a command job ended.
async fn conclude(
    control: &Control,
    job: &JobRow,
    ended: Ended,
    log_dir: &Path,
    timeout: Option<Duration>,
) {
    let store = control.store();
    let outcome = if ended.canceled || ended.timed_out {
        ProcessOutcome::Stopped
    } else {
        ProcessOutcome::Exited
    };
    control
        .provisioner()
        .record_ended(Owner::Job(job.id), |_| true, outcome, ended.exit.code())
        .await;
    let server_stopping = *control.inner().shutdown.borrow();
    let cancel_reason = crate::run::cancel_reason(control.store(), job.id).await;
    let (status, reason, error) = if ended.canceled && server_stopping {
        // Stopped with the server, not by its user: the shutdown recorded why as the error.
        (JobStatus::Failed, Some("the server stopped"), None)
    } else if ended.canceled {
        (JobStatus::Canceled, Some(cancel_reason.as_str()), None)
    } else if ended.timed_out {
        let seconds = timeout.map(|t| t.as_secs()).unwrap_or_default();
        let error = format!(
            "the command ran longer than its timeout of {seconds} s (`limits.timeout`) and was stopped\nhint: raise `limits.timeout`, or make the command finish sooner"
        );
        (JobStatus::Failed, None, Some(error))
    } else if ended.exit.success() {
        (JobStatus::Completed, None, None)
    } else {
        let tail = read_tail(log_dir);
        let error = failure(&tail, ended.exit);
        let error = match store.job(job.id).await {
            Ok(Some(now)) if now.enforced => run::explain_denial(&error, &now.runs_as),
            _ => error,
        };
        (JobStatus::Failed, None, Some(error))
    };
    if let Some(error) = &error {
        store
            .set_job_error(job.id, error)
            .await
            .log_error("record the job's error");
    }
    store
        .set_job_status(job.id, status, reason)
        .await
        .log_error("record the job's status");
    tracing::info!(job = %job.name, %status, "command job ended");
}

/// The end of a command's log, read without following a link planted in its place.
fn read_tail(log_dir: &Path) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = datastore::UserTree::open(log_dir)?.open_file(Path::new(STD_LOG))?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    read().unwrap_or_default()
}

/// Why a command failed, from the end of its log: a Python traceback's error line when there is
/// one, else the last line it wrote, else its exit status.
fn failure(log_tail: &str, exit: Exit) -> String {
    let found = spool_spark::driver_error(log_tail).or_else(|| {
        log_tail
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    });
    match (found, exit) {
        (Some(line), _) => line,
        (None, Exit::Code(code)) => {
            format!("the command exited with code {code}; see {STD_LOG}")
        }
        (None, Exit::Signal(signal)) => format!("the command was ended by signal {signal}"),
        (None, Exit::Unknown) => {
            "the command ended while no server watched it, and its exit status is unknown".into()
        }
    }
}

/// After a restart: a command whose process still runs is adopted and followed to its end;
/// one that ended meanwhile is concluded from its exit file; one that never started is
/// requeued.
pub(crate) async fn recover(
    control: &Control,
    job: &JobRow,
    running: Vec<ProcessRow>,
) -> anyhow::Result<()> {
    let store = control.store();
    let (commands, others): (Vec<ProcessRow>, Vec<ProcessRow>) =
        running.into_iter().partition(|p| p.role == ROLE);
    // An environment build cannot be followed; the job starts again from the beginning.
    for process in &others {
        if let Some(pid) = process.pid {
            spool_supervisor::stop_group(pid as u32, control.config().stop_grace).await;
        }
        store
            .set_process_ended(process.id, ProcessOutcome::Reaped, None)
            .await?;
    }
    let log_dir = control.job_log_dir(job);
    let spec: Option<CommandSpec> = serde_json::from_str(&job.spec_json).ok();
    let timeout = spec
        .and_then(|s| s.timeout_seconds)
        .map(Duration::from_secs);
    if let Some(process) = commands.into_iter().next() {
        store.set_process_adopted(process.id).await?;
        let cancel = run::track(control, job.id, job.status == JobStatus::CancelRequested);
        store
            .add_event(
                "adopted",
                &format!("job {}", job.name),
                "its command was still running after a restart",
            )
            .await?;
        tracing::info!(job = %job.name, "adopted running command after restart");
        let ran_for = chrono::DateTime::parse_from_rfc3339(&process.started_at)
            .ok()
            .and_then(|at| {
                (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
                    .to_std()
                    .ok()
            })
            .unwrap_or_default();
        let control = control.clone();
        let job = job.clone();
        let pid = process.pid.unwrap_or_default() as u32;
        let ticks = process.start_ticks.map(|t| t as u64);
        tokio::spawn(async move {
            let mut cancel = cancel;
            let exit_dir = process_log_dir(&log_dir);
            let wait = spool_supervisor::wait_adopted(pid, ticks, &exit_dir);
            let ended = watch_command(pid, wait, &mut cancel, timeout, ran_for).await;
            conclude(&control, &job, ended, &log_dir, timeout).await;
            finish(&control, job.id).await;
        });
        return Ok(());
    }
    let recorded = store.processes_of(Owner::Job(job.id)).await?;
    if recorded.iter().any(|p| p.role == ROLE) {
        // The command ended while no server watched: its exit file says how.
        let exit = match spool_supervisor::read_exit_file(&process_log_dir(&log_dir)) {
            Some(code) => Exit::Code(code),
            None => Exit::Unknown,
        };
        let ended = Ended {
            exit,
            canceled: job.status == JobStatus::CancelRequested,
            timed_out: false,
        };
        conclude(control, job, ended, &log_dir, timeout).await;
        store
            .add_event(
                "recovered",
                &format!("job {}", job.name),
                &format!("its command ended while the server was down ({exit:?})"),
            )
            .await?;
    } else {
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
                "it had not started its command when the server stopped",
            )
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_failure_names_the_last_line_or_the_traceback_or_the_exit() {
        let cases: Vec<(&str, Exit)> = vec![
            ("reading\ncat: /x/y: Permission denied\n\n", Exit::Code(1)),
            (
                "Traceback (most recent call last):\n  File \"a.py\", line 1\nValueError: boom\nextra noise\n",
                Exit::Code(1),
            ),
            ("", Exit::Code(3)),
            ("", Exit::Signal(9)),
            ("", Exit::Unknown),
        ];
        let rendered: Vec<String> = cases
            .into_iter()
            .map(|(log, exit)| failure(log, exit))
            .collect();
        expect_test::expect![[r#"
            cat: /x/y: Permission denied
            ValueError: boom
            the command exited with code 3; see user_logs/std_log.txt
            the command was ended by signal 9
            the command ended while no server watched it, and its exit status is unknown"#]]
        .assert_eq(&rendered.join("\n"));
    }

    #[test]
    fn the_process_is_the_shell_with_the_environment_first_on_path() {
        let spec = CommandSpec {
            command: "ignored".into(),
            environment_variables: BTreeMap::from([("GREETING".into(), "hi".into())]),
            ..CommandSpec::default()
        };
        let launch = Launch {
            argv: vec!["echo hi".into()],
            outputs: BTreeMap::new(),
            work_dir: "/data/jobs/j/work".into(),
            log_dir: "/data/jobs/j/logs".into(),
        };
        let process = process_spec("echo hi", &spec, &launch, Path::new("/cache/envs/k/venv"));
        assert_eq!(process.program, Path::new("/bin/sh"));
        assert_eq!(process.args, ["-c", "echo hi"]);
        assert!(process.env["PATH"].starts_with("/cache/envs/k/venv/bin:"));
        assert_eq!(process.env["GREETING"], "hi");
        assert!(!process.env.keys().any(|k| k.starts_with("AZUREML_")));
        assert_eq!(
            process.combined_log.as_deref(),
            Some(Path::new("/data/jobs/j/logs/user_logs/std_log.txt"))
        );
        assert_eq!(
            process.log_dir,
            Path::new("/data/jobs/j/logs/azureml/command")
        );
    }
}
