//! One readable trace line per consensus message.

use concierge::paxos::{Message, Value};

use super::checker::show;

/// One readable line per message.
pub fn describe(msg: &Message) -> String {
    match msg {
        Message::Heartbeat {
            leading,
            commit,
            read_round,
        } => match leading {
            Some(b) => format!("heartbeat leader {b} commit {commit} read-round {read_round}"),
            None => format!("heartbeat commit {commit}"),
        },
        Message::HeartbeatAck { ballot, read_round } => {
            format!("heartbeat-ack {ballot} round {read_round}")
        }
        Message::Prepare { ballot, from } => format!("prepare {ballot} from slot {from}"),
        Message::Promise {
            ballot,
            from,
            through,
            accepted,
            compacted_through,
        } => {
            let acc: Vec<String> = accepted
                .iter()
                .map(|(s, b, v)| format!("{s}@{b}={}", show(v)))
                .collect();
            format!(
                "promise {ballot} from {from} through {through:?} compacted {compacted_through} \
                 accepted {{{}}}",
                acc.join(", ")
            )
        }
        Message::Accept {
            ballot,
            slot,
            value,
            commit,
        } => {
            format!(
                "accept {ballot} slot {slot} {} commit {commit}",
                show(value)
            )
        }
        Message::Accepted { ballot, slot } => format!("accepted {ballot} slot {slot}"),
        Message::Nack { ballot, promised } => format!("nack {ballot} promised {promised}"),
        Message::AcceptCompacted {
            ballot,
            compacted_through,
        } => {
            format!("accept-compacted {ballot} through {compacted_through}")
        }
        Message::Forward { commands } => {
            format!("forward {}", show(&Value::Batch(commands.clone())))
        }
        Message::Refused { commands } => {
            format!("refused {}", show(&Value::Batch(commands.clone())))
        }
        Message::PreVote { ballot, commit } => format!("pre-vote {ballot} commit {commit}"),
        Message::PreVoteReply { ballot, granted } => {
            format!("pre-vote-reply {ballot} granted {granted}")
        }
        Message::ReadIndex { incarnation, id } => format!("read-index #{id} of {incarnation:x}"),
        Message::ReadIndexReply {
            incarnation,
            id,
            index,
        } => format!("read-index-reply #{id} of {incarnation:x} {index:?}"),
        Message::CatchUp { from, to } => format!("catch-up {from}..={to}"),
        Message::Commit { ballot, commit } => format!("commit {ballot} through {commit}"),
        Message::CatchUpReply { entries, commit } => {
            let first = entries.first().map_or(0, |e| e.0);
            format!(
                "catch-up-reply {} entries from {first} commit {commit}",
                entries.len()
            )
        }
    }
}
