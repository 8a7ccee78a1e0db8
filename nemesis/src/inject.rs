//! Applies a planned round of faults (`faults.rs`) to the processes and the firewall,
//! and heals them. Invariant: after [`heal_all`] every member runs unpaused and the
//! firewall chain is empty.

use crate::cluster::Cluster;
use crate::faults::Fault;
use crate::firewall::Firewall;

/// Applies the faults of a round.
pub fn inject(
    cluster: &mut Cluster,
    fw: Option<&Firewall>,
    faults: &[Fault],
) -> Result<(), String> {
    for f in faults {
        match f {
            Fault::Kill { nodes, .. } => nodes.iter().for_each(|&i| cluster.kill(i)),
            Fault::Stop { nodes, .. } => {
                for &i in nodes {
                    cluster.pause(i)?;
                }
            }
            Fault::Partition { groups, .. } => {
                let Some(fw) = fw else {
                    return Err("partition planned without a firewall".into());
                };
                for (gi, g) in groups.iter().enumerate() {
                    for (hi, h) in groups.iter().enumerate() {
                        if gi == hi {
                            continue;
                        }
                        for &a in g {
                            let uid = cluster
                                .nodes
                                .get(a)
                                .and_then(|n| n.account.as_ref())
                                .map(|acc| acc.uid)
                                .ok_or("partition without per-node users")?;
                            let ports: Vec<u16> = h
                                .iter()
                                .filter_map(|&b| cluster.nodes.get(b))
                                .flat_map(|n| [n.peer_port, n.client_port])
                                .collect();
                            fw.cut(uid, &ports)?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Heals everything: partitions dropped, paused nodes resumed, dead members restarted
/// (a retired slot, removed or with its disk lost, stays down).
pub fn heal_all(cluster: &mut Cluster, fw: Option<&Firewall>) -> Result<(), String> {
    if let Some(fw) = fw {
        fw.heal()?;
    }
    for i in 0..cluster.nodes.len() {
        cluster.resume(i)?;
    }
    for i in cluster.members() {
        cluster.start(i)?;
    }
    Ok(())
}
