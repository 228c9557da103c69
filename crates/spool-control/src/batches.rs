//! Livy batches: a `POST /batches` request becomes a Spool job (so it shows in `spool job list`),
//! its files taken from a datastore into a code snapshot.

use spool_core::{BatchState, JobId, JobStatus};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use spool_spec::{ConfValue, Entry, JobSpec, Resources};

use crate::access::Access;
use crate::datastore::{DEFAULT_DATASTORE, DatastoreUri, hex};
use crate::roles::DataAccess;
use crate::{Action, Caller, Control, ControlError, Job, Result, invalid};

/// What a Livy batch asks for (Livy's CreateBatchRequest, already parsed).
#[derive(Debug, Clone, Default)]
pub struct BatchRequest {
    pub file: String,
    pub class_name: Option<String>,
    pub args: Vec<String>,
    pub jars: Vec<String>,
    pub py_files: Vec<String>,
    pub files: Vec<String>,
    pub archives: Vec<String>,
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

/// Adds each reference to `sources` under its file name; returns the names.
fn take_names(list: &[String], sources: &mut Vec<(String, PathBuf)>) -> Vec<String> {
    list.iter()
        .map(|item| {
            let name = Path::new(item)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| item.clone());
            sources.push((name.clone(), PathBuf::from(item)));
            name
        })
        .collect()
}

fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\"'\"'"))
}

fn memory(field: &str, value: &Option<String>) -> Result<String> {
    crate::livy_memory(field, value.as_deref().unwrap_or("1g")).map(|(text, _)| text)
}

impl Control {
    /// Reads a batch file: a datastore URI, or a path in the default datastore.
    async fn batch_file(&self, data: &DataAccess, field: &str, reference: &str) -> Result<Vec<u8>> {
        let uri = match DatastoreUri::parse(reference) {
            Some(Ok(uri)) => uri,
            Some(Err(m)) => return Err(invalid(field, m)),
            None if reference.contains("://") => {
                return Err(invalid(
                    field,
                    format!(
                        "`{reference}`: only `azureml://datastores/<name>/paths/<path>` URIs or paths in the default datastore are supported"
                    ),
                ));
            }
            None => DatastoreUri::new(DEFAULT_DATASTORE, reference),
        };
        data.check_uri(field, &uri, Access::Read)?;
        let (tree, relative) = self
            .datastore_path(&uri)
            .await
            .map_err(|e| crate::retarget(e, field))?;
        let kind = tree
            .kind(&relative)
            .map_err(|e| crate::datastore_error(field, &uri, e))?;
        if kind != Some(crate::EntryKind::File) {
            return Err(invalid(
                field,
                format!(
                    "no file at `{}`; upload it with `spool datastore upload`",
                    uri.to_uri()
                ),
            ));
        }
        tree.read(&relative)
            .map_err(|e| crate::datastore_error(field, &uri, e))
    }

    /// Creates the job behind a Livy batch.
    pub async fn create_batch(&self, owner: &Caller, request: BatchRequest) -> Result<Job> {
        owner.require(Action::SubmitJobs)?;
        if request.file.trim().is_empty() {
            return Err(invalid("file", "requirement failed: file is required"));
        }
        request.check_limits()?;
        // Gather every file into one snapshot, flat, named by their file names.
        let mut sources: Vec<(String, PathBuf)> = Vec::new();
        let main_name = take_names(std::slice::from_ref(&request.file), &mut sources).remove(0);
        let jars = take_names(&request.jars, &mut sources);
        let py_files = take_names(&request.py_files, &mut sources);
        let files = take_names(&request.files, &mut sources);
        let archives = take_names(&request.archives, &mut sources);
        let mut resolved = Vec::new();
        let mut hasher = Sha256::new();
        let data = self.data_access(owner).await?;
        for (name, reference) in &sources {
            let bytes = self
                .batch_file(&data, "file", &reference.display().to_string())
                .await?;
            hasher.update(name.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
            resolved.push((name.clone(), bytes));
        }
        let id = hex(&hasher.finalize());
        let dir = self.data_dir().join("snapshots").join(&id);
        if !dir.exists() {
            // A temp dir of its own, renamed into place: a concurrent identical batch finds the
            // snapshot there, and a failure leaves nothing.
            let snapshots = self.data_dir().join("snapshots");
            crate::permissions::create_private_dir(&snapshots).map_err(anyhow::Error::from)?;
            let tmp = tempfile::Builder::new()
                .prefix(&format!(".tmp-batch-{id}-"))
                .tempdir_in(&snapshots)
                .map_err(anyhow::Error::from)?;
            for (name, bytes) in &resolved {
                std::fs::write(tmp.path().join(name), bytes).map_err(anyhow::Error::from)?;
            }
            match std::fs::rename(tmp.path(), &dir) {
                Ok(()) => {
                    let _ = tmp.keep();
                }
                Err(_) if dir.is_dir() => {}
                Err(e) => {
                    return Err(anyhow::Error::from(e)
                        .context("store the batch's snapshot")
                        .into());
                }
            }
        }
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
