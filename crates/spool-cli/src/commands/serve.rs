//! `spool serve`.

use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Data dir: state store, logs, datastores, admin token. Defaults to $SPOOL_HOME, else ~/.spool.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on. Livy's port by default, so Livy clients work without configuration.
    #[arg(long, default_value = spool_core::paths::DEFAULT_LISTEN)]
    pub listen: String,
    /// Tear an idle serverless cluster down after this long without work (e.g. `10m`, `30s`).
    #[arg(long, value_parser = parse_duration)]
    pub teardown_after: Option<std::time::Duration>,
    /// On SIGTERM/Ctrl-C, leave running jobs and clusters for the next server to adopt.
    #[arg(long)]
    pub keep_running_on_stop: bool,
    /// Do not install the default runtime in the background at start (it is then installed when
    /// the first job needs it).
    #[arg(long)]
    pub no_runtime_install: bool,
    /// Idle drivers kept ready for sessions with default settings (default 1; 0 turns it off).
    #[arg(long, value_name = "N")]
    pub prewarm: Option<u32>,
    /// Machine-wide cache of runtimes. Defaults to $SPOOL_CACHE_DIR, else ~/.cache/spool.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    spool_server::parse_duration(text)
}

pub async fn run(args: ServeArgs) -> anyhow::Result<i32> {
    crate::init_tracing(true);
    let options = spool_server::ServeOptions {
        data_dir: args
            .data_dir
            .unwrap_or_else(spool_core::paths::default_data_dir),
        cache_dir: args
            .cache_dir
            .unwrap_or_else(spool_core::paths::default_cache_dir),
        listen: args.listen,
        teardown_after: args.teardown_after,
        prewarm: args.prewarm,
        keep_running_on_stop: args.keep_running_on_stop,
        install_default_runtime: !args.no_runtime_install,
        progress_bar: std::io::stderr().is_terminal(),
    };
    spool_server::run(options).await?;
    Ok(0)
}
