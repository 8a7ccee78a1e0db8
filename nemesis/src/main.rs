//! `concierge-nemesis`: runs one nemesis run (see the crate doc and docs/nemesis.md),
//! prints its summary and `nemesis: N passed, N failed`, and exits 0 only when every
//! check passed (1: a check failed; 2: the harness could not run).

use clap::Parser;
use nemesis::checker::{self, Budget, Verdict};
use nemesis::config::{Args, Config};
use nemesis::run::{self, RunReport};
use nemesis::summary;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn check_only(path: &std::path::Path, seconds: u64) -> ExitCode {
    let ops = match nemesis::history::load(path) {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!("nemesis: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let reports = checker::check(
        &ops,
        Budget {
            steps_max: run::CHECK_STEPS_MAX,
            deadline: Instant::now() + Duration::from_secs(seconds),
        },
    );
    let mut ok = true;
    for r in &reports {
        match &r.verdict {
            Verdict::Linearizable => println!("key {}: linearizable ({} ops)", r.key, r.ops),
            Verdict::Unknown(why) => {
                ok = false;
                println!("key {}: unknown: {why}", r.key);
            }
            Verdict::Violation(text) => {
                ok = false;
                print!("{text}");
            }
        }
    }
    println!("nemesis: {} passed, {} failed", u8::from(ok), u8::from(!ok));
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Removes the bulky artifacts of a passing run, keeping the summary and fault log.
fn tidy(cfg: &Config) {
    let Ok(dir) = std::fs::read_dir(&cfg.out) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "summary.txt" || name == "faults.jsonl" || name == run::MARKER {
            continue;
        }
        let p = entry.path();
        let _ = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
}

async fn interrupted() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "interrupted";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted (SIGINT)",
        _ = term.recv() => "terminated (SIGTERM)",
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.check_only {
        return check_only(path, args.check_seconds);
    }
    let cfg = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nemesis: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nemesis: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // The run future is polled on this (main) thread, which spawns every node process.
    let result: Result<RunReport, String> = rt.block_on(async {
        tokio::select! {
            r = run::run(&cfg) => r,
            why = interrupted() => Err(why.to_string()),
        }
    });
    let replay = format!(
        "replay: {} --out {}",
        cfg.replay_command(),
        cfg.out.display()
    );
    match result {
        Ok(report) => {
            let text = summary::render(&cfg, &report);
            print!("{text}");
            let _ = std::fs::write(cfg.out.join("summary.txt"), &text);
            if report.passed() {
                if !cfg.keep {
                    tidy(&cfg);
                }
                println!("out: {} (seed {})", cfg.out.display(), cfg.seed);
                println!("nemesis: 1 passed, 0 failed");
                ExitCode::SUCCESS
            } else {
                println!(
                    "FAILED with seed {}: node logs, history.jsonl, watch.jsonl and faults.jsonl kept in {}",
                    cfg.seed,
                    cfg.out.display()
                );
                println!("{replay}");
                println!(
                    "re-check the history: concierge-nemesis --check-only {}/history.jsonl",
                    cfg.out.display()
                );
                println!("nemesis: 0 passed, 1 failed");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            println!("nemesis: the run could not complete: {e}");
            println!(
                "seed {}; whatever was written is in {}",
                cfg.seed,
                cfg.out.display()
            );
            println!("{replay}");
            println!("nemesis: 0 passed, 1 failed");
            ExitCode::from(2)
        }
    }
}
