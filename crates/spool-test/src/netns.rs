//! Hosts as network namespaces for multi-host tests and benchmarks: a server host and two
//! worker hosts on one /24, joined by veth links to a bridge in a fourth namespace, so that every
//! address lives only inside namespaces the caller created. Everything is removed on drop.

use std::process::Command;

/// Namespaces `srv`, `a`, `b` on one /24, each linked to a bridge in a fourth (`hub`).
pub struct Net {
    prefix: String,
    subnet: String,
}

/// Runs `ip` with `args`; the error carries its stderr.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Net {
    pub fn create() -> Result<Net, String> {
        let pid = std::process::id();
        let net = Net {
            prefix: format!("sp{pid}"),
            subnet: format!("10.77.{}", pid % 200 + 20),
        };
        let hub = net.ns("hub");
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for (i, host) in ["srv", "a", "b"].iter().enumerate() {
            let ns = net.ns(host);
            let (inner, outer) = (format!("v{pid}{i}"), format!("h{pid}{i}"));
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &outer, "netns", &hub])?;
            ip(&["-n", &hub, "link", "set", &outer, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &outer, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", net.addr(host)),
                "dev",
                &inner,
            ])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    pub fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    pub fn addr(&self, host: &str) -> String {
        let last = match host {
            "srv" => 1,
            "a" => 2,
            _ => 3,
        };
        format!("{}.{last}", self.subnet)
    }

    /// Takes a host's link down (a network loss) or up again.
    pub fn set_link(&self, host: &str, up: bool) -> Result<(), String> {
        let index = match host {
            "srv" => 0,
            "a" => 1,
            _ => 2,
        };
        let link = format!("v{}{index}", std::process::id());
        ip(&[
            "-n",
            &self.ns(host),
            "link",
            "set",
            &link,
            if up { "up" } else { "down" },
        ])
    }

    /// Starts `spool agent` on a worker host (1 core, 2 GiB offered) with `cache` as its
    /// runtime cache, logging to `log`.
    #[allow(clippy::too_many_arguments)]
    pub fn spawn_agent(
        &self,
        binary: &std::path::Path,
        host: &str,
        server_url: &str,
        token: &str,
        data_dir: &std::path::Path,
        cache: &std::path::Path,
        log: std::fs::File,
    ) -> std::io::Result<std::process::Child> {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .arg(binary)
            .args(["agent", "--server", server_url, "--name", host])
            .args([
                "--address",
                &self.addr(host),
                "--cores",
                "1",
                "--memory",
                "2g",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("SPOOL_AGENT_TOKEN", token)
            .env("SPOOL_CACHE_DIR", cache)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
    }

    /// Processes running in a host's namespace.
    pub fn pids(&self, host: &str) -> Vec<i32> {
        let out = Command::new("ip")
            .args(["netns", "pids", &self.ns(host)])
            .output()
            .expect("ip netns");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Kills everything on a host at once, as if it lost power.
    pub fn kill_host(&self, host: &str) {
        for pid in self.pids(host) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Runs a Python snippet on a host (to read a Spark master's status from inside).
    pub fn python(&self, host: &str, code: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(host), "python3", "-c", code])
            .output()
            .expect("ip netns");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for host in ["a", "b", "srv", "hub"] {
            self.kill_host(host);
            let _ = ip(&["netns", "del", &self.ns(host)]);
        }
    }
}
