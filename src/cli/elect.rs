//! `concierge elect NAME`: the client crate's election recipe from the shell.
//! `--value V` campaigns with V and leads until interrupted (then resigns) or until its
//! session is lost; without it, prints who leads, and with `--observe` every change.
//!
//! Invariants: "elected" is printed only once this candidate's key is first of the
//! queue; a lost session ends the command with exit 1 at once (no later than the server
//! could expire the session), so a script that stops when this command exits never
//! leads beside its successor. SIGINT/SIGTERM resign and exit 130/143.

use super::conn::Conn;
use super::exit::{Failure, NOT_FOUND, OK};
use super::output;
use super::signals::StopSignals;
use clap::Args;
use concierge_client::{Client, Leader};
use serde_json::{json, Value};
use std::time::Duration;

/// `concierge elect NAME [--value V | --observe]`
#[derive(Args, Debug)]
#[command(about = "Campaign in an election and lead until interrupted, or show its leader")]
pub struct ElectArgs {
    /// The election's name (its candidates are the keys NAME/<sequence>).
    pub name: String,
    /// Campaign with this value and lead until interrupted (resigning) or the session
    /// is lost (exit 1).
    #[arg(long, conflicts_with = "observe")]
    pub value: Option<String>,
    /// Print the leader, then every change of leader, until interrupted.
    #[arg(long)]
    pub observe: bool,
    /// With --observe: stop after N lines.
    #[arg(long, requires = "observe", value_name = "N")]
    pub count: Option<u64>,
    /// The campaign's session time to live in seconds (1..=300): how long the
    /// leadership outlives this process if it dies without resigning.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub ttl: f64,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn elect(args: ElectArgs) -> Result<u8, Failure> {
    let client = args.conn.client()?;
    match &args.value {
        Some(value) => campaign(&client, &args, value.clone()).await,
        None if args.observe => observe(&client, &args).await,
        None => match client.leader(&args.name).await? {
            Some(l) => {
                print_leader(&args, Some(&l))?;
                Ok(OK)
            }
            None => Err(Failure::new(
                NOT_FOUND,
                format!("the election {:?} has no leader", args.name),
            )),
        },
    }
}

/// Prints a leader: `KEY token T VALUE`, or `no leader`; in JSON its key, value and
/// token (all null when nobody leads).
fn print_leader(args: &ElectArgs, leader: Option<&Leader>) -> Result<(), Failure> {
    if args.conn.json {
        let (text, b64) = output::value_fields(leader.map(|l| &l.value[..]));
        output::json_line(&json!({
            "name": args.name,
            "key": leader.map(|l| l.key.clone()),
            "value": text,
            "value_base64": b64,
            "token": leader.map_or(Value::Null, |l| Value::from(l.token)),
        }))
    } else {
        match leader {
            Some(l) => output::line(&format!(
                "{} token {} {}",
                l.key,
                l.token,
                output::cell(Some(&l.value), 60)
            )),
            None => output::line("no leader"),
        }
    }
}

async fn observe(client: &Client, args: &ElectArgs) -> Result<u8, Failure> {
    let mut observer = client.observe(&args.name).await?;
    let mut printed = 0u64;
    let mut leader = observer.current().cloned();
    loop {
        if args.count.is_some_and(|n| printed >= n) {
            return Ok(OK);
        }
        print_leader(args, leader.as_ref())?;
        printed += 1;
        leader = observer.changed().await?;
    }
}

async fn campaign(client: &Client, args: &ElectArgs, value: String) -> Result<u8, Failure> {
    let ttl = Duration::try_from_secs_f64(args.ttl)
        .map_err(|_| Failure::usage(format!("--ttl {}: not a duration", args.ttl)))?;
    let mut stop = StopSignals::listen()?;
    let session = client.session(ttl).await?;
    let campaigned = tokio::select! {
        l = client.campaign(&session, &args.name, value.clone()) => Ok(l),
        code = stop.next() => Err(code),
    };
    let leading = match campaigned {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            // Closing the session deletes the candidate key, if any is left.
            let _ = session.close().await;
            return Err(e.into());
        }
        Err(code) => {
            let _ = session.close().await;
            eprintln!(
                "concierge: interrupted while campaigning in {:?}",
                args.name
            );
            return Ok(code);
        }
    };
    if args.conn.json {
        output::json_line(&json!({
            "name": args.name,
            "key": leading.key(),
            "value": value,
            "token": leading.token(),
        }))?;
    } else {
        output::line(&format!(
            "elected {} key {} token {}",
            args.name,
            leading.key(),
            leading.token()
        ))?;
    }
    tokio::select! {
        biased;
        loss = leading.lost() => {
            drop(leading);
            drop(session);
            Err(Failure::error(format!(
                "the leadership of {:?} was lost ({loss:?})",
                args.name
            )))
        }
        code = stop.next() => {
            if let Err(e) = leading.resign().await {
                eprintln!("concierge: resigning: {e}");
            }
            if let Err(e) = session.close().await {
                eprintln!("concierge: closing the campaign's session: {e}");
            }
            Ok(code)
        }
    }
}
