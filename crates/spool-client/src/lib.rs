//! A typed client of Spool's native API, used by the CLI and tests.
//!
//! It only speaks HTTP; it must not read files or know about job YAML.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use spool_api_types as api;
pub use spool_api_types::{AgentState, ClusterState, JobStatus, SessionState, StatementState};

/// Errors from calling the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{}", .body.error.message)]
    Api { status: u16, body: api::ErrorBody },
    #[error(
        "cannot reach the Spool server at {url}: {source}\nhint: start it with `spool serve`, or set SPOOL_URL"
    )]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("request to {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("unexpected answer from {url} (status {status}): {text}")]
    Unexpected {
        url: String,
        status: u16,
        text: String,
    },
}

impl ClientError {
    /// The error's target field, when the server named one.
    pub fn target(&self) -> Option<&str> {
        match self {
            ClientError::Api { body, .. } => body.error.target.as_deref(),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Unexpected { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A client bound to one server and token.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base_url: &str, token: &str) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .expect("an HTTP client without TLS always builds");
        Client {
            base: base_url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: &str) -> Result<reqwest::Response> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|source| {
                if source.is_connect() {
                    ClientError::Connect {
                        url: self.base.clone(),
                        source,
                    }
                } else {
                    ClientError::Transport {
                        url: url.to_string(),
                        source,
                    }
                }
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<api::ErrorBody>(&text) {
            Ok(body) => Err(ClientError::Api { status, body }),
            Err(_) => Err(ClientError::Unexpected {
                url: url.to_string(),
                status,
                text,
            }),
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<T> {
        let response = self.send(request, url).await?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.to_string(),
                source,
            })?;
        serde_json::from_str(&text).map_err(|e| ClientError::Unexpected {
            url: url.to_string(),
            status,
            text: format!("{e}: {text}"),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.url(path);
        self.json(self.http.get(&url), &url).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let url = self.url(path);
        self.json(self.http.post(&url).json(body), &url).await
    }

    async fn post_tar<T: DeserializeOwned>(&self, path: &str, archive: Vec<u8>) -> Result<T> {
        let url = self.url(path);
        let request = self
            .http
            .post(&url)
            .header("content-type", "application/x-tar")
            .body(archive);
        self.json(request, &url).await
    }

    async fn bytes(&self, path: &str) -> Result<(Vec<u8>, reqwest::header::HeaderMap)> {
        let url = self.url(path);
        let response = self.send(self.http.get(&url), &url).await?;
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        Ok((bytes.to_vec(), headers))
    }

    pub async fn whoami(&self) -> Result<api::WhoAmI> {
        self.get("/whoami").await
    }

    pub async fn catalog(&self) -> Result<api::CatalogView> {
        self.get("/catalog").await
    }

    /// Creates a user with a workspace role (the server's default when `None`).
    pub async fn create_user(&self, name: &str, role: Option<&str>) -> Result<api::UserCreated> {
        self.post(
            "/users",
            &api::CreateUser {
                name: name.to_string(),
                role: role.map(str::to_string),
            },
        )
        .await
    }

    pub async fn users(&self) -> Result<api::UserList> {
        self.get("/users").await
    }

    pub async fn user(&self, name: &str) -> Result<api::UserView> {
        self.get(&format!("/users/{name}")).await
    }

    /// Gives a user another workspace role (Owners only).
    pub async fn update_user(&self, name: &str, role: &str) -> Result<api::UserView> {
        let url = self.url(&format!("/users/{name}"));
        let body = api::UpdateUser {
            role: role.to_string(),
        };
        self.json(self.http.patch(&url).json(&body), &url).await
    }

    pub async fn create_identity(&self, name: &str) -> Result<api::IdentityView> {
        self.post(
            "/identities",
            &api::CreateIdentity {
                name: name.to_string(),
            },
        )
        .await
    }

    pub async fn identities(&self) -> Result<api::IdentityList> {
        self.get("/identities").await
    }

    pub async fn identity(&self, name: &str) -> Result<api::IdentityView> {
        self.get(&format!("/identities/{name}")).await
    }

    pub async fn delete_identity(&self, name: &str) -> Result<()> {
        let url = self.url(&format!("/identities/{name}"));
        self.send(self.http.delete(&url), &url).await.map(|_| ())
    }

    pub async fn workspace_identities(&self) -> Result<api::IdentityList> {
        self.get("/workspace/identities").await
    }

    /// The workspace's settings: its managed network.
    pub async fn workspace(&self) -> Result<api::WorkspaceView> {
        self.get("/workspace").await
    }

    /// Replaces the workspace's managed network from a workspace file (Owners only).
    pub async fn update_workspace(&self, file: &str, yaml: &str) -> Result<api::WorkspaceView> {
        let url = self.url("/workspace");
        let body = api::UpdateWorkspace {
            file: file.to_string(),
            yaml: yaml.to_string(),
        };
        self.json(self.http.put(&url).json(&body), &url).await
    }

    /// Attaches (`true`) or detaches an identity to or from the workspace.
    pub async fn set_workspace_identity(
        &self,
        name: &str,
        attached: bool,
    ) -> Result<api::IdentityView> {
        let url = self.url(&format!("/workspace/identities/{name}"));
        let request = if attached {
            self.http.put(&url)
        } else {
            self.http.delete(&url)
        };
        self.json(request, &url).await
    }

    pub async fn create_role_assignment(
        &self,
        request: &api::RoleAssignmentCreate,
    ) -> Result<api::RoleAssignmentView> {
        self.post("/role-assignments", request).await
    }

    pub async fn role_assignments(&self) -> Result<api::RoleAssignmentList> {
        self.get("/role-assignments").await
    }

    pub async fn delete_role_assignment(&self, id: api::RoleAssignmentId) -> Result<()> {
        let url = self.url(&format!("/role-assignments/{id}"));
        self.send(self.http.delete(&url), &url).await.map(|_| ())
    }

    /// Deletes a user (Owners only).
    pub async fn delete_user(&self, name: &str) -> Result<()> {
        let url = self.url(&format!("/users/{name}"));
        self.send(self.http.delete(&url), &url).await.map(|_| ())
    }

    /// Gives user `name` a new token and returns it; the old one stops working.
    pub async fn rotate_token(&self, name: &str) -> Result<api::UserCreated> {
        let url = self.url(&format!("/users/{name}/token"));
        self.json(self.http.post(&url), &url).await
    }

    pub async fn datastores(&self) -> Result<api::DatastoreList> {
        self.get("/datastores").await
    }

    pub async fn create_datastore(
        &self,
        name: &str,
        path: Option<&str>,
    ) -> Result<api::DatastoreView> {
        self.post(
            "/datastores",
            &api::CreateDatastore {
                path: path.map(str::to_string),
                name: name.to_string(),
            },
        )
        .await
    }

    /// Uploads a tar archive whose entry names are paths inside the datastore.
    pub async fn upload_to_datastore(
        &self,
        datastore: &str,
        archive: Vec<u8>,
    ) -> Result<api::Uploaded> {
        self.post_tar(&format!("/datastores/{datastore}/upload"), archive)
            .await
    }

    pub async fn create_snapshot(&self, archive: Vec<u8>) -> Result<api::SnapshotCreated> {
        self.post_tar("/snapshots", archive).await
    }

    pub async fn create_job(&self, spec: serde_json::Value) -> Result<api::JobView> {
        self.post("/jobs", &api::CreateJob { spec }).await
    }

    pub async fn jobs(&self, max_results: i64) -> Result<api::JobList> {
        self.get(&format!("/jobs?max_results={max_results}")).await
    }

    /// The nodes of a pipeline, in dependency order.
    pub async fn child_jobs(&self, parent: &str) -> Result<api::JobList> {
        self.get(&format!("/jobs?parent_job_name={parent}")).await
    }

    pub async fn job(&self, name: &str) -> Result<api::JobView> {
        self.get(&format!("/jobs/{name}")).await
    }

    pub async fn cancel_job(&self, name: &str) -> Result<api::JobView> {
        self.post(&format!("/jobs/{name}/cancel"), &serde_json::json!({}))
            .await
    }

    pub async fn job_logs(&self, name: &str) -> Result<api::LogList> {
        self.get(&format!("/jobs/{name}/logs")).await
    }

    /// Reads a log file from `offset`; returns the bytes and the file's size.
    pub async fn job_log(&self, name: &str, path: &str, offset: u64) -> Result<(Vec<u8>, u64)> {
        let (bytes, headers) = self
            .bytes(&format!("/jobs/{name}/logs/{path}?offset={offset}"))
            .await?;
        let size = headers
            .get("x-spool-size")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(offset + bytes.len() as u64);
        Ok((bytes, size))
    }

    pub async fn download_logs(&self, name: &str) -> Result<Vec<u8>> {
        Ok(self.bytes(&format!("/jobs/{name}/download/logs")).await?.0)
    }

    pub async fn download_output(&self, name: &str, output: &str) -> Result<Vec<u8>> {
        Ok(self
            .bytes(&format!("/jobs/{name}/download/outputs/{output}"))
            .await?
            .0)
    }

    /// One cluster, with its network namespace when it is isolated.
    pub async fn cluster(&self, id: i64) -> Result<api::ClusterView> {
        self.get(&format!("/clusters/{id}")).await
    }

    /// Live clusters (the caller's; all of them for an Owner).
    pub async fn clusters(&self) -> Result<Vec<api::ClusterView>> {
        let list: api::ClusterList = self.get("/clusters").await?;
        Ok(list.clusters)
    }

    pub async fn events(&self) -> Result<serde_json::Value> {
        self.get("/events").await
    }

    /// One page of the audit log, newest first (every entry for the admin; the caller's own
    /// calls for a user).
    pub async fn audit(&self, query: &api::AuditQuery) -> Result<api::AuditList> {
        let base = self.url("/audit");
        let mut url = reqwest::Url::parse(&base).map_err(|e| ClientError::Unexpected {
            url: base.clone(),
            status: 0,
            text: e.to_string(),
        })?;
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(since) = &query.since {
                pairs.append_pair("since", since);
            }
            if let Some(principal) = &query.principal {
                pairs.append_pair("principal", principal);
            }
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
            if let Some(before) = query.before {
                pairs.append_pair("before", &before.to_string());
            }
        }
        let url = url.to_string();
        self.json(self.http.get(&url), &url).await
    }
}

impl Client {
    /// An agent's heartbeat; the client's token is the agent's.
    pub async fn agent_heartbeat(&self, report: &api::AgentReport) -> Result<api::AgentOrders> {
        self.post("/agents/heartbeat", report).await
    }

    /// Downloads a runtime archive for an agent host into `dest`; returns its size.
    pub async fn download_runtime(&self, version: &str, dest: &std::path::Path) -> Result<u64> {
        use std::io::Write;
        let url = self.url(&format!("/agents/runtimes/{version}"));
        let mut response = self.send(self.http.get(&url), &url).await?;
        let transport = |source| ClientError::Transport {
            url: url.clone(),
            source,
        };
        let local = |e: std::io::Error| ClientError::Unexpected {
            url: url.clone(),
            status: 200,
            text: format!("write {}: {e}", dest.display()),
        };
        let mut file = std::fs::File::create(dest).map_err(local)?;
        let mut size = 0;
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            file.write_all(&chunk).map_err(local)?;
            size += chunk.len() as u64;
        }
        file.sync_all().map_err(local)?;
        Ok(size)
    }

    pub async fn create_agent(&self, name: &str) -> Result<api::AgentCreated> {
        self.post(
            "/agents",
            &api::CreateAgent {
                name: name.to_string(),
            },
        )
        .await
    }

    pub async fn agents(&self) -> Result<Vec<api::AgentView>> {
        self.get("/agents").await
    }

    pub async fn attach_compute(&self, file: &str, yaml: &str) -> Result<api::ComputeView> {
        self.post(
            "/computes",
            &api::AttachCompute {
                file: file.to_string(),
                yaml: yaml.to_string(),
            },
        )
        .await
    }

    pub async fn computes(&self) -> Result<Vec<api::ComputeView>> {
        self.get("/computes").await
    }

    pub async fn compute(&self, name: &str) -> Result<api::ComputeView> {
        self.get(&format!("/computes/{name}")).await
    }

    pub async fn detach_compute(&self, name: &str, force: bool) -> Result<()> {
        let url = self.url(&format!("/computes/{name}?force={force}"));
        self.send(self.http.delete(&url), &url).await.map(|_| ())
    }

    /// Registers a component (`spool_spec::component::ComponentSpec` as JSON, `code` uploaded).
    pub async fn create_component(&self, spec: serde_json::Value) -> Result<api::ComponentView> {
        self.post("/components", &api::CreateComponent { spec })
            .await
    }

    pub async fn components(
        &self,
        include_archived: bool,
        all_versions: bool,
    ) -> Result<api::ComponentList> {
        self.get(&format!(
            "/components?include_archived={include_archived}&all_versions={all_versions}"
        ))
        .await
    }

    /// One version of a component: by version, by label (`latest`), or the default.
    pub async fn component(
        &self,
        name: &str,
        version: Option<&str>,
        label: Option<&str>,
    ) -> Result<api::ComponentView> {
        let mut query = Vec::new();
        if let Some(version) = version {
            query.push(format!("version={}", encode_query(version)));
        }
        if let Some(label) = label {
            query.push(format!("label={}", encode_query(label)));
        }
        self.get(&format!(
            "/components/{}?{}",
            encode_query(name),
            query.join("&")
        ))
        .await
    }

    /// Archives (or restores) one version, or without a version the whole component.
    pub async fn set_component_archived(
        &self,
        name: &str,
        version: Option<&str>,
        archived: bool,
    ) -> Result<()> {
        let verb = if archived { "archive" } else { "restore" };
        let query = version
            .map(|v| format!("?version={}", encode_query(v)))
            .unwrap_or_default();
        let url = self.url(&format!("/components/{}/{verb}{query}", encode_query(name)));
        self.send(self.http.post(&url), &url).await.map(|_| ())
    }

    pub async fn environments(&self) -> Result<Vec<api::EnvironmentView>> {
        self.get("/environments").await
    }

    pub async fn environment(&self, key: &str) -> Result<api::EnvironmentView> {
        self.get(&format!("/environments/{key}")).await
    }

    /// What an environment's build printed.
    pub async fn environment_log(&self, key: &str) -> Result<Vec<u8>> {
        Ok(self.bytes(&format!("/environments/{key}/log")).await?.0)
    }

    pub async fn prune_environments(&self, all: bool) -> Result<api::EnvironmentsPruned> {
        self.post("/environments/prune", &serde_json::json!({ "all": all }))
            .await
    }

    pub async fn create_session(&self, request: &api::CreateSession) -> Result<api::SessionView> {
        self.post("/sessions", request).await
    }

    pub async fn sessions(&self) -> Result<api::SessionList> {
        self.get("/sessions").await
    }

    /// A session by id or name.
    pub async fn session(&self, key: &str) -> Result<api::SessionView> {
        self.get(&format!("/sessions/{key}")).await
    }

    pub async fn delete_session(&self, key: &str) -> Result<api::SessionView> {
        let url = self.url(&format!("/sessions/{key}"));
        self.json(self.http.delete(&url), &url).await
    }

    pub async fn run_statement(
        &self,
        key: &str,
        code: &str,
        kind: Option<&str>,
    ) -> Result<api::StatementView> {
        self.post(
            &format!("/sessions/{key}/statements"),
            &api::CreateStatement {
                code: code.to_string(),
                kind: kind.map(str::to_string),
            },
        )
        .await
    }

    pub async fn statement(&self, key: &str, seq: i64) -> Result<api::StatementView> {
        self.get(&format!("/sessions/{key}/statements/{seq}")).await
    }

    pub async fn cancel_statement(&self, key: &str, seq: i64) -> Result<api::StatementView> {
        self.post(
            &format!("/sessions/{key}/statements/{seq}/cancel"),
            &serde_json::json!({}),
        )
        .await
    }
}

/// Percent-encodes a path segment or query value: everything but unreserved characters.
fn encode_query(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
