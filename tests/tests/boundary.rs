//! Input at the boundary, on every store (issue 14, items 8 and 9): stream
//! ids follow one rule checked before any I/O, and dispatch by name refuses
//! what it cannot take whole (unknown fields, arrays for structs, bodies
//! over the size limit) with a message that says where and why.

use std::sync::Arc;
use std::time::Instant;

use cqrs_core::prelude::*;
use cqrs_core::store::Store;
use cqrs_core::{BodyError, Error, Registry, StoreError, StreamId, StreamIdPart, StreamIdRule};
use cqrs_tests::on_every_store;
use cqrs_tests::stores::TestStore;
use serde_json::json;

/// Money came in.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "boundary.deposited")]
struct Deposited {
    amount: u64,
    memo: Option<String>,
}

/// Pay money in, with an optional memo.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Till)]
struct Deposit {
    #[id]
    account: String,
    amount: u64,
    #[serde(default)]
    memo: Option<String>,
}

/// Pay money in, from a client that sends more than the command needs.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Till, allow_unknown_fields)]
struct LooseDeposit {
    #[id]
    account: String,
    amount: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[derive(Aggregate, Default, Debug)]
#[aggregate(name = "till", events(Deposited), commands(Deposit, LooseDeposit), error = Never)]
struct Till {
    balance: u64,
}

impl Apply<Deposited> for Till {
    fn apply(&mut self, e: &Deposited) {
        self.balance += e.amount;
    }
}

impl Handle<Deposit> for Till {
    fn handle(&self, c: &Deposit) -> Result<Events<Self>, Never> {
        Ok(events![Deposited {
            amount: c.amount,
            memo: c.memo.clone(),
        }])
    }
}

impl Handle<LooseDeposit> for Till {
    fn handle(&self, c: &LooseDeposit) -> Result<Events<Self>, Never> {
        Ok(events![Deposited {
            amount: c.amount,
            memo: None,
        }])
    }
}

/// The total of every deposit.
#[derive(Projection, Default, Debug)]
#[projection(name = "boundary.total", events(Deposited))]
struct Total {
    cents: u64,
}

impl Project<Deposited> for Total {
    fn project(&mut self, e: &Envelope<Deposited>) {
        self.cents += e.amount;
    }
}

/// The total: a unit query.
#[derive(Query, Deserialize, Debug)]
#[query(projection = Total, output = u64)]
struct Sum;

/// The total, if at least `min`.
#[derive(Query, Deserialize, Debug)]
#[query(projection = Total, output = Option<u64>)]
struct SumAtLeast {
    min: u64,
}

/// The total, for clients that send more than the query needs.
#[derive(Query, Deserialize, Debug)]
#[query(projection = Total, output = u64, allow_unknown_fields)]
struct LooseSum {}

impl Answer<Sum> for Total {
    fn answer(&self, _: &Sum) -> u64 {
        self.cents
    }
}

impl Answer<SumAtLeast> for Total {
    fn answer(&self, q: &SumAtLeast) -> Option<u64> {
        (self.cents >= q.min).then_some(self.cents)
    }
}

impl Answer<LooseSum> for Total {
    fn answer(&self, _: &LooseSum) -> u64 {
        self.cents
    }
}

fn registry() -> Registry {
    Registry::new()
        .register::<Deposited>()
        .register::<Deposit>()
        .register::<LooseDeposit>()
        .register::<Till>()
        .register::<Total>()
        .register::<Sum>()
        .register::<SumAtLeast>()
        .register::<LooseSum>()
}

async fn engine(store: &Arc<dyn Store>) -> Engine {
    Engine::builder()
        .shared_store(Arc::clone(store))
        .registry(registry())
        .build()
        .await
        .unwrap()
}

/// The reason of an `InvalidBody`, or a panic naming what came instead.
fn body_error<T: std::fmt::Debug>(result: Result<T, Error>) -> (BodyError, String) {
    match result {
        Err(e @ Error::InvalidBody { .. }) => {
            let message = e.to_string();
            let Error::InvalidBody { reason, .. } = e else {
                unreachable!()
            };
            (reason, message)
        }
        other => panic!("expected InvalidBody, got {other:?}"),
    }
}

async fn stream_ids_are_checked_before_any_io(test: TestStore) {
    let store = test.store;
    let app = engine(&store).await;
    let long = "x".repeat(10_000);
    let cases = [
        (String::new(), StreamIdRule::Empty),
        (
            String::from("a\0b"),
            StreamIdRule::ControlCharacter { code: 0, at: 1 },
        ),
        (long.clone(), StreamIdRule::TooLong { len: long.len() }),
    ];
    for (account, rule) in cases {
        let refused = app
            .execute(Deposit {
                account: account.clone(),
                amount: 1,
                memo: None,
            })
            .await
            .unwrap_err();
        match &refused {
            CommandError::Engine(Error::Store(StoreError::InvalidStreamId(invalid))) => {
                assert_eq!((invalid.part, invalid.rule), (StreamIdPart::Id, rule));
            }
            other => panic!("{account:?}: expected InvalidStreamId, got {other:?}"),
        }
        let message = refused.to_string();
        assert!(message.len() < 400, "a long message: {message}");
        // The same through dispatch by name.
        let by_name = app
            .execute_json("Deposit", json!({ "account": account, "amount": 1 }))
            .await
            .unwrap_err();
        assert!(
            matches!(by_name, Error::Store(StoreError::InvalidStreamId(_))),
            "{by_name:?}"
        );
    }
    assert_eq!(store.head().await.unwrap(), 0, "nothing was stored");
    let at_the_limit = "y".repeat(StreamId::MAX_LEN);
    let receipt = app
        .execute(Deposit {
            account: at_the_limit,
            amount: 1,
            memo: None,
        })
        .await
        .unwrap();
    assert_eq!(receipt.version, 1);
}

async fn a_huge_id_by_name_is_refused_by_the_size_limit_without_copies(test: TestStore) {
    let app = engine(&test.store).await;
    let huge = "z".repeat(50 * 1024 * 1024);
    let body = json!({ "account": huge, "amount": 1 });
    let started = Instant::now();
    let (reason, message) = body_error(app.execute_json("Deposit", body).await);
    assert!(
        matches!(reason, BodyError::TooLarge { limit: 1_048_576 }),
        "{reason:?}"
    );
    assert!(message.len() < 200, "{message}");
    // Counted up to the limit, not through 50 MB.
    assert!(
        started.elapsed().as_millis() < 500,
        "{:?}",
        started.elapsed()
    );
    let text = format!(r#"{{"account":"{huge}","amount":1}}"#);
    let (reason, _) = body_error(app.execute_json_bytes("Deposit", text.as_bytes()).await);
    assert!(matches!(reason, BodyError::TooLarge { .. }), "{reason:?}");
    assert_eq!(test.store.head().await.unwrap(), 0);
}

async fn unknown_fields_are_refused_unless_the_type_allows_them(test: TestStore) {
    let app = engine(&test.store).await;
    // A misspelt optional field, and a misspelt second copy of a required
    // one: both used to be dropped and the command to succeed.
    let bodies = [
        (
            json!({ "account": "a", "amount": 100, "mmeo": "rent" }),
            "mmeo",
        ),
        (
            json!({ "account": "a", "amount": 100, "amuont": 500 }),
            "amuont",
        ),
        // The real field missing: the misspelling is what is reported.
        (json!({ "account": "a", "amuont": 500 }), "amuont"),
    ];
    for (body, field) in bodies {
        let (reason, message) = body_error(app.execute_json("Deposit", body).await);
        match reason {
            BodyError::UnknownFields { fields, expected } => {
                assert_eq!(fields, [field]);
                assert_eq!(expected, Some(&["account", "amount", "memo"][..]));
            }
            other => panic!("expected UnknownFields, got {other:?}"),
        }
        assert!(
            message.starts_with(&format!(
                "body of command `Deposit` refused: unknown field `{field}` (its fields: `account`, `amount`, `memo`)"
            )),
            "{message}"
        );
    }
    let text = br#"{"account": "a", "amount": 1, "memo": "x", "extra": {"deep": 1}}"#;
    let (_, message) = body_error(app.execute_json_bytes("Deposit", text).await);
    assert!(message.contains("unknown field `extra`"), "{message}");
    assert_eq!(test.store.head().await.unwrap(), 0, "nothing was stored");

    // The opt-out, for a command and a query.
    let loose = json!({ "account": "a", "amount": 7, "channel": "web" });
    let receipt = app.execute_json("LooseDeposit", loose).await.unwrap();
    assert_eq!(receipt.version, 1);
    app.query(Sum).after(&receipt).await.unwrap();
    let answer = app
        .query_json("LooseSum", json!({ "page": 2 }))
        .await
        .unwrap();
    assert_eq!(answer, json!(7));
    let (reason, _) = body_error(
        app.query_json("SumAtLeast", json!({ "min": 1, "max": 2 }))
            .await,
    );
    assert!(
        matches!(reason, BodyError::UnknownFields { .. }),
        "{reason:?}"
    );
}

async fn a_struct_body_must_be_an_object(test: TestStore) {
    let app = engine(&test.store).await;
    for body in [json!(["a", 5]), json!("a"), json!(5), json!(null)] {
        let (reason, message) = body_error(app.execute_json("Deposit", body.clone()).await);
        assert!(matches!(reason, BodyError::Decode { .. }), "{reason:?}");
        assert!(
            message.contains("expected a JSON object with the fields of `Deposit`"),
            "{body}: {message}"
        );
    }
    let (_, message) = body_error(app.execute_json_bytes("Deposit", br#"["a", 5]"#).await);
    assert!(message.contains("expected a JSON object"), "{message}");
    let (_, message) = body_error(app.query_json("SumAtLeast", json!([1])).await);
    assert!(message.contains("expected a JSON object"), "{message}");
    assert_eq!(test.store.head().await.unwrap(), 0, "nothing was stored");
}

async fn a_unit_query_takes_an_empty_object(test: TestStore) {
    let app = engine(&test.store).await;
    let receipt = app
        .execute_json("Deposit", json!({ "account": "a", "amount": 3 }))
        .await
        .unwrap();
    app.query(Sum).after(&receipt).await.unwrap();
    assert_eq!(app.query_json("Sum", json!({})).await.unwrap(), json!(3));
    assert_eq!(app.query_json("Sum", json!(null)).await.unwrap(), json!(3));
    assert_eq!(
        app.query_json_bytes("Sum", b" {} ").await.unwrap(),
        json!(3)
    );
    let (_, message) = body_error(app.query_json("Sum", json!({ "x": 1 })).await);
    assert!(message.contains("unknown field `x`"), "{message}");
}

async fn the_message_says_where_and_why(test: TestStore) {
    let app = engine(&test.store).await;
    let (reason, message) = body_error(
        app.execute_json("Deposit", json!({ "account": 5, "amount": 5 }))
            .await,
    );
    assert_eq!(
        message,
        "body of command `Deposit` refused: at `account`: invalid type: integer `5`, expected a string"
    );
    assert!(
        matches!(&reason, BodyError::Decode { path, .. } if path == "account"),
        "{reason:?}"
    );
    let (_, message) = body_error(
        app.execute_json_bytes("Deposit", br#"{"account": "a", "amount": -1}"#)
            .await,
    );
    assert!(
        message.contains("at `amount`: invalid value: integer `-1`, expected u64"),
        "{message}"
    );
    let (_, message) = body_error(app.execute_json_bytes("Deposit", b"{\"account\": ").await);
    assert!(message.contains("EOF while parsing"), "{message}");
    let (_, message) = body_error(app.execute_json_bytes("Deposit", b"not json").await);
    assert!(
        message.contains("expected ident at line 1 column 2"),
        "{message}"
    );
    let (_, message) = body_error(app.query_json("SumAtLeast", json!({ "min": "lots" })).await);
    assert!(
        message.starts_with("body of query `SumAtLeast` refused: at `min`: invalid type: string"),
        "{message}"
    );
    // A long unknown command name is shortened in the message and the error.
    let name = "N".repeat(100_000);
    let unknown = app.execute_json(&name, json!({})).await.unwrap_err();
    assert!(unknown.to_string().len() < 300, "{unknown}");
    assert_eq!(test.store.head().await.unwrap(), 0);
}

async fn the_body_limit_is_configurable(test: TestStore) {
    let app = Engine::builder()
        .shared_store(Arc::clone(&test.store))
        .registry(registry())
        .max_body_size(64)
        .build()
        .await
        .unwrap();
    let small = json!({ "account": "a", "amount": 1 });
    assert!(small.to_string().len() <= 64);
    app.execute_json("Deposit", small.clone()).await.unwrap();
    app.execute_json_bytes("Deposit", small.to_string().as_bytes())
        .await
        .unwrap();
    let memo = "m".repeat(64);
    let large = json!({ "account": "a", "amount": 1, "memo": memo });
    let (reason, message) = body_error(app.execute_json("Deposit", large.clone()).await);
    assert!(
        matches!(reason, BodyError::TooLarge { limit: 64 }),
        "{reason:?}"
    );
    assert_eq!(
        message,
        "body of command `Deposit` refused: the body is larger than the limit of 64 bytes"
    );
    let (reason, _) = body_error(
        app.execute_json_bytes("Deposit", large.to_string().as_bytes())
            .await,
    );
    assert!(
        matches!(reason, BodyError::TooLarge { limit: 64 }),
        "{reason:?}"
    );
    let (reason, _) = body_error(app.query_json("SumAtLeast", json!({ "min": memo })).await);
    assert!(
        matches!(reason, BodyError::TooLarge { limit: 64 }),
        "{reason:?}"
    );
    assert_eq!(test.store.head().await.unwrap(), 2);
}

on_every_store!(
    stream_ids_are_checked_before_any_io,
    a_huge_id_by_name_is_refused_by_the_size_limit_without_copies,
    unknown_fields_are_refused_unless_the_type_allows_them,
    a_struct_body_must_be_an_object,
    a_unit_query_takes_an_empty_object,
    the_message_says_where_and_why,
    the_body_limit_is_configurable,
);
