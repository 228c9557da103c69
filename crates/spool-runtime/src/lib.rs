//! Runtimes: the supported Spark versions, and their installation from PyPI into managed
//! virtualenvs in the machine-wide cache (shared by every data dir of the user).
//!
//! An install is idempotent and safe against concurrent installs (a file lock per runtime); a
//! runtime counts as installed only once its marker file is written, after `import pyspark.pandas`
//! worked in it. This crate starts Spark only to train a runtime's class archive, once, in local
//! mode (see [`class_archive`]); clusters, drivers and executors are never started here.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use tokio::process::Command;

mod class_archive;
mod env;
pub use env::{BuildRecorder, BuiltEnv, EnvError, EnvInfo, EnvSettings, NoRecorder, env_key};

/// The uv release used to build runtimes; pinned so installs are reproducible.
const UV_VERSION: &str = "0.13.8";

/// File in a runtime dir that marks a finished, verified install.
const MARKER: &str = "spool-runtime.json";

/// A supported runtime: a Spark version with the packages pinned to work with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeDef {
    /// `major.minor`, as jobs name it.
    pub version: &'static str,
    /// The exact pyspark release installed.
    pub pyspark: &'static str,
    /// Scala version of the Spark jars (needed to launch workers without `spark-class`).
    pub scala: &'static str,
    /// Packages PySpark's pandas API and Arrow need, pinned to versions that work with this Spark.
    pub packages: &'static [&'static str],
    /// Lowest Java major version Spool runs this Spark with.
    pub min_java: u32,
    /// Whether its wheel ships the Spark Connect server (`jars/spark-connect_*.jar`): Spark 4's
    /// do; 3.4's and 3.5's leave it out (it comes only from Maven there).
    pub connect: bool,
}

/// The runtime catalog. Spark 3.4 is Azure ML's current default, 3.5 its newest runtime, and 4.3
/// the newest Spark on PyPI.
pub const RUNTIMES: &[RuntimeDef] = &[
    RuntimeDef {
        version: "3.4",
        pyspark: "3.4.4",
        scala: "2.12",
        // pyspark.pandas on Spark 3.4 breaks with pandas 2 and numpy 2.
        packages: &["pandas==1.5.3", "numpy==1.26.4", "pyarrow==14.0.2"],
        min_java: 17,
        connect: false,
    },
    RuntimeDef {
        version: "3.5",
        pyspark: "3.5.9",
        scala: "2.12",
        packages: &["pandas==2.0.3", "numpy==1.26.4", "pyarrow==15.0.2"],
        min_java: 17,
        connect: false,
    },
    RuntimeDef {
        version: "4.3",
        pyspark: "4.3.0",
        scala: "2.13",
        packages: &["pandas==2.3.3", "numpy==2.3.5", "pyarrow==21.0.0"],
        min_java: 17,
        connect: true,
    },
];

/// The runtime used when a job names none: Azure ML's default.
pub const DEFAULT_RUNTIME: &str = "3.4";

/// Looks up a runtime by `major.minor`.
pub fn find(version: &str) -> Option<&'static RuntimeDef> {
    RUNTIMES.iter().find(|r| r.version == version)
}

/// The runtimes whose Spark ships its Connect server, `major.minor`.
pub fn connect_versions() -> Vec<String> {
    RUNTIMES
        .iter()
        .filter(|r| r.connect)
        .map(|r| r.version.to_string())
        .collect()
}

/// Returns the supported versions, `major.minor`.
pub fn supported_versions() -> Vec<String> {
    RUNTIMES.iter().map(|r| r.version.to_string()).collect()
}

/// Errors from runtime installation and lookup.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("unknown runtime `{version}`; supported: {}", supported_versions().join(", "))]
    Unknown { version: String },
    #[error(
        "Java {needed} or newer is needed to run Spark {spark}, but {found}\nhint: install a JDK 17 (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME"
    )]
    Java {
        needed: u32,
        spark: String,
        found: String,
    },
    #[error(
        "Python 3 is needed to install runtimes, but `{python}` {found}\nhint: install python3 or set SPOOL_PYTHON"
    )]
    Python { python: String, found: String },
    #[error("{step}: {message}\nlog: {}", log.display())]
    Step {
        step: String,
        message: String,
        log: PathBuf,
    },
    #[error("{0}")]
    Io(String),
}

fn io(context: &str, e: std::io::Error) -> RuntimeError {
    RuntimeError::Io(format!("{context}: {e}"))
}

/// An installed runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstalledRuntime {
    pub version: String,
    pub pyspark: String,
    pub scala: String,
    /// The virtualenv's root.
    pub venv: PathBuf,
    /// The virtualenv's Python: `PYSPARK_PYTHON` for drivers and executors.
    pub python: PathBuf,
    /// `site-packages/pyspark`, which holds Spark's `bin/` and `jars/`.
    pub spark_home: PathBuf,
    pub installed_at: String,
    /// Seconds the install took.
    pub install_seconds: f64,
    /// Whether its packages are compiled to bytecode. Spark's processes run as accounts that
    /// cannot write to the runtime, so without it every driver and Python worker compiles
    /// every module it imports, every time (a third of a second for `pyspark.sql` alone).
    #[serde(default)]
    pub bytecode: bool,
    /// Its class archive, when it has one (found when the marker is read; see
    /// [`class_archive`]). Environments layered on the runtime share it.
    #[serde(skip)]
    pub class_archive: Option<PathBuf>,
}

impl InstalledRuntime {
    /// This runtime's Spark as `spool-spark` writes command lines for it, bound to
    /// `bind_address` (the host's `PATH` and Java as this process sees them).
    pub fn spark_install(&self, bind_address: &str) -> spool_spark::Install {
        spool_spark::Install {
            java: java_command(),
            spark_home: self.spark_home.clone(),
            scala_version: self.scala.clone(),
            python: self.python.clone(),
            venv_bin: self.venv.join("bin"),
            host_path: std::env::var("PATH").unwrap_or_default(),
            bind_address: bind_address.to_string(),
            class_archive: self.class_archive.clone(),
        }
    }
}

/// Where runtimes live in the machine-wide cache.
#[derive(Debug, Clone)]
pub struct RuntimeCache {
    root: PathBuf,
}

/// Receives progress of an install: step `index` of `total`, what it does.
pub trait Progress: Send + Sync {
    fn step(&self, index: u64, total: u64, message: &str);
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&self, _: u64, _: u64, _: &str) {}
}

const STEPS: u64 = 6;

impl RuntimeCache {
    pub fn new(root: impl Into<PathBuf>) -> RuntimeCache {
        RuntimeCache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, version: &str) -> PathBuf {
        self.root.join("runtimes").join(version)
    }

    /// Returns the runtime if it is installed and verified.
    pub fn installed(&self, version: &str) -> Option<InstalledRuntime> {
        let text = std::fs::read_to_string(self.dir(version).join(MARKER)).ok()?;
        let mut runtime: InstalledRuntime = serde_json::from_str(&text).ok()?;
        runtime.class_archive = class_archive::existing(&self.dir(version));
        let def = find(version)?;
        // A marker from an older pin means the runtime must be rebuilt.
        (runtime.pyspark == def.pyspark && runtime.python.exists()).then_some(runtime)
    }

    /// The runtime if it is installed and nothing is left for [`RuntimeCache::install`] to do
    /// (its class archive is trained, or failed to be).
    pub fn complete(&self, version: &str) -> Option<InstalledRuntime> {
        self.installed(version)
            .filter(|runtime| runtime.bytecode && class_archive::settled(&self.dir(version)))
    }

    /// A tar of an installed runtime (its virtualenv and marker) for agent hosts, built once
    /// per pinned version into `runtime-archives/` and reused.
    pub fn runtime_archive(&self, version: &str) -> Result<PathBuf, RuntimeError> {
        let runtime = self
            .installed(version)
            .ok_or_else(|| RuntimeError::Unknown {
                version: version.to_string(),
            })?;
        let dir = self.root.join("runtime-archives");
        std::fs::create_dir_all(&dir).map_err(|e| io("create archive dir", e))?;
        let archive = dir.join(format!("{version}-{}.tar", runtime.pyspark));
        if archive.exists() {
            return Ok(archive);
        }
        let tmp = dir.join(format!("{version}.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut builder = tar::Builder::new(std::fs::File::create(&tmp)?);
            builder.follow_symlinks(false);
            builder.append_dir_all(".", self.dir(version))?;
            builder.into_inner()?.sync_all()
        };
        write().map_err(|e| io("pack runtime", e))?;
        std::fs::rename(&tmp, &archive).map_err(|e| io("pack runtime", e))?;
        Ok(archive)
    }

    /// Installs a runtime from an archive made by `runtime_archive` on another host (the
    /// server's), rewriting its recorded paths for this cache.
    pub fn install_from_archive(
        &self,
        version: &str,
        archive: &Path,
    ) -> Result<InstalledRuntime, RuntimeError> {
        let dir = self.dir(version);
        let tmp = self
            .root
            .join("runtimes")
            .join(format!(".{version}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| io("create runtime dir", e))?;
        let file = std::fs::File::open(archive).map_err(|e| io("open runtime archive", e))?;
        tar::Archive::new(file)
            .unpack(&tmp)
            .map_err(|e| io("unpack runtime archive", e))?;
        let text = std::fs::read_to_string(tmp.join(MARKER))
            .map_err(|e| io("read the archive's runtime marker", e))?;
        let mut runtime: InstalledRuntime = serde_json::from_str(&text)
            .map_err(|e| RuntimeError::Io(format!("the archive's runtime marker: {e}")))?;
        let home_in_venv = runtime
            .spark_home
            .strip_prefix(&runtime.venv)
            .map(Path::to_path_buf)
            .map_err(|_| RuntimeError::Io("the archive's SPARK_HOME is outside its venv".into()))?;
        runtime.venv = dir.join("venv");
        runtime.python = runtime.venv.join("bin").join("python");
        runtime.spark_home = runtime.venv.join(home_in_venv);
        std::fs::write(
            tmp.join(MARKER),
            serde_json::to_string_pretty(&runtime).expect("runtime serializes"),
        )
        .map_err(|e| io("write runtime marker", e))?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).map_err(|e| io("install runtime", e))?;
        Ok(runtime)
    }

    /// The full Python version a runtime has (or will have, when it is not installed yet: runtimes
    /// are built with the machine's Python).
    pub async fn python_version(&self, version: &str) -> Result<String, RuntimeError> {
        if let Some(runtime) = self.installed(version)
            && let Ok(cfg) = std::fs::read_to_string(runtime.venv.join("pyvenv.cfg"))
            && let Some(found) = cfg.lines().find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == "version_info").then(|| value.trim().to_string())
            })
        {
            return Ok(found);
        }
        let python = python_command();
        let out = Command::new(&python)
            .arg("-c")
            .arg("import platform; print(platform.python_version())")
            .output()
            .await
            .map_err(|e| RuntimeError::Python {
                python: python.clone(),
                found: format!("could not run: {e}"),
            })?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Installs a runtime unless it is installed already. Safe to call from several processes at
    /// once: the second waits for the first and then finds the runtime installed.
    pub async fn install(
        &self,
        version: &str,
        progress: &dyn Progress,
    ) -> Result<InstalledRuntime, RuntimeError> {
        let def = find(version).ok_or_else(|| RuntimeError::Unknown {
            version: version.to_string(),
        })?;
        check_java(def)?;
        if let Some(runtime) = self.complete(version) {
            return Ok(runtime);
        }
        let locks = self.root.join("locks");
        std::fs::create_dir_all(&locks).map_err(|e| io("create cache dir", e))?;
        let lock_path = locks.join(format!("runtime-{version}.lock"));
        let lock = std::fs::File::create(&lock_path).map_err(|e| io("create lock file", e))?;
        progress.step(
            0,
            STEPS,
            &format!("waiting for the install lock of runtime {version}"),
        );
        let lock = tokio::task::spawn_blocking(move || lock.lock_exclusive().map(|_| lock))
            .await
            .map_err(|e| RuntimeError::Io(format!("lock runtime install: {e}")))?
            .map_err(|e| io("lock runtime install", e))?;
        let result = match self.installed(version) {
            Some(runtime) => Ok(runtime),
            None => self.install_locked(def, progress).await,
        };
        let result = match result {
            Ok(runtime) if !runtime.bytecode => self.compile_bytecode(runtime, progress).await,
            other => other,
        };
        let result = match result {
            Ok(mut runtime) => {
                self.train_class_archive(&runtime, progress).await;
                runtime.class_archive = class_archive::existing(&self.dir(version));
                progress.step(STEPS, STEPS, &format!("runtime {version} installed"));
                Ok(runtime)
            }
            Err(e) => Err(e),
        };
        drop(lock);
        result
    }

    /// Compiles the packages of a runtime installed before installs did (`bytecode: false`),
    /// then records it in its marker. A module that does not compile (some packages ship
    /// test files for other Pythons) stays as it was: Python compiles it when imported.
    async fn compile_bytecode(
        &self,
        mut runtime: InstalledRuntime,
        progress: &dyn Progress,
    ) -> Result<InstalledRuntime, RuntimeError> {
        progress.step(
            4,
            STEPS,
            "compiling the runtime's Python packages to bytecode (once)",
        );
        let dir = self.dir(&runtime.version);
        let site_packages = runtime
            .spark_home
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| runtime.venv.clone());
        let mut cmd = Command::new(&runtime.python);
        cmd.args(["-m", "compileall", "-q", "-j", "0"])
            .arg(&site_packages);
        if let Err(e) = run_logged(
            cmd,
            &self.root.join("uv-cache"),
            &dir.join("install.log"),
            "compile bytecode",
        )
        .await
        {
            tracing::warn!(runtime = runtime.version, error = %e, "some of the runtime's modules did not compile to bytecode");
        }
        runtime.bytecode = true;
        write_marker(&dir, &runtime)?;
        Ok(runtime)
    }

    /// Trains the runtime's class archive unless it has one (or failed to train it before): the
    /// runtime works without it, so a failure is reported and not returned.
    async fn train_class_archive(&self, runtime: &InstalledRuntime, progress: &dyn Progress) {
        let dir = self.dir(&runtime.version);
        if class_archive::settled(&dir) {
            return;
        }
        progress.step(
            5,
            STEPS,
            "training the class archive that lets Spark's JVMs start faster (once, about 20 s)",
        );
        let started = Instant::now();
        match class_archive::train(runtime, &dir, &dir.join("install.log")).await {
            Ok(()) => tracing::info!(
                runtime = runtime.version,
                seconds = started.elapsed().as_secs_f64(),
                "trained the runtime's class archive"
            ),
            Err(reason) => tracing::warn!(
                runtime = runtime.version,
                reason,
                "the runtime's class archive could not be trained; its JVMs start without it"
            ),
        }
    }

    async fn install_locked(
        &self,
        def: &RuntimeDef,
        progress: &dyn Progress,
    ) -> Result<InstalledRuntime, RuntimeError> {
        let started = Instant::now();
        let python = python_command();
        let uv = self.ensure_uv(&python, progress).await?;
        let dir = self.dir(def.version);
        // A dir without a marker is a failed or interrupted install: start over.
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io("remove unfinished runtime", e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| io("create runtime dir", e))?;
        let log = dir.join("install.log");
        let venv = dir.join("venv");
        let uv_cache = self.root.join("uv-cache");

        progress.step(
            2,
            STEPS,
            &format!("creating the virtualenv for Spark {}", def.pyspark),
        );
        let mut cmd = Command::new(&uv);
        cmd.arg("venv").arg("--python").arg(&python).arg(&venv);
        run_logged(cmd, &uv_cache, &log, "create virtualenv").await?;

        progress.step(
            3,
            STEPS,
            &format!(
                "installing pyspark {} with {} (downloads ~350 MB and builds the wheel once)",
                def.pyspark,
                def.packages.join(", ")
            ),
        );
        let mut cmd = Command::new(&uv);
        cmd.arg("pip")
            .arg("install")
            .arg("--compile-bytecode")
            .arg("--python")
            .arg(venv.join("bin").join("python"))
            .arg(format!("pyspark=={}", def.pyspark))
            .args(def.packages);
        run_logged(cmd, &uv_cache, &log, "install pyspark").await?;

        progress.step(4, STEPS, "checking that `import pyspark.pandas` works");
        let venv_python = venv.join("bin").join("python");
        let mut cmd = Command::new(&venv_python);
        cmd.arg("-c").arg(
            "import pyspark, pyspark.pandas, os; print(pyspark.__version__); print(os.path.dirname(pyspark.__file__))",
        );
        cmd.env("PYARROW_IGNORE_TIMEZONE", "1");
        let out = run_logged(cmd, &uv_cache, &log, "verify runtime").await?;
        let mut lines = out.lines();
        let found_version = lines.next().unwrap_or_default().trim().to_string();
        let spark_home = PathBuf::from(lines.next().unwrap_or_default().trim());
        if found_version != def.pyspark {
            return Err(RuntimeError::Step {
                step: "verify runtime".into(),
                message: format!("expected pyspark {}, found `{found_version}`", def.pyspark),
                log,
            });
        }
        let runtime = InstalledRuntime {
            version: def.version.to_string(),
            pyspark: def.pyspark.to_string(),
            scala: def.scala.to_string(),
            venv: venv.clone(),
            python: venv_python,
            spark_home,
            installed_at: now_rfc3339(),
            install_seconds: started.elapsed().as_secs_f64(),
            bytecode: true,
            class_archive: None,
        };
        write_marker(&dir, &runtime)?;
        Ok(runtime)
    }

    /// Installs uv into the cache once (from PyPI, with the machine's Python).
    pub(crate) async fn ensure_uv(
        &self,
        python: &str,
        progress: &dyn Progress,
    ) -> Result<PathBuf, RuntimeError> {
        let tools = self.root.join("tools").join(format!("uv-{UV_VERSION}"));
        let uv = tools.join("bin").join("uv");
        if uv.exists() {
            return Ok(uv);
        }
        progress.step(
            1,
            STEPS,
            &format!("installing uv {UV_VERSION} into the cache"),
        );
        let log = self.root.join("tools").join(format!("uv-{UV_VERSION}.log"));
        std::fs::create_dir_all(self.root.join("tools")).map_err(|e| io("create tools dir", e))?;
        let tmp = self.root.join("tools").join(format!("uv-{UV_VERSION}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        let mut cmd = Command::new(python);
        cmd.arg("-m").arg("venv").arg(&tmp);
        run_logged(cmd, &self.root, &log, "create tools virtualenv").await?;
        let mut cmd = Command::new(tmp.join("bin").join("python"));
        cmd.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(format!("uv=={UV_VERSION}"));
        run_logged(cmd, &self.root, &log, "install uv").await?;
        // The uv binary is static: moving the venv does not break it.
        let _ = std::fs::remove_dir_all(&tools);
        std::fs::rename(&tmp, &tools).map_err(|e| io("move tools virtualenv", e))?;
        Ok(uv)
    }
}

/// Writes a runtime's marker in one step (a reader sees the old one or the new one).
fn write_marker(dir: &Path, runtime: &InstalledRuntime) -> Result<(), RuntimeError> {
    let marker = serde_json::to_string_pretty(runtime).expect("runtime serializes");
    let tmp = dir.join(format!("{MARKER}.tmp"));
    std::fs::write(&tmp, marker).map_err(|e| io("write runtime marker", e))?;
    std::fs::rename(&tmp, dir.join(MARKER)).map_err(|e| io("write runtime marker", e))
}

fn python_command() -> String {
    std::env::var(spool_core::env::SPOOL_PYTHON).unwrap_or_else(|_| "python3".to_string())
}

fn now_rfc3339() -> String {
    // Seconds since the epoch are enough for a marker; the store has proper timestamps.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}")
}

/// Runs a command, appending its output to `log`; fails with the output's tail.
async fn run_logged(
    mut cmd: Command,
    uv_cache: &Path,
    log: &Path,
    step: &str,
) -> Result<String, RuntimeError> {
    cmd.env("UV_CACHE_DIR", uv_cache)
        .env("UV_NO_PROGRESS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = format!("{:?}", cmd.as_std().get_program());
    let output = cmd.output().await.map_err(|e| {
        if step == "create tools virtualenv" && e.kind() == std::io::ErrorKind::NotFound {
            RuntimeError::Python {
                python: program.trim_matches('"').to_string(),
                found: "was not found".into(),
            }
        } else {
            io(step, e)
        }
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "$ {step}: {program}\n{stdout}{stderr}");
    }
    if !output.status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(RuntimeError::Step {
            step: step.to_string(),
            message: tail.join("\n"),
            log: log.to_path_buf(),
        });
    }
    Ok(stdout)
}

/// Finds `java` (in `JAVA_HOME`, else on `PATH`).
pub fn java_command() -> PathBuf {
    match std::env::var_os(spool_core::env::JAVA_HOME) {
        Some(home) if !home.is_empty() => PathBuf::from(home).join("bin").join("java"),
        _ => PathBuf::from("java"),
    }
}

/// Checks that Java is present and new enough for `def`.
pub fn check_java(def: &RuntimeDef) -> Result<u32, RuntimeError> {
    let java = java_command();
    let err = |found: String| RuntimeError::Java {
        needed: def.min_java,
        spark: def.pyspark.to_string(),
        found,
    };
    let output = std::process::Command::new(&java)
        .arg("-version")
        .stdin(Stdio::null())
        .output()
        .map_err(|_| err(format!("`{}` was not found", java.display())))?;
    let text = String::from_utf8_lossy(&output.stderr);
    let major = parse_java_major(&text)
        .ok_or_else(|| err(format!("`{} -version` printed no version", java.display())))?;
    if major < def.min_java {
        return Err(err(format!("`{}` is Java {major}", java.display())));
    }
    Ok(major)
}

/// Parses the major version from `java -version` output (`"17.0.15"`, `"1.8.0_392"`).
pub fn parse_java_major(text: &str) -> Option<u32> {
    let start = text.find("version \"")? + "version \"".len();
    let rest = &text[start..];
    let version = &rest[..rest.find('"')?];
    let mut parts = version.split(['.', '_', '-', '+']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_java_versions() {
        assert_eq!(
            parse_java_major("openjdk version \"17.0.15\" 2025-04-15"),
            Some(17)
        );
        assert_eq!(parse_java_major("java version \"1.8.0_392\""), Some(8));
        assert_eq!(
            parse_java_major("openjdk version \"21\" 2023-09-19"),
            Some(21)
        );
        assert_eq!(parse_java_major("nothing here"), None);
    }

    #[test]
    fn catalog_has_the_required_runtimes() {
        for version in ["3.4", "3.5", "4.3"] {
            assert!(find(version).is_some(), "{version}");
        }
        assert!(find(DEFAULT_RUNTIME).is_some());
        assert!(find("3.3").is_none());
    }

    #[test]
    fn a_dir_without_marker_is_not_installed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = RuntimeCache::new(dir.path());
        std::fs::create_dir_all(dir.path().join("runtimes/3.4/venv")).unwrap();
        assert!(cache.installed("3.4").is_none());
    }
}
