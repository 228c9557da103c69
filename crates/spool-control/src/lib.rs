//! The control plane: accepts jobs, places them on serverless clusters within the host's
//! capacity, provisions and tears down Spark clusters, runs drivers, and recovers after restarts.
//!
//! It owns every decision and every process; the HTTP layer above only translates. It must not
//! speak HTTP to users or parse YAML (specs arrive validated by `spool-spec` types).

mod access;
mod accounts;
mod acl;
mod actions;
mod agents;
mod audit;
pub mod auth;
mod batches;
mod cluster;
mod command;
mod component_registry;
mod computes;
pub mod config;
mod connect;
pub mod datastore;
mod environments;
mod identities;
mod identity;
mod job_setup;
mod livy_files;
pub mod metrics;
mod names;
mod netfilter;
mod netns;
mod network;
mod permissions;
mod pipelines;
mod placement;
mod prewarm;
mod progress;
mod recover;
mod roles;
mod run;
mod scheduler;
mod sessions;
mod spark;
pub mod spark_ui;
mod users;
mod views;
mod warm_driver;

use access::Access;
use spool_core::{ClusterId, JobId, JobKind, JobStatus, Owner, SessionId, SessionState};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spool_api_types as api;
use spool_runtime::RuntimeCache;
use spool_spec::{Catalog, DataType, Entry, JobInput, JobSpec, SparkSizing};
use spool_store::{JobRow, NewJob, Store, StoreError};
use tokio::sync::{Notify, watch};

pub use actions::Action;
pub use agents::AgentCaller;
pub use audit::{ANONYMOUS, AuditRecord};
pub use batches::{BatchRequest, livy_batch_state};
pub use config::Config;
pub use connect::{CONNECT_CONF, ConnectTarget};
pub use datastore::{DEFAULT_DATASTORE, DatastoreUri, Download, EntryKind, UserTree};
pub use environments::{EnvRequest, LIVY_CONDA_CONF};
pub use livy_files::{FileLists, NamedFile, SessionFiles};
pub use pipelines::PipelineNode;
pub use sessions::SessionSettings;
pub use views::{Caller, Job, JobQuery, Phase, Session, Statement};

/// Why a request was refused or failed. The HTTP layer maps each variant to a status code.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{kind} `{name}` not found")]
    NotFound { kind: &'static str, name: String },
    /// A lookup that failed, in words of its own (Azure ML's for assets).
    #[error("{message}")]
    Missing { target: String, message: String },
    #[error("{message}")]
    Invalid { target: String, message: String },
    #[error("{message}")]
    Conflict { target: String, message: String },
    #[error("{message}")]
    TooLarge { message: String },
    /// The caller's workspace role (or data role) does not allow this; another user's thing is
    /// `NotFound` instead.
    #[error("{message}")]
    Forbidden { message: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        ControlError::Internal(anyhow::Error::new(e))
    }
}

pub type Result<T> = std::result::Result<T, ControlError>;

/// Parses a memory size as Livy clients write it: Spark's forms, plus a trailing `b` (`2gb`)
/// as Airflow sends. Returns the size as written (less the `b`) and in MiB.
pub(crate) fn livy_memory(field: &str, text: &str) -> Result<(String, spool_core::MemoryMb)> {
    let trimmed = text.trim().trim_end_matches(['b', 'B']);
    let mb = spool_core::MemoryMb::parse(trimmed)
        .map_err(|e| invalid(field, format!("`{field}`: {e}")))?;
    Ok((trimmed.to_string(), mb))
}

/// Makes a lookup error about a path an error about the job field that named it.
fn retarget(e: ControlError, target: &str) -> ControlError {
    match e {
        ControlError::NotFound { kind, name } => {
            invalid(target, format!("{kind} `{name}` not found"))
        }
        ControlError::Invalid { message, .. } => invalid(target, message),
        other => other,
    }
}

/// Why a name that is in use is refused. Names are unique on the server (job names name
/// folders and default output paths, as in Azure ML; Livy's session names are unique too), so a
/// taken name must be refused; that it is theirs is said only to its owner.
pub(crate) fn name_taken_message(kind: &str, name: &str, mine: bool) -> String {
    if mine {
        format!("you already have a {kind} named `{name}`; choose another name")
    } else {
        format!(
            "the {kind} name `{name}` is not available ({kind} names are unique on this server); choose another name, or leave it out for a generated one"
        )
    }
}

fn name_taken(kind: &str, name: &str, mine: bool) -> ControlError {
    ControlError::Conflict {
        target: "name".into(),
        message: name_taken_message(kind, name, mine),
    }
}

/// An error of a path operation in a datastore: a symlink leading out of it is the user's to
/// fix, anything else is ours.
fn datastore_error(target: &str, uri: &DatastoreUri, error: std::io::Error) -> ControlError {
    if datastore::refused_link(&error) {
        invalid(
            target,
            format!(
                "`{}`: a symbolic link on the way leads out of datastore `{}` (or the file itself is a link); Spool does not follow such links\nhint: replace the link with what it points to, or use another path",
                uri.to_uri(),
                uri.datastore
            ),
        )
    } else {
        ControlError::Internal(
            anyhow::Error::new(error).context(format!("open `{}`", uri.to_uri())),
        )
    }
}

/// Why the last Owner may not be deleted.
fn last_owner(name: &str) -> ControlError {
    ControlError::Conflict {
        target: "name".into(),
        message: format!(
            "user `{name}` is the last Owner; a server needs one\nhint: rotate its token with `spool user token rotate {name}` instead, or make another user an Owner first (`spool user update NAME --role Owner`)"
        ),
    }
}

fn invalid(target: impl Into<String>, message: impl Into<String>) -> ControlError {
    ControlError::Invalid {
        target: target.into(),
        message: message.into(),
    }
}

/// Runs one of `spool-spec`'s YAML loaders on a file a user sent, off the async workers (as
/// for every YAML from users), and turns its diagnostics into one `Invalid` naming `file`.
async fn load_user_yaml<T: Send + 'static>(
    file: &str,
    text: &str,
    load: fn(&str) -> std::result::Result<T, Vec<spool_spec::Diagnostic>>,
) -> Result<T> {
    let owned = text.to_string();
    tokio::task::spawn_blocking(move || load(&owned))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(|diags| {
            let first = diags.first().map(|d| d.field.clone()).unwrap_or_default();
            let lines: Vec<String> = diags.iter().map(|d| d.render(file)).collect();
            invalid(first, lines.join("\n"))
        })
}

/// What the runner needs to launch a job, fixed at submit time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Launch {
    pub argv: Vec<String>,
    pub outputs: BTreeMap<String, String>,
    pub work_dir: PathBuf,
    pub log_dir: PathBuf,
}

/// A job's inputs and outputs as its code sees them, fixed at submit.
pub(crate) struct ResolvedData {
    /// Input values: a literal, or the path of the data on this host.
    pub inputs: BTreeMap<String, String>,
    /// Output paths on this host (a folder's with its trailing `/`).
    pub outputs: BTreeMap<String, String>,
    /// Outputs as datastore URIs.
    pub output_uris: BTreeMap<String, String>,
}

/// The control plane. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Store,
    pub data_dir: PathBuf,
    pub config: Arc<Config>,
    pub runtimes: RuntimeCache,
    pub http: reqwest::Client,
    /// Fetches drivers' Spark UI pages for the server's proxy: follows no redirect, so the
    /// browser follows it back through the server.
    pub ui_http: reqwest::Client,
    /// The cluster primitives.
    pub provisioner: cluster::Provisioner,
    /// Wakes the scheduler when a job arrives or capacity frees up.
    pub wake: Arc<Notify>,
    /// Jobs this server is running, with their cancel switch.
    pub running: Mutex<HashMap<JobId, watch::Sender<bool>>>,
    /// Sessions this server runs: their REPL connections and statement queues.
    pub session_runners: Mutex<HashMap<SessionId, Arc<sessions::SessionHandle>>>,
    /// When Connect calls last moved each session's idle clock.
    pub connect_activity: connect::Activity,
    /// Where Connect calls to each session went lately (see `connect::Targets`).
    pub connect_targets: connect::Targets,
    /// Events counted for Prometheus since the server started.
    pub metrics: metrics::Metrics,
    /// Wakes the pre-warm loop when a pre-warmed driver was claimed.
    pub prewarm_wake: Notify,
    /// Wakes the pipeline loop when a job ended.
    pub pipeline_wake: Notify,
    /// Serializes placement decisions and cluster state changes.
    pub placement: Arc<tokio::sync::Mutex<()>>,
    /// Tells background loops to stop.
    pub shutdown: watch::Sender<bool>,
    /// Users by token hash, so a request does not cost a store query to authenticate. Only
    /// found users are cached; deleting a user or rotating their token drops their entries
    /// (`forget_user`) right after the store changed, so an old token answers 401 at once.
    pub users_by_token: std::sync::RwLock<HashMap<String, Caller>>,
    /// Counts `forget_user` calls, so a lookup that read the store before a rotation or delete
    /// does not put the old token back into the cache after it was dropped.
    pub users_generation: std::sync::atomic::AtomicU64,
    /// The OS accounts work runs under, when enforcement is on.
    pub accounts: accounts::Accounts,
}

impl Control {
    /// Opens the control plane over a data dir: bootstraps the admin and the default datastore,
    /// then adopts or reaps whatever a previous server left running.
    pub async fn open(
        data_dir: &Path,
        cache_dir: &Path,
        config: Config,
    ) -> anyhow::Result<Control> {
        let mut tightened = permissions::prepare_data_dir(data_dir)
            .map_err(|e| anyhow::anyhow!("secure the data dir `{}`: {e}", data_dir.display()))?;
        tightened.extend(
            permissions::secure_cache_dir(cache_dir).map_err(|e| {
                anyhow::anyhow!("secure the cache dir `{}`: {e}", cache_dir.display())
            })?,
        );
        if !tightened.is_empty() {
            let paths: Vec<String> = tightened.iter().map(|p| p.display().to_string()).collect();
            tracing::info!(
                paths = %paths.join(", "),
                "tightened permissions: the data dir, its snapshots and its state and token files \
                 are private (0700, 0600), the cache is writable by no one else"
            );
        }
        let store = Store::open(&data_dir.join("state.db")).await?;
        auth::bootstrap_admin(&store, data_dir).await?;
        if store.datastore(DEFAULT_DATASTORE).await?.is_none() {
            let root = data_dir.join("datastores").join(DEFAULT_DATASTORE);
            std::fs::create_dir_all(&root)?;
            store
                .create_datastore(DEFAULT_DATASTORE, &root.display().to_string())
                .await?;
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()?;
        let (shutdown, _) = watch::channel(false);
        let config = Arc::new(config);
        let runtimes = RuntimeCache::new(cache_dir);
        let wake = Arc::new(Notify::new());
        let placement = Arc::new(tokio::sync::Mutex::new(()));
        let accounts =
            accounts::Accounts::start(store.clone(), config.enforce_access, data_dir, cache_dir)
                .await?;
        let namespaces = netns::Namespaces::new(
            store.clone(),
            &accounts::instance_id(data_dir)?,
            config.cluster_subnet,
        );
        let provisioner = cluster::Provisioner::new(cluster::ProvisionerParts {
            store: store.clone(),
            data_dir: data_dir.to_path_buf(),
            config: config.clone(),
            http: http.clone(),
            runtimes: runtimes.clone(),
            shutdown: shutdown.subscribe(),
            placement: placement.clone(),
            capacity_freed: wake.clone(),
            accounts: accounts.clone(),
            namespaces,
        });
        let control = Control {
            inner: Arc::new(Inner {
                store,
                data_dir: data_dir.to_path_buf(),
                config,
                runtimes,
                provisioner,
                http,
                ui_http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .build()?,
                wake,
                running: Mutex::new(HashMap::new()),
                session_runners: Mutex::new(HashMap::new()),
                connect_activity: connect::Activity::default(),
                connect_targets: connect::Targets::default(),
                metrics: metrics::Metrics::default(),
                prewarm_wake: Notify::new(),
                pipeline_wake: Notify::new(),
                placement,
                shutdown,
                users_by_token: Default::default(),
                users_generation: Default::default(),
                accounts,
            }),
        };
        // Uploads a server was streaming when it stopped are of no use to anyone.
        let _ = std::fs::remove_dir_all(data_dir.join("uploads"));
        control
            .sync_datastore_acls(None)
            .await
            .map_err(|e| anyhow::anyhow!("set the datastores' ACLs: {e}"))?;
        recover::recover(&control).await?;
        control.prune_audit().await?;
        Ok(control)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The cluster primitives: launching, watching, handing back and tearing down.
    pub(crate) fn provisioner(&self) -> &cluster::Provisioner {
        &self.inner.provisioner
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Why the OS does not enforce data access while work runs, or `None` when it does.
    pub fn access_enforcement(&self) -> Option<&str> {
        match self.inner.accounts.enforcement() {
            accounts::Enforcement::On => None,
            accounts::Enforcement::Off(reason) => Some(reason),
        }
    }

    /// The machine-wide cache holding runtimes.
    pub fn runtime_cache_dir(&self) -> &Path {
        self.inner.runtimes.root()
    }

    /// Starts the scheduler and the teardown loop.
    pub fn start_background(&self) {
        tokio::spawn(scheduler::schedule_loop(self.clone()));
        tokio::spawn(scheduler::teardown_loop(self.clone()));
        tokio::spawn(sessions::timeout_loop(self.clone()));
        tokio::spawn(sessions::prewarm_loop(self.clone()));
        tokio::spawn(environments::gc_loop(self.clone()));
        tokio::spawn(agents::lost_agent_loop(self.clone()));
        tokio::spawn(audit::retention_loop(self.clone()));
        tokio::spawn(pipelines::pipeline_loop(self.clone()));
        tokio::spawn(network::fqdn_refresh_loop(self.clone()));
    }

    /// Stops the server's work. With `keep_running`, drivers and clusters are left running for
    /// the next server to adopt; otherwise every job is ended and every cluster torn down.
    pub async fn shutdown(&self, keep_running: bool) {
        let _ = self.inner.shutdown.send_replace(true);
        if keep_running {
            tracing::info!("leaving jobs and clusters running for the next server to adopt");
            return;
        }
        let running: Vec<(JobId, watch::Sender<bool>)> = self
            .inner
            .running
            .lock()
            .expect("running map lock")
            .iter()
            .map(|(id, tx)| (*id, tx.clone()))
            .collect();
        for (id, cancel) in &running {
            self
                .inner
                .store
                .set_job_error(*id, "the server was stopped while the job ran; start it with `--keep-running-on-stop` to let jobs survive a restart")
                .await
.log_error("record the job's error");
            cancel.send_replace(true);
        }
        // Wait for runners to stop their drivers.
        let deadline =
            tokio::time::Instant::now() + self.inner.config.stop_grace + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline
            && !self
                .inner
                .running
                .lock()
                .expect("running map lock")
                .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sessions::stop_all(self).await;
        self.provisioner().teardown_all("server stopped").await;
    }

    // Users.

    /// Finds the user a bearer token belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Caller>> {
        let hash = auth::hash_token(token);
        let cached = self
            .inner
            .users_by_token
            .read()
            .expect("user cache lock")
            .get(&hash)
            .cloned();
        if cached.is_some() {
            return Ok(cached);
        }
        let generation = self.inner.users_generation.load(Ordering::SeqCst);
        let user = self
            .inner
            .store
            .user_by_token_hash(&hash)
            .await?
            .map(Caller::from);
        if let Some(user) = &user {
            let mut cache = self.inner.users_by_token.write().expect("user cache lock");
            // Users changed since the query: the row read may be stale; do not cache it.
            if self.inner.users_generation.load(Ordering::SeqCst) == generation {
                cache.insert(hash, user.clone());
            }
        }
        Ok(user)
    }

    /// Creates a user with a workspace role (default: AzureML Data Scientist) and returns
    /// their token (shown once). Owners only.
    pub async fn create_user(
        &self,
        caller: &Caller,
        name: &str,
        role: Option<&str>,
    ) -> Result<api::UserCreated> {
        caller.require(Action::CreateUsers)?;
        auth::check_user_name(name).map_err(|m| invalid("name", m))?;
        let role = role.map_or(Ok(spool_core::WorkspaceRole::DEFAULT), users::parse_role)?;
        let token = auth::new_token();
        match self
            .inner
            .store
            .create_user(name, &auth::hash_token(&token), role)
            .await
        {
            Ok(_) => Ok(api::UserCreated {
                name: name.to_string(),
                token,
            }),
            Err(StoreError::Conflict(_)) => Err(ControlError::Conflict {
                target: "name".into(),
                message: format!("user `{name}` already exists"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops a user's entries from the token cache (after their token or row changed).
    pub(crate) fn forget_user(&self, user_id: spool_core::UserId) {
        let mut cache = self.inner.users_by_token.write().expect("user cache lock");
        cache.retain(|_, cached| cached.id != user_id);
        self.inner.users_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Deletes a user (Owners only). Refused for the last Owner, and while the user has jobs
    /// that have not ended or sessions that have not finished (the message names them): their
    /// work is theirs to end, or an Owner's to cancel first. The user's token stops working at
    /// once; their ended jobs and sessions stay, under their name, which is not reused.
    pub async fn delete_user(&self, caller: &Caller, name: &str) -> Result<()> {
        caller.require(Action::DeleteUsers)?;
        let user = self.user_row(name).await?;
        if user.role == spool_core::WorkspaceRole::Owner
            && self.inner.store.owner_count().await? <= 1
        {
            return Err(last_owner(name));
        }
        match self.inner.store.delete_user(user.id).await? {
            spool_store::UserDeletion::Deleted => {}
            spool_store::UserDeletion::LastOwner => {
                return Err(last_owner(name));
            }
            spool_store::UserDeletion::NotFound => {
                return Err(ControlError::NotFound {
                    kind: "user",
                    name: name.to_string(),
                });
            }
            spool_store::UserDeletion::HasLiveWork { jobs, sessions } => {
                let mut work = Vec::new();
                if !jobs.is_empty() {
                    work.push(format!("jobs `{}`", jobs.join("`, `")));
                }
                if !sessions.is_empty() {
                    let ids: Vec<String> = sessions.iter().map(ToString::to_string).collect();
                    work.push(format!("sessions `{}`", ids.join("`, `")));
                }
                return Err(ControlError::Conflict {
                    target: "name".into(),
                    message: format!(
                        "user `{name}` still has live work: {}\nhint: cancel the jobs (`spool job cancel --name NAME`) and delete the sessions (`spool session delete --name ID`), then delete the user",
                        work.join(" and ")
                    ),
                });
            }
        }
        self.forget_user(user.id);
        tracing::info!(user = name, by = %caller.name, "deleted user");
        self.inner
            .accounts
            .remove(&identity::Principal::User(name.to_string()).key())
            .await;
        Ok(())
    }

    /// A user's row by name; a deleted or unknown user is "not found".
    async fn user_row(&self, name: &str) -> Result<spool_store::UserRow> {
        self.inner
            .store
            .user_by_name(name)
            .await?
            .ok_or_else(|| ControlError::NotFound {
                kind: "user",
                name: name.to_string(),
            })
    }

    /// Gives a user a new token and returns it (shown once); the old one stops working at once.
    /// Users rotate their own (`name` is `None` or theirs), Owners anyone's. The `admin` user's
    /// new token is also written to `admin.token`, so a restart does not replace it.
    pub async fn rotate_token(
        &self,
        caller: &Caller,
        name: Option<&str>,
    ) -> Result<api::UserCreated> {
        let name = name.unwrap_or(&caller.name);
        caller.require(if name == caller.name {
            Action::RotateOwnToken
        } else {
            Action::RotateOthersTokens
        })?;
        let user = self.user_row(name).await?;
        let token = auth::new_token();
        self.inner
            .store
            .set_token_hash(user.id, &auth::hash_token(&token))
            .await?;
        self.forget_user(user.id);
        if user.name == "admin" {
            auth::write_secret(
                &self
                    .inner
                    .data_dir
                    .join(spool_core::paths::ADMIN_TOKEN_FILE),
                &token,
            )?;
        }
        tracing::info!(user = name, by = %caller.name, "rotated a user's token");
        Ok(api::UserCreated {
            name: user.name,
            token,
        })
    }

    // Catalog.

    /// What jobs may ask for: runtimes and instance types.
    pub fn spec_catalog(&self) -> Catalog {
        let mut instance_types = spool_spec::azure_instance_types();
        instance_types.extend(self.inner.config.extra_instance_types.iter().cloned());
        Catalog {
            runtimes: spool_runtime::supported_versions(),
            default_runtime: spool_runtime::DEFAULT_RUNTIME.to_string(),
            instance_types,
        }
    }

    /// The catalog with install state and capacity, for the API.
    pub async fn catalog(&self, caller: &Caller) -> Result<api::CatalogView> {
        caller.require(Action::ViewCatalog)?;
        let spec = self.spec_catalog();
        let (used_cores, used_memory) = scheduler::used_capacity(self).await?;
        let config = &self.inner.config;
        Ok(api::CatalogView {
            runtimes: spool_runtime::RUNTIMES
                .iter()
                .map(|r| api::RuntimeView {
                    version: r.version.to_string(),
                    pyspark: r.pyspark.to_string(),
                    scala: r.scala.to_string(),
                    packages: r.packages.iter().map(|p| p.to_string()).collect(),
                    installed: self.inner.runtimes.installed(r.version).is_some(),
                    default: r.version == spool_runtime::DEFAULT_RUNTIME,
                })
                .collect(),
            default_runtime: spec.default_runtime,
            instance_types: spec
                .instance_types
                .into_iter()
                .map(|t| api::InstanceTypeView {
                    name: t.name,
                    cores: t.cores,
                    memory_mb: t.memory_mb.0,
                })
                .collect(),
            prewarmed_sessions_ready: self
                .inner
                .store
                .sessions_in_state(&[SessionState::Idle])
                .await?
                .iter()
                .filter(|s| s.prewarmed)
                .count() as u32,
            capacity: api::CapacityView {
                host_cores: config.host_cores,
                cpu_oversubscription: config.cpu_oversubscription,
                schedulable_cores: config.schedulable_cores(),
                memory_mb: config.host_memory.0,
                used_cores,
                used_memory_mb: used_memory,
            },
        })
    }

    /// Installs a runtime (no-op when installed), reporting progress.
    pub async fn install_runtime(
        &self,
        version: &str,
        progress: &dyn spool_runtime::Progress,
    ) -> Result<spool_runtime::InstalledRuntime> {
        if spool_runtime::find(version).is_none() {
            return Err(invalid(
                "version",
                format!(
                    "unknown runtime `{version}`; supported: {}",
                    spool_runtime::supported_versions().join(", ")
                ),
            ));
        }
        self.inner
            .runtimes
            .install(version, progress)
            .await
            .map_err(|e| ControlError::Internal(anyhow::anyhow!("install runtime {version}: {e}")))
    }

    // Datastores and snapshots.

    pub async fn datastores(&self, caller: &Caller) -> Result<Vec<api::DatastoreView>> {
        caller.require(Action::ViewDatastores)?;
        let rows = self.inner.store.list_datastores().await?;
        Ok(rows.into_iter().map(views::datastore_view).collect())
    }

    /// Creates a datastore (Owners only): a folder under the data dir, or an existing directory
    /// `path` (absolute, outside the data dir). Its creator gets Storage Blob Data Owner on it.
    pub async fn create_datastore(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
    ) -> Result<api::DatastoreView> {
        caller.require(Action::CreateDatastores)?;
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(invalid(
                "name",
                format!(
                    "datastore name `{name}` may contain only letters, digits and `_` (1 to 64)"
                ),
            ));
        }
        let root = match path {
            None => self.inner.data_dir.join("datastores").join(name),
            Some(path) => self.datastore_path_root(path)?,
        };
        // The folder first, so that a recorded datastore always has one; a folder made here
        // is removed again if the datastore cannot be recorded.
        let made = !root.exists();
        std::fs::create_dir_all(&root).map_err(anyhow::Error::from)?;
        let recorded = self
            .inner
            .store
            .create_owned_datastore(name, &root.display().to_string(), &caller.name)
            .await;
        match recorded {
            Ok(row) => {
                self.sync_datastore_acls(None).await?;
                Ok(views::datastore_view(row))
            }
            Err(e) => {
                if made {
                    let _ = std::fs::remove_dir(&root);
                }
                match e {
                    StoreError::Conflict(_) => Err(ControlError::Conflict {
                        target: "name".into(),
                        message: format!("datastore `{name}` already exists"),
                    }),
                    e => Err(e.into()),
                }
            }
        }
    }

    /// Checks a directory named as a datastore's root: absolute, existing, a directory, and not
    /// the data dir or inside or above it (a datastore must not expose Spool's own state).
    fn datastore_path_root(&self, path: &str) -> Result<PathBuf> {
        let given = Path::new(path);
        if !given.is_absolute() {
            return Err(invalid(
                "path",
                format!(
                    "datastore path `{path}` must be absolute (it is a directory on the server's host)"
                ),
            ));
        }
        let root = std::fs::canonicalize(given).map_err(|e| {
            invalid(
                "path",
                format!("datastore path `{path}`: {e}\nhint: create the directory on the server's host first"),
            )
        })?;
        if !root.is_dir() {
            return Err(invalid(
                "path",
                format!("datastore path `{path}` is not a directory"),
            ));
        }
        let data_dir = std::fs::canonicalize(&self.inner.data_dir).map_err(anyhow::Error::from)?;
        if root.starts_with(&data_dir) || data_dir.starts_with(&root) {
            return Err(invalid(
                "path",
                format!(
                    "datastore path `{path}` overlaps the server's data dir `{}`; choose a directory outside it",
                    data_dir.display()
                ),
            ));
        }
        Ok(root)
    }

    async fn datastore_root(&self, name: &str) -> Result<PathBuf> {
        let row =
            self.inner
                .store
                .datastore(name)
                .await?
                .ok_or_else(|| ControlError::NotFound {
                    kind: "datastore",
                    name: name.to_string(),
                })?;
        Ok(PathBuf::from(row.root))
    }

    /// Resolves a datastore URI to its path on disk, inside the datastore's root: the path Spark
    /// is handed. The server itself opens it only through [`Control::datastore_path`].
    pub async fn resolve_uri(&self, uri: &DatastoreUri) -> Result<PathBuf> {
        let root = self.datastore_root(&uri.datastore).await?;
        datastore::resolve_inside(&root, &uri.path).map_err(|m| invalid(uri.to_uri(), m))
    }

    /// Opens a datastore URI's datastore and gives the URI's path inside it, for path operations
    /// that must not follow a symlink out of the datastore.
    pub async fn datastore_path(&self, uri: &DatastoreUri) -> Result<(UserTree, PathBuf)> {
        let root = self.datastore_root(&uri.datastore).await?;
        let relative = datastore::relative_path(&uri.path).map_err(|m| invalid(uri.to_uri(), m))?;
        let tree = UserTree::open(&root).map_err(|e| {
            anyhow::Error::new(e).context(format!("open datastore `{}`", uri.datastore))
        })?;
        Ok((tree, relative))
    }

    /// Where uploads are streamed before they are unpacked (a folder of the data dir, so that
    /// moving into a datastore or the snapshots is on the same filesystem).
    pub fn upload_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = self.inner.data_dir.join("uploads");
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// What is in folder `path` of datastore `name` (one level), for a caller with read
    /// access to it; `path` empty is the datastore's root.
    pub async fn browse_datastore(
        &self,
        caller: &Caller,
        name: &str,
        path: &str,
    ) -> Result<Vec<(String, EntryKind, u64)>> {
        caller.require(Action::ViewDatastores)?;
        let root = self.datastore_root(name).await?;
        let relative = datastore::relative_path(path).map_err(|m| invalid("path", m))?;
        self.data_access(caller)
            .await?
            .check("path", name, path, access::Access::Read)?;
        let shown = format!("{name}/{path}");
        tokio::task::spawn_blocking(move || {
            let tree = UserTree::open(&root)?;
            let tree = if relative.as_os_str().is_empty() {
                tree
            } else {
                tree.subtree(&relative)?
            };
            tree.entries()
        })
        .await
        .map_err(anyhow::Error::from)?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => {
                ControlError::NotFound {
                    kind: "folder",
                    name: shown,
                }
            }
            _ if datastore::refused_link(&e) => invalid(
                "path",
                format!("`{shown}` is or goes through a symbolic link out of the datastore"),
            ),
            _ => ControlError::Internal(e.into()),
        })
    }

    /// Opens file `path` of datastore `name` for a caller with read access to it; returns it
    /// with its size.
    pub async fn open_datastore_file(
        &self,
        caller: &Caller,
        name: &str,
        path: &str,
    ) -> Result<(std::fs::File, u64)> {
        caller.require(Action::ViewDatastores)?;
        let root = self.datastore_root(name).await?;
        let relative = datastore::relative_path(path).map_err(|m| invalid("path", m))?;
        self.data_access(caller)
            .await?
            .check("path", name, path, access::Access::Read)?;
        let shown = format!("{name}/{path}");
        tokio::task::spawn_blocking(move || {
            let file = UserTree::open(&root)?.open_file(&relative)?;
            let size = file.metadata()?.len();
            Ok::<_, std::io::Error>((file, size))
        })
        .await
        .map_err(anyhow::Error::from)?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory => {
                ControlError::NotFound {
                    kind: "file",
                    name: shown,
                }
            }
            _ => invalid(
                "path",
                format!(
                    "`{shown}` cannot be read through the server ({e}); links are not followed"
                ),
            ),
        })
    }

    /// Unpacks an uploaded tar archive (a file, streamed there) into a datastore, all or
    /// nothing; entry names are paths in the datastore. The caller needs write access to every
    /// entry's path.
    pub async fn upload_to_datastore(
        &self,
        caller: &Caller,
        name: &str,
        archive: impl AsRef<Path> + Send + 'static,
    ) -> Result<api::Uploaded> {
        caller.require(Action::UploadToDatastores)?;
        let root = self.datastore_root(name).await?;
        let data = self.data_access(caller).await?;
        let datastore = name.to_string();
        let unpacked = tokio::task::spawn_blocking(move || {
            // Each entry is checked as it is read; a refusal keeps its 403.
            let mut refused = None;
            let unpacked = datastore::unpack_tar_allowing(archive.as_ref(), &root, &mut |entry| {
                data.check("body", &datastore, entry, Access::Write)
                    .map_err(|e| {
                        let message = e.to_string();
                        refused = Some(e);
                        message
                    })
            });
            match refused {
                Some(e) => Err(e),
                None => unpacked.map_err(|m| invalid("body", m)),
            }
        })
        .await
        .map_err(anyhow::Error::from)??;
        Ok(api::Uploaded {
            files: unpacked.files,
            bytes: unpacked.bytes,
        })
    }

    /// Stores a code snapshot (an archive in memory or in a file); returns the `code` value for a
    /// job spec.
    pub fn store_snapshot<A: datastore::ArchiveSource + ?Sized>(
        &self,
        caller: &Caller,
        archive: &A,
    ) -> Result<api::SnapshotCreated> {
        caller.require(Action::UploadSnapshots)?;
        let dir = self.inner.data_dir.join("snapshots");
        permissions::create_private_dir(&dir).map_err(anyhow::Error::from)?;
        let (id, files) =
            datastore::store_snapshot(&dir, archive).map_err(|m| invalid("body", m))?;
        Ok(api::SnapshotCreated {
            code: format!("snapshot:{id}"),
            files,
        })
    }

    fn snapshot_dir(&self, code: &str) -> Result<PathBuf> {
        let id = code.strip_prefix("snapshot:").ok_or_else(|| {
            invalid(
                "code",
                format!("`code` must name an uploaded snapshot (`snapshot:<sha256>`), got `{code}`; the CLI uploads the code folder for you"),
            )
        })?;
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("code", format!("`{code}` is not a snapshot id")));
        }
        let dir = self.inner.data_dir.join("snapshots").join(id);
        if !dir.is_dir() {
            return Err(invalid(
                "code",
                format!(
                    "snapshot `{id}` does not exist on the server; upload the code folder with `POST /api/v1/snapshots` first\nhint: `spool job create` uploads it for you"
                ),
            ));
        }
        Ok(dir)
    }

    // Jobs.

    /// Validates and records a job; the scheduler picks it up. Nothing is created when a check
    /// fails.
    pub async fn create_job(&self, owner: &Caller, spec: JobSpec) -> Result<Job> {
        owner.require(Action::SubmitJobs)?;
        let name = match &spec.name {
            Some(name) => {
                if let Some(existing) = self.inner.store.job_by_name(name).await? {
                    return Err(name_taken("job", name, existing.owner_id == owner.id));
                }
                name.clone()
            }
            None => names::job_name(),
        };
        let (new, _) = self
            .prepare_spark_job(owner, &spec, name.clone(), &BTreeSet::new())
            .await?;
        let job = match self.inner.store.insert_job(&new).await {
            Ok(job) => job,
            Err(StoreError::Conflict(_)) => {
                let mine = self
                    .inner
                    .store
                    .job_by_name(&name)
                    .await?
                    .is_some_and(|j| j.owner_id == owner.id);
                return Err(name_taken("job", &name, mine));
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(job = %job.name, owner = %owner.name, "job submitted");
        self.inner.wake.notify_one();
        Ok(self.job_view(job))
    }

    /// Everything `create_job` checks and fixes for one Spark job named `name`, short of
    /// recording it: the rules, the compute, the environment, the identity and its data roles,
    /// and what the runner will launch. Inputs in `produced` are written by another job first
    /// (a pipeline's earlier node), so they need not exist yet.
    pub(crate) async fn prepare_spark_job(
        &self,
        owner: &Caller,
        spec: &JobSpec,
        name: String,
        produced: &BTreeSet<String>,
    ) -> Result<(NewJob, Launch)> {
        let catalog = self.spec_catalog();
        let sizing = spool_spec::check_job(spec, &catalog).map_err(|diags| {
            let first = diags.first().map(|d| d.field.clone()).unwrap_or_default();
            let text: Vec<String> = diags.iter().map(|d| d.render("job")).collect();
            invalid(first, text.join("\n"))
        })?;
        // An attached pool decides the runtime by its Spark version; serverless by `resources`.
        let pool = match &spec.compute {
            Some(name) => Some(self.find_compute(name).await.map_err(|_| {
                let names = name.strip_prefix("azureml:").unwrap_or(name);
                invalid(
                    "compute",
                    format!(
                        "compute `{names}` is not attached (see `spool compute list`)\nhint: attach it with `spool compute attach --file pool.yml`, or use `resources` to run on serverless compute"
                    ),
                )
            })?),
            None => None,
        };
        let runtime = match &pool {
            Some(pool) => pool.runtime.clone(),
            None => spec
                .resources
                .as_ref()
                .and_then(|r| r.runtime_version.clone())
                .unwrap_or_else(|| catalog.default_runtime.clone()),
        };
        if pool.is_none() {
            scheduler::check_ever_fits(self, &sizing)?;
        }
        let environment = match spec.environment.as_ref() {
            Some(env) => {
                let (file, text) = environments::conda_from_job(env)?;
                let rebuild = environments::rebuild_requested(
                    spec.conf
                        .get(environments::ENABLE_CACHE_CONF)
                        .map(spool_spec::ConfValue::to_spark)
                        .as_deref(),
                );
                Some(
                    self.check_conda(&runtime, &file, &text, rebuild, "environment.conda_file")
                        .await?,
                )
            }
            None => None,
        };

        // Who the job acts as decides what it may read and write: checked before anything is
        // recorded.
        let compute = match &pool {
            Some(pool) => self.pool_identities(pool).await?,
            None => identity::Compute::Serverless {
                workspace: self.workspace_identities().await?,
            },
        };
        let principal = identity::resolve(
            spec.identity,
            &spec.identity_selector,
            &compute,
            &owner.name,
        )
        .map_err(|m| invalid("identity", m))?;
        let data = self.principal_access(owner, &principal).await?;
        let launch = self.plan_launch(&data, &name, spec, produced).await?;
        let identity = spec
            .identity
            .map(|i| i.as_str())
            .unwrap_or(if pool.is_some() {
                // An attached pool acts as its own (system-assigned) identity by default, serverless
                // compute as the user, as in Azure ML.
                "managed"
            } else {
                "user_identity"
            });
        let display_name = spec.display_name.clone().unwrap_or_else(|| name.clone());
        let new = NewJob {
            name: name.clone(),
            kind: spool_core::JobKind::Spark,
            owner_id: owner.id,
            display_name,
            experiment_name: spec
                .experiment_name
                .clone()
                .unwrap_or_else(|| "Default".into()),
            status: JobStatus::NotStarted,
            spec_json: serde_json::to_string(&spec).map_err(anyhow::Error::from)?,
            sizing_json: serde_json::to_string(&sizing).map_err(anyhow::Error::from)?,
            runtime,
            compute: pool
                .as_ref()
                .map_or_else(|| "serverless".to_string(), |p| p.name.clone()),
            identity: identity.to_string(),
            principal: principal.name().to_string(),
            runs_as: principal.key(),
            launch_json: Some(serde_json::to_string(&launch).map_err(anyhow::Error::from)?),
            environment_json: environment
                .as_ref()
                .map(|e| serde_json::to_string(e).map_err(anyhow::Error::from))
                .transpose()?,
        };
        Ok((new, launch))
    }

    /// Checks everything on disk a job needs and fixes its argv and output paths.
    async fn plan_launch(
        &self,
        data: &roles::DataAccess,
        name: &str,
        spec: &JobSpec,
        produced: &BTreeSet<String>,
    ) -> Result<Launch> {
        let snapshot = self.snapshot_dir(&spec.code)?;
        let entry_file = match &spec.entry {
            Entry::File(file) => Some(file.clone()),
            Entry::ClassName(_) => None,
        };
        let in_snapshot = |field: &str, rel: &str| -> Result<()> {
            // Spark reads `name#alias` as the file `name` given the name `alias`.
            let rel = livy_files::without_alias(rel);
            let path = datastore::resolve_inside(&snapshot, rel).map_err(|m| invalid(field, m))?;
            if !path.exists() {
                return Err(invalid(
                    field,
                    format!("`{rel}` does not exist in the code folder (Entry doesn't exist.)"),
                ));
            }
            Ok(())
        };
        if let Some(file) = &entry_file {
            in_snapshot("entry.file", file)?;
        }
        for (field, list) in [
            ("py_files", &spec.py_files),
            ("jars", &spec.jars),
            ("files", &spec.files),
            ("archives", &spec.archives),
        ] {
            for item in list {
                in_snapshot(field, item)?;
            }
        }
        let data = self
            .resolve_data(data, name, &spec.inputs, &spec.outputs, produced)
            .await?;
        let argv_args = match &spec.args {
            Some(args) => spool_spec::bind_args(args, &data.inputs, &data.outputs)
                .map_err(|m| invalid("args", m))?,
            None => Vec::new(),
        };
        let job_dir = self.job_dir(name);
        Ok(Launch {
            argv: argv_args,
            outputs: data.output_uris,
            work_dir: job_dir.join("work"),
            log_dir: job_dir.join("logs"),
        })
    }

    /// Checks a job's inputs (they exist; its principal may read them) and outputs (its
    /// principal may write them; their folders are made) and gives their paths on this host,
    /// an output without a path at Azure ML's default place (`azureml/{job}/{output}/`).
    /// Inputs in `produced` are written by an earlier pipeline node: they need not exist yet.
    pub(crate) async fn resolve_data(
        &self,
        data: &roles::DataAccess,
        name: &str,
        job_inputs: &BTreeMap<String, JobInput>,
        job_outputs: &BTreeMap<String, spool_spec::JobOutput>,
        produced: &BTreeSet<String>,
    ) -> Result<ResolvedData> {
        let mut inputs = BTreeMap::new();
        for (input_name, input) in job_inputs {
            let target = format!("inputs.{input_name}.path");
            let value = match input {
                JobInput::Literal { value, .. } => value.clone(),
                JobInput::Data { data_type, path } => {
                    let uri = match DatastoreUri::parse(path) {
                        Some(Ok(uri)) => uri,
                        Some(Err(m)) => return Err(invalid(target, m)),
                        None => {
                            return Err(invalid(
                                target,
                                format!(
                                    "`{path}` is not a datastore URI; local files are uploaded by `spool job create`, other storage (abfss://, wasbs://, https://) is not supported yet"
                                ),
                            ));
                        }
                    };
                    data.check_uri(&target, &uri, Access::Read)?;
                    let local = self
                        .resolve_uri(&uri)
                        .await
                        .map_err(|e| retarget(e, &target))?;
                    if produced.contains(input_name) {
                        inputs.insert(input_name.clone(), local.display().to_string());
                        continue;
                    }
                    let (tree, relative) = self
                        .datastore_path(&uri)
                        .await
                        .map_err(|e| retarget(e, &target))?;
                    let kind = tree
                        .kind(&relative)
                        .map_err(|e| datastore_error(&target, &uri, e))?;
                    let ok = match data_type {
                        DataType::UriFile => kind == Some(EntryKind::File),
                        DataType::UriFolder => kind == Some(EntryKind::Folder),
                    };
                    if !ok {
                        let what = match data_type {
                            DataType::UriFile => "file",
                            DataType::UriFolder => "folder",
                        };
                        return Err(invalid(
                            target,
                            format!(
                                "input `{input_name}`: no {what} at `{path}`\nhint: upload it with `spool datastore upload --name {} --src <local path> --dest {}`",
                                uri.datastore, uri.path
                            ),
                        ));
                    }
                    local.display().to_string()
                }
            };
            inputs.insert(input_name.clone(), value);
        }
        let mut outputs = BTreeMap::new();
        let mut output_uris = BTreeMap::new();
        for (output_name, output) in job_outputs {
            let target = format!("outputs.{output_name}.path");
            let uri = match &output.path {
                Some(path) => match DatastoreUri::parse(path) {
                    Some(Ok(uri)) => uri,
                    Some(Err(m)) => return Err(invalid(target, m)),
                    None => {
                        return Err(invalid(
                            target,
                            format!(
                                "output path `{path}` must be a datastore URI (`azureml://datastores/<name>/paths/<path>`), or omitted for the default location"
                            ),
                        ));
                    }
                },
                // Azure ML's default output location.
                None => {
                    DatastoreUri::new(DEFAULT_DATASTORE, &format!("azureml/{name}/{output_name}/"))
                }
            };
            data.check_uri(&target, &uri, Access::Write)?;
            let local = self
                .resolve_uri(&uri)
                .await
                .map_err(|e| retarget(e, &target))?;
            // Spark writes the output itself; the folder it writes into must exist.
            let (tree, relative) = self
                .datastore_path(&uri)
                .await
                .map_err(|e| retarget(e, &target))?;
            if let Some(parent) = relative.parent() {
                tree.create_dir_all(parent)
                    .map_err(|e| datastore_error(&target, &uri, e))?;
            }
            let mut shown = local.display().to_string();
            if uri.path.ends_with('/') {
                shown.push('/');
            }
            outputs.insert(output_name.clone(), shown);
            output_uris.insert(output_name.clone(), uri.to_uri());
        }
        Ok(ResolvedData {
            inputs,
            outputs,
            output_uris,
        })
    }

    /// Returns a job the caller may see.
    pub async fn job(&self, caller: &Caller, name: &str) -> Result<Job> {
        caller.require(Action::ViewJobs)?;
        Ok(self.job_view(self.job_row(caller, name).await?))
    }

    pub(crate) fn job_view(&self, row: JobRow) -> Job {
        let log_dir = self.job_log_dir(&row);
        Job::from_row(row, log_dir)
    }

    async fn job_row(&self, caller: &Caller, name: &str) -> Result<JobRow> {
        match self.inner.store.job_by_name(name).await? {
            Some(job) if caller.sees(job.owner_id) => Ok(job),
            // Another user's job is "not found", never "forbidden".
            _ => Err(ControlError::NotFound {
                kind: "job",
                name: name.to_string(),
            }),
        }
    }

    /// The caller's jobs (everyone's for an Owner), newest first.
    pub async fn jobs(&self, caller: &Caller, limit: i64) -> Result<Vec<Job>> {
        caller.require(Action::ViewJobs)?;
        let owner = caller.only_own();
        let rows = self.inner.store.list_jobs(owner, limit).await?;
        Ok(rows.into_iter().map(|row| self.job_view(row)).collect())
    }

    /// A page of the caller's jobs (everyone's for an Owner), newest first, filtered as a job
    /// list page asks; the owner filter applies only to callers who see everyone's work.
    pub async fn jobs_filtered(
        &self,
        caller: &Caller,
        query: &views::JobQuery,
    ) -> Result<Vec<Job>> {
        caller.require(Action::ViewJobs)?;
        let filter = spool_store::JobFilter {
            owner_id: caller.only_own(),
            status: query.status,
            experiment: query.experiment.as_deref(),
            owner_name: query.owner.as_deref().filter(|_| caller.sees_everything()),
            before: query.before,
            limit: query.limit.clamp(1, 1000),
        };
        let rows = self.inner.store.list_jobs_filtered(&filter).await?;
        Ok(rows.into_iter().map(|row| self.job_view(row)).collect())
    }

    pub async fn cluster(&self, id: ClusterId) -> Result<Option<api::ClusterView>> {
        Ok(self.inner.store.cluster(id).await?.map(views::cluster_view))
    }

    /// One cluster with its network objects: the caller's (any for an Owner), else not found.
    pub async fn show_cluster(&self, caller: &Caller, id: ClusterId) -> Result<api::ClusterView> {
        caller.require(Action::ViewClusters)?;
        let not_found = || ControlError::NotFound {
            kind: "cluster",
            name: id.to_string(),
        };
        let row = self.inner.store.cluster(id).await?.ok_or_else(not_found)?;
        if !caller.sees(row.owner_id) {
            return Err(not_found());
        }
        let network = self.inner.store.netns_of(Owner::Cluster(id)).await?;
        let workers = self.inner.store.cluster_workers(id).await?;
        Ok(api::ClusterView {
            network: network.map(views::cluster_network_view),
            workers: workers
                .into_iter()
                .map(views::cluster_worker_view)
                .collect(),
            ..views::cluster_view(row)
        })
    }

    /// Live clusters: the caller's, or all of them for an Owner.
    pub async fn clusters(&self, caller: &Caller) -> Result<Vec<api::ClusterView>> {
        caller.require(Action::ViewClusters)?;
        let rows = self.inner.store.live_clusters().await?;
        let mut workers: HashMap<ClusterId, Vec<api::ClusterWorkerView>> = HashMap::new();
        for w in self.inner.store.live_cluster_workers().await? {
            workers
                .entry(w.cluster_id)
                .or_default()
                .push(views::cluster_worker_view(w));
        }
        Ok(rows
            .into_iter()
            .filter(|c| caller.sees(c.owner_id))
            .map(|c| api::ClusterView {
                workers: workers.remove(&c.id).unwrap_or_default(),
                ..views::cluster_view(c)
            })
            .collect())
    }

    /// Requests cancellation; returns the job as it is now.
    pub async fn cancel_job(&self, caller: &Caller, name: &str) -> Result<Job> {
        caller.require(Action::CancelJobs)?;
        let job = self.job_row(caller, name).await?;
        if job.status.is_terminal() {
            return Ok(self.job_view(job));
        }
        if job.kind == JobKind::Pipeline {
            // The pipeline loop stops its nodes; it ends once they have.
            self.inner
                .store
                .set_job_status(
                    job.id,
                    JobStatus::CancelRequested,
                    Some("cancel requested by the user"),
                )
                .await?;
            let job = self.inner.store.job(job.id).await?.unwrap_or(job);
            self.advance_pipeline(&job).await?;
            tracing::info!(job = %job.name, "pipeline cancel requested");
            let job = self.inner.store.job(job.id).await?.unwrap_or(job);
            return Ok(self.job_view(job));
        }
        let _guard = self.inner.placement.lock().await;
        let cancel = self
            .inner
            .running
            .lock()
            .expect("running map lock")
            .get(&job.id)
            .cloned();
        match cancel {
            Some(cancel) => {
                self.inner
                    .store
                    .set_job_status(job.id, JobStatus::CancelRequested, None)
                    .await?;
                cancel.send_replace(true);
            }
            None => {
                // Not started yet: nothing to stop.
                self.inner
                    .store
                    .set_job_status(
                        job.id,
                        JobStatus::Canceled,
                        Some("canceled before it started"),
                    )
                    .await?;
            }
        }
        tracing::info!(job = %job.name, "cancel requested");
        let job = self.inner.store.job(job.id).await?.unwrap_or(job);
        Ok(self.job_view(job))
    }

    /// A job's own folder: its working copy, its logs and what the server keeps of it.
    pub(crate) fn job_dir(&self, name: &str) -> PathBuf {
        self.inner.data_dir.join("jobs").join(name)
    }

    /// The directory holding a job's logs.
    pub(crate) fn job_log_dir(&self, job: &JobRow) -> PathBuf {
        self.job_dir(&job.name).join("logs")
    }

    /// Opens the datastore of a job's output and gives the output's path in it; the caller
    /// needs read access to it (roles may have changed since the job ran).
    pub async fn job_output(
        &self,
        caller: &Caller,
        job: &Job,
        output: &str,
    ) -> Result<(UserTree, PathBuf)> {
        let uri = job
            .outputs
            .get(output)
            .ok_or_else(|| ControlError::NotFound {
                kind: "output",
                name: output.to_string(),
            })?;
        let uri = DatastoreUri::parse(uri)
            .and_then(|r| r.ok())
            .ok_or_else(|| {
                ControlError::Internal(anyhow::anyhow!("stored output uri is invalid"))
            })?;
        self.data_access(caller).await?.check_uri(
            &format!("outputs.{output}"),
            &uri,
            Access::Read,
        )?;
        self.datastore_path(&uri).await
    }

    /// Outputs of a job by name, as datastore URIs.
    pub(crate) fn job_outputs(job: &JobRow) -> BTreeMap<String, String> {
        job.launch_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<Launch>(j).ok())
            .map(|l| l.outputs)
            .unwrap_or_default()
    }

    /// Parses a job's stored sizing.
    pub(crate) fn job_sizing(job: &JobRow) -> Option<SparkSizing> {
        serde_json::from_str(&job.sizing_json).ok()
    }

    /// The latest server events, newest first. Owners only.
    pub async fn events(&self, caller: &Caller, limit: i64) -> Result<Vec<api::EventView>> {
        caller.require(Action::ViewEvents)?;
        let rows = self.inner.store.events(limit).await?;
        Ok(rows.into_iter().map(views::event_view).collect())
    }
}

/// Renders an error with its causes: `state store query: database is locked`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // A layer that repeats its source adds nothing.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Store writes made by background tasks (runners, loops, watchers) have nobody to return an
/// error to: they are logged where they are dropped, once, with what was being recorded.
pub(crate) trait LogError<T> {
    fn log_error(self, what: &str) -> Option<T>;
}

impl<T, E: std::error::Error> LogError<T> for std::result::Result<T, E> {
    fn log_error(self, what: &str) -> Option<T> {
        match self {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "{what}");
                None
            }
        }
    }
}
