//! Network isolation rows: a session's start (to `idle`) and its first `1+1`, with isolation off
//! and on (`allow_internet_outbound`), on a cold and a warm cluster. The servers run inside a
//! network namespace of the benchmark's own (this thread joins it), so the host table and the
//! forwarding setting an isolated server changes are that namespace's, not this machine's.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use spool_test::netns::Net;

use super::{
    Http, Server, delete_session, median, runs_as_root, server_port, server_token, spool,
    start_server_configured, statement_rtt, timed_session, wait_no_clusters,
};

/// Moves this thread (and what it starts from now on) into the network namespace at `path`.
#[allow(unsafe_code)]
fn enter(path: &Path) -> anyhow::Result<()> {
    let file = File::open(path)?;
    // SAFETY: one system call on a descriptor that stays open for its duration; it changes only
    // this thread's network namespace.
    let rc = unsafe { nix::libc::setns(file.as_raw_fd(), nix::libc::CLONE_NEWNET) };
    anyhow::ensure!(
        rc == 0,
        "join the network namespace {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// A server of the benchmark's namespace; `subnet` keeps isolated servers' clusters apart.
fn server(scratch: &Path, name: &str, teardown: &str, subnet: u8) -> anyhow::Result<Server> {
    start_server_configured(
        scratch,
        name,
        teardown,
        &format!("[network]\ncluster_subnet = \"10.{subnet}.0.0/16\"\n"),
    )
}

fn isolate(server: &Server, scratch: &Path) -> anyhow::Result<()> {
    let file = scratch.join("internet.yml");
    std::fs::write(
        &file,
        "managed_network:\n  isolation_mode: allow_internet_outbound\n",
    )?;
    let out = spool(
        server,
        &["workspace", "update", "--file", &file.display().to_string()],
    )?;
    anyhow::ensure!(
        out.status.success(),
        "workspace update: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A session's start and its first `1+1` (not `bench.rs`'s first result), in seconds; the
/// session is deleted after.
fn start_then_one_plus_one(server: &Server) -> anyhow::Result<(f64, f64)> {
    let (started, id) = timed_session(server)?;
    let mut http = Http::connect(server_port(server), &server_token(server)?)?;
    let first = statement_rtt(&mut http, &id)?;
    delete_session(server, &id)?;
    Ok((started, first))
}

pub(super) fn isolation_bench(scratch: &Path, runs: usize) -> anyhow::Result<()> {
    if !runs_as_root() || !Path::new("/usr/sbin/nft").exists() {
        println!("\nNetwork isolation: skipped, it needs root and nftables (`cargo xtask setup`)");
        return Ok(());
    }
    let net = match Net::create() {
        Ok(net) => net,
        Err(reason) => {
            println!(
                "\nNetwork isolation: skipped, network namespaces cannot be created here: {reason}"
            );
            return Ok(());
        }
    };
    let home = File::open("/proc/thread-self/ns/net")?;
    enter(&Path::new("/run/netns").join(net.ns("srv")))?;
    let result = rows(scratch, runs);
    enter(Path::new(&format!("/proc/self/fd/{}", home.as_raw_fd())))?;
    result
}

fn rows(scratch: &Path, runs: usize) -> anyhow::Result<()> {
    let off_cold = server(scratch, "isolation-off-cold", "1s", 211)?;
    let on_cold = server(scratch, "isolation-on-cold", "1s", 212)?;
    let off_warm = server(scratch, "isolation-off-warm", "10m", 213)?;
    let on_warm = server(scratch, "isolation-on-warm", "10m", 214)?;
    isolate(&on_cold, scratch)?;
    isolate(&on_warm, scratch)?;
    eprintln!("==> isolation warm-up (its runs are not counted)");
    for server in [&off_warm, &on_warm] {
        start_then_one_plus_one(server)?;
    }
    let mut figures: [Vec<(f64, f64)>; 4] = Default::default();
    for i in 1..=runs {
        eprintln!("==> isolation round {i}/{runs}");
        for (server, out) in [(&off_cold, 0), (&on_cold, 1)] {
            wait_no_clusters(server)?;
            figures[out].push(start_then_one_plus_one(server)?);
        }
        // A warm start varies by more than the difference looked for: three of each, in
        // turns, the order swapped every round.
        for turn in 0..3 {
            let mut pair = [(&off_warm, 2), (&on_warm, 3)];
            if (i + turn) % 2 == 1 {
                pair.reverse();
            }
            for (server, out) in pair {
                figures[out].push(start_then_one_plus_one(server)?);
            }
        }
        let last = |i: usize| figures[i].last().map_or(0.0, |f| f.0);
        eprintln!(
            "    cold off {:.2} s, on {:.2} s; warm off {:.2} s, on {:.2} s (last of three)",
            last(0),
            last(1),
            last(2),
            last(3)
        );
    }
    let start = |i: usize| median(&figures[i].iter().map(|f| f.0).collect::<Vec<_>>());
    let first = |i: usize| median(&figures[i].iter().map(|f| f.1 * 1000.0).collect::<Vec<_>>());
    println!(
        "\nNetwork isolation: Livy session, kind pyspark, runtime 3.4, `allow_internet_outbound` vs `disabled`, {runs} runs each ({} warm), median\n",
        runs * 3
    );
    println!("| scenario | isolation off | isolation on | on vs off | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| session start, cold cluster | {:.2} s | {:.2} s | {:.2} | <= 1.10 |",
        start(0),
        start(1),
        start(1) / start(0)
    );
    println!(
        "| session start, warm cluster | {:.2} s | {:.2} s | {:+.0} ms | <= +50 ms |",
        start(2),
        start(3),
        (start(3) - start(2)) * 1000.0
    );
    println!(
        "| first `1+1` after start, cold cluster | {:.1} ms | {:.1} ms | {:+.1} ms | |",
        first(0),
        first(1),
        first(1) - first(0)
    );
    println!(
        "| first `1+1` after start, warm cluster | {:.1} ms | {:.1} ms | {:+.1} ms | |",
        first(2),
        first(3),
        first(3) - first(2)
    );
    Ok(())
}
