//! Multi-host rows: the same two-executor job on one host against on two agent hosts (network
//! namespaces on this machine, so both share its cores: the row shows the cost of spreading,
//! not a speed-up).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use spool_test::netns::Net;

use super::{
    Server, free_port, median, repo_root, spool, spool_bin, start_server, timed_job,
    wait_no_clusters,
};

/// `bench/pi.py` with two executors of one core.
fn two_executor_job(scratch: &Path) -> anyhow::Result<std::path::PathBuf> {
    let text = std::fs::read_to_string(repo_root().join("bench/pi.yml"))?
        .replace("spark.executor.instances: 1", "spark.executor.instances: 2")
        .replace(
            "code: .",
            &format!("code: {}", repo_root().join("bench").display()),
        );
    let path = scratch.join("pi2.yml");
    std::fs::write(&path, text)?;
    Ok(path)
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn start_netns_server(net: &Net, scratch: &Path) -> anyhow::Result<Server> {
    let data_dir = scratch.join("agents-two");
    std::fs::create_dir_all(&data_dir)?;
    std::fs::write(
        data_dir.join("config.toml"),
        format!(
            "[serverless]\nteardown_after = \"1s\"\nadvertise_address = \"{}\"\n\n[agents]\nworkers_on_server = false\n",
            net.addr("srv")
        ),
    )?;
    let port = free_port()?;
    let child = Command::new("ip")
        .args(["netns", "exec", &net.ns("srv")])
        .arg(spool_bin())
        .args([
            "serve",
            "--no-runtime-install",
            "--prewarm",
            "0",
            "--listen",
        ])
        .arg(format!("{}:{port}", net.addr("srv")))
        .arg("--data-dir")
        .arg(&data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(scratch.join("agents-two.log"))?)
        .spawn()?;
    let server = Server {
        child,
        url: format!("http://{}:{port}", net.addr("srv")),
        data_dir,
        netns: Some(net.ns("srv")),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.data_dir.join("admin.token").exists()
        || !spool(&server, &["datastore", "list", "-o", "json"])?
            .status
            .success()
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "spool serve did not start in its namespace"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(server)
}

fn start_agents(net: &Net, server: &Server, scratch: &Path) -> anyhow::Result<Vec<Agent>> {
    let mut agents = Vec::new();
    for host in ["a", "b"] {
        let out = spool(server, &["agents", "add", host, "-o", "json"])?;
        anyhow::ensure!(
            out.status.success(),
            "agents add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let created: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let token = created["token"].as_str().unwrap_or_default().to_string();
        let child = net.spawn_agent(
            &spool_bin(),
            host,
            &server.url,
            &token,
            &scratch.join(format!("agent-{host}")),
            &spool_test::cache_dir(),
            std::fs::File::create(scratch.join(format!("agent-{host}.log")))?,
        )?;
        agents.push(Agent(child));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = spool(server, &["agents", "list", "-o", "json"])?;
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let connected = list
            .as_array()
            .map(|a| a.iter().filter(|a| a["state"] == "connected").count())
            .unwrap_or(0);
        if connected == 2 {
            return Ok(agents);
        }
        anyhow::ensure!(Instant::now() < deadline, "agents did not connect");
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(super) fn agents_bench(scratch: &Path, runs: usize) -> anyhow::Result<()> {
    let net = match Net::create() {
        Ok(net) => net,
        Err(reason) => {
            println!("\nMulti-host: skipped, network namespaces cannot be created here: {reason}");
            return Ok(());
        }
    };
    let job = two_executor_job(scratch)?;
    let one = start_server(scratch, "agents-one", "1s")?;
    let two = start_netns_server(&net, scratch)?;
    let _agents = start_agents(&net, &two, scratch)?;
    let (mut one_host, mut two_hosts) = (Vec::new(), Vec::new());
    for i in 1..=runs {
        eprintln!("==> multi-host round {i}/{runs}");
        wait_no_clusters(&one)?;
        one_host.push(timed_job(&one, &job)?);
        wait_no_clusters(&two)?;
        two_hosts.push(timed_job(&two, &job)?);
        eprintln!(
            "    one host {:.2} s, two agent hosts {:.2} s",
            one_host[i - 1],
            two_hosts[i - 1]
        );
    }
    let base = median(&one_host);
    println!(
        "\nMulti-host: bench/pi.py with 2 executors x 1 core, cold cluster, {runs} runs, median (hosts are network namespaces sharing this machine's cores)\n"
    );
    println!("| scenario | median s | ratio |");
    println!("|---|---|---|");
    println!("| one host (executors on the server's host) | {base:.2} | 1.00 |");
    println!(
        "| two agent hosts (one executor on each, master and driver on the server's host) | {:.2} | {:.2} |",
        median(&two_hosts),
        median(&two_hosts) / base
    );
    Ok(())
}
