//! The remote read side of the NATS fault tests (`tests/tests/nats_faults.rs`):
//! runs the crash bank's durable `CrashLedger` in a process without an event
//! store, fed from the JetStream stream, until it is killed (or 60 s pass).
//!
//! ```text
//! crash-reader <nats urls> <read store>  (sqlite <file> | postgres <connection> <schema>)
//! ```
//!
//! Prints `projected <position>` whenever the ledger's position moves while
//! it is active, `state <active|standby|..> <state>` whenever its role
//! changes, and `refused ..` once a commit of its was refused (it lost its
//! lease). The environment sets `CQRS_TEST_LEASE_MS` (default 1000) and
//! `CQRS_TEST_PAUSE_FILE` (see `crash_bank::pause_point`).

#[path = "../crash_bank.rs"]
mod crash_bank;

use std::time::{Duration, Instant};

use cqrs_core::nats::{JetStream, JetStreamOptions};
use cqrs_core::subscription::LeaseOptions;
use cqrs_core::{Projection, ReadSide};
use cqrs_tests::child::{Narrator, say};

use self::crash_bank::CrashLedger;

const LIFETIME: Duration = Duration::from_secs(60);
/// Small batches: the ledger commits often, so a kill often lands mid-commit.
const BATCH: usize = 16;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((url, read)) = args.split_first() else {
        eprintln!("usage: crash-reader <nats urls> <read store>");
        std::process::exit(2);
    };
    let read: Vec<&str> = read.iter().map(String::as_str).collect();
    let (read, _) = cqrs_tests::child::stores_from("crash-reader", &read).await;
    let js = JetStream::connect(url, JetStreamOptions::new())
        .await
        .expect("cannot reach NATS");
    let lease = Duration::from_millis(
        std::env::var("CQRS_TEST_LEASE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
    );
    let reads = ReadSide::builder()
        .source(js.source("crash"))
        .registry(crash_bank::registry())
        .shared_read_store(read)
        .projection_batch_size(BATCH)
        .lease(LeaseOptions::new().ttl(lease))
        .build()
        .await
        .expect("the crash bank registers cleanly");
    let started = Instant::now();
    let mut narrator = Narrator::new(true);
    while started.elapsed() < LIFETIME {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let Some(status) = reads.projection_status(CrashLedger::NAME) else {
            return;
        };
        if let Some(projected) =
            narrator.observe(&status.state, status.last_error.as_deref(), status.position)
        {
            say(&format!("projected {projected}"));
        }
    }
    reads.stop().await;
}
