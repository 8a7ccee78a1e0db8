//! Throughput of the paxos core alone: 3 cores in one thread, a perfect in-memory network,
//! no disk (persist records are dropped), one client stream of small commands at the
//! leader. Compares batching + pipelining against one command per slot, one slot in flight.
//!
//! `cargo bench --bench paxos_throughput` (PAXOS_BENCH_COMMANDS=N to change the stream).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use concierge::paxos::{Config, Core, DurableState, Message, NodeId, ProposeError};

const NODES: u32 = 3;
const COMMAND_BYTES: usize = 16;

struct Run {
    commands: u64,
    slots: u64,
    elapsed: Duration,
}

fn cluster(batch_commands_max: usize, window_slots_max: u64) -> Vec<Core> {
    (1..=NODES)
        .map(|id| {
            let mut c = Config::new(id, (1..=NODES).collect());
            c.batch_commands_max = batch_commands_max;
            c.batch_bytes_max = batch_commands_max * COMMAND_BYTES;
            c.window_slots_max = window_slots_max;
            c.proposals_queued_max = 8192;
            let first = c.genesis();
            Core::new(c, DurableState::default(), first, u64::from(id))
        })
        .collect()
}

/// Runs Readys and messages until the cluster is quiet; returns commands delivered at `leader`.
fn pump(
    cores: &mut [Core],
    net: &mut VecDeque<(NodeId, NodeId, Message)>,
    leader: usize,
) -> (u64, u64) {
    let (mut commands, mut slots) = (0, 0);
    loop {
        for (i, core) in cores.iter_mut().enumerate() {
            if core.has_ready() {
                let r = core.ready();
                if i == leader {
                    slots += r.deliver.len() as u64;
                    commands += r
                        .deliver
                        .iter()
                        .map(|(_, v)| v.commands() as u64)
                        .sum::<u64>();
                }
                let from = i as NodeId + 1;
                net.extend(r.send.into_iter().map(|(to, m)| (from, to, m)));
            }
        }
        if net.is_empty() {
            return (commands, slots);
        }
        while let Some((from, to, m)) = net.pop_front() {
            cores[to as usize - 1].step(from, m);
        }
    }
}

fn run(total: u64, batch_commands_max: usize, window_slots_max: u64) -> Run {
    let mut cores = cluster(batch_commands_max, window_slots_max);
    let mut net = VecDeque::new();
    let leader = loop {
        cores.iter_mut().for_each(Core::tick);
        pump(&mut cores, &mut net, 0);
        if let Some(i) = cores.iter().position(|c| c.status().is_leader) {
            break i;
        }
    };
    let payload = Bytes::from(vec![7u8; COMMAND_BYTES]);
    let (mut proposed, mut delivered, mut slots) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    while delivered < total {
        while proposed < total {
            match cores[leader].propose(payload.clone()) {
                Ok(()) => proposed += 1,
                Err(ProposeError::Busy) => break,
                Err(e) => panic!("leader refused a proposal: {e}"),
            }
        }
        let (c, s) = pump(&mut cores, &mut net, leader);
        delivered += c;
        slots += s;
        if slots % 4096 < s.max(1) {
            // The state machine "holds" everything delivered: let the cores forget it.
            for core in cores.iter_mut() {
                let through = core.status().delivered_index;
                core.compact(through);
            }
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(delivered, total);
    Run {
        commands: delivered,
        slots,
        elapsed,
    }
}

fn report(name: &str, r: &Run) {
    let secs = r.elapsed.as_secs_f64();
    println!(
        "{name:<36} {:>9} commands in {:>7} slots, {:>7.3} s: {:>12.0} commands/s ({:.1} commands/slot)",
        r.commands,
        r.slots,
        secs,
        r.commands as f64 / secs,
        r.commands as f64 / r.slots as f64
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries with no `--bench`: keep that run short.
    let benching = std::env::args().any(|a| a == "--bench");
    let default = if benching { 1_000_000 } else { 10_000 };
    let total: u64 = std::env::var("PAXOS_BENCH_COMMANDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    println!("paxos core, {NODES} nodes, perfect network, no disk, {COMMAND_BYTES}-byte commands");
    let fast = run(total, 512, 64);
    report("batch 512, window 64", &fast);
    let slow_total = (total / 5).max(1);
    let slow = run(slow_total, 1, 1);
    report("batch 1, window 1", &slow);
    let speedup = (fast.commands as f64 / fast.elapsed.as_secs_f64())
        / (slow.commands as f64 / slow.elapsed.as_secs_f64());
    println!("batching + pipelining: {speedup:.1}x the commands per second");
}
