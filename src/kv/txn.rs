//! Applying transactions: compare, then one branch, all-or-nothing at one revision.
//!
//! Every op of the branch sees the writes of the ops before it (they share the slot's
//! overlay) and all writes get the same revision (the revision bumps once, when the
//! command finishes). If an op fails (a put into a session that does not exist), the
//! overlay, events and lease effects roll back to before the transaction and the
//! failure is the answer: nothing of it is applied.

use crate::kv::command::{Compare, CompareTarget, TxnOp};
use crate::kv::ctx::Ctx;
use crate::kv::error::KvError;
use crate::kv::keys::{apply_delete_key, apply_put};
use crate::kv::outcome::{Outcome, TxnResult};

fn holds(ctx: &Ctx<'_>, compare: &Compare) -> Result<bool, KvError> {
    let record = ctx.read_key(&compare.key)?;
    Ok(match &compare.target {
        CompareTarget::Version(v) => record.as_ref().map_or(0, |r| r.version) == *v,
        CompareTarget::Exists(e) => record.is_some() == *e,
        CompareTarget::Value(v) => record.is_some_and(|r| r.value == *v),
    })
}

pub(crate) fn apply_txn(
    ctx: &mut Ctx<'_>,
    compares: Vec<Compare>,
    success: Vec<TxnOp>,
    failure: Vec<TxnOp>,
) -> Result<Outcome, KvError> {
    let mut succeeded = true;
    for c in &compares {
        if !holds(ctx, c)? {
            succeeded = false;
            break;
        }
    }
    let branch = if succeeded { success } else { failure };
    let mark = ctx.overlay.mark();
    let (events_len, effects_len) = (ctx.events.len(), ctx.lease_effects.len());
    let mut results = Vec::with_capacity(branch.len());
    for op in branch {
        let result = match op {
            TxnOp::Put {
                key,
                value,
                session,
            } => match apply_put(ctx, key, value, None, session)? {
                Outcome::Put { entry, created } => TxnResult::Put { entry, created },
                failed => {
                    ctx.overlay.rollback(mark);
                    ctx.events.truncate(events_len);
                    ctx.lease_effects.truncate(effects_len);
                    return Ok(failed);
                }
            },
            TxnOp::Delete { key } => TxnResult::Deleted {
                count: apply_delete_key(ctx, &key)?,
            },
            TxnOp::Get { key } => TxnResult::Get(ctx.read_key(&key)?.map(|r| (key, r))),
        };
        results.push(result);
    }
    Ok(Outcome::Txn { succeeded, results })
}
