//! The writer process of the crash tests (`tests/tests/crash.rs`): appends
//! batches of 3 events from 8 concurrent tasks as fast as it can, printing
//! one line per acknowledged append, until it is killed (or 30 s pass).
//!
//! ```text
//! crash-writer sqlite <file>
//! crash-writer postgres <connection string> <schema>
//! ```
//!
//! Each acknowledged append prints `ok <aggregate> <id> <version> <last position>`.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::store::{ExpectedVersion, Store};
use cqrs_core::{NewEvent, StoreError, StreamId};

const TASKS: usize = 8;
const STREAMS_PER_TASK: usize = 4;
const BATCH: usize = 3;
/// The writer stops by itself if no one kills it.
const LIFETIME: Duration = Duration::from_secs(30);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let store = cqrs_tests::child::store_from_args("crash-writer").await;
    let deadline = Instant::now() + LIFETIME;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.spawn(async move { write(&*store, task, deadline).await });
    }
    tasks.join_all().await;
}

async fn write(store: &dyn Store, task: usize, deadline: Instant) {
    let streams: Vec<StreamId> = (0..STREAMS_PER_TASK)
        .map(|s| StreamId::new("crash", format!("t{task}-s{s}")))
        .collect();
    let mut versions = vec![0_u64; streams.len()];
    let mut seq = 0_u64;
    while Instant::now() < deadline {
        let which = (seq as usize) % streams.len();
        let stream = &streams[which];
        seq += 1;
        let events = (0..BATCH)
            .map(|i| {
                NewEvent::new(
                    "crashed",
                    format!(r#"{{"task":{task},"seq":{seq},"i":{i}}}"#),
                )
            })
            .collect();
        match store
            .append(stream, ExpectedVersion::Exact(versions[which]), events)
            .await
        {
            Ok(outcome) => {
                versions[which] = outcome.version;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "ok {} {} {} {}",
                    stream.aggregate, stream.id, outcome.version, outcome.last_position
                );
                let _ = out.flush();
            }
            Err(StoreError::Conflict { actual, .. }) => versions[which] = actual,
            Err(e) => {
                eprintln!("crash-writer: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Ok(events) = store.read_stream(stream, 1).await {
                    versions[which] = events.len() as u64;
                }
            }
        }
    }
}
