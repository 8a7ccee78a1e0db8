//! The consensus families of `/metrics`, from the node's [`NodeMetrics`].

use crate::node::metrics::NodeMetrics;
use std::sync::atomic::Ordering::Relaxed;
use telemetry::prometheus as prom;

pub fn render(out: &mut String, m: &NodeMetrics) {
    let seconds = [
        (
            "concierge_proposal_commit_duration_seconds",
            "From this node's driver taking a proposal to its slot being chosen.",
            &m.proposal_commit,
        ),
        (
            "concierge_commit_apply_duration_seconds",
            "From a chosen slot being handed to the apply thread to its being applied.",
            &m.commit_apply,
        ),
        (
            "concierge_disk_acceptor_log_persist_duration_seconds",
            "One group commit of the acceptor log (write and fdatasync of Paxos records).",
            &m.acceptor_persist,
        ),
        (
            "concierge_disk_acceptor_log_fsync_duration_seconds",
            "Each fdatasync of the acceptor log.",
            &*m.acceptor_fsync,
        ),
    ];
    for (name, help, histogram) in seconds {
        prom::histogram_family(
            out,
            name,
            help,
            &histogram.snapshot(),
            prom::NANOS_PER_SECOND,
        );
    }
    prom::histogram_family(
        out,
        "concierge_proposal_batch_commands",
        "Commands per chosen slot (0 for a no-op slot).",
        &m.batch_commands.snapshot(),
        prom::UNSCALED,
    );
    prom::counter(
        out,
        "concierge_leader_changes_seen_total",
        "Times this node saw a new leader.",
        m.leader_changes.load(Relaxed),
    );
    prom::counter(
        out,
        "concierge_commands_applied_total",
        "Commands this node applied since start.",
        m.commands_applied.load(Relaxed),
    );
}
