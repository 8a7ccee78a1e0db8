//! `concierge lock NAME -- CMD` against a real one-node cluster: CMD runs only while
//! the lock is held, so commands of concurrent `lock` processes never overlap (proved
//! by counting: each critical section appends `enter`/`leave` lines to a log and bumps
//! an unguarded counter with a read, a pause and a write); the exit code is CMD's;
//! CMD gets the fencing token, larger for every later holder; and when the lock's
//! session is lost (closed from elsewhere) CMD is killed and `lock` exits 1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const HOLDERS: usize = 3;
const ROUNDS: usize = 4;

/// A critical section: log entry, an unguarded read-pause-write of the counter, log
/// exit. Two of them running at once lose an increment or interleave their lines.
const SECTION: &str = r#"
echo "enter $WHO $CONCIERGE_LOCK_TOKEN" >> "$DIR/log"
n=$(cat "$DIR/counter")
sleep 0.05
echo $((n + 1)) > "$DIR/counter"
echo "leave $WHO $CONCIERGE_LOCK_TOKEN" >> "$DIR/log"
"#;

fn lock_cmd(c: &Cluster, name: &str, extra_env: &[(&str, &str)], cmd: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_concierge"));
    command
        .args(["lock", name, "--ttl", "3", "--"])
        .args(cmd)
        .env(
            "CONCIERGE_ENDPOINTS",
            format!("127.0.0.1:{}", c.nodes[0].client_port),
        )
        .env_remove("RUST_LOG")
        .envs(extra_env.iter().copied());
    command
}

fn show(out: &Output) -> String {
    format!(
        "code {:?} stdout {:?} stderr {:?}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lock_commands_never_overlap() {
    let c = Cluster::start(1, "cli-lock").await;
    let dir = c.root.join("section");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("counter"), "0\n").unwrap();
    std::fs::write(dir.join("log"), "").unwrap();

    std::thread::scope(|s| {
        for who in 0..HOLDERS {
            let (c, dir) = (&c, &dir);
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    let who = who.to_string();
                    let env = [("WHO", who.as_str()), ("DIR", dir.to_str().unwrap())];
                    let out = lock_cmd(c, "jobs/nightly", &env, &["sh", "-c", SECTION])
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "{}", show(&out));
                }
            });
        }
    });

    let counter = std::fs::read_to_string(dir.join("counter")).unwrap();
    assert_eq!(
        counter.trim(),
        (HOLDERS * ROUNDS).to_string(),
        "a lost update"
    );
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2 * HOLDERS * ROUNDS, "{log}");
    let mut last_token = 0u64;
    for pair in lines.chunks(2) {
        let enter: Vec<&str> = pair[0].split(' ').collect();
        let leave: Vec<&str> = pair[1].split(' ').collect();
        assert_eq!(enter[0], "enter", "{log}");
        assert_eq!(leave[0], "leave", "{log}");
        assert_eq!(enter[1..], leave[1..], "sections interleave:\n{log}");
        let token: u64 = enter[2].parse().unwrap();
        assert!(token > last_token, "tokens must grow:\n{log}");
        last_token = token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_exits_with_the_commands_code_and_kills_it_when_the_lock_is_lost() {
    let c = Cluster::start(1, "cli-lock-lost").await;
    let out = lock_cmd(&c, "l", &[], &["sh", "-c", "exit 7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
    let out = lock_cmd(&c, "l", &[], &["/no/such/program"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    // A holder whose session is closed from elsewhere: CMD (here `sleep`, exec'd so its
    // pid is the one written) is killed and `lock` exits 1.
    let pid_file = c.root.join("pid");
    let script = format!("echo $$ > {}; exec sleep 600", pid_file.display());
    let mut holder = lock_cmd(&c, "l", &[], &["sh", "-c", &script])
        .spawn()
        .unwrap();
    let pid = wait_for_pid(&pid_file);
    let page = c.get(0, "/v1/keys?prefix=l/").await.json();
    let session = page["entries"][0]["session"].as_str().unwrap().to_string();
    let closed = c.delete(0, &format!("/v1/sessions/{session}")).await;
    assert_eq!(closed.status.as_u16(), 200, "{}", closed.text());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = holder.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "lock still running"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    assert!(!alive(pid), "the command outlived its lock");
}

fn wait_for_pid(path: &Path) -> u32 {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "CMD never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process with this pid exists (and is not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
