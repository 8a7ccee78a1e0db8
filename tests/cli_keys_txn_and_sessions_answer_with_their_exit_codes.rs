//! The command-line client against a real one-node cluster, as a process: put, get
//! and del round trip with the exit codes of docs/cli.md (3 not found, 4 condition
//! failed, 2 usage), values from an argument, stdin and a file, `--json` that parses,
//! the `ls` table, `watch` from a revision, `compact`, a transaction from a JSON file (exit 4 when its else branch ran),
//! and sessions created, listed and closed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

/// One run of the CLI: exit code, stdout, stderr.
struct Run {
    code: i32,
    out: String,
    err: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} / {:?}", self.out, self.err))
    }
}

/// Runs `concierge ARGS` against node 0 of `c`, feeding `stdin`.
fn cli(c: &Cluster, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_concierge"))
        .args(args)
        .env(
            "CONCIERGE_ENDPOINTS",
            format!("127.0.0.1:{}", c.nodes[0].client_port),
        )
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().expect("exited, not killed"),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "stdout {:?} stderr {:?}", run.out, run.err);
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_del_round_trip_with_exit_codes() {
    let c = Cluster::start(1, "cli-keys").await;

    // Values from an argument, stdin and a file; `get` prints the bytes exactly.
    let r = ok(cli(&c, &["put", "app/a", "one"], b""));
    assert_eq!(r.out, "created app/a version 1 revision 1\n");
    assert_eq!(ok(cli(&c, &["get", "app/a"], b"")).out, "one");
    ok(cli(&c, &["put", "app/b", "-"], b"from\nstdin\xff"));
    let got = std::process::Command::new(env!("CARGO_BIN_EXE_concierge"))
        .args(["get", "app/b"])
        .env(
            "CONCIERGE_ENDPOINTS",
            format!("127.0.0.1:{}", c.nodes[0].client_port),
        )
        .output()
        .unwrap();
    assert_eq!(got.stdout, b"from\nstdin\xff");
    let file = c.root.join("value.bin");
    std::fs::write(&file, b"from a file").unwrap();
    let r = ok(cli(
        &c,
        &["put", "app/c", "--file", file.to_str().unwrap(), "--json"],
        b"",
    ));
    let put = r.json();
    assert_eq!(put["key"], "app/c");
    assert_eq!(put["created"], true);
    assert_eq!(put["version"], 1);

    // --json of get: metadata, the value as text and as base64.
    let kv = ok(cli(&c, &["get", "app/c", "--json"], b"")).json();
    assert_eq!(kv["value"], "from a file");
    assert_eq!(kv["value_base64"], "ZnJvbSBhIGZpbGU=");
    assert_eq!(kv["version"], 1);
    let kv_b = ok(cli(&c, &["get", "app/b", "--json"], b"")).json();
    assert_eq!(kv_b["value"], Value::Null, "not UTF-8: no text");

    // Not found is 3, for get and del; a failed condition is 4 and changes nothing.
    let r = cli(&c, &["get", "app/none"], b"");
    assert_eq!((r.code, r.out.as_str()), (3, ""), "{}", r.err);
    assert!(r.err.contains("not found"), "{}", r.err);
    assert_eq!(cli(&c, &["del", "app/none"], b"").code, 3);
    let r = cli(&c, &["put", "app/a", "two", "--version", "7"], b"");
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(r.err.contains("current version is 1"), "{}", r.err);
    assert_eq!(
        cli(&c, &["put", "app/a", "x", "--version", "0"], b"").code,
        4
    );
    assert_eq!(cli(&c, &["del", "app/a", "--version", "9"], b"").code, 4);
    assert_eq!(ok(cli(&c, &["get", "app/a"], b"")).out, "one");
    ok(cli(&c, &["put", "app/a", "two", "--version", "1"], b""));
    assert_eq!(ok(cli(&c, &["get", "app/a"], b"")).out, "two");

    // Usage errors are 2: no value, two values, an unknown flag.
    assert_eq!(cli(&c, &["put", "app/d"], b"").code, 2);
    assert_eq!(cli(&c, &["put", "app/d", "v", "--file", "f"], b"").code, 2);
    assert_eq!(cli(&c, &["get", "app/a", "--bogus"], b"").code, 2);
    // A node that is not there is 1.
    let r = cli(
        &c,
        &[
            "get",
            "app/a",
            "--endpoints",
            "127.0.0.1:1",
            "--timeout",
            "2",
        ],
        b"",
    );
    assert_eq!(r.code, 1, "{}", r.err);

    // The ls table: a header and one aligned row per key, values shortened.
    let r = ok(cli(&c, &["ls", "app/"], b""));
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 4, "{}", r.out);
    assert_eq!(
        lines[0], "KEY    VERSION  CREATED  MODIFIED  SESSION  VALUE",
        "{}",
        r.out
    );
    assert_eq!(lines[1], "app/a  2        1        4                  two");
    assert!(
        lines[2].starts_with("app/b  1 ") && lines[2].ends_with("<11 bytes>"),
        "{}",
        r.out
    );
    assert!(lines[3].ends_with("from a file"), "{}", r.out);
    let list = ok(cli(&c, &["ls", "app/", "--json"], b"")).json();
    let keys: Vec<&str> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["app/a", "app/b", "app/c"]);

    // watch from a revision: the history so far, one JSON event per line, in order.
    let r = ok(cli(
        &c,
        &[
            "watch",
            "--prefix",
            "app/",
            "--from-revision",
            "1",
            "--count",
            "4",
            "--json",
        ],
        b"",
    ));
    let events: Vec<Value> = r
        .out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(&str, u64)> = events
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap(),
                e["mod_revision"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("app/a", 1), ("app/b", 2), ("app/c", 3), ("app/a", 4)]
    );
    assert_eq!(events[3]["value"], "two");
    let r = ok(cli(
        &c,
        &["watch", "app/a", "--from-revision", "1", "--count", "1"],
        b"",
    ));
    assert_eq!(r.out, "1 PUT app/a one\n");

    // compact: history keeps revision 3 and above; a watch from below it is refused,
    // compacting again below that is refused, and `cluster` reports where history starts.
    let r = ok(cli(&c, &["compact", "3", "--json"], b"")).json();
    assert_eq!(r["compact_revision"], 2);
    assert_eq!(r["revision"], 4);
    let r = cli(
        &c,
        &["watch", "app/a", "--from-revision", "1", "--count", "1"],
        b"",
    );
    assert_eq!(r.code, 4, "{} / {}", r.out, r.err);
    let r = ok(cli(
        &c,
        &["watch", "app/a", "--from-revision", "3", "--count", "1"],
        b"",
    ));
    assert_eq!(r.out, "4 PUT app/a two\n");
    assert_eq!(cli(&c, &["compact", "2"], b"").code, 1);
    let status = ok(cli(&c, &["cluster", "--json"], b"")).json();
    assert_eq!(status["compact_revision"], 2);
    assert!(status["db_size_bytes"].as_u64().unwrap() > 0);
    assert!(status["live_bytes"].as_u64().unwrap() > 0);

    // del, then the key is gone; a prefix delete counts what it deleted.
    let r = ok(cli(&c, &["del", "app/a", "--json"], b"")).json();
    assert_eq!(r["deleted"], 1);
    assert_eq!(cli(&c, &["get", "app/a"], b"").code, 3);
    let r = ok(cli(&c, &["del", "app/", "--prefix"], b""));
    assert!(r.out.starts_with("deleted 2 "), "{}", r.out);
    let list = ok(cli(&c, &["ls", "--json"], b"")).json();
    assert_eq!(list["entries"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txn_from_a_file_and_sessions_by_hand() {
    let c = Cluster::start(1, "cli-txn").await;
    ok(cli(&c, &["put", "cfg/x", "1"], b""));

    // A transaction from a file: its compares hold, so `then` runs (exit 0).
    let doc = c.root.join("txn.json");
    std::fs::write(
        &doc,
        br#"{"if": [{"key": "cfg/x", "version": 1}, {"key": "cfg/y", "exists": false}],
            "then": [{"op": "put", "key": "cfg/y", "value": "eQ=="},
                     {"op": "put", "key": "cfg/x", "text": "2"},
                     {"op": "get", "key": "cfg/x"}],
            "else": [{"op": "get", "key": "cfg/x"}]}"#,
    )
    .unwrap();
    let path = doc.to_str().unwrap();
    let r = ok(cli(&c, &["txn", "--file", path, "--json"], b"")).json();
    assert_eq!(r["succeeded"], true);
    assert_eq!(r["results"][0]["key"], "cfg/y");
    assert_eq!(r["results"][2]["entry"]["value"], "2");
    assert_eq!(ok(cli(&c, &["get", "cfg/y"], b"")).out, "y");
    // The same again: cfg/x is at version 2 now, so `else` runs and the exit is 4.
    let r = cli(&c, &["txn", "--file", path], b"");
    assert_eq!(r.code, 4, "{} {}", r.out, r.err);
    assert_eq!(
        r.out.lines().next(),
        Some("failed (else) revision 2"),
        "{}",
        r.out
    );
    assert!(r.out.contains("get cfg/x version 2 2"), "{}", r.out);
    // From stdin; a malformed document is a usage error and sends nothing.
    let stdin_txn = br#"{"then": [{"op": "delete", "key": "cfg/y"}]}"#;
    ok(cli(&c, &["txn", "-"], stdin_txn));
    assert_eq!(cli(&c, &["get", "cfg/y"], b"").code, 3);
    let r = cli(
        &c,
        &["txn", r#"{"then": [{"op": "range", "key": "cfg/x"}]}"#],
        b"",
    );
    assert_eq!(r.code, 2, "{}", r.err);

    // Sessions: create prints the id, ls lists it, an ephemeral key goes with close.
    let id = ok(cli(&c, &["session", "create", "--ttl", "60"], b""))
        .out
        .trim()
        .to_string();
    assert!(!id.is_empty());
    let r = ok(cli(&c, &["session", "ls"], b""));
    assert_eq!(
        r.out,
        format!("ID{}  TTL_MS\n{id}  60000\n", " ".repeat(id.len() - 2))
    );
    let listed = ok(cli(&c, &["session", "ls", "--json"], b"")).json();
    assert_eq!(listed["sessions"][0]["id"], id.as_str());
    ok(cli(&c, &["put", "cfg/eph", "e", "--session", &id], b""));
    let kept = ok(cli(&c, &["session", "keepalive", &id, "--json"], b"")).json();
    assert_eq!(kept["ttl_ms"], 60000);
    let r = ok(cli(&c, &["session", "close", &id, "--json"], b"")).json();
    assert_eq!(r["deleted_keys"], 1);
    assert_eq!(cli(&c, &["get", "cfg/eph"], b"").code, 3);
    assert_eq!(cli(&c, &["session", "close", &id], b"").code, 3);
    assert_eq!(cli(&c, &["session", "keepalive", &id], b"").code, 3);
    assert_eq!(
        cli(&c, &["put", "cfg/eph", "e", "--session", &id], b"").code,
        3
    );
    let listed = ok(cli(&c, &["session", "ls", "--json"], b"")).json();
    assert_eq!(listed["sessions"], serde_json::json!([]));
}
