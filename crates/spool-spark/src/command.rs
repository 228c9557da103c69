//! The command lines of a Spark standalone master and worker and of `spark-submit`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use spool_core::MemoryMb;
use spool_spec::SparkSizing;

/// A runtime's Spark on one host: what every command line needs.
#[derive(Debug, Clone)]
pub struct Install {
    /// The Java to run the daemons with.
    pub java: PathBuf,
    /// `site-packages/pyspark` of the runtime: Spark's `bin/`, `conf/` and `jars/`.
    pub spark_home: PathBuf,
    /// Scala version of the build (the worker's launcher needs it to start executors).
    pub scala_version: String,
    /// The Python executors run on this host (`PYSPARK_PYTHON`), and drivers unless told
    /// otherwise.
    pub python: PathBuf,
    /// `bin/` of the virtualenv the processes run in; put first on `PATH`.
    pub venv_bin: PathBuf,
    /// The host's `PATH`, which the virtualenv's `bin/` is put in front of.
    pub host_path: String,
    /// The address every Spark port binds to (`SPARK_LOCAL_IP`).
    pub bind_address: String,
    /// The runtime's class archive (see [`train_class_archive`]), when it has one: every JVM
    /// maps Spark's classes from it instead of loading them from the JARs.
    pub class_archive: Option<PathBuf>,
}

/// Spark properties that hold a JVM's options; Spool puts the class archive's first.
const DRIVER_JAVA_OPTIONS: &str = "spark.driver.extraJavaOptions";
const JAVA_OPTIONS: [&str; 2] = [DRIVER_JAVA_OPTIONS, "spark.executor.extraJavaOptions"];

/// Turns off the JVM's class-sharing warnings, for a JVM that maps the class archive or writes
/// it.
const QUIET_CLASS_SHARING: [&str; 2] = ["-Xlog:cds=off", "-Xlog:cds+dynamic=off"];

/// Java options that map the class archive, with its warnings off: a JVM that cannot use it
/// (another Java, a changed classpath, a host without the file) starts as it would without it.
/// Empty when the runtime has none.
fn class_sharing(install: &Install) -> Vec<String> {
    let Some(archive) = &install.class_archive else {
        return Vec::new();
    };
    let mut options = vec![format!("-XX:SharedArchiveFile={}", archive.display())];
    options.extend(QUIET_CLASS_SHARING.map(str::to_string));
    options
}

/// A program to run with its arguments and the environment variables it needs set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

impl CommandLine {
    /// The command line as text, one argument per line, then the environment: what snapshot
    /// tests compare.
    pub fn render(&self) -> String {
        let mut text = format!("{}\n", self.program.display());
        for arg in &self.args {
            text.push_str(&format!("  {arg}\n"));
        }
        for (key, value) in &self.env {
            text.push_str(&format!("  env {key}={value}\n"));
        }
        text
    }
}

/// Options of a master or worker JVM.
#[derive(Debug, Clone, Copy)]
pub struct Daemon {
    /// The daemon's heap (`-Xmx`): it only schedules, so a little is plenty.
    pub heap: MemoryMb,
}

impl Daemon {
    fn jvm_args(&self, install: &Install) -> Vec<String> {
        let mut args = vec![format!("-Xmx{}", self.heap.to_spark())];
        args.extend(class_sharing(install));
        args.extend([
            // Masters and workers only schedule: C1-compiled code and the serial collector start
            // them with less CPU, which on a small host leaves more for the driver starting
            // alongside. Executors keep the full JIT (the worker starts them with their own
            // options).
            "-XX:TieredStopAtLevel=1".into(),
            "-XX:+UseSerialGC".into(),
            "-cp".into(),
            format!(
                "{0}/conf:{0}/jars/*",
                install.spark_home.display().to_string()
            ),
        ]);
        args
    }
}

/// The environment every Spark process of a runtime gets.
fn spark_env(install: &Install) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    env.insert(
        "SPARK_HOME".into(),
        install.spark_home.display().to_string(),
    );
    // Every Spark port (RPC, UIs, block manager) binds to this address only: loopback, or the
    // advertised address when other hosts must reach it.
    env.insert("SPARK_LOCAL_IP".into(), install.bind_address.clone());
    // ... and is also the name Spark advertises: without it every JVM asks DNS for the
    // address's name first (`getCanonicalHostName`), which stalls for the resolver's timeout
    // wherever DNS does not answer (an isolated cluster's namespace, a host without one).
    env.insert("SPARK_LOCAL_HOSTNAME".into(), install.bind_address.clone());
    // Needed by the launcher library inside the worker to start executors (normally set by
    // `spark-class`, which the pip package's layout makes us bypass).
    env.insert("SPARK_SCALA_VERSION".into(), install.scala_version.clone());
    env.insert(
        "PYSPARK_PYTHON".into(),
        install.python.display().to_string(),
    );
    // pandas API on Spark warns on every import without it.
    env.insert("PYARROW_IGNORE_TIMEZONE".into(), "1".into());
    let path = if install.host_path.is_empty() {
        install.venv_bin.display().to_string()
    } else {
        format!("{}:{}", install.venv_bin.display(), install.host_path)
    };
    env.insert("PATH".into(), path);
    env
}

/// A standalone master listening on `port`, its web UI on `ui_port`.
pub fn master(install: &Install, daemon: Daemon, port: u16, ui_port: u16) -> CommandLine {
    let mut args = daemon.jvm_args(install);
    args.extend([
        "org.apache.spark.deploy.master.Master".to_string(),
        "--host".into(),
        install.bind_address.clone(),
        "--port".into(),
        port.to_string(),
        "--webui-port".into(),
        ui_port.to_string(),
    ]);
    CommandLine {
        program: install.java.clone(),
        args,
        env: spark_env(install),
    }
}

/// A standalone worker offering `cores` and `memory` to `master_url`, its web UI on `ui_port`
/// (0: any free port), executors' files under `work_dir`.
pub fn worker(
    install: &Install,
    daemon: Daemon,
    master_url: &str,
    ui_port: u16,
    cores: u32,
    memory: MemoryMb,
    work_dir: &Path,
) -> CommandLine {
    let mut args = daemon.jvm_args(install);
    args.extend([
        "org.apache.spark.deploy.worker.Worker".to_string(),
        master_url.to_string(),
        "--host".into(),
        install.bind_address.clone(),
        "--webui-port".into(),
        ui_port.to_string(),
        "--cores".into(),
        cores.to_string(),
        "--memory".into(),
        memory.to_spark(),
        "--work-dir".into(),
        work_dir.display().to_string(),
    ]);
    CommandLine {
        program: install.java.clone(),
        args,
        env: spark_env(install),
    }
}

/// The name of a cluster's Spark properties file holding its RPC secret.
pub const AUTH_PROPERTIES: &str = "spark-auth.properties";

/// The properties file of a cluster whose RPC is authenticated: `spark.authenticate` on with the
/// cluster's secret. Master, workers and drivers read it with `--properties-file` (so the secret
/// is never on a command line, which every account can read in `/proc`); a worker hands the
/// secret to its executors in their environment, as Spark does.
pub fn auth_properties(secret: &str) -> String {
    format!("spark.authenticate true\nspark.authenticate.secret {secret}\n")
}

/// The secret in a properties file written by [`auth_properties`].
pub fn auth_secret_of(properties: &str) -> Option<&str> {
    properties
        .lines()
        .find_map(|line| line.strip_prefix("spark.authenticate.secret "))
        .map(str::trim)
}

/// A master's or worker's command line that reads `properties_file` (see [`auth_properties`]).
pub fn with_properties_file(mut command: CommandLine, properties_file: &Path) -> CommandLine {
    command.args.push("--properties-file".into());
    command.args.push(properties_file.display().to_string());
    command
}

/// Which Python the driver and the executors run, and what is shipped for executors on other
/// hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonSetup {
    pub driver: PathBuf,
    pub executors: PathBuf,
    /// An environment's packages as an archive Spark unpacks next to each executor (for
    /// executors on agent hosts, which do not have the environment's virtualenv).
    pub ship: Option<PathBuf>,
}

impl PythonSetup {
    fn conf(&self) -> Vec<String> {
        let mut conf = vec![
            format!("spark.pyspark.python={}", self.executors.display()),
            format!("spark.pyspark.driver.python={}", self.driver.display()),
        ];
        if let Some(archive) = &self.ship {
            conf.push(format!("spark.archives={}#spoolenv", archive.display()));
            conf.push("spark.executorEnv.PYTHONPATH=spoolenv".to_string());
        }
        conf
    }
}

/// What an application runs.
#[derive(Debug, Clone)]
pub enum Main {
    /// A Python file, with extra JARs on the classpath.
    Python {
        file: PathBuf,
        jars: Vec<PathBuf>,
        args: Vec<String>,
    },
    /// A JVM class from `jar`, with extra JARs.
    Jvm {
        class_name: String,
        jar: PathBuf,
        jars: Vec<PathBuf>,
        args: Vec<String>,
    },
}

/// A driver in client mode against a standalone master: a job's or a session's.
#[derive(Debug, Clone)]
pub struct Submit<'a> {
    pub master_url: &'a str,
    pub app_name: &'a str,
    pub sizing: &'a SparkSizing,
    /// The driver's Spark UI port.
    pub ui_port: u16,
    pub python: &'a PythonSetup,
    /// The user's Spark properties. Those Spool sets from the sizing are dropped: the sizing
    /// is what placement reserved, and `spark-submit`'s flags would win over them anyway.
    pub user_conf: &'a BTreeMap<String, String>,
    pub py_files: &'a [PathBuf],
    pub files: &'a [PathBuf],
    pub archives: &'a [PathBuf],
    pub main: &'a Main,
    /// The cluster's properties file, when its RPC is authenticated ([`auth_properties`]).
    pub properties_file: Option<&'a Path>,
    /// A Spark Connect server the driver runs beside its own code (a `connect` session).
    pub connect: Option<ConnectServer<'a>>,
}

/// The Spark Connect server a driver runs as a plugin: it listens on `address:port` and answers
/// only calls that present `token` (which only the Spool server knows).
#[derive(Debug, Clone, Copy)]
pub struct ConnectServer<'a> {
    pub address: &'a str,
    pub port: u16,
    pub token: &'a str,
}

/// The plugin that starts a Spark Connect server inside any driver (Spark 4's `jars` hold it).
pub const CONNECT_PLUGIN: &str = "org.apache.spark.sql.connect.SparkConnectPlugin";
/// The variable the Connect server reads its pre-shared token from (never a command line,
/// which `/proc` shows everyone).
pub const CONNECT_TOKEN_ENV: &str = "SPARK_CONNECT_AUTHENTICATE_TOKEN";
const PLUGINS: &str = "spark.plugins";

/// Spark properties Spool sets from the sizing.
const SIZED_KEYS: &[&str] = &[
    spool_spec::DRIVER_CORES,
    spool_spec::DRIVER_MEMORY,
    spool_spec::EXECUTOR_CORES,
    spool_spec::EXECUTOR_MEMORY,
    spool_spec::EXECUTOR_INSTANCES,
    spool_spec::DA_ENABLED,
    spool_spec::DA_MIN,
    spool_spec::DA_MAX,
];

/// Spark properties for dynamic allocation on a standalone cluster, or none without it.
fn dynamic_allocation_conf(
    sizing: &SparkSizing,
    user_conf: &BTreeMap<String, String>,
) -> Vec<String> {
    let Some(da) = sizing.dynamic_allocation else {
        return Vec::new();
    };
    let mut conf = vec![
        "spark.dynamicAllocation.enabled=true".to_string(),
        format!("spark.dynamicAllocation.minExecutors={}", da.min_executors),
        format!("spark.dynamicAllocation.maxExecutors={}", da.max_executors),
        format!(
            "spark.dynamicAllocation.initialExecutors={}",
            sizing.executor_instances
        ),
    ];
    if !user_conf.contains_key("spark.dynamicAllocation.shuffleTracking.enabled")
        && !user_conf.contains_key("spark.shuffle.service.enabled")
    {
        // Standalone clusters have no external shuffle service; track shuffle files instead.
        conf.push("spark.dynamicAllocation.shuffleTracking.enabled=true".into());
    }
    conf
}

fn join(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `spark-submit --deploy-mode client` of a driver.
pub fn submit(install: &Install, submit: &Submit<'_>) -> CommandLine {
    let sizing = submit.sizing;
    let mut args: Vec<String> = Vec::new();
    if let Some(file) = submit.properties_file {
        args.push("--properties-file".into());
        args.push(file.display().to_string());
    }
    args.extend([
        "--master".into(),
        submit.master_url.to_string(),
        "--deploy-mode".into(),
        "client".into(),
        // The user's `appName` in their code wins over this, as Spark applies builder options
        // last.
        "--name".into(),
        submit.app_name.to_string(),
        "--driver-memory".into(),
        sizing.driver_memory.to_spark(),
        "--executor-memory".into(),
        sizing.executor_memory.to_spark(),
        "--executor-cores".into(),
        sizing.executor_cores.to_string(),
    ]);
    let mut conf = vec![
        format!("spark.driver.cores={}", sizing.driver_cores),
        // Standalone mode sizes an application by its total cores.
        format!(
            "spark.cores.max={}",
            sizing.executor_cores * sizing.max_executors()
        ),
        format!("spark.executor.instances={}", sizing.executor_instances),
        format!("spark.ui.port={}", submit.ui_port),
    ];
    conf.extend(submit.python.conf());
    conf.extend(dynamic_allocation_conf(sizing, submit.user_conf));
    let sharing = class_sharing(install).join(" ");
    let merge_java_options = !sharing.is_empty();
    if merge_java_options {
        // The user's options come after Spool's, so theirs win where both set one.
        for key in JAVA_OPTIONS {
            match submit.user_conf.get(key) {
                Some(user) => conf.push(format!("{key}={sharing} {user}")),
                None => conf.push(format!("{key}={sharing}")),
            }
        }
    }
    if let Some(connect) = &submit.connect {
        // The user's plugins keep running beside Connect's.
        let plugins = match submit.user_conf.get(PLUGINS) {
            Some(user) if !user.trim().is_empty() => format!("{user},{CONNECT_PLUGIN}"),
            _ => CONNECT_PLUGIN.to_string(),
        };
        conf.push(format!("{PLUGINS}={plugins}"));
        conf.push(format!(
            "spark.connect.grpc.binding.address={}",
            connect.address
        ));
        conf.push(format!("spark.connect.grpc.binding.port={}", connect.port));
        // A port taken meanwhile fails the start instead of moving to one Spool does not know.
        conf.push("spark.connect.grpc.port.maxRetries=0".to_string());
    }
    for (key, value) in submit.user_conf {
        let merged = (merge_java_options && JAVA_OPTIONS.contains(&key.as_str()))
            || (submit.connect.is_some() && key == PLUGINS);
        if !SIZED_KEYS.contains(&key.as_str()) && !merged {
            conf.push(format!("{key}={value}"));
        }
    }
    for setting in conf {
        args.push("--conf".into());
        args.push(setting);
    }
    for (flag, list) in [
        ("--py-files", submit.py_files),
        ("--files", submit.files),
        ("--archives", submit.archives),
    ] {
        if !list.is_empty() {
            args.push(flag.into());
            args.push(join(list));
        }
    }
    match submit.main {
        Main::Python {
            file,
            jars,
            args: app_args,
        } => {
            if !jars.is_empty() {
                args.push("--jars".into());
                args.push(join(jars));
            }
            args.push(file.display().to_string());
            args.extend(app_args.iter().cloned());
        }
        Main::Jvm {
            class_name,
            jar,
            jars,
            args: app_args,
        } => {
            if !jars.is_empty() {
                args.push("--jars".into());
                args.push(join(jars));
            }
            args.push("--class".into());
            args.push(class_name.clone());
            args.push(jar.display().to_string());
            args.extend(app_args.iter().cloned());
        }
    }
    let mut env = spark_env(install);
    env.insert(
        "PYSPARK_DRIVER_PYTHON".into(),
        submit.python.driver.display().to_string(),
    );
    // Driver output reaches its log as it is written.
    env.insert("PYTHONUNBUFFERED".into(), "1".into());
    if let Some(connect) = &submit.connect {
        env.insert(CONNECT_TOKEN_ENV.into(), connect.token.to_string());
    }
    CommandLine {
        program: install.spark_home.join("bin").join("spark-submit"),
        args,
        env,
    }
}

/// A local-mode `spark-submit` of `script` (given `out`, a scratch folder, as its argument) whose
/// driver writes the classes it loaded to `archive` as it exits: the training run of a runtime's
/// class archive. Its driver runs the executors' code too (local mode), so the archive holds the
/// classes of both.
pub fn train_class_archive(
    install: &Install,
    script: &Path,
    out: &Path,
    archive: &Path,
) -> CommandLine {
    let mut env = spark_env(install);
    env.insert(
        "PYSPARK_DRIVER_PYTHON".into(),
        install.python.display().to_string(),
    );
    CommandLine {
        program: install.spark_home.join("bin").join("spark-submit"),
        args: vec![
            "--master".into(),
            "local[2]".into(),
            "--conf".into(),
            "spark.ui.port=0".into(),
            "--conf".into(),
            format!(
                "{DRIVER_JAVA_OPTIONS}=-XX:ArchiveClassesAtExit={} {}",
                archive.display(),
                QUIET_CLASS_SHARING.join(" ")
            ),
            script.display().to_string(),
            out.display().to_string(),
        ],
        env,
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use spool_spec::DynamicAllocation;

    use super::*;

    fn install() -> Install {
        Install {
            java: "/usr/bin/java".into(),
            spark_home: "/cache/runtimes/3.4/venv/lib/python3.11/site-packages/pyspark".into(),
            scala_version: "2.12".into(),
            python: "/cache/runtimes/3.4/venv/bin/python".into(),
            venv_bin: "/cache/runtimes/3.4/venv/bin".into(),
            host_path: "/usr/bin:/bin".into(),
            bind_address: "127.0.0.1".into(),
            class_archive: None,
        }
    }

    fn sizing() -> SparkSizing {
        SparkSizing {
            driver_cores: 1,
            driver_memory: MemoryMb(1024),
            executor_cores: 2,
            executor_memory: MemoryMb(2048),
            executor_instances: 2,
            dynamic_allocation: None,
        }
    }

    fn python() -> PythonSetup {
        PythonSetup {
            driver: "/cache/runtimes/3.4/venv/bin/python".into(),
            executors: "/cache/runtimes/3.4/venv/bin/python".into(),
            ship: None,
        }
    }

    #[track_caller]
    fn check(command: CommandLine, expect: Expect) {
        expect.assert_eq(&command.render());
    }

    const DAEMON: Daemon = Daemon {
        heap: MemoryMb(512),
    };

    #[test]
    fn master_command_line() {
        check(
            master(&install(), DAEMON, 7077, 8080),
            expect![[r#"
                /usr/bin/java
                  -Xmx512m
                  -XX:TieredStopAtLevel=1
                  -XX:+UseSerialGC
                  -cp
                  /cache/runtimes/3.4/venv/lib/python3.11/site-packages/pyspark/conf:/cache/runtimes/3.4/venv/lib/python3.11/site-packages/pyspark/jars/*
                  org.apache.spark.deploy.master.Master
                  --host
                  127.0.0.1
                  --port
                  7077
                  --webui-port
                  8080
                  env PATH=/cache/runtimes/3.4/venv/bin:/usr/bin:/bin
                  env PYARROW_IGNORE_TIMEZONE=1
                  env PYSPARK_PYTHON=/cache/runtimes/3.4/venv/bin/python
                  env SPARK_HOME=/cache/runtimes/3.4/venv/lib/python3.11/site-packages/pyspark
                  env SPARK_LOCAL_HOSTNAME=127.0.0.1
                  env SPARK_LOCAL_IP=127.0.0.1
                  env SPARK_SCALA_VERSION=2.12
            "#]],
        );
    }

    #[test]
    fn worker_command_line_is_the_same_on_agents() {
        let agent = Install {
            bind_address: "10.10.0.2".into(),
            ..install()
        };
        check(
            worker(
                &agent,
                DAEMON,
                "spark://10.10.0.1:7077",
                0,
                4,
                MemoryMb(4096),
                Path::new("/agent/workers/3/work"),
            ),
            expect![[r#"
                /usr/bin/java
                  -Xmx512m
                  -XX:TieredStopAtLevel=1
                  -XX:+UseSerialGC
                  -cp
                  /cache/runtimes/3.4/venv/lib/python3.11/site-packages/pyspark/conf:/cache/runtimes/3.4/venv/lib/python3.11/site-packages/pyspark/jars/*
                  org.apache.spark.deploy.worker.Worker
                  spark://10.10.0.1:7077
                  --host
                  10.10.0.2
                  --webui-port
                  0
                  --cores
                  4
                  --memory
                  4g
                  --work-dir
                  /agent/workers/3/work
                  env PATH=/cache/runtimes/3.4/venv/bin:/usr/bin:/bin
                  env PYARROW_IGNORE_TIMEZONE=1
                  env PYSPARK_PYTHON=/cache/runtimes/3.4/venv/bin/python
                  env SPARK_HOME=/cache/runtimes/3.4/venv/lib/python3.11/site-packages/pyspark
                  env SPARK_LOCAL_HOSTNAME=10.10.0.2
                  env SPARK_LOCAL_IP=10.10.0.2
                  env SPARK_SCALA_VERSION=2.12
            "#]],
        );
    }

    #[test]
    fn class_archive_comes_before_the_users_java_options() {
        let install = Install {
            class_archive: Some("/cache/runtimes/3.4/classes.jsa".into()),
            ..install()
        };
        let conf = BTreeMap::from([(
            "spark.executor.extraJavaOptions".to_string(),
            "-Dcolor=blue".to_string(),
        )]);
        let main = Main::Python {
            file: "/data/jobs/j1/work/main.py".into(),
            jars: vec![],
            args: vec![],
        };
        let command = submit(
            &install,
            &Submit {
                master_url: "spark://127.0.0.1:7077",
                app_name: "titanic",
                sizing: &sizing(),
                ui_port: 4040,
                python: &python(),
                user_conf: &conf,
                py_files: &[],
                files: &[],
                archives: &[],
                main: &main,
                properties_file: None,
                connect: None,
            },
        );
        let java_options: Vec<&String> = command
            .args
            .iter()
            .filter(|a| a.contains("extraJavaOptions"))
            .collect();
        expect![[r#"
            [
                "spark.driver.extraJavaOptions=-XX:SharedArchiveFile=/cache/runtimes/3.4/classes.jsa -Xlog:cds=off -Xlog:cds+dynamic=off",
                "spark.executor.extraJavaOptions=-XX:SharedArchiveFile=/cache/runtimes/3.4/classes.jsa -Xlog:cds=off -Xlog:cds+dynamic=off -Dcolor=blue",
            ]
        "#]]
        .assert_debug_eq(&java_options);
        let daemon = master(&install, DAEMON, 7077, 8080);
        assert_eq!(
            daemon.args[1..4],
            [
                "-XX:SharedArchiveFile=/cache/runtimes/3.4/classes.jsa",
                "-Xlog:cds=off",
                "-Xlog:cds+dynamic=off"
            ]
        );
    }

    #[test]
    fn a_connect_server_joins_the_users_plugins_and_its_token_stays_off_the_command_line() {
        let conf = BTreeMap::from([(
            "spark.plugins".to_string(),
            "org.example.Metrics".to_string(),
        )]);
        let main = Main::Python {
            file: "/data/sessions/4/driver.py".into(),
            jars: vec![],
            args: vec![],
        };
        let command = submit(
            &install(),
            &Submit {
                master_url: "spark://127.0.0.1:7077",
                app_name: "explore",
                sizing: &sizing(),
                ui_port: 4040,
                python: &python(),
                user_conf: &conf,
                py_files: &[],
                files: &[],
                archives: &[],
                main: &main,
                properties_file: None,
                connect: Some(ConnectServer {
                    address: "127.0.0.1",
                    port: 15002,
                    token: "s3cret",
                }),
            },
        );
        let connect: Vec<&String> = command
            .args
            .iter()
            .filter(|a| a.starts_with("spark.plugins") || a.starts_with("spark.connect"))
            .collect();
        expect![[r#"
            [
                "spark.plugins=org.example.Metrics,org.apache.spark.sql.connect.SparkConnectPlugin",
                "spark.connect.grpc.binding.address=127.0.0.1",
                "spark.connect.grpc.binding.port=15002",
                "spark.connect.grpc.port.maxRetries=0",
            ]
        "#]]
        .assert_debug_eq(&connect);
        assert!(!command.args.iter().any(|a| a.contains("s3cret")));
        assert_eq!(
            command.env.get(CONNECT_TOKEN_ENV).map(String::as_str),
            Some("s3cret")
        );
    }

    #[test]
    fn python_job_drops_sized_keys_and_keeps_user_conf() {
        let conf = BTreeMap::from([
            ("spark.executor.instances".to_string(), "9".to_string()),
            ("spark.sql.shuffle.partitions".to_string(), "8".to_string()),
        ]);
        let main = Main::Python {
            file: "/data/jobs/j1/work/main.py".into(),
            jars: vec!["/data/jobs/j1/work/extra.jar".into()],
            args: vec!["--input".into(), "/data/in.csv".into()],
        };
        check(
            submit(
                &install(),
                &Submit {
                    master_url: "spark://127.0.0.1:7077",
                    app_name: "titanic",
                    sizing: &sizing(),
                    ui_port: 4040,
                    python: &python(),
                    user_conf: &conf,
                    py_files: &["/data/jobs/j1/work/utils.py".into()],
                    files: &[],
                    archives: &[],
                    main: &main,
                    properties_file: Some(Path::new("/data/clusters/3/spark-auth.properties")),
                    connect: None,
                },
            ),
            expect![[r#"
                /cache/runtimes/3.4/venv/lib/python3.11/site-packages/pyspark/bin/spark-submit
                  --properties-file
                  /data/clusters/3/spark-auth.properties
                  --master
                  spark://127.0.0.1:7077
                  --deploy-mode
                  client
                  --name
                  titanic
                  --driver-memory
                  1g
                  --executor-memory
                  2g
                  --executor-cores
                  2
                  --conf
                  spark.driver.cores=1
                  --conf
                  spark.cores.max=4
                  --conf
                  spark.executor.instances=2
                  --conf
                  spark.ui.port=4040
                  --conf
                  spark.pyspark.python=/cache/runtimes/3.4/venv/bin/python
                  --conf
                  spark.pyspark.driver.python=/cache/runtimes/3.4/venv/bin/python
                  --conf
                  spark.sql.shuffle.partitions=8
                  --py-files
                  /data/jobs/j1/work/utils.py
                  --jars
                  /data/jobs/j1/work/extra.jar
                  /data/jobs/j1/work/main.py
                  --input
                  /data/in.csv
                  env PATH=/cache/runtimes/3.4/venv/bin:/usr/bin:/bin
                  env PYARROW_IGNORE_TIMEZONE=1
                  env PYSPARK_DRIVER_PYTHON=/cache/runtimes/3.4/venv/bin/python
                  env PYSPARK_PYTHON=/cache/runtimes/3.4/venv/bin/python
                  env PYTHONUNBUFFERED=1
                  env SPARK_HOME=/cache/runtimes/3.4/venv/lib/python3.11/site-packages/pyspark
                  env SPARK_LOCAL_HOSTNAME=127.0.0.1
                  env SPARK_LOCAL_IP=127.0.0.1
                  env SPARK_SCALA_VERSION=2.12
            "#]],
        );
    }

    #[test]
    fn jvm_job_with_dynamic_allocation_and_a_shipped_environment() {
        let sizing = SparkSizing {
            dynamic_allocation: Some(DynamicAllocation {
                min_executors: 1,
                max_executors: 3,
            }),
            ..sizing()
        };
        let python = PythonSetup {
            driver: "/cache/envs/abc/venv/bin/python".into(),
            executors: "/cache/runtimes/3.4/venv/bin/python".into(),
            ship: Some("/cache/envs/abc/overlay.tar".into()),
        };
        let main = Main::Jvm {
            class_name: "org.example.WordCount".into(),
            jar: "/w/wordcount.jar".into(),
            jars: vec![],
            args: vec!["in".into(), "out".into()],
        };
        let command = submit(
            &install(),
            &Submit {
                master_url: "spark://127.0.0.1:7077",
                app_name: "wc",
                sizing: &sizing,
                ui_port: 4041,
                python: &python,
                user_conf: &BTreeMap::new(),
                py_files: &[],
                files: &["/w/stop-words.txt".into()],
                archives: &[],
                main: &main,
                properties_file: None,
                connect: None,
            },
        );
        let text = command.render();
        let conf_and_main: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("spark.cores.max"))
            .take_while(|l| !l.contains("env "))
            .map(str::trim)
            .collect();
        expect![[r#"
            spark.cores.max=6
            --conf
            spark.executor.instances=2
            --conf
            spark.ui.port=4041
            --conf
            spark.pyspark.python=/cache/runtimes/3.4/venv/bin/python
            --conf
            spark.pyspark.driver.python=/cache/envs/abc/venv/bin/python
            --conf
            spark.archives=/cache/envs/abc/overlay.tar#spoolenv
            --conf
            spark.executorEnv.PYTHONPATH=spoolenv
            --conf
            spark.dynamicAllocation.enabled=true
            --conf
            spark.dynamicAllocation.minExecutors=1
            --conf
            spark.dynamicAllocation.maxExecutors=3
            --conf
            spark.dynamicAllocation.initialExecutors=2
            --conf
            spark.dynamicAllocation.shuffleTracking.enabled=true
            --files
            /w/stop-words.txt
            --class
            org.example.WordCount
            /w/wordcount.jar
            in
            out"#]]
        .assert_eq(&conf_and_main.join("\n"));
        assert_eq!(
            command.env.get("PYSPARK_DRIVER_PYTHON").map(String::as_str),
            Some("/cache/envs/abc/venv/bin/python")
        );
    }
}
