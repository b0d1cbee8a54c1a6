//! Events that change shape (issue 11): events stored by older builds, at
//! older versions and under older names, read by a build whose event type
//! is at version 3, on every path that decodes a stored event: aggregate
//! loads, projections (async, inline, in SQL tables), `replay`, rebuilds,
//! the typed read of a stream and the test kit; snapshots of an older shape
//! ignored; events this build does not know refused with their location,
//! or skipped by a projection that says so.
//!
//! "Stored by an older build" is literal: the old events are appended as
//! the old build's codec wrote them (name, schema version, JSON), since a
//! test binary cannot hold two types that claim one stored name.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_core::prelude::*;
use cqrs_core::projection::{PostgresTables, ProjectPostgres, ProjectSqlite, SqliteTables};
use cqrs_core::rusqlite::{self, params};
use cqrs_core::store::{
    ExpectedVersion, PostgresOptions, PostgresStore, Snapshot, SqliteStore, Store,
};
use cqrs_core::testing::{AggregateTest, ProjectionTest};
use cqrs_core::{
    DecodeError, DecodeErrorKind, Error, EventLocation, NewEvent, Placement, Registry,
    RegistryError, RunState, StreamId, Timestamp, replay_with, tokio_postgres, upcast,
};
use cqrs_tests::on_every_store;
use cqrs_tests::pg::{TestPostgres, unique_schema};
use cqrs_tests::stores::TestStore;
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(30);

// ---- the domain, at version 3 -----------------------------------------------

/// Money paid into a wallet. Version 1, stored as `deposit.made`, held
/// whole euros in `amount`; version 2 held `cents`; version 3 adds the
/// currency.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(
    name = "wallet.deposited",
    aliases("deposit.made"),
    version = 3,
    upcast(from = 1, with = euros_to_cents),
    upcast(from = 2, shape = DepositedV2)
)]
struct Deposited {
    cents: u64,
    currency: String,
}

/// Version 1 -> 2, on JSON.
fn euros_to_cents(mut v1: Value) -> Result<Value, UpcastError> {
    let euros = upcast::take_field(&mut v1, "amount")?;
    let euros = euros
        .as_u64()
        .ok_or("`amount` is not a whole number of euros")?;
    let cents = euros.checked_mul(100).ok_or("`amount` is too large")?;
    Ok(json!({ "cents": cents }))
}

/// The shape of version 2, kept for its upcaster.
#[derive(Deserialize)]
struct DepositedV2 {
    cents: u64,
}

/// Version 2 -> 3, typed.
impl Upcast<DepositedV2> for Deposited {
    fn upcast(v2: DepositedV2) -> Self {
        Deposited {
            cents: v2.cents,
            currency: "EUR".into(),
        }
    }
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "wallet.opened")]
struct Opened {
    owner: String,
}

/// At version 2 since its first release: no version 1 was ever written.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "wallet.closed", version = 2)]
struct Closed;

#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Wallet)]
struct Deposit {
    #[id]
    wallet: String,
    cents: u64,
}

#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Wallet)]
struct Withdraw {
    #[id]
    wallet: String,
    cents: u64,
}

#[derive(Debug, PartialEq, thiserror::Error)]
enum WalletError {
    #[error("the balance is {balance}")]
    Insufficient { balance: u64 },
}

#[derive(Aggregate, Default, Debug, Serialize, Deserialize)]
#[aggregate(
    name = "wallet",
    events(Opened, Deposited, Withdrawn, Closed),
    commands(Deposit, Withdraw),
    error = WalletError,
    snapshot_every = 3
)]
struct Wallet {
    cents: u64,
}

impl Apply<Opened> for Wallet {
    fn apply(&mut self, _: &Opened) {}
}
impl Apply<Deposited> for Wallet {
    fn apply(&mut self, e: &Deposited) {
        self.cents += e.cents;
    }
}
impl Apply<Closed> for Wallet {
    fn apply(&mut self, _: &Closed) {}
}

impl Handle<Deposit> for Wallet {
    fn handle(&self, c: &Deposit) -> Result<Events<Self>, WalletError> {
        Ok(events![Deposited {
            cents: c.cents,
            currency: "EUR".into()
        }])
    }
}

/// A withdrawal takes money, so the balance the aggregate loaded shows.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "wallet.withdrawn")]
struct Withdrawn {
    cents: u64,
}

impl Handle<Withdraw> for Wallet {
    fn handle(&self, c: &Withdraw) -> Result<Events<Self>, WalletError> {
        if c.cents > self.cents {
            return Err(WalletError::Insufficient {
                balance: self.cents,
            });
        }
        Ok(events![Withdrawn { cents: c.cents }])
    }
}

impl Apply<Withdrawn> for Wallet {
    fn apply(&mut self, e: &Withdrawn) {
        self.cents -= e.cents;
    }
}

// ---- projections ----------------------------------------------------------------

/// Cents per wallet, durable (documents), so it runs async, inline and
/// is rebuilt.
#[derive(Projection, Default, Debug)]
#[projection(name = "wallet.totals", events(Deposited))]
struct Totals {
    #[document]
    cents: Documents<u64>,
}

impl Project<Deposited> for Totals {
    fn project(&mut self, e: &Envelope<Deposited>) {
        *self.cents.entry(e.aggregate_id()).or_insert_with(|| 0) += e.cents;
    }
}

#[derive(Query, Deserialize, Debug)]
#[query(projection = Totals, output = BTreeMap<String, u64>)]
struct AllTotals;

impl Answer<AllTotals> for Totals {
    fn answer(&self, _: &AllTotals) -> BTreeMap<String, u64> {
        self.cents.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// The same in memory, skipping what this build does not know.
#[derive(Projection, Default, Debug)]
#[projection(name = "wallet.tolerant", events(Deposited), unknown_events = skip)]
struct Tolerant {
    cents: BTreeMap<String, u64>,
}

impl Project<Deposited> for Tolerant {
    fn project(&mut self, e: &Envelope<Deposited>) {
        *self.cents.entry(e.aggregate_id().to_owned()).or_default() += e.cents;
    }
}

#[derive(Query, Deserialize, Debug)]
#[query(projection = Tolerant, output = BTreeMap<String, u64>)]
struct TolerantTotals;

impl Answer<TolerantTotals> for Tolerant {
    fn answer(&self, _: &TolerantTotals) -> BTreeMap<String, u64> {
        self.cents.clone()
    }
}

/// Cents per wallet in a SQLite table of its own.
#[derive(Projection, Default)]
#[projection(name = "wallet.rows", events(Deposited), tables = sqlite)]
struct WalletRows;

impl SqliteTables for WalletRows {
    const MIGRATIONS: &'static [&'static str] =
        &["CREATE TABLE wallet_rows (wallet TEXT PRIMARY KEY, cents INTEGER NOT NULL)"];
    fn reset(db: &rusqlite::Connection) -> rusqlite::Result<()> {
        db.execute_batch("DELETE FROM wallet_rows")
    }
}

impl ProjectSqlite<Deposited> for WalletRows {
    fn project(
        &mut self,
        e: &Envelope<Deposited>,
        db: &rusqlite::Connection,
    ) -> rusqlite::Result<()> {
        db.execute(
            "INSERT INTO wallet_rows VALUES (?1, ?2)
             ON CONFLICT (wallet) DO UPDATE SET cents = cents + excluded.cents",
            params![e.aggregate_id(), e.cents as i64],
        )
        .map(drop)
    }
}

/// The same in PostgreSQL.
#[derive(Projection, Default)]
#[projection(name = "wallet.table", events(Deposited), tables = postgres)]
struct WalletTable;

impl PostgresTables for WalletTable {
    const MIGRATIONS: &'static [&'static str] =
        &["CREATE TABLE wallet_table (wallet text PRIMARY KEY, cents bigint NOT NULL)"];
    async fn reset(tx: &tokio_postgres::Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        tx.batch_execute("TRUNCATE wallet_table").await
    }
}

impl ProjectPostgres<Deposited> for WalletTable {
    async fn project(
        &mut self,
        e: &Envelope<Deposited>,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        tx.execute(
            "INSERT INTO wallet_table VALUES ($1, $2)
             ON CONFLICT (wallet) DO UPDATE SET cents = wallet_table.cents + excluded.cents",
            &[&e.aggregate_id(), &(e.cents as i64)],
        )
        .await
        .map(drop)
    }
}

// ---- an event that moved between aggregates ----------------------------------------

/// Once an event of wallets (its old events are in wallet streams), now
/// of ledgers.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "ledger.tagged", aliases("wallet.tagged"))]
struct Tagged {
    tag: String,
}

#[derive(Aggregate, Default)]
#[aggregate(name = "ledger", events(Tagged), error = WalletError)]
struct Ledger;

impl Apply<Tagged> for Ledger {
    fn apply(&mut self, _: &Tagged) {}
}

/// Every tag, wherever its event is stored.
#[derive(Projection, Default, Debug)]
#[projection(name = "tags", events(Tagged))]
struct Tags {
    tags: Vec<(String, String)>,
}

impl Project<Tagged> for Tags {
    fn project(&mut self, e: &Envelope<Tagged>) {
        self.tags.push((e.stream().to_string(), e.tag.clone()));
    }
}

// ---- helpers -----------------------------------------------------------------

fn registry() -> Registry {
    Registry::new()
        .register::<Wallet>()
        .register::<Deposit>()
        .register::<Withdraw>()
        .register::<Totals>()
        .register::<AllTotals>()
}

async fn engine(store: &Arc<dyn Store>, registry: Registry) -> Engine {
    Engine::builder()
        .shared_store(Arc::clone(store))
        .registry(registry)
        .build()
        .await
        .unwrap()
}

fn stored(name: &'static str, version: u32, payload: Value) -> NewEvent {
    NewEvent {
        schema_version: version,
        ..NewEvent::new(name, payload.to_string())
    }
}

/// What a wallet's stream holds after builds 1, 2 and 3 wrote to it:
/// 5 euros at version 1 (under the old name), 250 cents at version 2, 1
/// cent at version 3: 751 cents.
async fn history(store: &dyn Store, wallet: &str) -> u64 {
    let stream = StreamId::new("wallet", wallet);
    let outcome = store
        .append(
            &stream,
            ExpectedVersion::Exact(0),
            vec![
                stored("wallet.opened", 1, json!({ "owner": "Ada" })),
                stored("deposit.made", 1, json!({ "amount": 5 })),
                stored("wallet.deposited", 2, json!({ "cents": 250 })),
                stored(
                    "wallet.deposited",
                    3,
                    json!({ "cents": 1, "currency": "EUR" }),
                ),
            ],
        )
        .await
        .unwrap();
    outcome.last_position
}

/// Appends one stored event to `wallet`'s stream, returning where it is.
async fn append(store: &dyn Store, wallet: &str, event: NewEvent) -> EventLocation {
    let stream = StreamId::new("wallet", wallet);
    let version = store.read_stream(&stream, 1).await.unwrap().len() as u64;
    let outcome = store
        .append(&stream, ExpectedVersion::Exact(version), vec![event])
        .await
        .unwrap();
    EventLocation {
        stream,
        version: outcome.version,
        position: outcome.last_position,
    }
}

async fn wait_live(engine: &Engine, name: &str, head: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = engine.projection_status(name).unwrap();
        if status.position >= head && status.state == RunState::Live {
            return;
        }
        assert!(!matches!(status.state, RunState::Failed(_)), "{status:?}");
        assert!(
            Instant::now() < deadline,
            "{name} never caught up: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_failed(engine: &Engine, name: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = engine.projection_status(name).unwrap();
        if let RunState::Failed(reason) = status.state {
            return reason;
        }
        assert!(Instant::now() < deadline, "{name} never failed: {status:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn totals(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

// ---- the round trips, on every store -------------------------------------------------

async fn old_versions_load_into_the_aggregate(test: TestStore) {
    history(&*test.store, "w-1").await;
    let app = engine(&test.store, registry()).await;
    let refused = app
        .execute(Withdraw {
            wallet: "w-1".into(),
            cents: 752,
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.domain(),
        Some(&WalletError::Insufficient { balance: 751 })
    );
    app.execute(Withdraw {
        wallet: "w-1".into(),
        cents: 751,
    })
    .await
    .unwrap();
}

async fn old_versions_are_projected_and_rebuilt(test: TestStore) {
    let head = history(&*test.store, "w-1").await;
    let app = engine(&test.store, registry()).await;
    wait_live(&app, "wallet.totals", head).await;
    assert_eq!(app.query(AllTotals).await.unwrap(), totals(&[("w-1", 751)]));
    let receipt = app
        .execute(Deposit {
            wallet: "w-1".into(),
            cents: 9,
        })
        .await
        .unwrap();
    assert_eq!(
        app.query(AllTotals).after(&receipt).await.unwrap(),
        totals(&[("w-1", 760)])
    );
    let rebuilt = app.rebuild("wallet.totals").await.unwrap().finished().await;
    assert!(rebuilt.is_ok(), "{rebuilt:?}");
    assert_eq!(app.query(AllTotals).await.unwrap(), totals(&[("w-1", 760)]));
    // And offline.
    let replayed = replay_with::<Totals>(&*test.store, &registry())
        .await
        .unwrap();
    assert_eq!(replayed.answer(&AllTotals), totals(&[("w-1", 760)]));
}

async fn old_versions_are_projected_inline(test: TestStore) {
    history(&*test.store, "w-1").await;
    let app = Engine::builder()
        .shared_store(Arc::clone(&test.store))
        .registry(registry())
        .placement("wallet.totals", Placement::Inline)
        .build()
        .await
        .unwrap();
    // Right after the command, without waiting: the fold ran in its
    // transaction, over the old events first.
    app.execute(Deposit {
        wallet: "w-1".into(),
        cents: 9,
    })
    .await
    .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while app.query(AllTotals).await.unwrap() != totals(&[("w-1", 760)]) {
        assert!(Instant::now() < deadline, "{:?}", app.projections());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.execute(Deposit {
        wallet: "w-1".into(),
        cents: 1,
    })
    .await
    .unwrap();
    assert_eq!(app.query(AllTotals).await.unwrap(), totals(&[("w-1", 761)]));
}

async fn the_typed_read_of_a_stream_upcasts(test: TestStore) {
    history(&*test.store, "w-1").await;
    let app = engine(&test.store, registry()).await;
    let events = app.events::<Wallet>("w-1").await.unwrap();
    let read: Vec<(u64, &str, u32, WalletEvent)> = events
        .iter()
        .map(|e| {
            (
                e.version(),
                e.event_name(),
                e.schema_version(),
                e.event().clone(),
            )
        })
        .collect();
    let eur = |cents| {
        WalletEvent::Deposited(Deposited {
            cents,
            currency: "EUR".into(),
        })
    };
    assert_eq!(
        read,
        [
            (
                1,
                "wallet.opened",
                1,
                WalletEvent::Opened(Opened {
                    owner: "Ada".into()
                })
            ),
            (2, "deposit.made", 1, eur(500)),
            (3, "wallet.deposited", 2, eur(250)),
            (4, "wallet.deposited", 3, eur(1)),
        ]
    );
    assert_eq!(events[3].event().event_name(), "wallet.deposited");
    assert!(events.windows(2).all(|w| w[0].position() < w[1].position()));
    assert!(app.events::<Wallet>("nobody").await.unwrap().is_empty());
    let invalid = app.events::<Wallet>("").await.unwrap_err();
    assert!(
        matches!(
            invalid,
            Error::Store(cqrs_core::StoreError::InvalidStreamId(_))
        ),
        "{invalid:?}"
    );
}

async fn a_snapshot_of_an_older_shape_is_ignored_and_replaced(test: TestStore) {
    let store = &test.store;
    history(&**store, "w-1").await;
    let stream = StreamId::new("wallet", "w-1");
    // Taken by an older build whose state had other fields (and no
    // fingerprint): decoded, it would give a wrong balance.
    let legacy = Snapshot {
        version: 4,
        state: br#"{"cents": 999999, "open": true}"#.to_vec(),
        taken_at: Timestamp::now(),
    };
    store.save_snapshot(&stream, legacy).await.unwrap();
    let app = engine(store, registry()).await;
    let refused = app
        .execute(Withdraw {
            wallet: "w-1".into(),
            cents: 100_000,
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.domain(),
        Some(&WalletError::Insufficient { balance: 751 })
    );
    // At the same version it could not be replaced yet: the next append
    // takes a new one, of the current shape.
    app.execute(Deposit {
        wallet: "w-1".into(),
        cents: 1,
    })
    .await
    .unwrap();
    let snapshot = store.load_snapshot(&stream).await.unwrap().unwrap();
    assert_eq!(snapshot.version, 5);
    let state = Wallet::decode_snapshot(&snapshot.state).unwrap().unwrap();
    assert_eq!(state.cents, 752);

    // Behind the stream, an older-shape snapshot is replaced at once.
    history(&**store, "w-2").await;
    let stream = StreamId::new("wallet", "w-2");
    let legacy = Snapshot {
        version: 1,
        state: br#"{"shape": "0000000000000001", "state": {"cents": 5}}"#.to_vec(),
        taken_at: Timestamp::now(),
    };
    store.save_snapshot(&stream, legacy).await.unwrap();
    let fresh = engine(store, registry()).await;
    let refused = fresh
        .execute(Withdraw {
            wallet: "w-2".into(),
            cents: 100_000,
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.domain(),
        Some(&WalletError::Insufficient { balance: 751 })
    );
    let snapshot = store.load_snapshot(&stream).await.unwrap().unwrap();
    assert_eq!(snapshot.version, 4);
    assert_eq!(
        Wallet::decode_snapshot(&snapshot.state)
            .unwrap()
            .unwrap()
            .cents,
        751
    );
}

/// One stored event this build cannot read, of each kind: what the
/// aggregate and a projection say about it (its kind, its message, its
/// location).
struct BadEvent {
    case: &'static str,
    /// Whether the projection (of `Deposited` only) stops on it too.
    projected: bool,
    event: fn() -> NewEvent,
    kind: fn(&DecodeErrorKind) -> bool,
    message: &'static str,
}

const BAD_EVENTS: &[BadEvent] = &[
    BadEvent {
        case: "unknown",
        projected: true,
        event: || stored("wallet.frozen", 1, json!({})),
        kind: |k| matches!(k, DecodeErrorKind::UnknownEvent { name, version: 1 } if name == "wallet.frozen"),
        message: "unknown event `wallet.frozen` (schema version 1)",
    },
    BadEvent {
        case: "newer",
        projected: true,
        event: || stored("wallet.deposited", 4, json!({ "cents": 1 })),
        kind: |k| matches!(k, DecodeErrorKind::NewerVersion { name, found: 4, supported: 3 } if name == "wallet.deposited"),
        message: "event `wallet.deposited` has schema version 4, newer than version 3 this build reads",
    },
    BadEvent {
        case: "older",
        // Not an event the projection reads.
        projected: false,
        event: || stored("wallet.closed", 1, json!(null)),
        kind: |k| matches!(k, DecodeErrorKind::OlderVersion { name, found: 1, supported: 2 } if name == "wallet.closed"),
        message: "event `wallet.closed` has schema version 1, older than version 2, and no upcaster reads version 1",
    },
    BadEvent {
        case: "refused",
        projected: true,
        event: || stored("deposit.made", 1, json!({ "amount": "five" })),
        kind: |k| matches!(k, DecodeErrorKind::Upcast { name, found: 1, from: 1, .. } if name == "deposit.made"),
        message: "event `deposit.made` has schema version 1, and its upcaster from version 1 failed: `amount` is not a whole number of euros",
    },
    BadEvent {
        case: "old-shape",
        projected: true,
        event: || stored("wallet.deposited", 2, json!({ "cents": -1 })),
        kind: |k| matches!(k, DecodeErrorKind::Payload { name, version: 2, .. } if name == "wallet.deposited"),
        message: "payload of event `wallet.deposited` version 2 does not decode",
    },
    BadEvent {
        case: "current-shape",
        projected: true,
        event: || stored("wallet.deposited", 3, json!({ "cents": 1 })),
        kind: |k| matches!(k, DecodeErrorKind::Payload { name, version: 3, .. } if name == "wallet.deposited"),
        message: "payload of event `wallet.deposited` version 3 does not decode",
    },
];

/// Each kind of bad event, each on a fresh store of the test's kind.
async fn events_this_build_cannot_read_are_errors_naming_where_they_are(test: TestStore) {
    for bad in BAD_EVENTS {
        let name = format!("bad_{}", bad.case.replace('-', "_"));
        let fresh = cqrs_tests::stores::open(test.kind, &name).await.unwrap();
        let store = &fresh.store;
        history(&**store, "w-1").await;
        let at = append(&**store, "w-1", (bad.event)()).await;
        let app = engine(store, registry()).await;
        // The aggregate: every command is refused with the typed error.
        let refused = app
            .execute(Deposit {
                wallet: "w-1".into(),
                cents: 1,
            })
            .await
            .unwrap_err();
        let CommandError::Engine(Error::Decode(DecodeError {
            kind,
            at: Some(found_at),
        })) = &refused
        else {
            panic!("{}: expected a decode error, got {refused:?}", bad.case);
        };
        assert!((bad.kind)(kind), "{}: {kind:?}", bad.case);
        assert_eq!(*found_at, at, "{}", bad.case);
        let location = format!("(at stream wallet/w-1 version 5 position {})", at.position);
        let text = refused.to_string();
        assert!(
            text.contains(bad.message) && text.contains(&location),
            "{}: {text}",
            bad.case
        );
        if !bad.projected {
            let head = store.head().await.unwrap();
            wait_live(&app, "wallet.totals", head).await;
            app.shutdown();
            continue;
        }
        // A projection stops on it, saying what and where.
        let reason = wait_failed(&app, "wallet.totals").await;
        assert!(
            reason.contains(bad.message) && reason.contains(&location),
            "{}: {reason}",
            bad.case
        );
        // Offline too.
        let replayed = replay_with::<Totals>(&**store, &registry())
            .await
            .unwrap_err();
        let text = replayed.to_string();
        assert!(
            text.contains(bad.message) && text.contains(&location),
            "{}: {text}",
            bad.case
        );
        app.shutdown();
    }
}

/// A projection with `unknown_events = skip` goes past an unknown name and
/// a newer version, counting them with a warning; a payload that does not
/// decode still stops it. The default projection stops on the first.
async fn a_tolerant_projection_skips_what_it_does_not_know(test: TestStore) {
    let store = &test.store;
    history(&**store, "w-1").await;
    append(&**store, "w-1", stored("wallet.frozen", 1, json!({}))).await;
    let newer = append(
        &**store,
        "w-1",
        stored("wallet.deposited", 4, json!({ "cents": 1 })),
    )
    .await;
    append(
        &**store,
        "w-2",
        stored(
            "wallet.deposited",
            3,
            json!({ "cents": 40, "currency": "EUR" }),
        ),
    )
    .await;
    let head = store.head().await.unwrap();
    let app = engine(
        store,
        registry()
            .register::<Tolerant>()
            .register::<TolerantTotals>(),
    )
    .await;
    wait_live(&app, "wallet.tolerant", head).await;
    assert_eq!(
        app.query(TolerantTotals).await.unwrap(),
        totals(&[("w-1", 751), ("w-2", 40)])
    );
    let status = app.projection_status("wallet.tolerant").unwrap();
    assert_eq!(status.skipped, 2, "{status:?}");
    let warning = status.warning.unwrap();
    assert!(
        warning.starts_with("skipped 2 events this build does not know; the last: event `wallet.deposited` has schema version 4")
            && warning.contains(&format!("(at stream wallet/w-1 version 6 position {})", newer.position)),
        "{warning}"
    );
    // The same log stops the strict one, at the unknown name.
    let reason = wait_failed(&app, "wallet.totals").await;
    assert!(reason.contains("unknown event `wallet.frozen`"), "{reason}");
    // A rebuild counts from zero again.
    app.rebuild("wallet.tolerant")
        .await
        .unwrap()
        .finished()
        .await
        .unwrap();
    assert_eq!(app.projection_status("wallet.tolerant").unwrap().skipped, 2);
    // A known event that does not decode is not skipped.
    append(
        &**store,
        "w-2",
        stored("wallet.deposited", 3, json!({ "cents": "x" })),
    )
    .await;
    let reason = wait_failed(&app, "wallet.tolerant").await;
    assert!(
        reason.contains("payload of event `wallet.deposited` version 3"),
        "{reason}"
    );
    // Aggregates never skip.
    let refused = app
        .execute(Deposit {
            wallet: "w-1".into(),
            cents: 1,
        })
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("unknown event `wallet.frozen`"),
        "{refused}"
    );
}

/// Old events of an event that moved to another aggregate stay in the old
/// aggregate's streams: a projection of the old aggregate's events does
/// not take them for unknown, and one of the moved event reads them there,
/// under their old name too.
async fn events_that_moved_between_aggregates_keep_decoding(test: TestStore) {
    let store = &test.store;
    let moved = StreamId::new("wallet", "w-moved");
    store
        .append(
            &moved,
            ExpectedVersion::Exact(0),
            vec![
                stored("wallet.opened", 1, json!({ "owner": "Ada" })),
                stored("wallet.tagged", 1, json!({ "tag": "old name" })),
                stored("ledger.tagged", 1, json!({ "tag": "new name" })),
                stored("deposit.made", 1, json!({ "amount": 2 })),
            ],
        )
        .await
        .unwrap();
    store
        .append(
            &StreamId::new("ledger", "l-1"),
            ExpectedVersion::Exact(0),
            vec![stored("ledger.tagged", 1, json!({ "tag": "in a ledger" }))],
        )
        .await
        .unwrap();
    let head = store.head().await.unwrap();
    let registry = registry().register::<Ledger>().register::<Tags>();
    let app = engine(store, registry.clone()).await;
    wait_live(&app, "wallet.totals", head).await;
    assert_eq!(
        app.query(AllTotals).await.unwrap(),
        totals(&[("w-moved", 200)])
    );
    let tags = replay_with::<Tags>(&**store, &registry).await.unwrap();
    assert_eq!(
        tags.tags,
        [
            ("wallet/w-moved".to_owned(), "old name".to_owned()),
            ("wallet/w-moved".to_owned(), "new name".to_owned()),
            ("ledger/l-1".to_owned(), "in a ledger".to_owned()),
        ]
    );
}

on_every_store!(
    old_versions_load_into_the_aggregate,
    old_versions_are_projected_and_rebuilt,
    old_versions_are_projected_inline,
    the_typed_read_of_a_stream_upcasts,
    a_snapshot_of_an_older_shape_is_ignored_and_replaced,
    events_this_build_cannot_read_are_errors_naming_where_they_are,
    a_tolerant_projection_skips_what_it_does_not_know,
    events_that_moved_between_aggregates_keep_decoding,
);

// ---- SQL tables ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_versions_are_written_to_sqlite_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let head = history(&*store, "w-1").await;
    let app = engine(&store, registry().register::<WalletRows>()).await;
    wait_live(&app, "wallet.rows", head).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let cents: i64 = conn
        .query_row(
            "SELECT cents FROM wallet_rows WHERE wallet = 'w-1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cents, 751);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_versions_are_written_to_postgres_tables() {
    let Some(server) = tokio::task::spawn_blocking(TestPostgres::shared)
        .await
        .unwrap()
    else {
        return;
    };
    let schema = unique_schema("evolution_tables");
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect(
            &server.connection_string(),
            PostgresOptions::new().schema(schema.clone()),
        )
        .await
        .unwrap(),
    );
    let head = history(&*store, "w-1").await;
    let app = engine(&store, registry().register::<WalletTable>()).await;
    wait_live(&app, "wallet.table", head).await;
    let (client, connection) =
        tokio_postgres::connect(&server.connection_string(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one(
            &format!("SELECT cents FROM \"{schema}\".wallet_table WHERE wallet = 'w-1'"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 751);
}

// ---- the test kit -------------------------------------------------------------------

#[tokio::test]
async fn the_test_kit_takes_events_as_stored() {
    let wallet = AggregateTest::<Wallet>::new()
        .given_stored("wallet.opened", 1, json!({ "owner": "Ada" }))
        .given_stored("deposit.made", 1, json!({ "amount": 5 }))
        .given_stored("wallet.deposited", 2, json!({ "cents": 250 }))
        .when(Withdraw {
            wallet: "w".into(),
            cents: 750,
        })
        .await
        .then_expect_events(events![Withdrawn { cents: 750 }]);
    assert_eq!(wallet.cents, 0);

    let projected = ProjectionTest::<Totals>::new()
        .given_stored(("wallet", "w-1"), "deposit.made", 1, json!({ "amount": 1 }))
        .given_stored(
            ("wallet", "w-1"),
            "wallet.deposited",
            2,
            json!({ "cents": 5 }),
        )
        .given(
            ("wallet", "w-2"),
            Deposited {
                cents: 7,
                currency: "EUR".into(),
            },
        )
        .then_expect(AllTotals, totals(&[("w-1", 105), ("w-2", 7)]));
    assert_eq!(projected.query(AllTotals).len(), 2);
}

#[test]
#[should_panic(
    expected = "stored event `deposit.made` version 1 does not decode: event `deposit.made` has schema version 1, and its upcaster from version 1 failed: field `amount` is missing"
)]
fn the_test_kit_says_why_a_stored_event_does_not_decode() {
    let _ = AggregateTest::<Wallet>::new().given_stored("deposit.made", 1, json!({ "euros": 5 }));
}

// ---- checks when the engine is built ------------------------------------------------

static GAPPED: cqrs_core::registry::EventDescriptor = cqrs_core::registry::EventDescriptor {
    name: "gapped",
    version: 4,
    rust_type: "by_hand::Gapped",
    aliases: &[],
    upcasts: &[1, 3],
    shape: "unit",
};

static BY_HAND: cqrs_core::registry::AggregateDescriptor =
    cqrs_core::registry::AggregateDescriptor {
        name: "by_hand",
        rust_type: "by_hand::ByHand",
        events: &[GAPPED_COPY],
        commands: &[],
        snapshot_every: None,
        services_type: "()",
        services_type_id: unit_type,
    };

const GAPPED_COPY: cqrs_core::registry::EventDescriptor = cqrs_core::registry::EventDescriptor {
    name: "gapped",
    version: 4,
    rust_type: "by_hand::Gapped",
    aliases: &[],
    upcasts: &[1, 3],
    shape: "unit",
};

fn unit_type() -> std::any::TypeId {
    std::any::TypeId::of::<()>()
}

/// The derive refuses a gap in an event's upcasters; a registry built by
/// hand is checked when the engine is built.
#[tokio::test]
async fn a_gap_in_an_upcaster_chain_is_refused_when_the_engine_is_built() {
    let mut registry = Registry::new();
    registry.add(cqrs_core::registry::Registration::Aggregate(&BY_HAND));
    registry.add(cqrs_core::registry::Registration::Event(&GAPPED));
    let refused = Engine::builder()
        .registry(registry)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::Registry(RegistryError::UpcastGap {
                event: "gapped",
                missing: 2,
                version: 4,
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains(
            "event `gapped` (`by_hand::Gapped`) is at version 4 but has no upcaster from version 2"
        ),
        "{refused}"
    );
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "other.deposited", aliases("wallet.deposited"))]
struct Impostor;

/// An alias is a name: another event under it is a duplicate, naming both.
#[tokio::test]
async fn an_alias_that_is_another_events_name_is_refused_when_the_engine_is_built() {
    let refused = Engine::builder()
        .registry(registry().register::<Impostor>())
        .build()
        .await
        .unwrap_err();
    let text = refused.to_string();
    assert!(
        matches!(
            refused,
            Error::Registry(RegistryError::Duplicate {
                kind: "event",
                name: "wallet.deposited",
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(
        text.contains("Impostor") && text.contains("Deposited"),
        "{text}"
    );
}

/// Old versions and old names that reach a read side over NATS JetStream
/// are upcast there as in the write process: the relay sends what is
/// stored, the read side's registry reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_versions_are_upcast_on_a_read_side_over_jetstream() {
    use cqrs_core::ReadSide;
    use cqrs_core::nats::{JetStream, JetStreamOptions};
    use cqrs_core::subscription::RelayOptions;

    let Some(nats) = cqrs_tests::nats::TestNats::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("events.db")).unwrap());
    history(&*store, "w-1").await;
    let js = JetStream::connect(&nats.url(), JetStreamOptions::new())
        .await
        .unwrap();
    let app = Engine::builder()
        .shared_store(Arc::clone(&store))
        .registry(registry())
        .relay("relay", js.sink(), RelayOptions::new())
        .build()
        .await
        .unwrap();
    let receipt = app
        .execute(Deposit {
            wallet: "w-1".into(),
            cents: 9,
        })
        .await
        .unwrap();
    let reads = ReadSide::builder()
        .source(js.source("wallets"))
        .registry(registry())
        .read_store(SqliteStore::open(dir.path().join("reads.db")).unwrap())
        .build()
        .await
        .unwrap();
    let remote = reads
        .query(AllTotals)
        .after(&receipt)
        .timeout(PATIENCE)
        .await
        .unwrap();
    assert_eq!(remote, totals(&[("w-1", 760)]));
    let rebuilt = reads
        .rebuild("wallet.totals")
        .await
        .unwrap()
        .finished()
        .await;
    assert!(rebuilt.is_ok(), "{rebuilt:?}");
    assert_eq!(
        reads.query(AllTotals).await.unwrap(),
        totals(&[("w-1", 760)])
    );
}
