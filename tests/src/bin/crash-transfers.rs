//! The process of the transfer crash tests (`tests/tests/transfers_crash.rs`):
//! runs the bank's `transfer` process manager (and nothing else) on a store
//! until it is killed.
//!
//! ```text
//! crash-transfers sqlite <file>
//! crash-transfers postgres <connection string> <schema>
//! ```
//!
//! Its clock runs fast (a minute every 10 ms), so that the bank's
//! five-minute review window passes in about 50 ms. Prints `ready` once
//! the engine is built, then `status <running> <completed> <failed>`
//! whenever the counts change.

use std::time::Duration;

use cqrs_core::Engine;
use cqrs_core::process::ManualClock;
use cqrs_core::subscription::LeaseOptions;
use cqrs_examples::bank::BankServices;
use cqrs_tests::child::say;

/// Small batches: the manager commits often, so a kill often lands between
/// a command sent and the commit that records it.
const BATCH: usize = 8;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let store = cqrs_tests::child::store_from_args("crash-transfers").await;
    let clock = ManualClock::new();
    let engine = Engine::builder()
        .shared_store(store)
        .clock(clock.clone())
        .services(BankServices::default())
        .without_projections()
        .projection_batch_size(BATCH)
        // The killed process's lease runs out soon after the kill.
        .lease(LeaseOptions::new().ttl(Duration::from_millis(400)))
        .build()
        .await
        .expect("the bank registers cleanly");
    say("ready");
    let mut last = None;
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        clock.advance(Duration::from_secs(60));
        if let Some(status) = engine.process_status("transfer") {
            let now = (status.running, status.completed, status.failed);
            if last != Some(now) {
                say(&format!("status {} {} {}", now.0, now.1, now.2));
                last = Some(now);
            }
        }
    }
}
