//! Benchmarks of cqrs-core against cqrs-es 0.5 (`MemStore`), postgres-es 0.5
//! and raw database inserts, on one bank-account workload. Run in release
//! mode:
//!
//! ```text
//! cargo run -p cqrs-bench --release -- [FIGURE..] [--quick] [--csv] [--runs N] [--check] [-v]
//! ```
//!
//! Figures: `mem` (commands/s and peak memory on the memory stores), `growth`
//! (cost of one command against the stream length, memory and PostgreSQL),
//! `pg` (commands/s on PostgreSQL, 1 and 8 clients), `catchup` (replaying
//! 100,000 events into a projection), `sqlite` (commands/s on SQLite),
//! `reads` (catching up from PostgreSQL into a read model in SQLite, as
//! documents and as SQL tables, against the same inside PostgreSQL),
//! `inline` (PostgreSQL, 8 clients, the balances projection inline against
//! async), `nats` (NATS JetStream: the relay from a store to a stream on one
//! node and on a 3-node cluster against raw `async-nats` publishes, a remote
//! read side catching up from a stream into SQLite and PostgreSQL against a
//! raw pull consumer, and the lag from a command's commit to its visibility
//! on a read side at 1,000 commands/s); all of them when none is named.
//! PostgreSQL runs on a throwaway durable server (`fsync=on`) started here,
//! as the tests do; NATS on throwaway `nats-server`s (skipped when there is
//! none).
//!
//! Every sample is its own process; ours and theirs alternate, and each
//! figure is the ratio of the medians, oriented so that above 1 means cqrs is
//! better. `--csv` prints `figure,ours,baseline,ratio`; `--check` exits with
//! an error when a target is missed. See `BENCHMARKS.md`.

mod child;
mod figures;
mod growth;
mod nats;
mod reads;
mod report;
mod runner;
mod script;

use std::process::ExitCode;

use crate::figures::{Plan, Sizes};
use crate::runner::Runner;

const FIGURES: [&str; 8] = [
    "mem", "growth", "pg", "catchup", "sqlite", "reads", "inline", "nats",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__run") {
        return run_child(&args[1..]);
    }
    let mut plan = Plan {
        figures: Vec::new(),
        runs: None,
        sizes: Sizes::full(),
        csv: false,
        check: false,
    };
    let mut verbose = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => plan.runs = Some(n),
                _ => return usage("--runs needs a positive number"),
            },
            "--quick" => plan.sizes = Sizes::quick(),
            "--csv" => plan.csv = true,
            "--check" => plan.check = true,
            "-v" | "--verbose" => verbose = true,
            "-h" | "--help" => return usage(""),
            figure if FIGURES.contains(&figure) => plan.figures.push(arg),
            other => return usage(&format!("unknown argument `{other}`")),
        }
    }
    if plan.figures.is_empty() {
        plan.figures = FIGURES.iter().map(|f| (*f).to_owned()).collect();
    }
    let runner = match Runner::new(verbose) {
        Ok(runner) => runner,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match figures::run(&plan, runner) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    if !problem.is_empty() {
        eprintln!("error: {problem}\n");
    }
    eprintln!(
        "usage: cqrs-bench [mem|growth|pg|catchup|sqlite|reads|inline|nats ..] [--quick] [--csv] [--runs N] [--check] [-v]"
    );
    if problem.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// One sample, in a child process started by the runner.
fn run_child(args: &[String]) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(child::run(args)) {
        Ok(fields) => {
            eprintln!("{}", script::result_line(&fields));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cqrs-bench __run {}: {e}", args.join(" "));
            ExitCode::FAILURE
        }
    }
}
