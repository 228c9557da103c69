//! Placement: where a job or session runs. A pure function over a capacity snapshot; the
//! scheduler reads the snapshot once per tick, asks [`decide`] for each waiting piece of work,
//! carries the decision out, and [`Snapshot::apply`]s it so the next request of the same tick
//! sees the capacity it took.
//!
//! Nothing here reads the store, starts a process or looks at the clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spool_core::{ClusterId, ClusterState, MemoryMb, UserId};
use spool_spec::SparkSizing;

/// The shape of a cluster: what a warm cluster must match to be reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Shape {
    pub runtime: String,
    pub executor_cores: u32,
    pub executor_memory: MemoryMb,
    /// Executors the cluster can hold at once (with dynamic allocation: the maximum).
    pub executors: u32,
}

impl Shape {
    pub fn of(runtime: &str, sizing: &SparkSizing) -> Shape {
        Shape {
            runtime: runtime.to_string(),
            executor_cores: sizing.executor_cores,
            executor_memory: sizing.executor_memory,
            executors: sizing.max_executors(),
        }
    }

    /// What warm reuse compares: runtime, executors, cores and memory.
    pub fn key(&self) -> String {
        format!(
            "{}/{}x{}c{}",
            self.runtime,
            self.executors,
            self.executor_cores,
            self.executor_memory.to_spark()
        )
    }
}

/// What this host can hand out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostCapacity {
    pub host_cores: u32,
    pub cpu_oversubscription: f64,
    /// Cores that may be handed out: the host's times the oversubscription factor.
    pub schedulable_cores: u32,
    pub memory: MemoryMb,
    /// Heap of one Spark master or worker daemon.
    pub daemon_memory: MemoryMb,
    /// Whether executors may run on this host when agents are connected.
    pub workers_on_server: bool,
}

impl HostCapacity {
    fn daemons(&self) -> u64 {
        2 * self.daemon_memory.0
    }
}

/// Cores and memory. Sums saturate: an absurd request (one the edge's limits let through, or a
/// product of two large numbers) then never fits, instead of wrapping into one that does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Amount {
    pub cores: u32,
    pub memory_mb: u64,
}

impl Amount {
    fn plus(self, other: Amount) -> Amount {
        Amount {
            cores: self.cores.saturating_add(other.cores),
            memory_mb: self.memory_mb.saturating_add(other.memory_mb),
        }
    }

    /// Whether `self` more on top of `used` stays within `host`'s schedulable cores and memory.
    fn fits_with(self, used: Amount, host: &HostCapacity) -> bool {
        let total = used.plus(self);
        total.cores <= host.schedulable_cores && total.memory_mb <= host.memory.0
    }

    fn minus(self, other: Amount) -> Amount {
        Amount {
            cores: self.cores.saturating_sub(other.cores),
            memory_mb: self.memory_mb.saturating_sub(other.memory_mb),
        }
    }
}

/// A cluster as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClusterSlot {
    pub id: ClusterId,
    pub owner: UserId,
    /// The principal its processes run as.
    pub runs_as: String,
    pub shape_key: String,
    pub state: ClusterState,
    /// RFC 3339; the oldest idle cluster is freed first.
    pub idle_since: Option<String>,
    /// What it holds on this host (its executors here and its two daemons).
    pub reserved: Amount,
    /// The version of the workspace's network settings it started under.
    pub network_version: i64,
}

/// A connected agent and what it has left.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AgentSlot {
    pub name: String,
    /// The agent's cores times the oversubscription factor, less its workers' (may be negative
    /// when an agent shrank).
    pub free_cores: i64,
    pub free_memory_mb: i64,
}

/// Everything placement looks at, read once per scheduler tick.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshot {
    pub host: HostCapacity,
    /// Held on this host now: live clusters' reservations and active drivers.
    pub used: Amount,
    /// Provisioner that are not gone, oldest first.
    pub clusters: Vec<ClusterSlot>,
    /// Connected agents, by name.
    pub agents: Vec<AgentSlot>,
    /// Attached pools by name, and the cluster row each is placed on.
    pub pools: BTreeMap<String, ClusterId>,
    /// The workspace's network settings now.
    pub network: NetworkNow,
}

/// What placement needs of the workspace's network settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct NetworkNow {
    /// Their version: a warm cluster started under another one is not reused, as new work
    /// gets the settings as they are.
    pub version: i64,
    /// Whether new clusters are isolated: then all their executors run on this host, inside
    /// the cluster's namespace (agents are not isolated yet).
    pub isolated: bool,
}

/// Where a piece of work wants to run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    Serverless {
        runtime: String,
        sizing: SparkSizing,
    },
    /// An attached pool, by name.
    Pool(String),
}

/// A job or session waiting to be placed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub owner: UserId,
    /// The principal the work runs as: a warm cluster is reused only by work of the same one,
    /// as its processes run under that principal's account.
    pub runs_as: String,
    pub target: Target,
    /// Its driver, which runs on this host whatever the target.
    pub driver: Amount,
}

impl Request {
    pub fn new(owner: UserId, compute: &str, runtime: &str, sizing: &SparkSizing) -> Request {
        let target = if compute == "serverless" {
            Target::Serverless {
                runtime: runtime.to_string(),
                sizing: *sizing,
            }
        } else {
            Target::Pool(compute.to_string())
        };
        Request {
            owner,
            runs_as: String::new(),
            target,
            driver: driver_needs(sizing),
        }
    }

    /// The same request, for work running as `runs_as`.
    pub fn running_as(mut self, runs_as: &str) -> Request {
        self.runs_as = runs_as.to_string();
        self
    }
}

/// A new cluster to record: what it reserves here and where its executors go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewCluster {
    pub shape: Shape,
    /// Idle clusters to tear down first, to make room.
    pub free: Vec<ClusterId>,
    /// Executors on this host.
    pub local_executors: u32,
    /// Executors on agents, by agent name.
    pub remote: Vec<(String, u32)>,
    /// This host's share: its executors and the two daemons.
    pub reserved: Amount,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// Reuse an idle cluster of the same owner and shape.
    Warm(ClusterId),
    /// Run on an attached pool's cluster row (always up; its capacity is the pool's own).
    Pool(ClusterId),
    /// Start a new cluster.
    New(NewCluster),
    /// Nothing fits now; the reason says what is needed and what is free.
    Wait(String),
}

fn driver_needs(sizing: &SparkSizing) -> Amount {
    Amount {
        cores: sizing.driver_cores,
        memory_mb: sizing.driver_memory.0,
    }
}

/// Cores and memory a cluster of `executors` executors of `shape` holds on this host: its
/// executors and its two daemons.
fn cluster_needs(host: &HostCapacity, shape: &Shape, executors: u32) -> Amount {
    Amount {
        cores: shape.executor_cores.saturating_mul(executors),
        memory_mb: shape
            .executor_memory
            .0
            .saturating_mul(u64::from(executors))
            .saturating_add(host.daemons()),
    }
}

/// Whether work of `sizing` could ever fit on this host (with nothing else running); the
/// message says why not, with the numbers.
pub(crate) fn check_ever_fits(host: &HostCapacity, sizing: &SparkSizing) -> Result<(), String> {
    let shape = Shape::of("", sizing);
    let need = cluster_needs(host, &shape, shape.executors).plus(driver_needs(sizing));
    if !need.fits_with(Amount::default(), host) {
        return Err(format!(
            "the job needs {} cores and {} ({} executors x {} cores and {}, a driver with {} cores and {}, and {} for the Spark master and worker), but this host can never give more than {} cores ({} cores x {} oversubscription) and {}\nhint: ask for fewer or smaller executors, or raise `capacity` in the server's config.toml",
            need.cores,
            MemoryMb(need.memory_mb),
            shape.executors,
            sizing.executor_cores,
            sizing.executor_memory,
            sizing.driver_cores,
            sizing.driver_memory,
            MemoryMb(host.daemons()),
            host.schedulable_cores,
            host.host_cores,
            host.cpu_oversubscription,
            host.memory,
        ));
    }
    Ok(())
}

/// Whether a new cluster of `sizing` (all its executors on this host) and its driver fit next
/// to what is `used`, without freeing anything.
pub(crate) fn fits_now(host: &HostCapacity, used: Amount, sizing: &SparkSizing) -> bool {
    let shape = Shape::of("", sizing);
    let need = cluster_needs(host, &shape, shape.executors).plus(driver_needs(sizing));
    need.fits_with(used, host)
}

/// Decides where `request` runs: an idle cluster of the same owner and shape (warm); else a new
/// cluster if it fits, freeing idle clusters (oldest first, of any owner) when that makes it fit,
/// its executors spread over connected agents by free cores; else wait, with the numbers.
pub(crate) fn decide(snapshot: &Snapshot, request: &Request) -> Decision {
    let (runtime, sizing) = match &request.target {
        Target::Pool(name) => {
            return match snapshot.pools.get(name) {
                Some(cluster) => Decision::Pool(*cluster),
                None => Decision::Wait(format!("pool `{name}` is not attached any more")),
            };
        }
        Target::Serverless { runtime, sizing } => (runtime, sizing),
    };
    let shape = Shape::of(runtime, sizing);
    let key = shape.key();
    if let Some(warm) = snapshot.clusters.iter().find(|c| {
        c.state == ClusterState::Idle
            && c.owner == request.owner
            && c.runs_as == request.runs_as
            && c.shape_key == key
            && c.network_version == snapshot.network.version
    }) {
        return Decision::Warm(warm.id);
    }
    // With agents connected, executors go to the hosts with the most free cores; the master
    // (and the driver) stay on this host.
    let (local_executors, remote) = if snapshot.agents.is_empty() || snapshot.network.isolated {
        (shape.executors, Vec::new())
    } else {
        match spread(snapshot, &shape) {
            Ok(plan) => plan,
            Err(reason) => return Decision::Wait(reason),
        }
    };
    let reserved = cluster_needs(&snapshot.host, &shape, local_executors);
    let need = reserved.plus(request.driver);
    let host = &snapshot.host;
    let fits = |used: Amount| need.fits_with(used, host);
    let mut free = Vec::new();
    let mut used = snapshot.used;
    if !fits(used) {
        // Idle clusters only hold capacity for a warm start that may never come: give it to
        // work that is waiting now, oldest idle first, but only if that is enough.
        let mut idle: Vec<&ClusterSlot> = snapshot
            .clusters
            .iter()
            .filter(|c| c.state == ClusterState::Idle)
            .collect();
        idle.sort_by(|a, b| a.idle_since.cmp(&b.idle_since));
        let freeable = idle
            .iter()
            .fold(Amount::default(), |sum, c| sum.plus(c.reserved));
        if fits(used.minus(freeable)) {
            for cluster in idle {
                if fits(used) {
                    break;
                }
                free.push(cluster.id);
                used = used.minus(cluster.reserved);
            }
        }
    }
    if !fits(used) {
        return Decision::Wait(format!(
            "waiting for capacity: needs {} cores and {}; {} cores and {} free of {} cores and {}",
            need.cores,
            MemoryMb(need.memory_mb),
            host.schedulable_cores.saturating_sub(used.cores),
            MemoryMb(host.memory.0.saturating_sub(used.memory_mb)),
            host.schedulable_cores,
            host.memory,
        ));
    }
    Decision::New(NewCluster {
        shape,
        free,
        local_executors,
        remote,
        reserved,
    })
}

/// A memory amount as a signed number, saturating (sizes past `i64::MAX` MiB are never real).
fn signed(memory_mb: u64) -> i64 {
    i64::try_from(memory_mb).unwrap_or(i64::MAX)
}

/// Spreads a cluster's executors over connected agents and this host (unless configured
/// otherwise), each to the host with the most free cores that fits it.
fn spread(snapshot: &Snapshot, shape: &Shape) -> Result<(u32, Vec<(String, u32)>), String> {
    let host = &snapshot.host;
    // (name, free cores, free memory); `None` is this host.
    let mut hosts: Vec<(Option<&str>, i64, i64)> = Vec::new();
    if host.workers_on_server {
        hosts.push((
            None,
            i64::from(host.schedulable_cores) - i64::from(snapshot.used.cores),
            signed(host.memory.0)
                .saturating_sub(signed(snapshot.used.memory_mb))
                .saturating_sub(signed(host.daemons())),
        ));
    }
    hosts.extend(
        snapshot
            .agents
            .iter()
            .map(|a| (Some(a.name.as_str()), a.free_cores, a.free_memory_mb)),
    );
    let (cores, memory) = (
        i64::from(shape.executor_cores),
        signed(shape.executor_memory.0),
    );
    let mut local = 0;
    let mut remote: Vec<(String, u32)> = Vec::new();
    for _ in 0..shape.executors {
        // Among hosts with the same free cores the last wins: agents before this host.
        let Some(chosen) = hosts
            .iter_mut()
            .filter(|(_, c, m)| *c >= cores && *m >= memory)
            .max_by_key(|(_, c, _)| *c)
        else {
            let free: Vec<String> = hosts
                .iter()
                .map(|(name, c, m)| {
                    format!(
                        "{} {c} cores and {}",
                        name.unwrap_or("this host"),
                        MemoryMb((*m).max(0) as u64)
                    )
                })
                .collect();
            return Err(format!(
                "waiting for capacity: {} executors of {cores} cores and {} do not fit on the hosts (free: {})",
                shape.executors,
                shape.executor_memory,
                free.join(", ")
            ));
        };
        chosen.1 -= cores;
        chosen.2 -= memory;
        match chosen.0 {
            None => local += 1,
            Some(name) => match remote.iter_mut().find(|(n, _)| n == name) {
                Some((_, count)) => *count += 1,
                None => remote.push((name.to_string(), 1)),
            },
        }
    }
    Ok((local, remote))
}

impl Snapshot {
    /// Records a carried-out decision, so later requests of the same tick see what it took.
    /// `new_cluster` is the id the store gave a new cluster.
    pub fn apply(
        &mut self,
        request: &Request,
        decision: &Decision,
        new_cluster: Option<ClusterId>,
    ) {
        match decision {
            Decision::Wait(_) => {}
            Decision::Pool(_) => self.used = self.used.plus(request.driver),
            Decision::Warm(id) => {
                if let Some(cluster) = self.clusters.iter_mut().find(|c| c.id == *id) {
                    cluster.state = ClusterState::InUse;
                }
                self.used = self.used.plus(request.driver);
            }
            Decision::New(new) => {
                for id in &new.free {
                    if let Some(i) = self.clusters.iter().position(|c| c.id == *id) {
                        let freed = self.clusters.remove(i);
                        self.used = self.used.minus(freed.reserved);
                    }
                }
                self.used = self.used.plus(new.reserved).plus(request.driver);
                for (name, executors) in &new.remote {
                    if let Some(agent) = self.agents.iter_mut().find(|a| &a.name == name) {
                        agent.free_cores = agent.free_cores.saturating_sub(
                            i64::from(new.shape.executor_cores) * i64::from(*executors),
                        );
                        agent.free_memory_mb = agent.free_memory_mb.saturating_sub(signed(
                            new.shape
                                .executor_memory
                                .0
                                .saturating_mul(u64::from(*executors)),
                        ));
                    }
                }
                if let Some(id) = new_cluster {
                    self.clusters.push(ClusterSlot {
                        id,
                        owner: request.owner,
                        runs_as: request.runs_as.clone(),
                        shape_key: new.shape.key(),
                        state: ClusterState::Provisioning,
                        idle_since: None,
                        reserved: new.reserved,
                        network_version: self.network.version,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
