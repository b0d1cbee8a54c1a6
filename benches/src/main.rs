//! Benchmarks of cqrs-core, run in release mode:
//!
//! ```text
//! cargo run -p cqrs-bench --release -- growth [--runs N] [--check]
//! ```
//!
//! `growth` measures the cost of one command on an aggregate that already has
//! 10, 100, 1,000 and 10,000 events, three ways in the same run:
//!
//! - `cached`: the engine's hot-aggregate cache (the default);
//! - `snapshot`: no cache, so each command loads the latest snapshot plus the
//!   events after it (`snapshot_every = 100`);
//! - `replay`: no cache and no snapshots, so each command replays the whole
//!   stream: the baseline that grows with the stream.
//!
//! Sizes are measured in alternating order over several runs and the median
//! is reported; `--check` exits with an error when the cached or snapshot cost
//! at 10,000 events is more than 1.5x the cost at 10.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use cqrs_core::prelude::*;
use cqrs_examples::bank::{BankServices, Deposit, OpenAccount};

/// Counted deposits, without snapshots: the full-replay baseline.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "tally.added")]
struct Added {
    amount: u64,
}

#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Tally)]
struct Add {
    #[id]
    id: String,
    amount: u64,
}

#[derive(Aggregate, Default, Debug)]
#[aggregate(name = "tally", events(Added), commands(Add), error = std::convert::Infallible)]
struct Tally {
    total: u64,
}

impl Apply<Added> for Tally {
    fn apply(&mut self, e: &Added) {
        self.total += e.amount;
    }
}

impl Handle<Add> for Tally {
    fn handle(&self, c: &Add) -> Result<Events<Self>, std::convert::Infallible> {
        Ok(events![Added { amount: c.amount }])
    }
}

const SIZES: [u64; 4] = [10, 100, 1_000, 10_000];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Cached,
    Snapshot,
    Replay,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Cached => "cached",
            Mode::Snapshot => "snapshot",
            Mode::Replay => "replay",
        }
    }
}

struct Options {
    runs: usize,
    check: bool,
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut figure = None;
    let mut options = Options {
        runs: 5,
        check: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => options.runs = n,
                _ => return usage("--runs needs a positive number"),
            },
            "--check" => options.check = true,
            "--quick" => options.runs = 3,
            "growth" => figure = Some(arg),
            "-h" | "--help" => return usage(""),
            other => return usage(&format!("unknown argument `{other}`")),
        }
    }
    if figure.is_none() {
        return usage("name a figure to run");
    }
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
    match runtime.block_on(growth(&options)) {
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
    eprintln!("usage: cqrs-bench growth [--runs N] [--quick] [--check]");
    if problem.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// Prepares aggregates with `size` events each, then times one command.
///
/// `cached` and `snapshot` time 2,000 commands on one aggregate (their cost
/// does not depend on the stream length). `replay` times one command on each
/// of several aggregates, so every timed command replays exactly `size`
/// events. The streams are written by a second engine with a cache, so
/// preparing them costs no replays.
async fn per_command(mode: Mode, size: u64) -> Result<Duration, cqrs_core::Error> {
    let store = MemoryStore::new();
    let writer = Engine::builder()
        .store(store.clone())
        .services(BankServices::default())
        .without_projections()
        .build()
        .await?;
    let capacity = if mode == Mode::Cached { 10_000 } else { 0 };
    let engine = Engine::builder()
        .store(store)
        .services(BankServices::default())
        .cache_capacity(capacity)
        .without_projections()
        .build()
        .await?;
    match mode {
        Mode::Replay => {
            let aggregates = (200_000 / size).clamp(20, 200);
            let ids: Vec<String> = (0..aggregates).map(|i| format!("tally-{i}")).collect();
            for id in &ids {
                for _ in 0..size {
                    writer
                        .execute(Add {
                            id: id.clone(),
                            amount: 1,
                        })
                        .await?;
                }
            }
            let started = Instant::now();
            for id in &ids {
                engine
                    .execute(Add {
                        id: id.clone(),
                        amount: 1,
                    })
                    .await?;
            }
            Ok(started.elapsed() / u32::try_from(aggregates).unwrap_or(u32::MAX))
        }
        Mode::Cached | Mode::Snapshot => {
            let id = String::from("bench");
            writer
                .execute(OpenAccount {
                    account: id.clone(),
                    owner: "bench".into(),
                })
                .await?;
            for _ in 1..size {
                writer
                    .execute(Deposit {
                        account: id.clone(),
                        amount: 1,
                    })
                    .await?;
            }
            let commands = 2_000u32;
            // The first command loads the aggregate; time the steady state.
            engine
                .execute(Deposit {
                    account: id.clone(),
                    amount: 1,
                })
                .await?;
            let started = Instant::now();
            for _ in 0..commands {
                engine
                    .execute(Deposit {
                        account: id.clone(),
                        amount: 1,
                    })
                    .await?;
            }
            Ok(started.elapsed() / commands)
        }
    }
}

async fn growth(options: &Options) -> Result<bool, cqrs_core::Error> {
    println!(
        "Cost of one command on an aggregate with N events (memory store, median of {} runs)\n",
        options.runs
    );
    let modes = [Mode::Cached, Mode::Snapshot, Mode::Replay];
    let mut samples = vec![vec![Vec::new(); SIZES.len()]; modes.len()];
    for run in 0..options.runs {
        // Alternate the order so drift hits every size alike.
        let mut order: Vec<usize> = (0..SIZES.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for &s in &order {
            for (m, &mode) in modes.iter().enumerate() {
                samples[m][s].push(per_command(mode, SIZES[s]).await?);
            }
        }
    }
    print!("{:<10}", "mode");
    for size in SIZES {
        print!("{:>14}", format!("N={size}"));
    }
    println!("{:>16}", "N=10000 / N=10");
    let mut ok = true;
    for (m, mode) in modes.iter().enumerate() {
        let medians: Vec<Duration> = samples[m].iter_mut().map(|s| median(s)).collect();
        print!("{:<10}", mode.name());
        for d in &medians {
            print!("{:>14}", format!("{:.2} us", d.as_secs_f64() * 1e6));
        }
        let ratio = medians[SIZES.len() - 1].as_secs_f64() / medians[0].as_secs_f64();
        println!("{:>15.2}x", ratio);
        if *mode != Mode::Replay && ratio > 1.5 {
            ok = false;
        }
    }
    println!(
        "\ncached and snapshot must stay flat (10,000-event cost within 1.5x of the 10-event cost);"
    );
    println!("replay is the baseline that grows with the stream.");
    if options.check && !ok {
        eprintln!("FAILED: a cost grew by more than 1.5x");
        return Ok(false);
    }
    Ok(true)
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}
