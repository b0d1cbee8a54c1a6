//! The growth figure on the memory store, our side: the cost of one command
//! on an aggregate that already has N events, three ways:
//!
//! - `cached`: the engine's hot-aggregate cache (the default);
//! - `snapshot`: no cache, so each command loads the latest snapshot plus the
//!   events after it (`snapshot_every = 100`);
//! - `replay`: no cache and no snapshots, so each command replays the whole
//!   stream, as cqrs-es does.

use std::time::{Duration, Instant};

use cqrs_core::prelude::*;
use cqrs_examples::bank::{BankServices, Deposit, OpenAccount};

use crate::child::Report;
use crate::runner::Failure;

/// Counted deposits, without snapshots: the full-replay mode.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "bench_tally.added")]
struct BenchAdded {
    amount: u64,
}

#[derive(Command, Deserialize, Debug)]
#[command(aggregate = BenchTally, name = "BenchAdd")]
struct BenchAdd {
    #[id]
    id: String,
    amount: u64,
}

#[derive(Aggregate, Default, Debug)]
#[aggregate(
    name = "bench_tally",
    events(BenchAdded),
    commands(BenchAdd),
    error = std::convert::Infallible
)]
struct BenchTally {
    total: u64,
}

impl Apply<BenchAdded> for BenchTally {
    fn apply(&mut self, e: &BenchAdded) {
        self.total += e.amount;
    }
}

impl Handle<BenchAdd> for BenchTally {
    fn handle(&self, c: &BenchAdd) -> Result<Events<Self>, std::convert::Infallible> {
        Ok(events![BenchAdded { amount: c.amount }])
    }
}

/// How many aggregates a cost is averaged over when each gets one timed
/// command (the same count cqrs-es gets).
pub(crate) fn aggregates_for(size: u64) -> u64 {
    (200_000 / size).clamp(20, 200)
}

/// Times one command in `mode` on aggregates with `size` events.
pub(crate) async fn memory(mode: &str, size: u64) -> Result<Report, Failure> {
    let per_command = per_command(mode, size).await?;
    Ok(vec![("seconds", per_command.as_secs_f64())])
}

/// Prepares aggregates with `size` events each, then times one command.
///
/// `cached` and `snapshot` time 2,000 commands on one aggregate (their cost
/// does not depend on the stream length). `replay` times one command on each
/// of several aggregates, so every timed command replays exactly `size`
/// events. The streams are written by a second engine with a cache, so
/// preparing them costs no replays.
async fn per_command(mode: &str, size: u64) -> Result<Duration, Failure> {
    let store = MemoryStore::new();
    let writer = Engine::builder()
        .store(store.clone())
        .services(BankServices::default())
        .without_projections()
        .build()
        .await?;
    let capacity = if mode == "cached" { 10_000 } else { 0 };
    let engine = Engine::builder()
        .store(store)
        .services(BankServices::default())
        .cache_capacity(capacity)
        .without_projections()
        .build()
        .await?;
    match mode {
        "replay" => {
            let aggregates = aggregates_for(size);
            let ids: Vec<String> = (0..aggregates).map(|i| format!("tally-{i}")).collect();
            for id in &ids {
                for _ in 0..size {
                    writer
                        .execute(BenchAdd {
                            id: id.clone(),
                            amount: 1,
                        })
                        .await?;
                }
            }
            let started = Instant::now();
            for id in &ids {
                engine
                    .execute(BenchAdd {
                        id: id.clone(),
                        amount: 1,
                    })
                    .await?;
            }
            Ok(started.elapsed() / u32::try_from(aggregates).unwrap_or(u32::MAX))
        }
        "cached" | "snapshot" => {
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
        other => Err(Failure(format!("unknown growth mode `{other}`"))),
    }
}
