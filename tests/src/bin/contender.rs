//! One of the two writer processes of the contention test
//! (`tests/tests/contention.rs`): an engine at its defaults (retries and
//! backoff) running `Bump` commands from 4 tasks on 10 shared streams.
//!
//! ```text
//! contender sqlite <file>
//! contender postgres <connection string> <schema>
//! ```
//!
//! Prints `ready` once its engine is built, then waits for a line on stdin,
//! so that both processes start together; runs `CONTENDER_COMMANDS` (default
//! 500) commands per task, and prints one line
//! `done ok=<n> retries=<n> most_retries=<n> gave_up=<n> failed=<n> first_ms=<n> last_ms=<n>`,
//! the last two when its first and last command succeeded, in milliseconds
//! after the start.
//! Every command that gave up or failed is also reported on stderr.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use cqrs_core::prelude::*;
use cqrs_core::{Error, Registry};

const TASKS: u64 = 4;
const STREAMS: u64 = 10;

/// A counter was bumped.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "contended.bumped")]
struct Bumped {
    /// The counter's value after the bump.
    value: u64,
}

/// Bump a counter.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Counter)]
struct Bump {
    #[id]
    counter: String,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// A counter: each bump records its new value, so a lost update would show
/// as a repeated value.
#[derive(Aggregate, Default, Debug)]
#[aggregate(name = "contended", events(Bumped), commands(Bump), error = Never)]
struct Counter {
    value: u64,
}

impl Apply<Bumped> for Counter {
    fn apply(&mut self, e: &Bumped) {
        self.value = e.value;
    }
}

impl Handle<Bump> for Counter {
    fn handle(&self, _: &Bump) -> Result<Events<Self>, Never> {
        Ok(events![Bumped {
            value: self.value + 1
        }])
    }
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    retries: AtomicU64,
    most_retries: AtomicU32,
    gave_up: AtomicU64,
    failed: AtomicU64,
    first_ms: AtomicU64,
    last_ms: AtomicU64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let commands: u64 = std::env::var("CONTENDER_COMMANDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let store = cqrs_tests::child::store_from_args("contender").await;
    let engine = Engine::builder()
        .shared_store(store)
        .registry(
            Registry::new()
                .register::<Bumped>()
                .register::<Bump>()
                .register::<Counter>(),
        )
        .without_projections()
        .build()
        .await
        .expect("the counter registers cleanly");
    println!("ready");
    let mut go = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut go)
        .expect("a go line");

    let started = Instant::now();
    let tally = Arc::new(Tally {
        first_ms: AtomicU64::new(u64::MAX),
        ..Tally::default()
    });
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let (engine, tally) = (engine.clone(), Arc::clone(&tally));
        tasks.spawn(async move {
            // A small xorshift, seeded per process and task.
            let mut state = (u64::from(std::process::id()) << 8 | task) | 1;
            for _ in 0..commands {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let counter = format!("c-{}", state % STREAMS);
                match engine.execute(Bump { counter }).await {
                    Ok(receipt) => {
                        let at = started.elapsed().as_millis() as u64;
                        tally.first_ms.fetch_min(at, Ordering::Relaxed);
                        tally.last_ms.fetch_max(at, Ordering::Relaxed);
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                        tally
                            .retries
                            .fetch_add(u64::from(receipt.retries), Ordering::Relaxed);
                        tally
                            .most_retries
                            .fetch_max(receipt.retries, Ordering::Relaxed);
                    }
                    Err(CommandError::Engine(e @ Error::TooManyConflicts { .. })) => {
                        eprintln!("contender: {e}");
                        tally.gave_up.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("contender: {e}");
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    tasks.join_all().await;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "done ok={} retries={} most_retries={} gave_up={} failed={} first_ms={} last_ms={}",
        tally.ok.load(Ordering::Relaxed),
        tally.retries.load(Ordering::Relaxed),
        tally.most_retries.load(Ordering::Relaxed),
        tally.gave_up.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
        tally.first_ms.load(Ordering::Relaxed),
        tally.last_ms.load(Ordering::Relaxed),
    );
    let _ = out.flush();
}
