//! `spool session shell`: a line-oriented REPL against a session.

use std::io::{BufRead, IsTerminal, Write};

use super::run::{print_output, run_statement};
use crate::Globals;

#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    /// Session name or id.
    #[arg(long, short)]
    name: String,
    /// Statement kind: `pyspark` or `sql` (default: the session's kind).
    #[arg(long)]
    kind: Option<String>,
}

pub(super) async fn run(args: ShellArgs, globals: &Globals) -> anyhow::Result<i32> {
    let client = globals.client()?;
    let (name, kind) = (args.name.as_str(), args.kind.as_deref());
    let session = client.session(name).await.map_err(super::unknown_session)?;
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "Spool session {} ({}, Spark runtime {}). `spark` and `sc` are defined. End a block with an empty line; Ctrl-D to leave.",
            session.id, session.kind, session.runtime
        );
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            eprint!(">>> ");
            std::io::stderr().flush()?;
        }
        let Some(first) = lines.next() else { break };
        let first = first?;
        if first.trim().is_empty() {
            continue;
        }
        let mut code = first.clone();
        // A block (a line ending in `:` or `\`) goes on until an empty line.
        if first.trim_end().ends_with(':') || first.trim_end().ends_with('\\') {
            loop {
                if interactive {
                    eprint!("... ");
                    std::io::stderr().flush()?;
                }
                match lines.next() {
                    Some(line) => {
                        let line = line?;
                        if line.trim().is_empty() {
                            break;
                        }
                        code.push('\n');
                        code.push_str(&line);
                    }
                    None => break,
                }
            }
        }
        let statement = run_statement(&client, name, &code, kind).await?;
        print_output(&statement);
    }
    Ok(0)
}
