//! The `spool` binary: parse arguments, run, map the result to an exit code.

use clap::Parser;

fn main() {
    let cli = spool_cli::Cli::parse();
    let is_server = matches!(cli.command, spool_cli::Command::Serve(_));
    spool_cli::init_tracing(is_server);
    let code = match spool_cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One place prints errors: "error: <what>: <why>", then hints on their own lines.
            eprint!("{}", spool_cli::render_error(&e));
            1
        }
    };
    std::process::exit(code);
}
