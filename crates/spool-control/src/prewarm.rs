//! What the pre-warmed pools need next (pure): which drivers no pool wants any more, and which
//! pool to fill. The pre-warm loop (`sessions::prewarm_loop`) reads what runs, asks `plan`, and
//! carries it out one driver per round, so that a pool never starts two drivers at once.

use spool_core::SessionId;
use spool_spec::SparkSizing;

use crate::config::PrewarmPool;

/// A live pre-warmed driver: its runtime and shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Held {
    pub id: SessionId,
    pub runtime: String,
    pub sizing: Option<SparkSizing>,
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct Plan {
    /// Drivers of a shape no pool has, or beyond their pool's size (the newest go first).
    pub retire: Vec<SessionId>,
    /// The pools with fewer drivers than their size, by index, in order (the loop starts a
    /// driver for the first whose runtime is installed and that fits now).
    pub fill: Vec<usize>,
}

/// Compares what runs (`held`, oldest first) with what the pools want.
pub(crate) fn plan(pools: &[PrewarmPool], held: &[Held]) -> Plan {
    let mut counts = vec![0u32; pools.len()];
    let mut plan = Plan::default();
    for driver in held {
        let pool = pools.iter().position(|pool| {
            pool.runtime == driver.runtime && driver.sizing.as_ref() == Some(&pool.sizing)
        });
        match pool {
            Some(i) if counts[i] < pools[i].size => counts[i] += 1,
            _ => plan.retire.push(driver.id),
        }
    }
    plan.retire.reverse();
    plan.fill = pools
        .iter()
        .zip(&counts)
        .enumerate()
        .filter(|(_, (pool, have))| **have < pool.size)
        .map(|(i, _)| i)
        .collect();
    plan
}

/// The pool a request of `runtime` and `sizing` takes a driver from, if any.
pub(crate) fn pool_for<'a>(
    pools: &'a [PrewarmPool],
    runtime: &str,
    sizing: &SparkSizing,
) -> Option<&'a PrewarmPool> {
    pools
        .iter()
        .find(|pool| pool.runtime == runtime && &pool.sizing == sizing)
}

#[cfg(test)]
mod tests {
    use spool_core::MemoryMb;

    use super::*;
    use crate::config::default_prewarm_sizing;

    fn big() -> SparkSizing {
        SparkSizing {
            executor_instances: 2,
            executor_memory: MemoryMb(2048),
            ..default_prewarm_sizing()
        }
    }

    fn pool(runtime: &str, sizing: SparkSizing, size: u32) -> PrewarmPool {
        PrewarmPool {
            runtime: runtime.into(),
            sizing,
            size,
        }
    }

    fn held(id: i64, runtime: &str, sizing: Option<SparkSizing>) -> Held {
        Held {
            id: SessionId(id),
            runtime: runtime.into(),
            sizing,
        }
    }

    #[test]
    fn pools_fill_in_order_and_drop_what_no_pool_wants() {
        let small = default_prewarm_sizing();
        let pools = [pool("3.4", small, 2), pool("3.5", big(), 1)];
        let cases: Vec<(&str, Vec<Held>, Plan)> = vec![
            (
                "empty: the first pool first",
                vec![],
                Plan {
                    retire: vec![],
                    fill: vec![0, 1],
                },
            ),
            (
                "the first full: the second",
                vec![held(1, "3.4", Some(small)), held(2, "3.4", Some(small))],
                Plan {
                    retire: vec![],
                    fill: vec![1],
                },
            ),
            (
                "all full",
                vec![
                    held(1, "3.4", Some(small)),
                    held(2, "3.5", Some(big())),
                    held(3, "3.4", Some(small)),
                ],
                Plan {
                    retire: vec![],
                    fill: vec![],
                },
            ),
            (
                "a shape no pool has (config changed), an unreadable sizing, and one too many",
                vec![
                    held(1, "3.4", Some(small)),
                    held(2, "4.3", Some(small)),
                    held(3, "3.4", None),
                    held(4, "3.4", Some(small)),
                    held(5, "3.4", Some(small)),
                    held(6, "3.5", Some(big())),
                ],
                Plan {
                    retire: vec![SessionId(5), SessionId(3), SessionId(2)],
                    fill: vec![],
                },
            ),
            (
                "the same shape on another runtime is another pool",
                vec![held(1, "3.5", Some(small))],
                Plan {
                    retire: vec![SessionId(1)],
                    fill: vec![0, 1],
                },
            ),
        ];
        for (what, held, expected) in cases {
            assert_eq!(plan(&pools, &held), expected, "{what}");
        }
        assert_eq!(
            plan(&[], &[held(1, "3.4", Some(small))]),
            Plan {
                retire: vec![SessionId(1)],
                fill: vec![]
            },
            "no pools: every driver goes"
        );
    }

    #[test]
    fn a_request_takes_only_its_own_shape() {
        let pools = [
            pool("3.4", default_prewarm_sizing(), 1),
            pool("3.5", big(), 1),
        ];
        assert_eq!(
            pool_for(&pools, "3.5", &big()).map(|p| p.runtime.as_str()),
            Some("3.5")
        );
        assert!(pool_for(&pools, "3.4", &big()).is_none());
        assert!(pool_for(&pools, "3.5", &default_prewarm_sizing()).is_none());
    }
}
