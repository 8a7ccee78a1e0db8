//! `concierge auth | role | user | token` against a real one-node cluster: `auth
//! enable` prints the admin token once; without `--token` (or `CONCIERGE_TOKEN`) a
//! client command is refused (exit 1); an admin token sets up a role, a user and a
//! token through the CLI, and that token may write its prefix but not another (exit 1,
//! the key unchanged); `concierge bench` takes the token too; `role list --json` shows
//! the role; `token revoke` ends a token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use serde_json::Value;
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    out: String,
    err: String,
}

/// Runs `concierge ARGS` against node 0 of `c`, with `token` in `CONCIERGE_TOKEN`.
fn cli(c: &Cluster, token: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concierge"));
    cmd.args(args)
        .env(
            "CONCIERGE_ENDPOINTS",
            format!("127.0.0.1:{}", c.nodes[0].client_port),
        )
        .env_remove("RUST_LOG")
        .env_remove("CONCIERGE_TOKEN")
        .stdin(Stdio::null());
    if let Some(t) = token {
        cmd.env("CONCIERGE_TOKEN", t);
    }
    let out = cmd.output().unwrap();
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
async fn cli_auth_manages_roles_users_and_tokens() {
    let c = Cluster::start(1, "cli-auth").await;
    let admin = ok(cli(&c, None, &["auth", "enable"]))
        .out
        .trim()
        .to_string();
    assert!(admin.contains('.'), "{admin:?}");

    let refused = cli(&c, None, &["put", "a/1", "x"]);
    assert_eq!(refused.code, 1, "{:?}", refused.err);
    assert!(refused.err.contains("unauthorized"), "{:?}", refused.err);

    let a = Some(admin.as_str());
    ok(cli(&c, a, &["put", "b/1", "orig"]));
    ok(cli(
        &c,
        a,
        &[
            "role",
            "add",
            "app",
            "--readwrite",
            "a/",
            "--right",
            "sessions",
        ],
    ));
    ok(cli(&c, a, &["user", "add", "svc", "--role", "app"]));
    let list: Value =
        serde_json::from_str(&ok(cli(&c, a, &["role", "list", "--json"])).out).unwrap();
    assert_eq!(list["roles"]["app"]["perms"][0]["prefix"], "a/");
    assert_eq!(list["roles"]["app"]["rights"][0], "sessions");
    let svc = ok(cli(&c, a, &["token", "create", "svc", "--json"]));
    let svc: Value = serde_json::from_str(&svc.out).unwrap();
    let (token, id) = (svc["token"].as_str().unwrap(), svc["id"].as_str().unwrap());

    // The flag works as the variable does.
    ok(cli(&c, None, &["put", "a/1", "x", "--token", token]));
    let other = cli(&c, Some(token), &["put", "b/1", "changed"]);
    assert_eq!(other.code, 1, "{:?}", other.err);
    assert!(other.err.contains("forbidden"), "{:?}", other.err);
    assert_eq!(ok(cli(&c, a, &["get", "b/1"])).out, "orig");
    // `concierge bench` takes the token the same way; without it every request is a 401.
    let bench = |token: Option<&str>| {
        let args = [
            "bench",
            "put",
            "--prefix",
            "a/b-",
            "--requests",
            "20",
            "--json",
        ];
        let r: Value = serde_json::from_str(&ok(cli(&c, token, &args)).out).unwrap();
        (r["errors"].as_u64(), r["errors_by_kind"].clone())
    };
    assert_eq!(bench(Some(token)).0, Some(0));
    let (errors, kinds) = bench(None);
    assert_eq!(errors, Some(20), "{kinds}");
    assert_eq!(kinds["http 401"], 20, "{kinds}");
    // A non-admin cannot manage access control.
    let r = cli(&c, Some(token), &["token", "create", "svc"]);
    assert_eq!(r.code, 1, "{:?}", r.err);

    ok(cli(&c, a, &["token", "revoke", id]));
    let r = cli(&c, Some(token), &["get", "a/1"]);
    assert_eq!(r.code, 1, "{:?}", r.err);
    ok(cli(&c, a, &["user", "remove", "svc"]));
    ok(cli(&c, a, &["role", "remove", "app"]));
    ok(cli(&c, a, &["auth", "disable"]));
    ok(cli(&c, None, &["get", "a/1"]));
}
