//! A Spark standalone pool started by hand, as a user's own cluster would be: what tests attach.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::{free_port, wait_for};

/// A master and one worker of the test runtime, each in its own process group; stopped on drop.
pub struct StandalonePool {
    pub master_url: String,
    pub ui_url: String,
    master: Child,
    worker: Child,
    _dir: tempfile::TempDir,
}

impl StandalonePool {
    /// Starts a pool whose worker offers `cores` and `memory` (e.g. `"2g"`), and waits until the
    /// worker has registered.
    pub fn start(cores: u32, memory: &str) -> StandalonePool {
        crate::ensure_runtime();
        let runtime = spool_runtime::RuntimeCache::new(crate::cache_dir())
            .installed(crate::TEST_RUNTIME)
            .expect("test runtime installed");
        let dir = tempfile::tempdir().expect("pool dir");
        let (port, ui, worker_ui) = (free_port(), free_port(), free_port());
        let classpath = format!(
            "{0}/conf:{0}/jars/*",
            runtime.spark_home.display().to_string()
        );
        let spawn = |args: Vec<String>, log: &str| -> Child {
            let log = std::fs::File::create(dir.path().join(log)).expect("log");
            Command::new(spool_runtime::java_command())
                .arg("-Xmx256m")
                .arg("-cp")
                .arg(&classpath)
                .args(args)
                .env("SPARK_HOME", &runtime.spark_home)
                .env("SPARK_LOCAL_IP", "127.0.0.1")
                .env("SPARK_SCALA_VERSION", &runtime.scala)
                .env("PYSPARK_PYTHON", &runtime.python)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .process_group(0)
                .spawn()
                .expect("start a Spark daemon")
        };
        let master = spawn(
            vec![
                "org.apache.spark.deploy.master.Master".into(),
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
                "--webui-port".into(),
                ui.to_string(),
            ],
            "master.log",
        );
        let master_url = format!("spark://127.0.0.1:{port}");
        let worker = spawn(
            vec![
                "org.apache.spark.deploy.worker.Worker".into(),
                master_url.clone(),
                "--host".into(),
                "127.0.0.1".into(),
                "--webui-port".into(),
                worker_ui.to_string(),
                "--cores".into(),
                cores.to_string(),
                "--memory".into(),
                memory.into(),
                "--work-dir".into(),
                dir.path().join("work").display().to_string(),
            ],
            "worker.log",
        );
        let pool = StandalonePool {
            master_url,
            ui_url: format!("http://127.0.0.1:{ui}"),
            master,
            worker,
            _dir: dir,
        };
        wait_for(
            "the pool's worker to register",
            crate::deadline::COLD_START,
            || {
                pool.status()
                    .filter(|s| s["aliveworkers"].as_i64().unwrap_or(0) >= 1)
                    .map(|_| ())
            },
        );
        pool
    }

    /// The master's `/json/` status, if it answers.
    pub fn status(&self) -> Option<serde_json::Value> {
        let port: u16 = self.ui_url.rsplit(':').next()?.parse().ok()?;
        let body = crate::http_get_local(port, "/json/")?;
        serde_json::from_str(&body).ok()
    }

    pub fn is_running(&self) -> bool {
        Path::new(&format!("/proc/{}", self.master.id())).exists()
            && Path::new(&format!("/proc/{}", self.worker.id())).exists()
    }
}

impl Drop for StandalonePool {
    fn drop(&mut self) {
        for child in [&mut self.worker, &mut self.master] {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}
