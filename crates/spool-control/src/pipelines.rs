//! Pipeline jobs: recording a pipeline with every node as a child job (each checked like a
//! standalone job, reused when nothing it depends on changed), and the loop that moves
//! pipelines on as their nodes end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use spool_core::{JobKind, JobStatus};
use spool_spec::graph::{self, ChildJob, ResolvedComponent};
use spool_spec::pipeline::{ComponentRef, PipelineSpec};
use spool_spec::{JobInput, Positions};
use spool_store::{JobRow, NewJob, NewNode};

use crate::datastore::DatastoreUri;
use crate::progress::{self, NodeState, Step};
use crate::views::{Caller, Job};
use crate::{
    Action, Control, ControlError, DEFAULT_DATASTORE, LogError, Result, invalid, name_taken, names,
};

/// What later nodes need to know of an earlier one.
struct Recorded {
    /// Outputs by name, as datastore URIs.
    outputs: BTreeMap<String, String>,
    reuse_key: String,
}

/// A node of a pipeline, for views.
#[derive(Debug, Clone)]
pub struct PipelineNode {
    pub node: String,
    pub job: Job,
    pub depends_on: Vec<String>,
    /// The job whose outputs this node reused instead of running.
    pub reused_job: Option<String>,
}

/// Makes an error about a child job's field an error about the node's.
fn in_node(e: ControlError, node: &str) -> ControlError {
    match e {
        ControlError::Invalid { target, message } => ControlError::Invalid {
            target: format!("jobs.{node}.{target}"),
            message: format!("step `{node}`: {message}"),
        },
        ControlError::Forbidden { message } => ControlError::Forbidden {
            message: format!("step `{node}`: {message}"),
        },
        other => other,
    }
}

fn diagnostics_error(diags: Vec<spool_spec::Diagnostic>) -> ControlError {
    let first = diags.first().map(|d| d.field.clone()).unwrap_or_default();
    let text: Vec<String> = diags.iter().map(|d| d.render("pipeline")).collect();
    invalid(first, text.join("\n"))
}

impl Control {
    /// Validates a pipeline and records it with all its nodes (as child jobs) in one step; the
    /// scheduler runs each node once the nodes it reads from have Completed. Nothing is
    /// recorded when a check fails, for any node.
    pub async fn create_pipeline(&self, owner: &Caller, spec: PipelineSpec) -> Result<Job> {
        owner.require(Action::SubmitJobs)?;
        let registered = self.resolve_components(&spec).await?;
        let positions = Positions::new();
        let plan = graph::plan(&spec, &registered, &positions).map_err(diagnostics_error)?;
        graph::check_nodes(&plan, &self.spec_catalog(), &positions).map_err(diagnostics_error)?;
        let name = match &spec.name {
            Some(name) => {
                if let Some(existing) = self.inner.store.job_by_name(name).await? {
                    return Err(name_taken("job", name, existing.owner_id == owner.id));
                }
                name.clone()
            }
            None => names::job_name(),
        };
        let datastore = spec
            .settings
            .default_datastore
            .clone()
            .unwrap_or_else(|| DEFAULT_DATASTORE.to_string());
        if self.inner.store.datastore(&datastore).await?.is_none() {
            return Err(invalid(
                "settings.default_datastore",
                format!(
                    "datastore `{datastore}` not found\nhint: see `spool datastore list`, or create it with `spool datastore create --name {datastore} --path <dir>`"
                ),
            ));
        }
        let experiment = spec
            .experiment_name
            .clone()
            .unwrap_or_else(|| "Default".into());

        let mut recorded: BTreeMap<String, Recorded> = BTreeMap::new();
        let mut nodes = Vec::new();
        for node in &plan.nodes {
            let child = names::job_name();
            let mut job = node.job.clone();
            job.name(&child, &experiment);
            // Outputs without a path go to the default location, named after the child job.
            for (output, out) in job.outputs_mut().iter_mut() {
                if out.path.is_none() {
                    out.path = Some(
                        DatastoreUri::new(&datastore, &format!("azureml/{child}/{output}/"))
                            .to_uri(),
                    );
                }
            }
            // Inputs read from earlier nodes: where those nodes write (or wrote, if reused).
            let mut upstream_keys = BTreeMap::new();
            for (input, (up, output)) in &node.upstream {
                let earlier = &recorded[up];
                let uri = earlier.outputs.get(output).cloned().unwrap_or_default();
                if let Some(JobInput::Data { path, .. }) = job.inputs_mut().get_mut(input) {
                    *path = uri;
                }
                upstream_keys.insert(input.clone(), format!("{}#{output}", earlier.reuse_key));
            }
            let produced: BTreeSet<String> = node.upstream.keys().cloned().collect();
            let (mut new, launch) = match &job {
                ChildJob::Spark(spark) => {
                    self.prepare_spark_job(owner, spark, child.clone(), &produced)
                        .await
                }
                ChildJob::Command(command) => {
                    self.prepare_command_job(owner, command, child.clone(), &produced)
                        .await
                }
            }
            .map_err(|e| in_node(e, &node.name))?;
            new.display_name = node.name.clone();

            let fingerprints = self.input_fingerprints(&job, &produced).await;
            let reuse_key = graph::reuse_key(&node.reuse_basis, &fingerprints, &upstream_keys);
            let reusable = node.is_deterministic && !spec.settings.force_rerun;
            let mut outputs = launch.outputs.clone();
            let mut reused_job_id = None;
            if reusable
                && let Some(earlier) = self.inner.store.reusable_node(&reuse_key).await?
                && self.outputs_exist(&earlier).await
            {
                new.status = JobStatus::Completed;
                new.launch_json = earlier.launch_json.clone();
                outputs = Self::job_outputs(&earlier);
                reused_job_id = Some(earlier.id);
                // Nothing runs, so the folders made for this node's own outputs go again.
                self.remove_empty_outputs(&launch.outputs).await;
            }
            recorded.insert(
                node.name.clone(),
                Recorded {
                    outputs,
                    reuse_key: reuse_key.clone(),
                },
            );
            nodes.push(NewNode {
                job: new,
                node: node.name.clone(),
                component_id: node.component_id.clone(),
                // A node of a forced rerun is not reused by others either, as in Azure ML.
                reuse_key: reusable.then_some(reuse_key),
                reused_job_id,
                depends_on: node.depends_on.iter().cloned().collect(),
            });
        }

        let first = nodes.first().map(|n| &n.job);
        let parent = NewJob {
            name: name.clone(),
            owner_id: owner.id,
            display_name: spec.display_name.clone().unwrap_or_else(|| name.clone()),
            experiment_name: experiment,
            status: JobStatus::NotStarted,
            spec_json: serde_json::to_string(&spec).map_err(anyhow::Error::from)?,
            sizing_json: "null".into(),
            runtime: first.map(|j| j.runtime.clone()).unwrap_or_default(),
            compute: "pipeline".into(),
            identity: spec
                .identity
                .map_or("user_identity", |i| i.as_str())
                .to_string(),
            principal: owner.name.clone(),
            runs_as: format!("user:{}", owner.name),
            launch_json: None,
            environment_json: None,
            kind: JobKind::Pipeline,
        };
        let row = match self
            .inner
            .store
            .insert_pipeline(
                &parent,
                spec.settings.continue_on_step_failure,
                spec.settings.force_rerun,
                &nodes,
            )
            .await
        {
            Ok(row) => row,
            Err(spool_store::StoreError::Conflict(_)) => {
                return Err(name_taken("job", &name, false));
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(job = %row.name, owner = %owner.name, nodes = nodes.len(), "pipeline submitted");
        self.advance_pipeline(&row).await?;
        self.inner.wake.notify_one();
        let row = self.inner.store.job(row.id).await?.unwrap_or(row);
        Ok(self.job_view(row))
    }

    /// The components registered references name, by node: an explicit version, the label
    /// `latest`, or the default version (the latest too). An unknown name, version or label
    /// is the step's error, in the SDK's words.
    async fn resolve_components(
        &self,
        spec: &PipelineSpec,
    ) -> Result<BTreeMap<String, ResolvedComponent>> {
        let mut resolved = BTreeMap::new();
        for (node, job) in &spec.jobs {
            if let ComponentRef::Registered {
                name,
                version,
                label,
            } = &job.component
            {
                let component = self
                    .resolve_component(name, version.as_deref(), label.as_deref())
                    .await
                    .map_err(|e| match e {
                        ControlError::Missing { message, .. }
                        | ControlError::Invalid { message, .. } => invalid(
                            format!("jobs.{node}.component"),
                            format!("step `{node}`: `{}`: {message}", job.component.display()),
                        ),
                        other => other,
                    })?;
                resolved.insert(node.clone(), component);
            }
        }
        Ok(resolved)
    }

    /// What the content of a job's data inputs looks like now (sizes and modification times),
    /// by input name, so that a changed input is not mistaken for the one an earlier run read.
    /// Uploads live under a content hash already (`LocalUpload/<hash>/`); inputs other nodes
    /// write are covered by those nodes' keys.
    async fn input_fingerprints(
        &self,
        job: &ChildJob,
        produced: &BTreeSet<String>,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, input) in job.inputs() {
            let JobInput::Data { path, .. } = input else {
                continue;
            };
            if produced.contains(name) || path.contains("/paths/LocalUpload/") {
                continue;
            }
            let Some(Ok(uri)) = DatastoreUri::parse(path) else {
                continue;
            };
            let Ok(local) = self.resolve_uri(&uri).await else {
                continue;
            };
            let fingerprint = tokio::task::spawn_blocking(move || fingerprint(&local))
                .await
                .unwrap_or_default();
            out.insert(name.clone(), fingerprint);
        }
        out
    }

    /// Whether every output of an earlier job is still there to be reused.
    async fn outputs_exist(&self, job: &JobRow) -> bool {
        for uri in Self::job_outputs(job).values() {
            let Some(Ok(uri)) = DatastoreUri::parse(uri) else {
                return false;
            };
            match self.resolve_uri(&uri).await {
                Ok(local) if std::fs::symlink_metadata(&local).is_ok() => {}
                _ => return false,
            }
        }
        true
    }

    async fn remove_empty_outputs(&self, outputs: &BTreeMap<String, String>) {
        for uri in outputs.values() {
            let Some(Ok(uri)) = DatastoreUri::parse(uri) else {
                continue;
            };
            if let Ok((tree, relative)) = self.datastore_path(&uri).await {
                // The node's folder `azureml/<child>/` and the output's inside it, if empty.
                let _ = tree.remove_empty_dir(&relative);
                if let Some(parent) = relative.parent()
                    && !parent.as_os_str().is_empty()
                {
                    let _ = tree.remove_empty_dir(parent);
                }
            }
        }
    }

    /// Applies what `progress::advance` decides for one pipeline. Returns whether it ended.
    pub(crate) async fn advance_pipeline(&self, parent: &JobRow) -> Result<bool> {
        let store = &self.inner.store;
        let Some(settings) = store.pipeline(parent.id).await? else {
            return Ok(false);
        };
        let children = store.children(parent.id).await?;
        let nodes = store.nodes(parent.id).await?;
        let by_node: BTreeMap<&str, &JobRow> = nodes
            .iter()
            .filter_map(|n| {
                children
                    .iter()
                    .find(|c| c.id == n.job_id)
                    .map(|c| (n.node.as_str(), c))
            })
            .collect();
        let states: Vec<NodeState<'_>> = nodes
            .iter()
            .filter_map(|n| {
                by_node.get(n.node.as_str()).map(|c| NodeState {
                    node: &n.node,
                    status: c.status,
                    reason: c.status_reason.as_deref(),
                    depends_on: n.depends_on(),
                })
            })
            .collect();
        let steps = progress::advance(parent.status, &states, settings.continue_on_step_failure);
        let mut ended = false;
        for step in steps {
            match step {
                Step::Wait { node, reason } => {
                    if let Some(child) = by_node.get(node.as_str()) {
                        store.set_job_reason(child.id, Some(&reason)).await?;
                    }
                }
                Step::NotRun { node, reason } => {
                    if let Some(child) = by_node.get(node.as_str()) {
                        store
                            .set_job_status(child.id, JobStatus::Canceled, Some(&reason))
                            .await?;
                    }
                }
                Step::Cancel { node, reason } => {
                    if let Some(child) = by_node.get(node.as_str()) {
                        self.cancel_child(child, &reason).await?;
                    }
                }
                Step::Parent { status, reason } => {
                    store
                        .set_job_status(parent.id, status, reason.as_deref())
                        .await?;
                    if status.is_terminal() {
                        ended = true;
                        tracing::info!(job = %parent.name, %status, "pipeline ended");
                    }
                }
            }
        }
        Ok(ended)
    }

    /// Stops one node under way (the pipeline's cancel, or a failure that stops it).
    async fn cancel_child(&self, child: &JobRow, reason: &str) -> Result<()> {
        let cancel = self
            .inner
            .running
            .lock()
            .expect("running map lock")
            .get(&child.id)
            .cloned();
        match cancel {
            Some(cancel) => {
                self.inner
                    .store
                    .set_job_status(child.id, JobStatus::CancelRequested, Some(reason))
                    .await?;
                cancel.send_replace(true);
            }
            None => {
                self.inner
                    .store
                    .set_job_status(child.id, JobStatus::Canceled, Some(reason))
                    .await?;
            }
        }
        Ok(())
    }

    /// A pipeline's nodes with their jobs, in dependency order. The caller must see the
    /// pipeline (checked by whoever found `parent`).
    pub async fn pipeline_nodes(&self, parent: &Job) -> Result<Vec<PipelineNode>> {
        let store = &self.inner.store;
        let children = store.children(parent.id).await?;
        let nodes = store.nodes(parent.id).await?;
        let mut out = Vec::new();
        for node in nodes {
            if let Some(child) = children.iter().find(|c| c.id == node.job_id) {
                out.push(PipelineNode {
                    depends_on: node.depends_on(),
                    reused_job: node.reused_job_name.clone(),
                    node: node.node,
                    job: self.job_view(child.clone()),
                });
            }
        }
        Ok(out)
    }

    /// The pipeline a child job belongs to, and the job it reused, if any.
    pub async fn node_of(&self, job: &Job) -> Result<Option<(String, Option<String>)>> {
        let store = &self.inner.store;
        let Some(node) = store.node_of(job.id).await? else {
            return Ok(None);
        };
        let parent = store
            .job(node.parent_id)
            .await?
            .map(|p| p.name)
            .unwrap_or_default();
        Ok(Some((parent, node.reused_job_name)))
    }

    /// The children of a pipeline the caller may see, in dependency order.
    pub async fn child_jobs(&self, caller: &Caller, parent: &str) -> Result<Vec<Job>> {
        let parent = self.job(caller, parent).await?;
        Ok(self
            .pipeline_nodes(&parent)
            .await?
            .into_iter()
            .map(|n| n.job)
            .collect())
    }
}

/// Sizes and modification times under `path` (at most 10 000 entries, links not followed),
/// hashed.
fn fingerprint(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut stack = vec![path.to_path_buf()];
    let mut seen = 0;
    while let Some(at) = stack.pop() {
        seen += 1;
        if seen > 10_000 {
            break;
        }
        let Ok(meta) = std::fs::symlink_metadata(&at) else {
            continue;
        };
        let modified = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        hasher.update(format!("{}:{}:{modified};", at.display(), meta.len()));
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(&at)
        {
            let mut children: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            children.sort();
            stack.extend(children.into_iter().rev());
        }
    }
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Moves pipelines on as their nodes end: whenever a job ends, and at least twice a second.
pub(crate) async fn pipeline_loop(control: Control) {
    let mut shutdown = control.inner().shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match control.store().active_pipelines().await {
            Ok(pipelines) => {
                for pipeline in pipelines {
                    control
                        .advance_pipeline(&pipeline)
                        .await
                        .log_error("move a pipeline on");
                }
            }
            Err(e) => tracing::error!(error = %e, "read the pipelines under way"),
        }
        tokio::select! {
            _ = control.inner().pipeline_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
        // A node that ended may let others start.
        control.inner().wake.notify_one();
    }
}
