//! The packet filter of isolated clusters, written as nftables scripts: pure, from the
//! workspace's isolation mode, its outbound rules as resolved when a cluster starts, and the
//! addresses of the cluster subnet.
//!
//! Two scripts. Inside each cluster's namespace, an `output` chain decides what the cluster may
//! open: nothing in the cluster subnet but itself (no other cluster, not the host's end of its
//! veth), and beyond it everything (`allow_internet_outbound`) or only the rules
//! (`allow_only_approved_outbound`). Its processes have no capability to change it, and it goes
//! with the namespace. On the host, one table per server refuses every connection a cluster
//! opens to the host itself (so none of the host's services, the Spool API included, is
//! reachable from a cluster), refuses traffic from one cluster's veth to another's and from
//! outside into a cluster, and masquerades what leaves the host.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

use spool_spec::network::{IpDestination, IsolationMode};

/// The IPv4 block isolated clusters take their /30s from (`[network] cluster_subnet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterSubnet {
    base: Ipv4Addr,
    length: u8,
}

impl ClusterSubnet {
    /// The default, `10.213.0.0/16`: 16 384 clusters.
    pub const DEFAULT: ClusterSubnet = ClusterSubnet {
        base: Ipv4Addr::new(10, 213, 0, 0),
        length: 16,
    };

    /// Reads `a.b.c.d/n` with `n` from 8 to 28 and no host bits set.
    pub fn parse(text: &str) -> Result<ClusterSubnet, String> {
        let (address, length) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not an IPv4 block such as `10.213.0.0/16`"))?;
        let base: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("`{address}` is not an IPv4 address"))?;
        let length: u8 = length
            .parse()
            .ok()
            .filter(|l| (8..=28).contains(l))
            .ok_or_else(|| format!("`/{length}` is not a prefix length from 8 to 28"))?;
        let mask = u32::MAX << (32 - length);
        if u32::from(base) & !mask != 0 {
            return Err(format!(
                "host bits are set; the block is `{}/{length}`",
                Ipv4Addr::from(u32::from(base) & mask)
            ));
        }
        Ok(ClusterSubnet { base, length })
    }

    /// How many clusters it holds: one /30 each.
    pub fn slots(self) -> u32 {
        1 << (30 - u32::from(self.length))
    }

    /// The slot a cluster takes: its id modulo the number of slots (a collision with a live
    /// cluster's slot is refused by the store).
    pub fn slot_of(self, cluster_id: i64) -> u32 {
        (cluster_id.rem_euclid(i64::from(self.slots()))) as u32
    }

    /// The host's and the cluster's address in a slot (the first two of its /30).
    pub fn addresses(self, slot: u32) -> (Ipv4Addr, Ipv4Addr) {
        let first = u32::from(self.base) + slot * 4;
        (Ipv4Addr::from(first + 1), Ipv4Addr::from(first + 2))
    }
}

impl std::fmt::Display for ClusterSubnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.length)
    }
}

/// An outbound rule as applied: what it let through when the cluster started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// An `ip` rule, as written.
    Ip {
        rule: String,
        destination: IpDestination,
    },
    /// An `fqdn` rule's addresses (HTTP and HTTPS) or a private endpoint's (every port).
    Hosts {
        rule: String,
        addresses: Vec<IpAddr>,
        /// `None`: every port.
        tcp_ports: Option<Vec<u16>>,
    },
}

/// The ports `fqdn` rules open, as in Azure's managed networks.
pub const FQDN_PORTS: [u16; 2] = [80, 443];

/// The table inside a cluster's namespace.
pub const CLUSTER_TABLE: &str = "spool";

const REFUSE: &str = "reject with icmpx type admin-prohibited";

/// `ip daddr X` or `ip6 daddr X`.
fn daddr(prefix: &str) -> String {
    if prefix.contains(':') {
        format!("ip6 daddr {prefix}")
    } else {
        format!("ip daddr {prefix}")
    }
}

/// The nftables script run inside a cluster's namespace; it replaces whatever an earlier run
/// left (a refresh of `fqdn` addresses). `resolvers` are the DNS servers allowed when an `fqdn`
/// rule exists.
pub fn cluster_script(
    mode: IsolationMode,
    subnet: ClusterSubnet,
    allowed: &[Allowed],
    resolvers: &[IpAddr],
) -> String {
    let mut out = String::new();
    // Declaring and deleting first makes the whole script one atomic replacement.
    let _ = writeln!(out, "table inet {CLUSTER_TABLE}");
    let _ = writeln!(out, "delete table inet {CLUSTER_TABLE}");
    let _ = writeln!(out, "table inet {CLUSTER_TABLE} {{");
    let _ = writeln!(out, "  chain output {{");
    let _ = writeln!(
        out,
        "    type filter hook output priority filter; policy accept;"
    );
    let _ = writeln!(out, "    oifname \"lo\" accept");
    let _ = writeln!(out, "    ct state established,related accept");
    let _ = writeln!(
        out,
        "    ip daddr {subnet} {REFUSE} comment \"other clusters and the host\""
    );
    match mode {
        IsolationMode::Disabled | IsolationMode::AllowInternetOutbound => {
            let _ = writeln!(out, "    accept");
        }
        IsolationMode::AllowOnlyApprovedOutbound => {
            for allow in allowed {
                rule_lines(&mut out, allow);
            }
            let has_fqdn = allowed.iter().any(|a| {
                matches!(
                    a,
                    Allowed::Hosts {
                        tcp_ports: Some(_),
                        ..
                    }
                )
            });
            if has_fqdn {
                for resolver in resolvers {
                    let to = daddr(&resolver.to_string());
                    let _ = writeln!(
                        out,
                        "    {to} meta l4proto {{ tcp, udp }} th dport 53 accept comment \"DNS\""
                    );
                }
            }
            let _ = writeln!(out, "    {REFUSE}");
        }
    }
    let _ = writeln!(out, "  }}");
    let _ = writeln!(out, "}}");
    out
}

fn rule_lines(out: &mut String, allow: &Allowed) {
    match allow {
        Allowed::Ip { rule, destination } => {
            let to = daddr(&destination.address_prefix);
            let ports = destination.port_ranges.split(',').collect::<Vec<_>>();
            let ports = ports.join(", ");
            let proto = match destination.protocol.as_str() {
                "TCP" => "tcp dport".to_string(),
                "UDP" => "udp dport".to_string(),
                _ => "meta l4proto { tcp, udp } th dport".to_string(),
            };
            let _ = writeln!(
                out,
                "    {to} {proto} {{ {ports} }} accept comment \"{}\"",
                comment(rule)
            );
        }
        Allowed::Hosts {
            rule,
            addresses,
            tcp_ports,
        } => {
            for address in addresses {
                let to = daddr(&address.to_string());
                let ports = match tcp_ports {
                    Some(ports) => {
                        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
                        format!(" tcp dport {{ {} }}", list.join(", "))
                    }
                    None => String::new(),
                };
                let _ = writeln!(out, "    {to}{ports} accept comment \"{}\"", comment(rule));
            }
        }
    }
}

/// A rule name inside a quoted comment (names are letters, digits, `-`, `_`, `.`; anything
/// else is dropped so the script stays well-formed).
fn comment(rule: &str) -> String {
    rule.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect()
}

/// The host's table of one server: `veth_prefix` starts the names of its clusters' host-side
/// veths.
pub fn host_script(table: &str, veth_prefix: &str, subnet: ClusterSubnet) -> String {
    let cluster = format!("\"{veth_prefix}*\"");
    format!(
        "table inet {table}
delete table inet {table}
table inet {table} {{
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname {cluster} ct state established,related accept
    iifname {cluster} {REFUSE} comment \"the host's own services\"
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname {cluster} oifname {cluster} {REFUSE} comment \"between clusters\"
    oifname {cluster} ct state established,related accept
    oifname {cluster} drop comment \"into a cluster\"
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {subnet} oifname != {cluster} masquerade
  }}
}}
"
    )
}

/// The script that removes a server's host table (nothing when it is not there).
pub fn remove_host_script(table: &str) -> String {
    format!("table inet {table}\ndelete table inet {table}\n")
}

/// The IPv4 name servers of a `resolv.conf`, loopback ones left out (a namespace has its own
/// loopback, so they are unreachable from a cluster).
pub fn resolvers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<IpAddr>().ok())
        .filter(|address| !address.is_loopback())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn ip_rule(prefix: &str, protocol: &str, ports: &str) -> Allowed {
        Allowed::Ip {
            rule: "service-a".into(),
            destination: IpDestination {
                address_prefix: prefix.into(),
                protocol: protocol.into(),
                port_ranges: ports.into(),
            },
        }
    }

    #[test]
    fn subnets_are_read_and_sliced_into_slots() {
        let cases = [
            "10.213.0.0/16",
            "10.213.0.0/28",
            "10.213.0.0/29",
            "10.213.0.1/16",
            "10.213.0.0",
            "10.213.0.0/7",
            "fd00::/64",
        ];
        let mut out = String::new();
        for case in cases {
            match ClusterSubnet::parse(case) {
                Ok(subnet) => {
                    let (host, cluster) = subnet.addresses(subnet.slot_of(5));
                    let _ = writeln!(
                        out,
                        "{case}: {} slots; cluster 5 -> slot {} host {host} cluster {cluster}",
                        subnet.slots(),
                        subnet.slot_of(5)
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "{case}: error: {e}");
                }
            }
        }
        expect![[r#"
            10.213.0.0/16: 16384 slots; cluster 5 -> slot 5 host 10.213.0.21 cluster 10.213.0.22
            10.213.0.0/28: 4 slots; cluster 5 -> slot 1 host 10.213.0.5 cluster 10.213.0.6
            10.213.0.0/29: error: `/29` is not a prefix length from 8 to 28
            10.213.0.1/16: error: host bits are set; the block is `10.213.0.0/16`
            10.213.0.0: error: `10.213.0.0` is not an IPv4 block such as `10.213.0.0/16`
            10.213.0.0/7: error: `/7` is not a prefix length from 8 to 28
            fd00::/64: error: `fd00::` is not an IPv4 address
        "#]]
        .assert_eq(&out);
    }

    #[test]
    fn internet_outbound_refuses_only_the_cluster_subnet() {
        let script = cluster_script(
            IsolationMode::AllowInternetOutbound,
            ClusterSubnet::DEFAULT,
            &[ip_rule("10.0.0.0/24", "TCP", "80")],
            &[],
        );
        expect![[r#"
            table inet spool
            delete table inet spool
            table inet spool {
              chain output {
                type filter hook output priority filter; policy accept;
                oifname "lo" accept
                ct state established,related accept
                ip daddr 10.213.0.0/16 reject with icmpx type admin-prohibited comment "other clusters and the host"
                accept
              }
            }
        "#]]
        .assert_eq(&script);
    }

    #[test]
    fn approved_outbound_lets_through_only_the_rules() {
        let rules = [
            ip_rule("10.0.0.0/24", "TCP", "80,443,8000-8100"),
            ip_rule("10.0.1.7", "UDP", "53"),
            ip_rule("fd00::/64", "*", "9000"),
            Allowed::Hosts {
                rule: "pypi".into(),
                addresses: vec!["151.101.0.223".parse().unwrap()],
                tcp_ports: Some(FQDN_PORTS.to_vec()),
            },
            Allowed::Hosts {
                rule: "pool \"x\"".into(),
                addresses: vec!["10.9.0.4".parse().unwrap()],
                tcp_ports: None,
            },
        ];
        let script = cluster_script(
            IsolationMode::AllowOnlyApprovedOutbound,
            ClusterSubnet::DEFAULT,
            &rules,
            &["192.168.1.1".parse().unwrap()],
        );
        expect![[r#"
            table inet spool
            delete table inet spool
            table inet spool {
              chain output {
                type filter hook output priority filter; policy accept;
                oifname "lo" accept
                ct state established,related accept
                ip daddr 10.213.0.0/16 reject with icmpx type admin-prohibited comment "other clusters and the host"
                ip daddr 10.0.0.0/24 tcp dport { 80, 443, 8000-8100 } accept comment "service-a"
                ip daddr 10.0.1.7 udp dport { 53 } accept comment "service-a"
                ip6 daddr fd00::/64 meta l4proto { tcp, udp } th dport { 9000 } accept comment "service-a"
                ip daddr 151.101.0.223 tcp dport { 80, 443 } accept comment "pypi"
                ip daddr 10.9.0.4 accept comment "poolx"
                ip daddr 192.168.1.1 meta l4proto { tcp, udp } th dport 53 accept comment "DNS"
                reject with icmpx type admin-prohibited
              }
            }
        "#]]
        .assert_eq(&script);
    }

    #[test]
    fn approved_outbound_without_fqdn_rules_allows_no_dns() {
        let script = cluster_script(
            IsolationMode::AllowOnlyApprovedOutbound,
            ClusterSubnet::DEFAULT,
            &[],
            &["192.168.1.1".parse().unwrap()],
        );
        assert!(!script.contains("dport 53"), "{script}");
        assert!(
            script.trim_end().ends_with("admin-prohibited\n  }\n}"),
            "{script}"
        );
    }

    #[test]
    fn the_host_table_guards_the_host_and_other_clusters() {
        expect![[r#"
            table inet spool_1a2b3c4d
            delete table inet spool_1a2b3c4d
            table inet spool_1a2b3c4d {
              chain input {
                type filter hook input priority filter; policy accept;
                iifname "s1a2b3h*" ct state established,related accept
                iifname "s1a2b3h*" reject with icmpx type admin-prohibited comment "the host's own services"
              }
              chain forward {
                type filter hook forward priority filter; policy accept;
                iifname "s1a2b3h*" oifname "s1a2b3h*" reject with icmpx type admin-prohibited comment "between clusters"
                oifname "s1a2b3h*" ct state established,related accept
                oifname "s1a2b3h*" drop comment "into a cluster"
              }
              chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                ip saddr 10.213.0.0/16 oifname != "s1a2b3h*" masquerade
              }
            }
        "#]]
        .assert_eq(&host_script(
            "spool_1a2b3c4d",
            "s1a2b3h",
            ClusterSubnet::DEFAULT,
        ));
    }

    #[test]
    fn resolvers_leave_out_loopback_ones() {
        let conf = "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch x\nnameserver ::1\nnameserver fd00::1\n";
        assert_eq!(
            resolvers(conf),
            [
                "10.0.0.2".parse::<IpAddr>().unwrap(),
                "fd00::1".parse().unwrap()
            ]
        );
    }
}
