//! `concierge lock NAME -- CMD ARGS...`: runs CMD while holding the lock NAME (the
//! client crate's lock recipe, over a session this process keeps alive), like
//! `consul lock`.
//!
//! Invariants: CMD starts only once the lock is held, and runs only while it is: when
//! the session is lost (expired, or no keepalive acknowledged for a whole TTL, which is
//! before the server could expire it), CMD is killed (SIGKILL) and the command exits 1.
//! Otherwise it exits with CMD's code (128 + N if a signal N ended CMD), after
//! releasing the lock. SIGINT/SIGTERM kill CMD, release the lock and exit 130/143.
//! CMD gets the fencing token in `CONCIERGE_LOCK_TOKEN` and its key in
//! `CONCIERGE_LOCK_KEY`.

use super::conn::Conn;
use super::exit::Failure;
use super::signals::{signal_code, StopSignals};
use clap::Args;
use concierge_client::{Error, LockGuard, SessionLoss};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::Command;

/// `concierge lock NAME -- CMD ARGS...`
#[derive(Args, Debug)]
pub struct LockArgs {
    /// The lock's name (its waiters are the keys NAME/<sequence>).
    pub name: String,
    /// The session's time to live in seconds (1..=300): how long the lock outlives this
    /// process if it dies without releasing it.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub ttl: f64,
    #[command(flatten)]
    pub conn: Conn,
    /// The command to run while holding the lock, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c).unwrap_or(255),
        (None, Some(s)) => signal_code(s),
        (None, None) => 255,
    }
}

enum Waited {
    Held(Result<LockGuard, Error>),
    Stopped(u8),
}

enum Ended {
    Exited(std::io::Result<ExitStatus>),
    Lost(SessionLoss),
    Stopped(u8),
}

pub async fn lock(args: LockArgs) -> Result<u8, Failure> {
    let Some((program, program_args)) = args.command.split_first() else {
        return Err(Failure::usage("no command given after --"));
    };
    let ttl = Duration::try_from_secs_f64(args.ttl)
        .map_err(|_| Failure::usage(format!("--ttl {}: not a duration", args.ttl)))?;
    let mut stop = StopSignals::listen()?;
    let client = args.conn.client()?;
    let session = client.session(ttl).await?;
    let waited = tokio::select! {
        g = client.lock(&session, &args.name) => Waited::Held(g),
        code = stop.next() => Waited::Stopped(code),
    };
    let guard = match waited {
        Waited::Held(Ok(g)) => g,
        Waited::Held(Err(e)) => {
            // Closing the session deletes the waiter key, if any is left.
            let _ = session.close().await;
            return Err(e.into());
        }
        Waited::Stopped(code) => {
            let _ = session.close().await;
            eprintln!(
                "concierge: interrupted while waiting for the lock {:?}",
                args.name
            );
            return Ok(code);
        }
    };
    let spawned = Command::new(program)
        .args(program_args)
        .env("CONCIERGE_LOCK_KEY", guard.key())
        .env("CONCIERGE_LOCK_TOKEN", guard.token().to_string())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            release(guard, session).await;
            return Err(Failure::error(format!("starting {program:?}: {e}")));
        }
    };
    let ended = tokio::select! {
        biased;
        loss = guard.lost() => Ended::Lost(loss),
        code = stop.next() => Ended::Stopped(code),
        status = child.wait() => Ended::Exited(status),
    };
    match ended {
        Ended::Lost(loss) => {
            // The lock may pass to another holder at any moment: stop CMD at once.
            let killed = child.kill().await;
            drop(guard);
            drop(session);
            let how = match killed {
                Ok(()) => "killed it".to_string(),
                Err(e) => format!("could not kill it: {e}"),
            };
            Err(Failure::error(format!(
                "the lock {:?} was lost while {program:?} ran ({loss:?}); {how}",
                args.name
            )))
        }
        Ended::Stopped(code) => {
            let _ = child.kill().await;
            release(guard, session).await;
            Ok(code)
        }
        Ended::Exited(status) => {
            release(guard, session).await;
            let status =
                status.map_err(|e| Failure::error(format!("waiting for {program:?}: {e}")))?;
            Ok(exit_code(status))
        }
    }
}

/// Releases the lock and closes its session; a failure is reported, not fatal (the
/// session's end releases what is left).
async fn release(guard: LockGuard, session: concierge_client::Session) {
    if let Err(e) = guard.unlock().await {
        eprintln!("concierge: releasing the lock: {e}");
    }
    if let Err(e) = session.close().await {
        eprintln!("concierge: closing the lock's session: {e}");
    }
}
