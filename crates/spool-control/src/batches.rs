//! Livy batches: a `POST /batches` request becomes a Spool job (so it shows in `spool job list`),
//! its files taken from a datastore into a code snapshot.

use spool_core::{BatchState, JobId, JobStatus};
use std::collections::BTreeMap;

use spool_spec::{ConfValue, Entry, JobSpec, Resources};

use crate::livy_files::{FileLists, SessionFiles};
use crate::{Action, Caller, Control, ControlError, Job, Result, invalid};

/// What a Livy batch asks for (Livy's CreateBatchRequest, already parsed).
#[derive(Debug, Clone, Default)]
pub struct BatchRequest {
    pub file: String,
    pub class_name: Option<String>,
    pub args: Vec<String>,
    /// `jars`, `pyFiles`, `files` and `archives`.
    pub files: FileLists,
    pub driver_memory: Option<String>,
    pub driver_cores: Option<u32>,
    pub executor_memory: Option<String>,
    pub executor_cores: Option<u32>,
    pub num_executors: Option<u32>,
    pub name: Option<String>,
    pub conf: BTreeMap<String, String>,
}

impl BatchRequest {
    /// Checks sizes and names against Spool's limits, with Livy's field names; the job rules
    /// check the rest (conf, args) once the batch is a job spec.
    fn check_limits(&self) -> Result<()> {
        use spool_spec::limits;
        let limit = |e: limits::LimitError| invalid(e.field().to_string(), e.to_string());
        if let Some(name) = &self.name {
            limits::check_name("name", name).map_err(limit)?;
        }
        for (field, cores) in [
            ("driverCores", self.driver_cores),
            ("executorCores", self.executor_cores),
        ] {
            if let Some(cores) = cores {
                limits::check_cores(field, u64::from(cores)).map_err(limit)?;
            }
        }
        if let Some(executors) = self.num_executors {
            limits::check_executors("numExecutors", u64::from(executors)).map_err(limit)?;
        }
        for (field, memory) in [
            ("driverMemory", &self.driver_memory),
            ("executorMemory", &self.executor_memory),
        ] {
            if let Some(text) = memory {
                let (_, mb) = crate::livy_memory(field, text)?;
                limits::check_memory(field, mb).map_err(limit)?;
            }
        }
        Ok(())
    }
}

/// How a job looks through Livy's `/batches`.
pub fn livy_batch_state(status: JobStatus) -> BatchState {
    BatchState::from(status)
}

fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\"'\"'"))
}

fn memory(field: &str, value: &Option<String>) -> Result<String> {
    crate::livy_memory(field, value.as_deref().unwrap_or("1g")).map(|(text, _)| text)
}

impl Control {
    /// Creates the job behind a Livy batch.
    pub async fn create_batch(&self, owner: &Caller, request: BatchRequest) -> Result<Job> {
        owner.require(Action::SubmitJobs)?;
        if request.file.trim().is_empty() {
            return Err(invalid("file", "requirement failed: file is required"));
        }
        request.check_limits()?;
        // Every file goes into one snapshot, flat, named by their file names.
        let (named, main) = self
            .gather_livy_files(owner, Some(&request.file), &request.files, "pyFiles")
            .await?;
        let main_name = main.expect("the main file is named").spark_name();
        let id = named.snapshot;
        let (jars, py_files, files, archives) = (
            SessionFiles::names(&named.jars),
            SessionFiles::names(&named.py_files),
            SessionFiles::names(&named.files),
            SessionFiles::names(&named.archives),
        );
        let mut conf: BTreeMap<String, ConfValue> = request
            .conf
            .iter()
            .map(|(k, v)| (k.clone(), ConfValue::Str(v.clone())))
            .collect();
        conf.insert(
            spool_spec::DRIVER_CORES.into(),
            ConfValue::Int(i64::from(request.driver_cores.unwrap_or(1))),
        );
        conf.insert(
            spool_spec::DRIVER_MEMORY.into(),
            ConfValue::Str(memory("driverMemory", &request.driver_memory)?),
        );
        conf.insert(
            spool_spec::EXECUTOR_CORES.into(),
            ConfValue::Int(i64::from(request.executor_cores.unwrap_or(1))),
        );
        conf.insert(
            spool_spec::EXECUTOR_MEMORY.into(),
            ConfValue::Str(memory("executorMemory", &request.executor_memory)?),
        );
        if !conf.contains_key(spool_spec::DA_ENABLED) {
            conf.insert(
                spool_spec::EXECUTOR_INSTANCES.into(),
                ConfValue::Int(i64::from(request.num_executors.unwrap_or(1))),
            );
        }
        let runtime = conf.remove("spark.spool.runtime").map(|v| v.to_spark());
        let (entry, jars) = match &request.class_name {
            Some(class_name) => {
                // The main jar goes first: it holds the class.
                let mut all = vec![main_name.clone()];
                all.extend(jars);
                (Entry::ClassName(class_name.clone()), all)
            }
            None => (Entry::File(main_name.clone()), jars),
        };
        let spec = JobSpec {
            display_name: Some(request.name.clone().unwrap_or_else(|| main_name.clone())),
            experiment_name: Some("livy-batches".into()),
            code: format!("snapshot:{id}"),
            entry,
            py_files,
            jars,
            files,
            archives,
            conf,
            args: (!request.args.is_empty()).then(|| {
                request
                    .args
                    .iter()
                    .map(|a| quote(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
            resources: runtime.map(|v| Resources {
                instance_type: None,
                runtime_version: Some(v),
            }),
            ..JobSpec::default()
        };
        self.create_job(owner, spec).await
    }

    /// Returns a job by its integer id (a Livy batch id) if the caller may see it.
    pub async fn job_by_id(&self, caller: &Caller, id: JobId) -> Result<Job> {
        caller.require(Action::ViewJobs)?;
        match self.store().job(id).await? {
            Some(job) if caller.sees(job.owner_id) => Ok(self.job_view(job)),
            _ => Err(ControlError::NotFound {
                kind: "batch",
                name: id.to_string(),
            }),
        }
    }
}
