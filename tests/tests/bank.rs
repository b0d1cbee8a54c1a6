//! End to end: the bank example's domain through the engine on the memory store.

// Amounts are cents, grouped as money: `100_00` is 100.00.
#![allow(clippy::inconsistent_digit_grouping)]

use std::time::Duration;

use cqrs_core::prelude::*;
use cqrs_core::store::LogFilter;
use cqrs_core::testing::{AggregateTest, ProjectionTest};
use cqrs_core::{Error, RunState, StreamId};
use cqrs_examples::bank::*;

async fn bank() -> Engine {
    Engine::builder()
        .services(BankServices {
            withdrawal_limit: 1_000_00,
        })
        .build()
        .await
        .expect("the bank domain registers cleanly")
}

async fn open_with(app: &Engine, id: &str, cents: u64) {
    app.execute(OpenAccount {
        account: id.into(),
        owner: format!("owner of {id}"),
    })
    .await
    .unwrap();
    if cents > 0 {
        app.execute(Deposit {
            account: id.into(),
            amount: cents,
        })
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn deposit_withdraw_and_read_your_writes() {
    let app = bank().await;
    open_with(&app, "a", 100_00).await;
    let r = app
        .execute(Withdraw {
            account: "a".into(),
            amount: 40_00,
        })
        .await
        .unwrap();
    assert_eq!(
        (&*r.aggregate, r.id.as_str(), r.version, r.events),
        ("account", "a", 3, 1)
    );
    assert_eq!(r.position, Some(3));
    assert_eq!(
        app.query(BalanceOf {
            account: "a".into()
        })
        .after(&r)
        .await
        .unwrap(),
        Some(60_00)
    );
}

#[tokio::test]
async fn overdraft_is_refused_with_the_domain_error_and_writes_nothing() {
    let app = bank().await;
    open_with(&app, "a", 10_00).await;
    let refused = app
        .execute(Withdraw {
            account: "a".into(),
            amount: 10_01,
        })
        .await;
    match refused {
        Err(CommandError::Domain(AccountError::InsufficientFunds { balance, requested })) => {
            assert_eq!((balance, requested), (10_00, 10_01));
        }
        other => panic!("expected InsufficientFunds, got {other:?}"),
    }
    let stream = app
        .store()
        .read_stream(&StreamId::new("account", "a"), 1)
        .await
        .unwrap();
    assert_eq!(stream.len(), 2, "a refused command appends nothing");
    // The aggregate still works after a refusal (its cached state was kept).
    let r = app
        .execute(Withdraw {
            account: "a".into(),
            amount: 10_00,
        })
        .await
        .unwrap();
    assert_eq!(
        app.query(BalanceOf {
            account: "a".into()
        })
        .after(&r)
        .await
        .unwrap(),
        Some(0)
    );
}

#[tokio::test]
async fn services_reach_async_handlers() {
    let app = bank().await;
    open_with(&app, "a", 5_000_00).await;
    let refused = app
        .execute(Withdraw {
            account: "a".into(),
            amount: 2_000_00,
        })
        .await;
    assert!(matches!(
        refused,
        Err(CommandError::Domain(AccountError::OverLimit {
            limit: 1_000_00,
            requested: 2_000_00
        }))
    ));
}

#[tokio::test]
async fn transfer_moves_money_between_two_aggregates() {
    let app = bank().await;
    open_with(&app, "a", 50_00).await;
    open_with(&app, "b", 0).await;
    app.execute(SendTransfer {
        from: "a".into(),
        to: "b".into(),
        transfer: "t".into(),
        amount: 20_00,
    })
    .await
    .unwrap();
    // The `transfer` process manager sends the credit.
    let transfer = cqrs_tests::transfers::ended(&app, "t").await;
    let position = transfer.history[0].commands[0]
        .position
        .expect("the transfer completes, credited");
    let all = app.query(AllAccounts).at_least(position).await.unwrap();
    assert_eq!(all["a"].balance, 30_00);
    assert_eq!(all["b"].balance, 20_00);
    let same = app
        .execute(SendTransfer {
            from: "a".into(),
            to: "a".into(),
            transfer: "u".into(),
            amount: 1,
        })
        .await;
    assert!(matches!(
        same,
        Err(CommandError::Domain(AccountError::SameAccount))
    ));
}

#[tokio::test]
async fn metadata_travels_with_every_event() {
    let app = bank().await;
    let correlation = uuid::Uuid::new_v4();
    let causation = uuid::Uuid::new_v4();
    let meta = Metadata::new()
        .correlation_id(correlation)
        .causation_id(causation)
        .actor("teller-7")
        .with("channel", "branch");
    app.execute_with(
        OpenAccount {
            account: "m".into(),
            owner: "M".into(),
        },
        meta.clone(),
    )
    .await
    .unwrap();
    let plain = app
        .execute(Deposit {
            account: "m".into(),
            amount: 1,
        })
        .await
        .unwrap();
    let events = app
        .store()
        .read_stream(&StreamId::new("account", "m"), 1)
        .await
        .unwrap();
    assert_eq!(events[0].metadata, meta);
    assert_ne!(events[0].event_id, events[1].event_id);
    // Without metadata, a correlation id is still generated.
    assert!(events[1].metadata.correlation_id.is_some());
    assert_eq!(events[1].metadata.actor, None);
    assert!(events[1].timestamp >= events[0].timestamp);
    assert_eq!(plain.version, 2);
}

#[tokio::test]
async fn dispatch_by_name_with_clear_errors() {
    let app = bank().await;
    let r = app
        .execute_json(
            "OpenAccount",
            serde_json::json!({ "account": "j", "owner": "J" }),
        )
        .await
        .unwrap();
    assert_eq!(r.version, 1);

    let unknown = app
        .execute_json("OpenAcount", serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, Error::UnknownCommand { name, known } if name == "OpenAcount" && known.contains(&"OpenAccount"))
    );
    assert!(
        unknown.to_string().contains("unknown command `OpenAcount`"),
        "{unknown}"
    );

    let bad = app
        .execute_json("Deposit", serde_json::json!({ "account": "j" }))
        .await
        .unwrap_err();
    assert!(
        matches!(
            bad,
            Error::InvalidBody {
                kind: "command",
                name: "Deposit",
                ..
            }
        ),
        "{bad}"
    );

    let refused = app
        .execute_json(
            "Withdraw",
            serde_json::json!({ "account": "j", "amount": 5 }),
        )
        .await;
    match refused {
        Err(Error::Domain(e)) => {
            assert_eq!(
                e.downcast_ref::<AccountError>(),
                Some(&AccountError::InsufficientFunds {
                    balance: 0,
                    requested: 5
                })
            );
        }
        other => panic!("expected a domain error, got {other:?}"),
    }

    let answer = app
        .query_json("BalanceOf", serde_json::json!({ "account": "nobody" }))
        .await
        .unwrap();
    assert_eq!(answer, serde_json::Value::Null);
    let unknown = app
        .query_json("Balance", serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::UnknownQuery { .. }));
    let bad = app
        .query_json("BalanceOf", serde_json::json!([1, 2]))
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::InvalidBody { kind: "query", .. }));
}

#[tokio::test]
async fn projection_status_shows_position_and_lag() {
    let app = bank().await;
    open_with(&app, "a", 1).await;
    let r = app
        .execute(Deposit {
            account: "a".into(),
            amount: 1,
        })
        .await
        .unwrap();
    app.query(BalanceOf {
        account: "a".into(),
    })
    .after(&r)
    .await
    .unwrap();
    let status = app.projection_status("balances").unwrap();
    assert_eq!((status.position, status.head, status.lag()), (3, 3, 0));
    assert_eq!(status.state, RunState::Live);
    assert_eq!(app.projections().len(), 1);
    assert!(app.projection_status("nope").is_none());
}

#[tokio::test]
async fn waiting_for_a_position_that_never_comes_times_out() {
    let app = bank().await;
    let err = app
        .query(BalanceOf {
            account: "a".into(),
        })
        .at_least(99)
        .timeout(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Timeout {
                projection: "balances",
                wanted: 99,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_projection_started_late_catches_up_from_the_log() {
    let store = MemoryStore::new();
    let writer = Engine::builder()
        .store(store.clone())
        .services(BankServices::default())
        .without_projections()
        .build()
        .await
        .unwrap();
    for i in 0..50 {
        open_with(&writer, &format!("acc-{i}"), 10).await;
    }
    let reader = Engine::builder()
        .store(store.clone())
        .services(BankServices::default())
        .build()
        .await
        .unwrap();
    let all = reader.query(AllAccounts).at_least(100).await.unwrap();
    assert_eq!(all.len(), 50);
    assert!(all.values().all(|a| a.balance == 10));
}

#[tokio::test]
async fn catalog_lists_the_domain() {
    let app = bank().await;
    let catalog = app.catalog();
    let names: Vec<_> = catalog
        .entries
        .iter()
        .map(|e| (e.kind.to_string(), e.name))
        .collect();
    for expected in [
        ("aggregate", "account"),
        ("event", "account.opened"),
        ("command", "Withdraw"),
        ("projection", "balances"),
        ("query", "BalanceOf"),
    ] {
        assert!(
            names.contains(&(expected.0.to_string(), expected.1)),
            "{expected:?} missing from\n{catalog}"
        );
    }
    let opened = catalog
        .entries
        .iter()
        .find(|e| e.name == "account.opened")
        .unwrap();
    assert_eq!((opened.version, opened.owner), (Some(1), Some("account")));
    let text = catalog.to_string();
    assert!(text.contains("account.withdrawn"), "{text}");
    let json = serde_json::to_value(&catalog).unwrap();
    assert!(json["entries"].as_array().unwrap().len() >= 14);
}

#[tokio::test]
async fn missing_services_is_a_build_error() {
    let err = Engine::builder().build().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Registry(cqrs_core::RegistryError::MissingServices {
                aggregate: "account",
                ..
            })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn snapshots_are_taken_and_used() {
    let store = MemoryStore::new();
    let app = Engine::builder()
        .store(store.clone())
        .services(BankServices::default())
        .cache_capacity(0)
        .build()
        .await
        .unwrap();
    open_with(&app, "s", 0).await;
    for _ in 0..249 {
        app.execute(Deposit {
            account: "s".into(),
            amount: 1,
        })
        .await
        .unwrap();
    }
    use cqrs_core::store::SnapshotStore;
    let snapshot = store
        .load_snapshot(&StreamId::new("account", "s"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.version, 200, "snapshot_every = 100");
    // Without a cache every command loads snapshot + tail; the result is exact.
    let r = app
        .execute(Withdraw {
            account: "s".into(),
            amount: 249,
        })
        .await
        .unwrap();
    assert_eq!(r.version, 251);
    let refused = app
        .execute(Withdraw {
            account: "s".into(),
            amount: 1,
        })
        .await;
    assert!(matches!(
        refused,
        Err(CommandError::Domain(AccountError::InsufficientFunds {
            balance: 0,
            ..
        }))
    ));
}

#[tokio::test]
async fn the_log_is_in_global_order() {
    let app = bank().await;
    open_with(&app, "x", 5).await;
    open_with(&app, "y", 5).await;
    let log = app
        .store()
        .read_log(0, &LogFilter::all(), 100)
        .await
        .unwrap();
    let positions: Vec<_> = log.events.iter().map(|e| e.position).collect();
    assert_eq!(positions, vec![1, 2, 3, 4]);
    let only_y = app
        .store()
        .read_log(0, &LogFilter::all().aggregates(["account"]), 100)
        .await
        .unwrap();
    assert_eq!(only_y.events.len(), 4);
}

// ---- the test kit, on the same domain ----

#[tokio::test]
async fn test_kit_given_when_then() {
    AggregateTest::<Account>::new()
        .with_services(BankServices::default())
        .given(AccountOpened { owner: "A".into() })
        .given(MoneyDeposited { amount: 10 })
        .when(Withdraw {
            account: "a".into(),
            amount: 4,
        })
        .await
        .then_expect_events(events![MoneyWithdrawn { amount: 4 }]);

    let state = AggregateTest::<Account>::new()
        .with_services(BankServices::default())
        .given(AccountOpened { owner: "A".into() })
        .when(Withdraw {
            account: "a".into(),
            amount: 4,
        })
        .await
        .then_expect_error(AccountError::InsufficientFunds {
            balance: 0,
            requested: 4,
        });
    assert_eq!(state.balance(), 0);

    AggregateTest::<Account>::new()
        .with_services(BankServices::default())
        .when(Deposit {
            account: "a".into(),
            amount: 4,
        })
        .await
        .then_expect_error_matching(|e| matches!(e, AccountError::NotOpen));
}

#[test]
fn test_kit_for_projections() {
    ProjectionTest::<Balances>::new()
        .given(("account", "a"), AccountOpened { owner: "A".into() })
        .given(("account", "a"), MoneyDeposited { amount: 7 })
        .given(
            ("account", "b"),
            TransferReceived {
                transfer: "t".into(),
                from: "a".into(),
                amount: 3,
            },
        )
        .then_expect(
            BalanceOf {
                account: "a".into(),
            },
            Some(7),
        )
        .then_expect(
            BalanceOf {
                account: "b".into(),
            },
            Some(3),
        )
        .then_expect(
            BalanceOf {
                account: "c".into(),
            },
            None,
        );
}

/// `given_all` and `then_expect_events` take an `events![..]` list and a
/// `Vec` of the event enum alike; and a wrong expectation fails the test.
#[tokio::test]
async fn test_kit_takes_both_event_forms_and_fails_on_a_wrong_expectation() {
    type Event = <Account as Aggregate>::Event;
    let history = vec![
        Event::from(AccountOpened { owner: "A".into() }),
        Event::from(MoneyDeposited { amount: 10 }),
    ];
    let withdraw = || Withdraw {
        account: "a".into(),
        amount: 4,
    };
    for given in [
        AggregateTest::<Account>::new().given_all(history.clone()),
        AggregateTest::<Account>::new().given_all(events![
            AccountOpened { owner: "A".into() },
            MoneyDeposited { amount: 10 }
        ]),
    ] {
        let state = given
            .with_services(BankServices::default())
            .when(withdraw())
            .await
            .then_expect_events(vec![Event::from(MoneyWithdrawn { amount: 4 })]);
        assert_eq!(state.balance(), 6);
    }

    let outcome = AggregateTest::<Account>::new()
        .with_services(BankServices::default())
        .given_all(history)
        .when(withdraw())
        .await;
    let wrong = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        outcome.then_expect_events(events![MoneyWithdrawn { amount: 5 }])
    }));
    let message = *wrong
        .expect_err("a wrong expectation passed")
        .downcast::<String>()
        .unwrap();
    assert!(message.contains("other events than expected"), "{message}");

    let refused = AggregateTest::<Account>::new()
        .with_services(BankServices::default())
        .when(withdraw())
        .await;
    let wrong = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        refused.then_expect_events(events![MoneyWithdrawn { amount: 4 }])
    }));
    assert!(
        wrong.is_err(),
        "events expected from a refused command passed"
    );
}

/// A handler that does not wait runs in a plain `#[test]`, without an
/// async runtime.
#[test]
fn test_kit_runs_a_sync_handler_without_a_runtime() {
    let state = AggregateTest::<Account>::new()
        .with_services(BankServices::default())
        .given(AccountOpened { owner: "A".into() })
        .when_now(Deposit {
            account: "a".into(),
            amount: 7,
        })
        .then_expect_events(events![MoneyDeposited { amount: 7 }]);
    assert_eq!(state.balance(), 7);
    let refused = std::panic::catch_unwind(|| {
        AggregateTest::<Account>::new()
            .with_services(BankServices::default())
            .given(AccountOpened { owner: "A".into() })
            .when_now(Deposit {
                account: "a".into(),
                amount: 7,
            })
            .then_expect_events(events![MoneyDeposited { amount: 8 }])
    });
    assert!(refused.is_err(), "a wrong expectation passed");
}
