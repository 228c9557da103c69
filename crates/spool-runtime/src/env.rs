//! Environments: extra PyPI packages layered on a runtime, built once into a content-addressed
//! cache (`envs/<key>/`) and shared by every session and job that asks for the same packages.
//!
//! An environment starts as a hard-linked copy of its runtime's virtualenv (about 0.1 s for the
//! 5,700 files of a runtime, and no extra disk), so uv sees the runtime's packages as installed and
//! adds only what is missing. `pyspark` is pinned by a constraint, so nothing can replace it. The
//! build runs in a temporary dir that becomes the cache entry by one rename; a failed or
//! timed-out build leaves no entry, only its log under `envs/failed/`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use fs4::fs_std::FileExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::{InstalledRuntime, RuntimeCache};

/// File in an environment dir that marks a finished build.
const ENV_MARKER: &str = "spool-env.json";
/// The packages an environment adds to its runtime, as a tar Spark unpacks for executors.
pub const OVERLAY: &str = "overlay.tar";
/// File whose modification time records when an environment was last used.
const LAST_USED: &str = "last-used";
/// What the build printed, kept with the environment.
const BUILD_LOG: &str = "build.log";

/// Where packages come from and how long a build may take.
#[derive(Debug, Clone)]
pub struct EnvSettings {
    pub timeout: Duration,
    /// Replaces PyPI (`uv --index-url`).
    pub index_url: Option<String>,
    pub extra_index_urls: Vec<String>,
    /// Directories or pages of wheels and sdists (`uv --find-links`).
    pub find_links: Vec<String>,
}

impl Default for EnvSettings {
    fn default() -> Self {
        EnvSettings {
            timeout: Duration::from_secs(15 * 60),
            index_url: None,
            extra_index_urls: Vec::new(),
            find_links: Vec::new(),
        }
    }
}

/// A built environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltEnv {
    pub key: String,
    pub runtime: String,
    pub pyspark: String,
    pub requirements: Vec<String>,
    /// The environment's virtualenv and its Python (`spark.pyspark.python`).
    pub venv: PathBuf,
    pub python: PathBuf,
    /// Seconds since the epoch.
    pub built_at: u64,
    pub build_seconds: f64,
    /// The packages it adds to the runtime, packed for executors on other hosts (see `OVERLAY`).
    #[serde(default)]
    pub overlay: Option<PathBuf>,
}

/// An environment in the cache, with what `spool env list` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvInfo {
    #[serde(flatten)]
    pub env: BuiltEnv,
    /// Bytes the environment adds to the cache (files not shared with its runtime).
    pub size_bytes: u64,
    /// Seconds since the epoch.
    pub last_used: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(
        "installing the environment took longer than its {limit:?} limit and was stopped after {elapsed:.0?}; still installing: {}; log: {}",
        pending.join(", "),
        log.display()
    )]
    Timeout {
        limit: Duration,
        elapsed: Duration,
        pending: Vec<String>,
        log: PathBuf,
    },
    #[error("installing the environment failed:\n{message}\nlog: {}", log.display())]
    Build { message: String, log: PathBuf },
    #[error("environment cache: {0}")]
    Io(String),
}

fn io(context: &str, e: std::io::Error) -> EnvError {
    EnvError::Io(format!("{context}: {e}"))
}

/// The cache key: the runtime's identity and the normalized requirements.
pub fn env_key(runtime: &InstalledRuntime, requirements: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "runtime {} pyspark {}\n",
        runtime.version, runtime.pyspark
    ));
    for requirement in requirements {
        hasher.update(requirement.as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Normalizes a distribution name as wheel `.dist-info` dirs write it.
fn dist_name(name: &str) -> String {
    let mut out = String::new();
    let mut last_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !last_sep {
                out.push('_');
            }
            last_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            last_sep = false;
        }
    }
    out
}

/// The name part of a requirement (`tabulate==0.9` is `tabulate`).
fn requirement_name(requirement: &str) -> &str {
    let end = requirement
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(requirement.len());
    &requirement[..end]
}

impl RuntimeCache {
    fn envs_dir(&self) -> PathBuf {
        self.root.join("envs")
    }

    /// A built environment, if the cache has it; marks it used.
    pub fn env(&self, key: &str) -> Option<BuiltEnv> {
        let dir = self.envs_dir().join(key);
        let env = read_marker(&dir)?;
        env.python.exists().then(|| {
            touch(&dir.join(LAST_USED));
            env
        })
    }

    /// Builds an environment unless the cache has it (or `rebuild` is set). Callers asking for
    /// the same environment at once share one build: the second waits for the first's lock and
    /// then finds the environment built. Build output is appended to `log` as it happens.
    pub async fn build_env(
        &self,
        runtime: &InstalledRuntime,
        requirements: &[String],
        settings: &EnvSettings,
        rebuild: bool,
        log: &Path,
        recorder: &impl BuildRecorder,
    ) -> Result<(BuiltEnv, bool), EnvError> {
        let key = env_key(runtime, requirements);
        let hit = |mut env: BuiltEnv| {
            // Environments built before overlays existed get theirs now.
            if env.overlay.as_ref().is_none_or(|o| !o.exists()) {
                let dir = self.envs_dir().join(&key);
                let overlay = dir.join(OVERLAY);
                if write_overlay(&runtime.venv, &env.venv, &overlay).is_ok() {
                    env.overlay = Some(overlay);
                    let _ = write_marker(&dir, &env);
                }
            }
            append(
                log,
                &format!(
                    "[spool] environment {key} from the cache: {}\n",
                    requirements.join(" ")
                ),
            );
            Ok((env, true))
        };
        if !rebuild && let Some(env) = self.env(&key) {
            return hit(env);
        }
        let asked_at = epoch_seconds();
        let locks = self.root.join("locks");
        std::fs::create_dir_all(&locks).map_err(|e| io("create lock dir", e))?;
        let lock = std::fs::File::create(locks.join(format!("env-{key}.lock")))
            .map_err(|e| io("create lock file", e))?;
        let lock = tokio::task::spawn_blocking(move || lock.lock_exclusive().map(|_| lock))
            .await
            .map_err(|e| EnvError::Io(format!("lock environment build: {e}")))?
            .map_err(|e| io("lock environment build", e))?;
        // Whoever held the lock may have built it meanwhile; a forced rebuild also counts as
        // done when someone else finished one after we asked.
        if let Some(env) = self.env(&key)
            && (!rebuild || env.built_at >= asked_at)
        {
            drop(lock);
            return hit(env);
        }
        let result = self
            .build_locked(runtime, requirements, settings, &key, log, recorder)
            .await;
        drop(lock);
        result.map(|env| (env, false))
    }

    async fn build_locked(
        &self,
        runtime: &InstalledRuntime,
        requirements: &[String],
        settings: &EnvSettings,
        key: &str,
        log: &Path,
        recorder: &impl BuildRecorder,
    ) -> Result<BuiltEnv, EnvError> {
        let started = Instant::now();
        let envs = self.envs_dir();
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = envs.join(format!(".build-{key}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(|e| io("create build dir", e))?;
        let result = self
            .build_in(
                runtime,
                requirements,
                settings,
                key,
                log,
                &tmp,
                started,
                recorder,
            )
            .await;
        match result {
            Ok(env) => Ok(env),
            Err(mut error) => {
                let _ = std::fs::remove_dir_all(&tmp);
                // The log outlives the failed build, in the cache (the caller's copy may be
                // removed with its session or job).
                let failed = envs.join("failed");
                let kept = failed.join(format!("{key}-{}.log", nanos / 1_000_000_000));
                if std::fs::create_dir_all(&failed).is_ok() && std::fs::copy(log, &kept).is_ok() {
                    match &mut error {
                        EnvError::Timeout { log, .. } | EnvError::Build { log, .. } => *log = kept,
                        EnvError::Io(_) => {}
                    }
                }
                Err(error)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn build_in(
        &self,
        runtime: &InstalledRuntime,
        requirements: &[String],
        settings: &EnvSettings,
        key: &str,
        log: &Path,
        tmp: &Path,
        started: Instant,
        recorder: &impl BuildRecorder,
    ) -> Result<BuiltEnv, EnvError> {
        let mut out = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .await
            .map_err(|e| io("open environment log", e))?;
        // Where this build's lines start in the caller's log, kept with the environment.
        let build_starts = out
            .metadata()
            .await
            .map_err(|e| io("open environment log", e))?
            .len();
        let say = |line: String| format!("[spool] {line}\n");
        out.write_all(
            say(format!(
                "building environment {key} on runtime {} (pyspark {}): {}",
                runtime.version,
                runtime.pyspark,
                requirements.join(" ")
            ))
            .as_bytes(),
        )
        .await
        .map_err(|e| io("write environment log", e))?;

        let venv = tmp.join("venv");
        let source = runtime.venv.clone();
        let target = venv.clone();
        tokio::task::spawn_blocking(move || link_tree(&source, &target))
            .await
            .map_err(|e| EnvError::Io(format!("copy runtime: {e}")))?
            .map_err(|e| io("copy the runtime's virtualenv", e))?;
        std::fs::write(tmp.join("requirements.txt"), requirements.join("\n") + "\n")
            .map_err(|e| io("write requirements", e))?;
        std::fs::write(
            tmp.join("constraints.txt"),
            format!("pyspark=={}\n", runtime.pyspark),
        )
        .map_err(|e| io("write constraints", e))?;

        let uv = self
            .ensure_uv(&crate::python_command(), &crate::NoProgress)
            .await
            .map_err(|e| EnvError::Io(e.to_string()))?;
        let mut cmd = Command::new(&uv);
        cmd.arg("pip")
            .arg("install")
            .arg("--python")
            .arg(venv.join("bin").join("python"))
            .arg("-r")
            .arg(tmp.join("requirements.txt"))
            .arg("--constraint")
            .arg(tmp.join("constraints.txt"));
        if let Some(index) = &settings.index_url {
            cmd.arg("--index-url").arg(index);
        }
        for index in &settings.extra_index_urls {
            cmd.arg("--extra-index-url").arg(index);
        }
        for links in &settings.find_links {
            cmd.arg("--find-links").arg(links);
        }
        let log_file = out.into_std().await;
        let stderr = log_file
            .try_clone()
            .map_err(|e| io("open environment log", e))?;
        // Requirements may be sdists whose build scripts are user code: the build starts from a
        // cleared environment like every other child (index settings come from the config).
        cmd.env_clear()
            .envs(spool_core::env::inherited())
            .env("UV_CACHE_DIR", self.root.join("uv-cache"))
            .env("UV_NO_PROGRESS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(stderr))
            // Its own process group, so a timeout stops the builds uv started too.
            .process_group(0)
            .kill_on_drop(true);
        // Recorded before it starts, so a server that crashes mid-build leaves nothing
        // unrecorded behind (the next one reaps it).
        recorder
            .starting(&format!("uv pip install {}", requirements.join(" ")))
            .await
            .map_err(EnvError::Io)?;
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                recorder.ended(None).await;
                return Err(io("start uv", e));
            }
        };
        let pid = child.id();
        if let Some(pid) = pid {
            recorder.started(pid).await;
        }
        let status = match tokio::time::timeout(settings.timeout, child.wait()).await {
            Ok(status) => {
                let status = status.map_err(|e| io("wait for uv", e));
                recorder
                    .ended(status.as_ref().ok().and_then(|s| s.code()))
                    .await;
                status?
            }
            Err(_) => {
                if let Some(pid) = pid {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = child.wait().await;
                recorder.ended(None).await;
                let now = installed_dists(&venv);
                let names = requirements.iter().map(|r| requirement_name(r).to_string());
                let mut pending: Vec<String> = names
                    .clone()
                    .filter(|name| !now.contains(&dist_name(name)))
                    .collect();
                if pending.is_empty() {
                    // Every requested package landed; a dependency was still being built.
                    pending = names.map(|n| format!("{n} (dependencies)")).collect();
                }
                append(
                    log,
                    &say(format!(
                        "stopped after {:.0?}: the {:?} install limit was reached",
                        started.elapsed(),
                        settings.timeout
                    )),
                );
                return Err(EnvError::Timeout {
                    limit: settings.timeout,
                    elapsed: started.elapsed(),
                    pending,
                    log: log.to_path_buf(),
                });
            }
        };
        if !status.success() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(12).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(EnvError::Build {
                message: tail.join("\n"),
                log: log.to_path_buf(),
            });
        }
        // What the environment adds to its runtime, packed for executors on other hosts.
        let overlay_venv = venv.clone();
        let runtime_venv = runtime.venv.clone();
        let overlay_file = tmp.join(OVERLAY);
        tokio::task::spawn_blocking(move || {
            write_overlay(&runtime_venv, &overlay_venv, &overlay_file)
        })
        .await
        .map_err(|e| EnvError::Io(format!("pack environment: {e}")))?
        .map_err(|e| io("pack the environment's packages", e))?;
        let env_dir = self.envs_dir().join(key);
        let env = BuiltEnv {
            key: key.to_string(),
            runtime: runtime.version.clone(),
            pyspark: runtime.pyspark.clone(),
            requirements: requirements.to_vec(),
            venv: env_dir.join("venv"),
            python: env_dir.join("venv").join("bin").join("python"),
            built_at: epoch_seconds(),
            build_seconds: started.elapsed().as_secs_f64(),
            overlay: Some(env_dir.join(OVERLAY)),
        };
        write_marker(tmp, &env).map_err(|e| io("write environment marker", e))?;
        touch(&tmp.join(LAST_USED));
        if env_dir.exists() {
            // A forced rebuild: the old build may still be in use by a running driver, so it is
            // moved aside and removed by the next prune.
            let _ = std::fs::rename(
                &env_dir,
                self.envs_dir()
                    .join(format!(".old-{key}-{}", epoch_seconds())),
            );
        }
        std::fs::rename(tmp, &env_dir).map_err(|e| io("publish environment", e))?;
        append(
            log,
            &say(format!(
                "environment {key} built in {:.1} s",
                env.build_seconds
            )),
        );
        keep_build_log(log, build_starts, &env_dir.join(BUILD_LOG));
        Ok(env)
    }

    /// The log of an environment's build, if it was kept (builds before logs were kept have
    /// none).
    pub fn env_build_log(&self, key: &str) -> Option<PathBuf> {
        let path = self.envs_dir().join(key).join(BUILD_LOG);
        path.is_file().then_some(path)
    }

    /// Every environment in the cache.
    pub fn list_envs(&self) -> Vec<EnvInfo> {
        let Ok(entries) = std::fs::read_dir(self.envs_dir()) else {
            return Vec::new();
        };
        let mut envs: Vec<EnvInfo> = entries
            .flatten()
            // Builds in progress and copies replaced by a rebuild start with a dot.
            .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|entry| {
                let dir = entry.path();
                let env = read_marker(&dir)?;
                Some(EnvInfo {
                    size_bytes: unshared_size(&dir),
                    last_used: mtime(&dir.join(LAST_USED)).unwrap_or(env.built_at),
                    env,
                })
            })
            .collect();
        envs.sort_by_key(|info| std::cmp::Reverse(info.last_used));
        envs
    }

    /// Removes an environment from the cache.
    pub fn remove_env(&self, key: &str) -> Result<(), EnvError> {
        let dir = self.envs_dir().join(key);
        std::fs::remove_dir_all(dir).map_err(|e| io("remove environment", e))
    }

    /// Removes environments unused for longer than `max_age`, then the least recently used ones
    /// until the cache is within `max_bytes`; never one in `in_use`. Also removes builds left
    /// by crashed servers and old copies replaced by a rebuild. Returns the removed keys.
    pub fn prune_envs(
        &self,
        max_age: Option<Duration>,
        max_bytes: Option<u64>,
        in_use: &BTreeSet<String>,
    ) -> Vec<String> {
        let now = epoch_seconds();
        if let Ok(entries) = std::fs::read_dir(self.envs_dir()) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                let stale = mtime(&entry.path()).is_some_and(|t| now.saturating_sub(t) > 3600);
                if (name.starts_with(".build-") || name.starts_with(".old-")) && stale {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let mut removed = Vec::new();
        let mut envs = self.list_envs();
        envs.retain(|info| !in_use.contains(&info.env.key));
        // Oldest use first.
        envs.sort_by_key(|info| info.last_used);
        let mut total: u64 = envs.iter().map(|info| info.size_bytes).sum();
        for info in envs {
            let too_old =
                max_age.is_some_and(|age| now.saturating_sub(info.last_used) > age.as_secs());
            let too_big = max_bytes.is_some_and(|max| total > max);
            if (too_old || too_big) && self.remove_env(&info.env.key).is_ok() {
                total = total.saturating_sub(info.size_bytes);
                removed.push(info.env.key);
            }
        }
        removed
    }
}

/// The environment an environment dir's marker describes, if it has a readable one.
fn read_marker(dir: &Path) -> Option<BuiltEnv> {
    let text = std::fs::read_to_string(dir.join(ENV_MARKER)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_marker(dir: &Path, env: &BuiltEnv) -> std::io::Result<()> {
    std::fs::write(
        dir.join(ENV_MARKER),
        serde_json::to_string_pretty(env).expect("env serializes"),
    )
}

fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn mtime(path: &Path) -> Option<u64> {
    std::fs::metadata(path)
        .ok()?
        .modified()
        .ok()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

fn touch(path: &Path) {
    let _ = std::fs::File::create(path);
}

/// Copies the caller's log from `from` on into the environment's own log; a build whose log
/// cannot be kept is still a build.
fn keep_build_log(log: &Path, from: u64, kept: &Path) {
    use std::io::{Read, Seek, SeekFrom};
    let copy = || -> std::io::Result<()> {
        let mut file = std::fs::File::open(log)?;
        file.seek(SeekFrom::Start(from))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text)?;
        std::fs::write(kept, text)
    };
    if let Err(e) = copy() {
        tracing::warn!(log = %kept.display(), "could not keep the environment's build log: {e}");
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(text.as_bytes());
    }
}

/// The site-packages dir of a virtualenv.
fn site_packages(venv: &Path) -> Option<PathBuf> {
    std::fs::read_dir(venv.join("lib"))
        .ok()?
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
}

/// Packs the files of every distribution the environment has and its runtime does not (by
/// `.dist-info` name, so an upgraded package counts) into a tar rooted at site-packages: put on
/// `PYTHONPATH` ahead of the runtime's packages, it makes the runtime's Python see the
/// environment. Files come from each distribution's `RECORD`.
fn write_overlay(runtime: &Path, env: &Path, out: &Path) -> std::io::Result<()> {
    let missing = || std::io::Error::other("no site-packages");
    let env_site = site_packages(env).ok_or_else(missing)?;
    let runtime_site = site_packages(runtime).ok_or_else(missing)?;
    let runtime_dists: BTreeSet<String> = std::fs::read_dir(&runtime_site)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".dist-info"))
        .collect();
    let mut builder = tar::Builder::new(std::fs::File::create(out)?);
    builder.follow_symlinks(false);
    let mut added = BTreeSet::new();
    for entry in std::fs::read_dir(&env_site)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.ends_with(".dist-info") || runtime_dists.contains(&name) {
            continue;
        }
        let record = std::fs::read_to_string(entry.path().join("RECORD")).unwrap_or_default();
        for line in record.lines() {
            let rel = line.split(',').next().unwrap_or("").trim();
            // Scripts live outside site-packages (`../../../bin/...`); executors need none.
            if rel.is_empty() || rel.starts_with("..") || rel.starts_with('/') {
                continue;
            }
            let path = env_site.join(rel);
            if path.is_file() && added.insert(rel.to_string()) {
                builder.append_path_with_name(&path, rel)?;
            }
        }
    }
    builder.finish()
}

/// Normalized names of the distributions installed in a virtualenv.
fn installed_dists(venv: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let Ok(libs) = std::fs::read_dir(venv.join("lib")) else {
        return names;
    };
    for lib in libs.flatten() {
        let Ok(entries) = std::fs::read_dir(lib.path().join("site-packages")) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(stem) = name.strip_suffix(".dist-info")
                && let Some((dist, _version)) = stem.rsplit_once('-')
            {
                names.insert(dist_name(dist));
            }
        }
    }
    names
}

/// Copies a directory tree as hard links (symlinks are recreated). Files are never written in
/// place afterwards: installers replace files by unlinking and creating, so the runtime's copies
/// stay untouched.
fn link_tree(source: &Path, target: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(target)?;
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let to = target.join(entry.file_name());
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &to)?;
        } else if kind.is_dir() {
            link_tree(&entry.path(), &to)?;
        } else if std::fs::hard_link(entry.path(), &to).is_err() {
            // Another file system: copy.
            std::fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

/// Bytes of files in `dir` that are not hard links shared with another tree.
fn unshared_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && meta.nlink() == 1 {
                total += meta.len();
            }
        }
    }
    total
}

/// Told about an environment build's process so the caller can record it: `starting` before uv
/// is spawned (an error stops the build), `started` with its pid (also its process group) right
/// after, and `ended` once it is gone.
pub trait BuildRecorder: Sync {
    fn starting(&self, command: &str) -> impl Future<Output = Result<(), String>> + Send;
    fn started(&self, pid: u32) -> impl Future<Output = ()> + Send;
    fn ended(&self, exit_code: Option<i32>) -> impl Future<Output = ()> + Send;
}

/// Records nothing (tests and tools that own no store).
pub struct NoRecorder;

impl BuildRecorder for NoRecorder {
    async fn starting(&self, _command: &str) -> Result<(), String> {
        Ok(())
    }

    async fn started(&self, _pid: u32) {}

    async fn ended(&self, _exit_code: Option<i32>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_names_match_dist_info_dirs() {
        assert_eq!(dist_name("Typing-Extensions"), "typing_extensions");
        assert_eq!(dist_name("zope.interface"), "zope_interface");
        assert_eq!(requirement_name("tabulate==0.9.0"), "tabulate");
        assert_eq!(requirement_name("requests[socks]>=2"), "requests");
    }

    fn fake_env(cache: &RuntimeCache, key: &str, used_days_ago: u64) {
        let dir = cache.envs_dir().join(key);
        std::fs::create_dir_all(dir.join("venv/bin")).expect("mkdir");
        std::fs::write(dir.join("venv/bin/python"), "").expect("python");
        std::fs::write(dir.join("venv/data"), vec![0u8; 4096]).expect("data");
        let env = BuiltEnv {
            key: key.into(),
            runtime: "3.4".into(),
            pyspark: "3.4.4".into(),
            requirements: vec!["tabulate".into()],
            venv: dir.join("venv"),
            python: dir.join("venv/bin/python"),
            built_at: 0,
            build_seconds: 1.0,
            overlay: None,
        };
        write_marker(&dir, &env).expect("marker");
        let used = std::fs::File::create(dir.join(LAST_USED)).expect("last used");
        used.set_modified(SystemTime::now() - Duration::from_secs(used_days_ago * 86400))
            .expect("mtime");
    }

    #[test]
    fn prune_removes_old_then_least_recently_used_but_never_what_is_in_use() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = RuntimeCache::new(tmp.path());
        fake_env(&cache, "old", 40);
        fake_env(&cache, "old-in-use", 40);
        fake_env(&cache, "recent", 1);
        fake_env(&cache, "newest", 0);
        let in_use: BTreeSet<String> = ["old-in-use".to_string()].into();
        // Age: only the old one that nothing uses.
        let removed = cache.prune_envs(Some(Duration::from_secs(30 * 86400)), None, &in_use);
        assert_eq!(removed, ["old"]);
        // Size: the least recently used go first until the rest fits.
        let removed = cache.prune_envs(None, Some(5000), &in_use);
        assert_eq!(removed, ["recent"]);
        let left: Vec<String> = cache.list_envs().into_iter().map(|e| e.env.key).collect();
        assert_eq!(left, ["newest", "old-in-use"]);
        assert!(cache.env("newest").is_some());
    }

    #[test]
    fn linked_tree_shares_files_and_keeps_symlinks() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("lib/pkg")).expect("mkdir");
        std::fs::write(src.join("lib/pkg/a.py"), "x = 1\n").expect("write");
        std::os::unix::fs::symlink("/usr/bin/env", src.join("python")).expect("symlink");
        let dst = tmp.path().join("dst");
        link_tree(&src, &dst).expect("link");
        assert_eq!(
            std::fs::read_to_string(dst.join("lib/pkg/a.py")).expect("read"),
            "x = 1\n"
        );
        assert_eq!(
            std::fs::read_link(dst.join("python")).expect("link"),
            PathBuf::from("/usr/bin/env")
        );
        // Shared, so it counts for neither tree as its own.
        assert_eq!(unshared_size(&dst), 0);
        // Replacing a file in the copy leaves the original alone.
        std::fs::remove_file(dst.join("lib/pkg/a.py")).expect("rm");
        std::fs::write(dst.join("lib/pkg/a.py"), "x = 2\n").expect("write");
        assert_eq!(
            std::fs::read_to_string(src.join("lib/pkg/a.py")).expect("read"),
            "x = 1\n"
        );
    }
}
