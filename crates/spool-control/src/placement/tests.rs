//! Placement decisions, case by case: each test builds a snapshot in a few lines and compares
//! the rendered decision.

use expect_test::{Expect, expect};

use super::*;

/// A 2-core, 8 GiB host with 4x oversubscription (8 schedulable cores) and 512 MiB daemons.
fn host() -> HostCapacity {
    HostCapacity {
        host_cores: 2,
        cpu_oversubscription: 4.0,
        schedulable_cores: 8,
        memory: MemoryMb(8192),
        daemon_memory: MemoryMb(512),
        workers_on_server: true,
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        host: host(),
        used: Amount::default(),
        clusters: Vec::new(),
        agents: Vec::new(),
        pools: BTreeMap::new(),
        network: NetworkNow::default(),
    }
}

/// `executors` executors of 1 core and 1 GiB, a 1-core 1 GiB driver.
fn sizing(executors: u32) -> SparkSizing {
    SparkSizing {
        driver_cores: 1,
        driver_memory: MemoryMb(1024),
        executor_cores: 1,
        executor_memory: MemoryMb(1024),
        executor_instances: executors,
        dynamic_allocation: None,
    }
}

fn request(owner: i64, executors: u32) -> Request {
    Request::new(UserId(owner), "serverless", "3.4", &sizing(executors))
        .running_as(&format!("user:{owner}"))
}

/// A cluster of `owner` shaped for `executors` 1-core 1 GiB executors, holding what such a
/// cluster reserves.
fn cluster(
    id: i64,
    owner: i64,
    executors: u32,
    state: ClusterState,
    idle_since: &str,
) -> ClusterSlot {
    let shape = Shape::of("3.4", &sizing(executors));
    ClusterSlot {
        id: ClusterId(id),
        owner: UserId(owner),
        runs_as: format!("user:{owner}"),
        shape_key: shape.key(),
        state,
        idle_since: (!idle_since.is_empty()).then(|| idle_since.to_string()),
        reserved: cluster_needs(&host(), &shape, executors),
        network_version: 0,
    }
}

/// Adds clusters to a snapshot, counting their reservations as used.
fn with_clusters(mut snapshot: Snapshot, clusters: Vec<ClusterSlot>) -> Snapshot {
    for c in clusters {
        snapshot.used = snapshot.used.plus(c.reserved);
        snapshot.clusters.push(c);
    }
    snapshot
}

fn agent(name: &str, free_cores: i64, free_memory_mb: i64) -> AgentSlot {
    AgentSlot {
        name: name.to_string(),
        free_cores,
        free_memory_mb,
    }
}

fn render(decision: &Decision) -> String {
    match decision {
        Decision::Warm(id) => format!("warm: cluster {id}"),
        Decision::Pool(id) => format!("pool: cluster {id}"),
        Decision::New(new) => {
            let mut text = format!(
                "new {}: {} executor(s) here, reserves {} cores and {}",
                new.shape.key(),
                new.local_executors,
                new.reserved.cores,
                MemoryMb(new.reserved.memory_mb)
            );
            for (agent, n) in &new.remote {
                text.push_str(&format!("; {n} on {agent}"));
            }
            if !new.free.is_empty() {
                let ids: Vec<String> = new.free.iter().map(|id| id.to_string()).collect();
                text.push_str(&format!("; frees idle {}", ids.join(", ")));
            }
            text
        }
        Decision::Wait(reason) => format!("wait: {reason}"),
    }
}

#[track_caller]
fn check(snapshot: &Snapshot, request: &Request, expect: Expect) {
    expect.assert_eq(&render(&decide(snapshot, request)));
}

#[test]
fn an_empty_host_starts_a_new_cluster() {
    check(
        &snapshot(),
        &request(1, 2),
        expect!["new 3.4/2x1c1g: 2 executor(s) here, reserves 2 cores and 3 GiB"],
    );
}

#[test]
fn an_idle_cluster_of_the_same_owner_and_shape_is_reused_warm() {
    let snapshot = with_clusters(
        snapshot(),
        vec![
            cluster(3, 2, 1, ClusterState::Idle, "2026-12-01T10:00:00Z"),
            cluster(4, 1, 2, ClusterState::Idle, "2026-12-01T10:00:00Z"),
            cluster(5, 1, 1, ClusterState::Idle, "2026-12-01T10:01:00Z"),
        ],
    );
    check(&snapshot, &request(1, 1), expect!["warm: cluster 5"]);
}

#[test]
fn an_idle_cluster_under_older_network_settings_is_not_reused() {
    let mut snapshot = with_clusters(
        snapshot(),
        vec![cluster(5, 1, 1, ClusterState::Idle, "2026-12-01T10:01:00Z")],
    );
    snapshot.network.version = 1;
    check(
        &snapshot,
        &request(1, 1),
        expect!["new 3.4/1x1c1g: 1 executor(s) here, reserves 1 cores and 2 GiB"],
    );
    snapshot.clusters[0].network_version = 1;
    check(&snapshot, &request(1, 1), expect!["warm: cluster 5"]);
}

#[test]
fn an_isolated_cluster_keeps_its_executors_on_this_host() {
    let mut snapshot = snapshot();
    snapshot.agents = vec![agent("a", 4, 8192), agent("b", 2, 8192)];
    snapshot.network.isolated = true;
    check(
        &snapshot,
        &request(1, 6),
        expect!["new 3.4/6x1c1g: 6 executor(s) here, reserves 6 cores and 7 GiB"],
    );
}

#[test]
fn another_owners_idle_cluster_is_not_reused() {
    let snapshot = with_clusters(
        snapshot(),
        vec![cluster(3, 2, 1, ClusterState::Idle, "2026-12-01T10:00:00Z")],
    );
    check(
        &snapshot,
        &request(1, 1),
        expect!["new 3.4/1x1c1g: 1 executor(s) here, reserves 1 cores and 2 GiB"],
    );
}

#[test]
fn a_cluster_running_as_another_principal_of_the_same_owner_is_not_reused() {
    // Alice's own cluster runs as her; her job acting as a managed identity must not share
    // its processes (and their OS account).
    let snapshot = with_clusters(
        snapshot(),
        vec![cluster(3, 1, 1, ClusterState::Idle, "2026-12-01T10:00:00Z")],
    );
    check(
        &snapshot,
        &request(1, 1).running_as("identity:etl-uai"),
        expect!["new 3.4/1x1c1g: 1 executor(s) here, reserves 1 cores and 2 GiB"],
    );
}

#[test]
fn a_busy_cluster_of_the_same_shape_is_never_reused() {
    let snapshot = with_clusters(
        snapshot(),
        vec![
            cluster(3, 1, 1, ClusterState::InUse, ""),
            cluster(4, 1, 1, ClusterState::Provisioning, ""),
        ],
    );
    check(
        &snapshot,
        &request(1, 1),
        expect!["new 3.4/1x1c1g: 1 executor(s) here, reserves 1 cores and 2 GiB"],
    );
}

#[test]
fn idle_clusters_of_others_are_freed_oldest_first_and_only_as_many_as_needed() {
    // Two idle 2-executor clusters of others hold 3 GiB each, a driver 1 GiB: 7 of 8 GiB used.
    // A 2-executor cluster and its driver need 4 GiB, so one idle cluster (the older) goes.
    let mut snapshot = with_clusters(
        snapshot(),
        vec![
            cluster(3, 2, 2, ClusterState::Idle, "2026-12-01T10:02:00Z"),
            cluster(4, 3, 2, ClusterState::Idle, "2026-12-01T10:00:00Z"),
        ],
    );
    snapshot.used.memory_mb += 1024; // a driver of other work
    check(
        &snapshot,
        &request(1, 2),
        expect!["new 3.4/2x1c1g: 2 executor(s) here, reserves 2 cores and 3 GiB; frees idle 4"],
    );
}

#[test]
fn busy_clusters_are_never_freed_and_the_wait_says_what_is_free() {
    let mut snapshot = with_clusters(
        snapshot(),
        vec![
            cluster(3, 2, 2, ClusterState::InUse, ""),
            cluster(4, 3, 2, ClusterState::Idle, "2026-12-01T10:00:00Z"),
        ],
    );
    // Two drivers running: 3g + 3g + 2g = 8g used.
    snapshot.used = snapshot.used.plus(Amount {
        cores: 2,
        memory_mb: 2048,
    });
    // Freeing the idle cluster gives 3g, but 2 executors + daemons + driver need 4g.
    check(
        &snapshot,
        &request(1, 2),
        expect![
            "wait: waiting for capacity: needs 3 cores and 4 GiB; 2 cores and 0 MiB free of 8 cores and 8 GiB"
        ],
    );
}

#[test]
fn cores_are_oversubscribed_but_memory_never_is() {
    // 6 executor cores + 1 driver core on a 2-core host: fits in 8 schedulable cores.
    let mut six_cores = sizing(1);
    six_cores.executor_cores = 6;
    check(
        &snapshot(),
        &Request::new(UserId(1), "serverless", "3.4", &six_cores),
        expect!["new 3.4/1x6c1g: 1 executor(s) here, reserves 6 cores and 2 GiB"],
    );
    // 7 executors of 1g + 1g of daemons + a 1g driver = 9g > 8g.
    check(
        &snapshot(),
        &request(1, 7),
        expect![
            "wait: waiting for capacity: needs 8 cores and 9 GiB; 8 cores and 8 GiB free of 8 cores and 8 GiB"
        ],
    );
}

#[test]
fn executors_spread_over_agents_by_free_cores() {
    let mut snapshot = snapshot();
    snapshot.agents = vec![agent("a", 4, 8192), agent("b", 2, 8192)];
    // Each executor goes to the host with the most free cores: this host (8) until it is
    // level with `a` (4), where the tie goes to the agent, then this host again.
    check(
        &snapshot,
        &request(1, 6),
        expect!["new 3.4/6x1c1g: 5 executor(s) here, reserves 5 cores and 6 GiB; 1 on a"],
    );
    // This host's cores are all taken: the agents have room for the executors, but the
    // driver runs here and does not fit.
    snapshot.used.cores = 8;
    check(
        &snapshot,
        &request(1, 3),
        expect![
            "wait: waiting for capacity: needs 1 cores and 2 GiB; 0 cores and 8 GiB free of 8 cores and 8 GiB"
        ],
    );
}

#[test]
fn with_workers_on_server_off_executors_go_to_agents_only() {
    let mut snapshot = snapshot();
    snapshot.host.workers_on_server = false;
    snapshot.agents = vec![agent("a", 2, 4096), agent("b", 2, 4096)];
    check(
        &snapshot,
        &request(1, 2),
        expect!["new 3.4/2x1c1g: 0 executor(s) here, reserves 0 cores and 1 GiB; 1 on b; 1 on a"],
    );
    check(
        &snapshot,
        &request(1, 5),
        expect![
            "wait: waiting for capacity: 5 executors of 1 cores and 1 GiB do not fit on the hosts (free: a 0 cores and 2 GiB, b 0 cores and 2 GiB)"
        ],
    );
}

#[test]
fn attached_pools_take_work_while_attached() {
    let mut snapshot = snapshot();
    snapshot.pools.insert("team-pool".into(), ClusterId(9));
    let on_pool = |name: &str| Request::new(UserId(1), name, "3.5", &sizing(4));
    check(&snapshot, &on_pool("team-pool"), expect!["pool: cluster 9"]);
    check(
        &snapshot,
        &on_pool("gone-pool"),
        expect!["wait: pool `gone-pool` is not attached any more"],
    );
}

#[test]
fn a_tick_sees_what_earlier_decisions_took() {
    let mut snapshot = snapshot();
    let first = request(1, 2);
    let decision = decide(&snapshot, &first);
    snapshot.apply(&first, &decision, Some(ClusterId(1)));
    assert_eq!(
        snapshot.used,
        Amount {
            cores: 3,
            memory_mb: 4096
        }
    );
    // The same request again must not reuse the cluster just started (it is provisioning, not
    // idle), and it still fits.
    let second = request(1, 2);
    let decision = decide(&snapshot, &second);
    check(
        &snapshot,
        &second,
        expect!["new 3.4/2x1c1g: 2 executor(s) here, reserves 2 cores and 3 GiB"],
    );
    snapshot.apply(&second, &decision, Some(ClusterId(2)));
    // A third does not fit any more: 8g are used.
    check(
        &snapshot,
        &request(1, 2),
        expect![
            "wait: waiting for capacity: needs 3 cores and 4 GiB; 2 cores and 0 MiB free of 8 cores and 8 GiB"
        ],
    );
    // A warm reuse marks the cluster busy, so a second request does not get it too.
    let mut snapshot = with_clusters(
        self::snapshot(),
        vec![cluster(7, 1, 1, ClusterState::Idle, "2026-12-01T10:00:00Z")],
    );
    let warm = request(1, 1);
    let decision = decide(&snapshot, &warm);
    assert_eq!(decision, Decision::Warm(ClusterId(7)));
    snapshot.apply(&warm, &decision, None);
    check(
        &snapshot,
        &warm,
        expect!["new 3.4/1x1c1g: 1 executor(s) here, reserves 1 cores and 2 GiB"],
    );
}

#[test]
fn work_that_can_never_fit_is_told_the_numbers() {
    assert_eq!(check_ever_fits(&host(), &sizing(2)), Ok(()));
    expect![[r#"
        the job needs 11 cores and 12 GiB (10 executors x 1 cores and 1 GiB, a driver with 1 cores and 1 GiB, and 1 GiB for the Spark master and worker), but this host can never give more than 8 cores (2 cores x 4 oversubscription) and 8 GiB
        hint: ask for fewer or smaller executors, or raise `capacity` in the server's config.toml"#]]
    .assert_eq(&check_ever_fits(&host(), &sizing(10)).unwrap_err());
}

#[test]
fn fits_now_counts_a_cluster_its_daemons_and_its_driver() {
    // 1 executor of 1g + 1g of daemons + a 1g driver = 3g and 2 cores.
    let used = |cores, memory_mb| Amount { cores, memory_mb };
    assert!(fits_now(&host(), used(6, 5120), &sizing(1)));
    assert!(!fits_now(&host(), used(7, 0), &sizing(1)));
    assert!(!fits_now(&host(), used(0, 5121), &sizing(1)));
}

/// Regression (issue 11, finding 7): `executor_cores: 4294967295` times two executors wrapped to
/// a small number of cores (or panicked in debug builds); sums saturate, so it never fits.
#[test]
fn absurd_sizes_never_fit_and_never_wrap() {
    let huge = SparkSizing {
        executor_cores: u32::MAX,
        executor_memory: MemoryMb(u64::MAX / 2),
        ..sizing(2)
    };
    assert!(check_ever_fits(&host(), &huge).is_err());
    assert!(!fits_now(&host(), Amount::default(), &huge));
    let request = Request::new(UserId(1), "serverless", "3.4", &huge);
    check(
        &snapshot(),
        &request,
        expect![
            "wait: waiting for capacity: needs 4294967295 cores and 18014398509481984.0 GiB; 8 cores and 8 GiB free of 8 cores and 8 GiB"
        ],
    );
    let with_agent = Snapshot {
        agents: vec![agent("a1", 16, 65536)],
        ..snapshot()
    };
    check(
        &with_agent,
        &request,
        expect![
            "wait: waiting for capacity: 2 executors of 4294967295 cores and 9007199254740992.0 GiB do not fit on the hosts (free: this host 8 cores and 7 GiB, a1 16 cores and 64 GiB)"
        ],
    );
}
