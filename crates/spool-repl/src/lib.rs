//! The interactive driver: `python/driver.py` (a PySpark REPL served on a loopback socket) and a
//! client that talks to it.
//!
//! This crate must not start processes (the supervisor does) or touch the store.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, oneshot};

/// The driver program, written next to a session's logs and run with `spark-submit`.
pub const DRIVER_PY: &str = include_str!("../python/driver.py");

/// Errors talking to a driver.
#[derive(Debug, thiserror::Error)]
pub enum ReplError {
    #[error("connect to the session's driver on port {port}: {source}")]
    Connect {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("the session's driver closed the connection")]
    Closed,
    #[error("the session's driver did not accept the session's secret")]
    Refused,
    #[error("the warm driver could not start the job: {0}")]
    Rejected(String),
    #[error("send to the session's driver: {0}")]
    Send(#[from] std::io::Error),
}

/// A batch job's entry for a warm driver, with what `spark-submit` would have given it.
pub struct RunMain<'a> {
    /// The entry file, run as `__main__`.
    pub file: &'a Path,
    /// `sys.argv`: the entry file, then the job's arguments.
    pub argv: Vec<String>,
    /// The working directory (the job's working copy).
    pub cwd: &'a Path,
    /// Added with `addPyFile` (importable on the driver and executors).
    pub py_files: Vec<PathBuf>,
    /// Added with `addFile` (`SparkFiles.get`).
    pub files: Vec<PathBuf>,
    /// Settings applied to the session before the entry runs (runtime-settable ones only).
    pub conf: BTreeMap<String, String>,
    /// The file the entry's stdout and stderr go to (its account can write it).
    pub log: &'a Path,
}

type Pending = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A connection to one driver. Requests may overlap; answers are matched by a request tag.
pub struct ReplClient {
    writer: Mutex<OwnedWriteHalf>,
    pending: Pending,
    next: AtomicU64,
}

impl ReplClient {
    /// Connects to a driver listening on `host:port` (127.0.0.1, or its cluster's address in
    /// the cluster's namespace) and presents the session's secret (the driver answers nothing
    /// else first).
    pub async fn connect(host: &str, port: u16, secret: &str) -> Result<ReplClient, ReplError> {
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(|source| ReplError::Connect { port, source })?;
        // Statements are small messages; without this, Nagle's algorithm and delayed ACKs add
        // tens of milliseconds to a round trip.
        stream
            .set_nodelay(true)
            .map_err(|source| ReplError::Connect { port, source })?;
        let (read, mut write) = stream.into_split();
        let mut auth = json!({"op": "auth", "secret": secret}).to_string();
        auth.push('\n');
        write.write_all(auth.as_bytes()).await?;
        let mut lines = BufReader::new(read).lines();
        let accepted = lines
            .next_line()
            .await?
            .and_then(|line| serde_json::from_str::<Value>(&line).ok())
            .is_some_and(|answer| answer.get("auth") == Some(&json!("ok")));
        if !accepted {
            return Err(ReplError::Refused);
        }
        let pending: Pending = Arc::default();
        let reader_pending = pending.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(message) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let Some(tag) = message.get("req").and_then(Value::as_u64) else {
                    continue;
                };
                if let Some(tx) = reader_pending.lock().expect("pending lock").remove(&tag) {
                    let _ = tx.send(message);
                }
            }
            // Dropping the senders wakes every waiter with `Closed`.
            reader_pending.lock().expect("pending lock").clear();
        });
        Ok(ReplClient {
            writer: Mutex::new(write),
            pending,
            next: AtomicU64::new(1),
        })
    }

    /// Waits until a driver accepts connections, up to `timeout`.
    pub async fn connect_with_retry(
        host: &str,
        port: u16,
        secret: &str,
        timeout: Duration,
    ) -> Result<ReplClient, ReplError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match ReplClient::connect(host, port, secret).await {
                Ok(client) => return Ok(client),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn request(&self, mut message: Value) -> Result<Value, ReplError> {
        let tag = self.next.fetch_add(1, Ordering::Relaxed);
        message["req"] = json!(tag);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(tag, tx);
        let mut line = message.to_string();
        line.push('\n');
        {
            let mut writer = self.writer.lock().await;
            if let Err(e) = writer.write_all(line.as_bytes()).await {
                self.pending.lock().expect("pending lock").remove(&tag);
                return Err(e.into());
            }
        }
        rx.await.map_err(|_| ReplError::Closed)
    }

    /// Runs a statement; returns its Livy-shaped output when it is done.
    pub async fn execute(
        &self,
        statement_id: i64,
        kind: &str,
        code: &str,
    ) -> Result<Value, ReplError> {
        let answer = self
            .request(json!({"op": "execute", "id": statement_id, "kind": kind, "code": code}))
            .await?;
        Ok(answer.get("output").cloned().unwrap_or(Value::Null))
    }

    /// Waits for the output of a statement sent earlier (possibly by a previous server);
    /// `None` when the driver never saw it.
    pub async fn result(&self, statement_id: i64) -> Result<Option<Value>, ReplError> {
        let answer = self
            .request(json!({"op": "result", "id": statement_id}))
            .await?;
        Ok(answer.get("output").cloned().filter(|o| !o.is_null()))
    }

    /// Cancels a running statement's Spark jobs.
    pub async fn cancel(&self, statement_id: i64) -> Result<(), ReplError> {
        self.request(json!({"op": "cancel", "id": statement_id}))
            .await
            .map(|_| ())
    }

    /// Returns the share of a statement's Spark tasks that are done (0 to 1).
    pub async fn progress(&self, statement_id: i64) -> Result<f64, ReplError> {
        let answer = self
            .request(json!({"op": "progress", "id": statement_id}))
            .await?;
        Ok(answer
            .get("progress")
            .and_then(Value::as_f64)
            .unwrap_or(0.0))
    }

    /// Hands the driver a batch job's entry to run as `__main__` (then it exits with the
    /// entry's exit code); returns once the entry has started.
    pub async fn run_main(&self, run: &RunMain<'_>) -> Result<(), ReplError> {
        let answer = self
            .request(json!({
                "op": "run",
                "id": 0,
                "file": run.file,
                "argv": run.argv,
                "cwd": run.cwd,
                "py_files": run.py_files,
                "files": run.files,
                "conf": run.conf,
                "log": run.log,
            }))
            .await?;
        match answer.get("error").and_then(Value::as_str) {
            Some(error) => Err(ReplError::Rejected(error.to_string())),
            None => Ok(()),
        }
    }

    /// Asks the driver to stop its SparkSession and exit.
    pub async fn shutdown(&self) -> Result<(), ReplError> {
        self.request(json!({"op": "shutdown", "id": 0}))
            .await
            .map(|_| ())
    }
}
