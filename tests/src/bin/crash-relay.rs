//! The relay process of the NATS fault tests (`tests/tests/nats_faults.rs`):
//! relays a store's global log to a JetStream stream, as a process of its
//! own, until it is killed (or 60 s pass).
//!
//! ```text
//! crash-relay <nats urls> <store>      (a store: sqlite <file> | postgres <connection> <schema>)
//! ```
//!
//! Prints `relayed <position>` whenever its checkpoint moves and
//! `state <state>` whenever its state changes, with `refused` once a
//! commit of its was refused (it lost its lease). The environment sets
//! `CQRS_TEST_LEASE_MS` (the lease's term, default 1000),
//! `CQRS_TEST_RELAY_BATCH` (events per batch, default 64) and
//! `CQRS_TEST_NATS_REPLICAS` (the stream's replicas, default 1), and
//! `CQRS_TEST_PAUSE_FILE`: while that file exists, the relay stops after a
//! batch was published and before its checkpoint is committed, creating
//! `<that file>.paused` to say so: the place where a kill leaves the stream
//! ahead of the checkpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::nats::{JetStream, JetStreamOptions, JetStreamSink};
use cqrs_core::subscription::{LeaseOptions, Relay, RelayOptions, Sink};
use cqrs_core::{BoxFuture, RecordedEvent, StoreError};
use cqrs_tests::child::{Narrator, env_or, say};

const LIFETIME: Duration = Duration::from_secs(60);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((url, store)) = args.split_first() else {
        eprintln!("usage: crash-relay <nats urls> <store>");
        std::process::exit(2);
    };
    let store: Vec<&str> = store.iter().map(String::as_str).collect();
    let (store, _) = cqrs_tests::child::stores_from("crash-relay", &store).await;
    let js = JetStream::connect(
        url,
        JetStreamOptions::new().replicas(env_or("CQRS_TEST_NATS_REPLICAS", 1)),
    )
    .await
    .expect("cannot reach NATS");
    let (_shutdown, stop) = tokio::sync::watch::channel(false);
    let relay = Relay::start(
        "relay",
        store,
        Arc::new(PausingSink {
            inner: js.sink(),
            pause: std::env::var_os("CQRS_TEST_PAUSE_FILE").map(PathBuf::from),
        }),
        RelayOptions::new()
            .batch(env_or("CQRS_TEST_RELAY_BATCH", 64))
            .lease(
                LeaseOptions::new().ttl(Duration::from_millis(env_or("CQRS_TEST_LEASE_MS", 1000))),
            ),
        stop,
    );
    let started = Instant::now();
    let mut narrator = Narrator::new(false);
    while started.elapsed() < LIFETIME {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let status = relay.status();
        if let Some(relayed) =
            narrator.observe(&status.state, status.last_error.as_deref(), status.position)
        {
            say(&format!("relayed {relayed}"));
        }
    }
}

/// The JetStream sink, stopping after each publish while the pause file
/// exists.
#[derive(Debug)]
struct PausingSink {
    inner: JetStreamSink,
    pause: Option<PathBuf>,
}

impl Sink for PausingSink {
    fn last_position(&self) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        self.inner.last_position()
    }

    fn publish<'a>(
        &'a self,
        events: &'a [Arc<RecordedEvent>],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner.publish(events).await?;
            if let Some(file) = &self.pause
                && file.exists()
            {
                let mut marker = file.clone().into_os_string();
                marker.push(".paused");
                let _ = std::fs::write(&marker, std::process::id().to_string());
                while file.exists() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Ok(())
        })
    }
}
