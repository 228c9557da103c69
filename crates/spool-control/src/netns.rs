//! The kernel objects of isolated work: a network namespace per serverless cluster and per
//! command job, the veth pair that joins it to the host, the filter rules inside it
//! (`netfilter::cluster_script`) and the one table of this server on the host
//! (`netfilter::host_script`).
//!
//! Every namespace is recorded (`network_namespaces`, `creating`) before anything is created and
//! marked `removed` after it is deleted; deleting a namespace deletes its end of the veth pair,
//! which deletes the other end, and the rules inside it. A start reaps what a crash left.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use spool_core::{NetnsState, Owner, ProcessState};
use std::net::IpAddr;

use spool_spec::network::{EndpointTarget, IsolationMode, OutboundRule};
use spool_store::{NetnsRow, NewNetns, Store, StoreError};
use tokio::io::AsyncWriteExt;

use crate::netfilter::{self, Allowed, ClusterSubnet};

/// Where `ip netns` keeps named namespaces.
const NETNS_DIR: &str = "/run/netns";
const TOOL_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The file of a named namespace, which processes join.
pub(crate) fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Why clusters cannot be isolated on this host, if they cannot.
pub fn why_not_isolatable() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some(format!(
            "the server does not run as root (uid {}), so it cannot create network namespaces",
            rustix::process::geteuid().as_raw()
        ));
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = TOOL_PATH
            .split(':')
            .any(|dir| Path::new(dir).join(tool).is_file());
        if !found {
            return Some(format!(
                "`{tool}` is missing (Debian package `{package}`; `cargo xtask setup` installs it)"
            ));
        }
    }
    None
}

/// The namespaces of one server's isolated clusters.
#[derive(Clone)]
pub(crate) struct Namespaces {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    subnet: ClusterSubnet,
    /// `spool-<instance>-`: this server's namespaces (`c<id>` for a cluster, `j<id>` for a
    /// command job), apart from other servers'.
    netns_prefix: String,
    /// `s<5 hex of the instance>h`: the host ends of this server's veth pairs (15 bytes at most
    /// with the slot).
    veth_prefix: String,
    /// `spool_<instance>`: this server's table on the host.
    host_table: String,
    /// One change of the host's objects at a time.
    lock: tokio::sync::Mutex<()>,
}

/// Where work's processes are on the network, as they are started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetPlace {
    /// The address its processes bind to (and Spark's advertise).
    pub address: String,
    /// The namespace they run in, when isolated.
    pub netns: Option<PathBuf>,
}

/// The addresses a host name (or address) resolves to; none when it does not.
async fn lookup(host: &str) -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = match tokio::net::lookup_host((host, 0)).await {
        Ok(found) => found.map(|a| a.ip()).collect(),
        Err(_) => Vec::new(),
    };
    addresses.sort();
    addresses.dedup();
    addresses
}

/// Runs a network tool, with `stdin` as its input; the error names the command and its stderr.
async fn tool(program: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<()> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", TOOL_PATH)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| anyhow::anyhow!("run `{program}`: {e}"))?;
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(text.as_bytes()).await?;
        drop(pipe);
    }
    let output = child.wait_with_output().await?;
    if output.status.success() {
        return Ok(());
    }
    anyhow::bail!(
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

impl Namespaces {
    pub(crate) fn new(store: Store, instance: &str, subnet: ClusterSubnet) -> Namespaces {
        Namespaces {
            inner: Arc::new(Inner {
                store,
                subnet,
                netns_prefix: format!("spool-{instance}-"),
                veth_prefix: format!("s{}h", &instance[..5.min(instance.len())]),
                host_table: format!("spool_{instance}"),
                lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Where an owner's processes go: inside its namespace when it has one that is up, else on
    /// the host at `advertise_address`.
    pub(crate) async fn place_of(
        &self,
        owner: Owner,
        advertise_address: &str,
    ) -> anyhow::Result<NetPlace> {
        Ok(match self.inner.store.netns_of(owner).await? {
            Some(row) if row.state == NetnsState::Up => NetPlace {
                address: row.inner_address,
                netns: Some(path(&row.netns)),
            },
            _ => NetPlace {
                address: advertise_address.to_string(),
                netns: None,
            },
        })
    }

    /// The outbound rules as they apply now: `fqdn` names resolved (a wildcard cannot be and is
    /// left out, with a warning), a private endpoint to an attached pool as its master's host;
    /// a datastore is a folder on this host and needs no address.
    async fn resolve(&self, rules: &[OutboundRule]) -> Vec<Allowed> {
        let mut allowed = Vec::new();
        for rule in rules {
            match rule {
                OutboundRule::Ip { name, destination } => allowed.push(Allowed::Ip {
                    rule: name.clone(),
                    destination: destination.clone(),
                }),
                OutboundRule::Fqdn { name, destination } => {
                    if destination.starts_with("*.") {
                        tracing::warn!(rule = %name, %destination, "a wildcard `fqdn` rule cannot be resolved to addresses; it lets nothing through");
                        continue;
                    }
                    let addresses = lookup(destination).await;
                    if addresses.is_empty() {
                        tracing::warn!(rule = %name, %destination, "an `fqdn` rule's name did not resolve; it lets nothing through");
                    }
                    allowed.push(Allowed::Hosts {
                        rule: name.clone(),
                        addresses,
                        tcp_ports: Some(netfilter::FQDN_PORTS.to_vec()),
                    });
                }
                OutboundRule::PrivateEndpoint { name, destination } => {
                    let Some(EndpointTarget::Compute(compute)) = destination.target() else {
                        continue;
                    };
                    let Ok(Some(pool)) = self.inner.store.compute(&compute).await else {
                        continue;
                    };
                    let host = pool
                        .master_url
                        .trim_start_matches("spark://")
                        .rsplit_once(':')
                        .map_or(pool.master_url.as_str(), |(host, _)| host)
                        .to_string();
                    allowed.push(Allowed::Hosts {
                        rule: name.clone(),
                        addresses: lookup(&host).await,
                        tcp_ports: None,
                    });
                }
            }
        }
        allowed
    }

    /// The rules inside a namespace under `mode` and `rules`, with the names of `fqdn` rules
    /// resolved now and DNS to this host's resolvers.
    async fn script(&self, mode: IsolationMode, rules: &[OutboundRule]) -> String {
        let allowed = self.resolve(rules).await;
        let resolvers =
            netfilter::resolvers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
        netfilter::cluster_script(mode, self.inner.subnet, &allowed, &resolvers)
    }

    /// Records, creates and filters an owner's namespace; on failure whatever was made is
    /// removed again.
    pub(crate) async fn create(
        &self,
        owner: Owner,
        mode: IsolationMode,
        rules: &[OutboundRule],
    ) -> anyhow::Result<NetnsRow> {
        let inner = &self.inner;
        let outbound_rules = serde_json::to_string(rules)?;
        let rules = self.script(mode, rules).await;
        let (letter, start) = match owner {
            Owner::Job(_) => ('j', owner.raw_id() + i64::from(inner.subnet.slots() / 2)),
            _ => ('c', owner.raw_id()),
        };
        let netns = format!("{}{letter}{}", inner.netns_prefix, owner.raw_id());
        // The owner's own slot, or the next free one after it.
        let mut row = None;
        for step in 0..64 {
            let slot = inner.subnet.slot_of(start + step);
            let (host_address, inner_address) = inner.subnet.addresses(slot);
            let host_veth = format!("{}{slot}", inner.veth_prefix);
            match inner
                .store
                .insert_netns(&NewNetns {
                    owner,
                    netns: &netns,
                    host_veth: &host_veth,
                    slot: i64::from(slot),
                    host_address: &host_address.to_string(),
                    inner_address: &inner_address.to_string(),
                    isolation_mode: mode,
                    outbound_rules: &outbound_rules,
                    rules: &rules,
                })
                .await
            {
                Ok(inserted) => {
                    row = Some(inserted);
                    break;
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let row = row.ok_or_else(|| {
            anyhow::anyhow!(
                "no free address in `[network] cluster_subnet` ({}) near slot {start}; give it a larger block",
                inner.subnet
            )
        })?;
        if let Err(e) = self.make(&row).await {
            self.remove(&row).await;
            return Err(e.context(format!("isolate {owner} in namespace `{netns}`")));
        }
        inner.store.set_netns_state(row.id, NetnsState::Up).await?;
        tracing::info!(%owner, %netns, address = %row.inner_address, mode = mode.as_str(), "namespace up");
        Ok(NetnsRow {
            state: NetnsState::Up,
            ..row
        })
    }

    async fn make(&self, row: &NetnsRow) -> anyhow::Result<()> {
        let _guard = self.inner.lock.lock().await;
        self.ensure_host().await?;
        let (ns, veth) = (row.netns.as_str(), row.host_veth.as_str());
        let host_cidr = format!("{}/30", row.host_address);
        let cluster_cidr = format!("{}/30", row.inner_address);
        let steps: [&[&str]; 8] = [
            &["netns", "add", ns],
            &[
                "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ],
            &["addr", "add", &host_cidr, "dev", veth],
            &["link", "set", veth, "up"],
            &["-n", ns, "link", "set", "lo", "up"],
            &["-n", ns, "addr", "add", &cluster_cidr, "dev", "eth0"],
            &["-n", ns, "link", "set", "eth0", "up"],
            &[
                "-n",
                ns,
                "route",
                "add",
                "default",
                "via",
                &row.host_address,
            ],
        ];
        for args in steps {
            tool("ip", args, None).await?;
        }
        tool(
            "ip",
            &["netns", "exec", ns, "nft", "-f", "-"],
            Some(&row.rules),
        )
        .await
    }

    /// The host's side: this server's table, and forwarding so clusters reach past the host.
    async fn ensure_host(&self) -> anyhow::Result<()> {
        let inner = &self.inner;
        let script = netfilter::host_script(&inner.host_table, &inner.veth_prefix, inner.subnet);
        tool("nft", &["-f", "-"], Some(&script)).await?;
        let forward = Path::new("/proc/sys/net/ipv4/ip_forward");
        if std::fs::read_to_string(forward)
            .map(|v| v.trim() != "1")
            .unwrap_or(true)
        {
            std::fs::write(forward, "1").map_err(|e| {
                anyhow::anyhow!("turn on IPv4 forwarding for isolated clusters: {e}")
            })?;
            tracing::info!(
                "turned on IPv4 forwarding (net.ipv4.ip_forward = 1) for isolated clusters"
            );
        }
        Ok(())
    }

    /// Resolves the `fqdn` rules of every live namespace again and applies the rules where
    /// the addresses changed (a name moved to other addresses while its cluster ran).
    pub(crate) async fn refresh(&self) -> anyhow::Result<()> {
        for row in self.inner.store.live_namespaces().await? {
            if row.state != NetnsState::Up {
                continue;
            }
            let rules: Vec<OutboundRule> = serde_json::from_str(&row.outbound_rules)?;
            if !rules.iter().any(|r| matches!(r, OutboundRule::Fqdn { .. })) {
                continue;
            }
            let mode = row.isolation_mode;
            let script = self.script(mode, &rules).await;
            if script == row.rules {
                continue;
            }
            let _guard = self.inner.lock.lock().await;
            // The namespace may have gone meanwhile (a teardown); then there is nothing to do.
            if !path(&row.netns).exists() {
                continue;
            }
            tool(
                "ip",
                &["netns", "exec", &row.netns, "nft", "-f", "-"],
                Some(&script),
            )
            .await?;
            self.inner.store.set_netns_rules(row.id, &script).await?;
            tracing::info!(owner = %row.owner(), netns = %row.netns, "refreshed the addresses of `fqdn` rules");
        }
        Ok(())
    }

    /// Deletes a namespace (with its veth pair and rules) and marks it removed; the host's
    /// table goes with the last namespace. Failures are logged, never returned: a teardown
    /// goes on.
    pub(crate) async fn remove(&self, row: &NetnsRow) {
        let _guard = self.inner.lock.lock().await;
        let owner = row.owner();
        if path(&row.netns).exists()
            && let Err(e) = tool("ip", &["netns", "del", &row.netns], None).await
        {
            tracing::warn!(%owner, error = %e, "delete a namespace");
        }
        // The host's end goes with the namespace's; a crash between creating the pair and
        // moving its end can leave it alone.
        if Path::new("/sys/class/net").join(&row.host_veth).exists() {
            let _ = tool("ip", &["link", "del", &row.host_veth], None).await;
        }
        if let Err(e) = self
            .inner
            .store
            .set_netns_state(row.id, NetnsState::Removed)
            .await
        {
            tracing::error!(%owner, error = %crate::error_chain(&e), "record a removed namespace");
        }
        tracing::info!(%owner, netns = %row.netns, "namespace removed");
        match self.inner.store.live_namespaces().await {
            Ok(live) if live.is_empty() => self.remove_host().await,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e), "read the live namespaces");
            }
        }
    }

    async fn remove_host(&self) {
        let script = netfilter::remove_host_script(&self.inner.host_table);
        if let Err(e) = tool("nft", &["-f", "-"], Some(&script)).await {
            tracing::warn!(error = %e, "remove this server's filter table");
        }
    }

    /// Removes an owner's namespace, if it has one.
    pub(crate) async fn remove_of(&self, owner: Owner) {
        match self.inner.store.netns_of(owner).await {
            Ok(Some(row)) if row.state != NetnsState::Removed => self.remove(&row).await,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(%owner, error = %crate::error_chain(&e), "read a namespace");
            }
        }
    }

    /// At start, after the processes left running were adopted or stopped: removes every
    /// namespace of this server in which nothing runs any more (those recorded, and any under
    /// this server's prefix that no live record names), and rebuilds or removes the host's
    /// table.
    pub(crate) async fn reap(&self) -> anyhow::Result<()> {
        let store = &self.inner.store;
        let mut kept = Vec::new();
        for row in store.live_namespaces().await? {
            let running = store
                .processes_of(row.owner())
                .await?
                .iter()
                .any(|p| p.state != ProcessState::Ended);
            if running && row.state == NetnsState::Up {
                kept.push(row.netns.clone());
                continue;
            }
            tracing::info!(owner = %row.owner(), netns = %row.netns, "reaping a namespace left by a previous server");
            self.remove(&row).await;
        }
        if let Ok(entries) = std::fs::read_dir(NETNS_DIR) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.starts_with(&self.inner.netns_prefix) && !kept.contains(&name) {
                    tracing::info!(netns = %name, "reaping an unrecorded namespace of this server");
                    let _ = tool("ip", &["netns", "del", &name], None).await;
                }
            }
        }
        if kept.is_empty() {
            if why_not_isolatable().is_none() {
                self.remove_host().await;
            }
        } else {
            let _guard = self.inner.lock.lock().await;
            self.ensure_host().await?;
        }
        Ok(())
    }
}

/// How often `fqdn` rules are resolved again while their clusters run.
pub(crate) const FQDN_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);
