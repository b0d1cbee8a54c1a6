//! The bank's transfer as a process manager: one command moves the money,
//! the manager credits or refunds, deadlines fire once and only when due,
//! after a restart too, and a manager that reads the log again sends
//! nothing twice. Also its test kit, including that wrong expectations
//! fail.

// Amounts are cents, grouped as money: `100_00` is 100.00.
#![allow(clippy::inconsistent_digit_grouping)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use cqrs_core::process::{InstanceStatus, Issued, ManualClock, ProcessTest};
use cqrs_core::store::{LogFilter, SqliteStore, Store};
use cqrs_core::{Aggregate, Engine, Error, Metadata, RecordedEvent};
use cqrs_examples::bank::*;
use cqrs_tests::transfers::{ended, instance_when};

async fn bank_on(store: Arc<dyn Store>, clock: &ManualClock) -> Engine {
    Engine::builder()
        .shared_store(store)
        .clock(clock.clone())
        .services(BankServices::default())
        .build()
        .await
        .expect("the bank domain registers cleanly")
}

async fn open(app: &Engine, id: &str, cents: u64) {
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

async fn send(app: &Engine, from: &str, to: &str, id: &str, cents: u64) {
    app.execute(SendTransfer {
        from: from.into(),
        to: to.into(),
        transfer: id.into(),
        amount: cents,
    })
    .await
    .unwrap();
}

async fn whole_log(store: &dyn Store) -> Vec<Arc<RecordedEvent>> {
    store
        .read_log(0, &LogFilter::all(), 100_000)
        .await
        .unwrap()
        .events
}

fn named<'a>(log: &'a [Arc<RecordedEvent>], name: &str) -> Vec<&'a Arc<RecordedEvent>> {
    log.iter().filter(|e| &*e.event_name == name).collect()
}

/// The balance of account `id`, folded from its stream.
async fn balance(app: &Engine, id: &str) -> u64 {
    let mut account = Account::default();
    for event in app.events::<Account>(id).await.unwrap() {
        account.apply_event(&event);
    }
    account.balance()
}

#[tokio::test]
async fn one_command_moves_the_money_and_each_command_carries_its_cause() {
    let clock = ManualClock::new();
    let app = bank_on(Arc::new(cqrs_core::MemoryStore::new()), &clock).await;
    open(&app, "ada", 100_00).await;
    open(&app, "bob", 0).await;
    let correlation = uuid::Uuid::new_v4();
    app.execute_with(
        SendTransfer {
            from: "ada".into(),
            to: "bob".into(),
            transfer: "t-1".into(),
            amount: 40_00,
        },
        Metadata::new().correlation_id(correlation),
    )
    .await
    .unwrap();
    let instance = ended(&app, "t-1").await;
    assert_eq!(instance.status, InstanceStatus::Completed);
    assert_eq!(
        (balance(&app, "ada").await, balance(&app, "bob").await),
        (60_00, 40_00)
    );

    let log = whole_log(&**app.store()).await;
    let sent = named(&log, "account.transfer_sent")[0];
    let received = named(&log, "account.transfer_received")[0];
    assert_eq!(received.stream.id, "bob");
    assert_eq!(received.metadata.causation_id, Some(sent.event_id));
    assert_eq!(received.metadata.correlation_id, Some(correlation));
    assert_eq!(received.metadata.actor.as_deref(), Some("process:transfer"));
    let key = format!("transfer/t-1/{}/0", sent.event_id);
    assert_eq!(received.metadata.idempotency_key.as_deref(), Some(&*key));

    // The history says which event caused which command.
    let inputs: Vec<&str> = instance.history.iter().map(|s| s.input.as_str()).collect();
    assert_eq!(
        inputs,
        ["account.transfer_sent", "account.transfer_received"]
    );
    let credit = &instance.history[0].commands[0];
    assert_eq!(instance.history[0].event_id, sent.event_id);
    assert_eq!(
        credit.issued,
        Issued::of(&ReceiveTransfer {
            to: "bob".into(),
            from: "ada".into(),
            transfer: "t-1".into(),
            amount: 40_00,
        })
    );
    assert_eq!(credit.idempotency_key, key);
    assert_eq!(credit.position, Some(received.position));
    assert_eq!(instance.state["to"], "bob");

    let status = app.process_status("transfer").unwrap();
    assert_eq!((status.running, status.completed, status.failed), (0, 1, 0));
    assert!(matches!(
        app.process_instance("payments", "t-1").await,
        Err(Error::UnknownProcess { .. })
    ));
    assert_eq!(
        app.process_instance("transfer", "nope").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_closed_account_refuses_the_credit_and_the_sender_is_refunded_once() {
    let clock = ManualClock::new();
    let app = bank_on(Arc::new(cqrs_core::MemoryStore::new()), &clock).await;
    open(&app, "ada", 100_00).await;
    open(&app, "carol", 0).await;
    app.execute(CloseAccount {
        account: "carol".into(),
    })
    .await
    .unwrap();
    send(&app, "ada", "carol", "t-2", 30_00).await;
    let instance = ended(&app, "t-2").await;
    assert_eq!(instance.status, InstanceStatus::Completed);
    let commands = &instance.history[0].commands;
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert_eq!(commands[0].issued.command, "ReceiveTransfer");
    assert_eq!(commands[0].refused.as_deref(), Some("account is closed"));
    assert_eq!(commands[1].issued.command, "RefundTransfer");
    assert_eq!(commands[1].refused, None);
    assert_eq!(
        (balance(&app, "ada").await, balance(&app, "carol").await),
        (100_00, 0)
    );
    let log = whole_log(&**app.store()).await;
    assert_eq!(named(&log, "account.transfer_refunded").len(), 1);
    assert_eq!(named(&log, "account.transfer_received").len(), 0);
}

#[tokio::test]
async fn a_held_transfer_is_refunded_when_its_deadline_passes_and_not_before() {
    let clock = ManualClock::new();
    let app = bank_on(Arc::new(cqrs_core::MemoryStore::new()), &clock).await;
    open(&app, "ada", 1_000_00).await;
    open(&app, "bob", 0).await;
    send(&app, "ada", "bob", "big", 500_00).await;
    let held = instance_when(&app, "big", |i| !i.deadlines.is_empty()).await;
    assert_eq!(held.status, InstanceStatus::Running);
    assert_eq!(held.deadlines[0].name, "review");
    assert_eq!(app.process_status("transfer").unwrap().deadlines, 1);

    clock.advance(REVIEW_WINDOW - Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = whole_log(&**app.store()).await;
    assert!(named(&log, "$deadline").is_empty(), "fired early");
    assert_eq!(balance(&app, "ada").await, 500_00);

    clock.advance(Duration::from_secs(1));
    let instance = ended(&app, "big").await;
    assert_eq!(instance.status, InstanceStatus::Completed);
    assert_eq!(instance.history[1].input, "deadline:review");
    assert_eq!(
        instance.history[1].commands[0].issued.command,
        "RefundTransfer"
    );
    assert_eq!(
        (balance(&app, "ada").await, balance(&app, "bob").await),
        (1_000_00, 0)
    );

    // Time goes on: nothing fires again.
    clock.advance(REVIEW_WINDOW * 3);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = whole_log(&**app.store()).await;
    assert_eq!(named(&log, "$deadline").len(), 1);
    assert_eq!(named(&log, "account.transfer_refunded").len(), 1);
    assert_eq!(app.process_status("transfer").unwrap().deadlines, 0);
}

#[tokio::test]
async fn an_approval_cancels_the_deadline() {
    let clock = ManualClock::new();
    let app = bank_on(Arc::new(cqrs_core::MemoryStore::new()), &clock).await;
    open(&app, "ada", 1_000_00).await;
    open(&app, "bob", 0).await;
    send(&app, "ada", "bob", "big", 500_00).await;
    instance_when(&app, "big", |i| !i.deadlines.is_empty()).await;
    app.execute(ApproveTransfer {
        from: "ada".into(),
        transfer: "big".into(),
    })
    .await
    .unwrap();
    let instance = ended(&app, "big").await;
    assert_eq!(instance.status, InstanceStatus::Completed);
    assert!(instance.deadlines.is_empty());
    clock.advance(REVIEW_WINDOW * 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = whole_log(&**app.store()).await;
    assert!(
        named(&log, "$deadline").is_empty(),
        "a cancelled deadline fired"
    );
    assert!(named(&log, "account.transfer_refunded").is_empty());
    assert_eq!(
        (balance(&app, "ada").await, balance(&app, "bob").await),
        (500_00, 500_00)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_set_before_a_restart_fires_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    let clock = ManualClock::new();
    {
        let app = bank_on(Arc::new(SqliteStore::open(&path).unwrap()), &clock).await;
        open(&app, "ada", 1_000_00).await;
        open(&app, "bob", 0).await;
        send(&app, "ada", "bob", "big", 500_00).await;
        instance_when(&app, "big", |i| !i.deadlines.is_empty()).await;
        app.stop().await;
    }
    // A new process, later.
    clock.advance(REVIEW_WINDOW * 2);
    let app = bank_on(Arc::new(SqliteStore::open(&path).unwrap()), &clock).await;
    let instance = ended(&app, "big").await;
    assert_eq!(instance.history[1].input, "deadline:review");
    assert_eq!(balance(&app, "ada").await, 1_000_00);
    let log = whole_log(&**app.store()).await;
    assert_eq!(named(&log, "$deadline").len(), 1);
    assert_eq!(named(&log, "account.transfer_refunded").len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_that_reads_the_whole_log_again_sends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    let clock = ManualClock::new();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let app = bank_on(Arc::clone(&store), &clock).await;
    open(&app, "ada", 10_000_00).await;
    open(&app, "bob", 0).await;
    open(&app, "carol", 0).await;
    app.execute(CloseAccount {
        account: "carol".into(),
    })
    .await
    .unwrap();
    for n in 0..30 {
        let (to, cents) = match n % 3 {
            0 => ("bob", 10_00),
            1 => ("carol", 20_00),
            _ => ("bob", 300_00),
        };
        send(&app, "ada", to, &format!("t-{n}"), cents).await;
    }
    for n in (2..30).step_by(3) {
        instance_when(&app, &format!("t-{n}"), |i| !i.deadlines.is_empty()).await;
    }
    clock.advance(REVIEW_WINDOW);
    for n in 0..30 {
        ended(&app, &format!("t-{n}")).await;
    }
    app.stop().await;
    drop(app);
    let head = store.head().await.unwrap();
    let balances = (
        balance_in(&store, "ada").await,
        balance_in(&store, "bob").await,
    );
    assert_eq!(balances, (10_000_00 - 10 * 10_00, 10 * 10_00));

    // As after a crash that lost every commit of the manager: it reads
    // the log from the start and reacts to every event again.
    store
        .reset_read_model("process:transfer", None)
        .await
        .unwrap();
    let app = bank_on(Arc::clone(&store), &clock).await;
    for n in 0..30 {
        ended(&app, &format!("t-{n}")).await;
    }
    let status = app.process_status("transfer").unwrap();
    assert_eq!(
        (status.completed, status.running, status.failed),
        (30, 0, 0)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.head().await.unwrap(), head, "a command ran twice");
    assert_eq!(
        (balance(&app, "ada").await, balance(&app, "bob").await),
        balances
    );
    app.stop().await;
}

async fn balance_in(store: &Arc<dyn Store>, id: &str) -> u64 {
    let app = Engine::builder()
        .shared_store(Arc::clone(store))
        .without_projections()
        .without_process_managers()
        .services(BankServices::default())
        .build()
        .await
        .unwrap();
    balance(&app, id).await
}

// ---- the test kit -------------------------------------------------------------

fn sent(to: &str, id: &str, cents: u64) -> TransferSent {
    TransferSent {
        transfer: id.into(),
        to: to.into(),
        amount: cents,
    }
}

fn credit(id: &str, cents: u64) -> Issued {
    Issued::of(&ReceiveTransfer {
        to: "bob".into(),
        from: "ada".into(),
        transfer: id.into(),
        amount: cents,
    })
}

fn refund(id: &str, cents: u64, reason: &str) -> Issued {
    Issued::of(&RefundTransfer {
        from: "ada".into(),
        transfer: id.into(),
        amount: cents,
        reason: reason.into(),
    })
}

#[test]
fn the_kit_expects_commands_deadlines_and_what_the_clock_brings() {
    ProcessTest::<Transfer>::new()
        .given(("account", "ada"), sent("bob", "t", 10_00))
        .then_expect_commands([credit("t", 10_00)])
        .then_expect_no_deadline("review")
        .then_expect_status(InstanceStatus::Running)
        .given(
            ("account", "bob"),
            TransferReceived {
                transfer: "t".into(),
                from: "ada".into(),
                amount: 10_00,
            },
        )
        .then_expect_no_commands()
        .then_expect_status(InstanceStatus::Completed);

    let kit = ProcessTest::<Transfer>::new()
        .given(("account", "ada"), sent("bob", "big", 500_00))
        .then_expect_no_commands()
        .then_expect_deadline("review", REVIEW_WINDOW)
        .advance(REVIEW_WINDOW - Duration::from_secs(1))
        .then_expect_no_commands()
        .advance(Duration::from_secs(1))
        .then_expect_commands([refund(
            "big",
            500_00,
            "not approved within the review window",
        )])
        .then_expect_no_deadline("review")
        .advance(REVIEW_WINDOW)
        .then_expect_no_commands();
    assert!(!kit.instance("big").unwrap().held);
}

#[test]
fn completing_an_instance_cancels_its_deadlines() {
    ProcessTest::<Transfer>::new()
        .given(("account", "ada"), sent("bob", "big", 500_00))
        .then_expect_deadline("review", REVIEW_WINDOW)
        // Refunded by hand, say: the instance completes.
        .given(
            ("account", "ada"),
            TransferRefunded {
                transfer: "big".into(),
                amount: 500_00,
                reason: "by hand".into(),
            },
        )
        .then_expect_status(InstanceStatus::Completed)
        .then_expect_no_deadline("review")
        .advance(REVIEW_WINDOW * 2)
        .then_expect_no_commands();
}

#[test]
fn the_kit_delivers_a_refusal_to_recover_and_fails_an_instance_without_one() {
    let reason = "the receiving account refused it: account is closed";
    let closed = ReceiveTransfer {
        to: "bob".into(),
        from: "ada".into(),
        transfer: "t".into(),
        amount: 10_00,
    };
    ProcessTest::<Transfer>::new()
        .refuse(&closed, AccountError::Closed)
        .given(("account", "ada"), sent("bob", "t", 10_00))
        .then_expect_commands([credit("t", 10_00), refund("t", 10_00, reason)])
        .then_expect_status(InstanceStatus::Running);

    // `RefundTransfer` has no `Recover`: its refusal fails the instance.
    let refused_refund = RefundTransfer {
        from: "ada".into(),
        transfer: "t".into(),
        amount: 10_00,
        reason: reason.into(),
    };
    ProcessTest::<Transfer>::new()
        .refuse(&closed, AccountError::Closed)
        .refuse(&refused_refund, AccountError::NotOpen)
        .given(("account", "ada"), sent("bob", "t", 10_00))
        .then_expect_commands([credit("t", 10_00), refund("t", 10_00, reason)])
        .then_expect_status(InstanceStatus::Failed(String::from(
            "command `RefundTransfer` was refused: account is not open",
        )));
}

/// Runs `check` and says whether it panicked, without printing the panic.
fn fails(check: impl FnOnce()) -> bool {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let failed = catch_unwind(AssertUnwindSafe(check)).is_err();
    std::panic::set_hook(hook);
    failed
}

#[test]
fn wrong_expectations_fail_the_kit() {
    let given =
        || ProcessTest::<Transfer>::new().given(("account", "ada"), sent("bob", "t", 10_00));
    assert!(fails(|| {
        given().then_expect_commands([credit("t", 11_00)]);
    }));
    assert!(fails(|| {
        given().then_expect_no_commands();
    }));
    assert!(fails(|| {
        given().then_expect_commands([credit("t", 10_00), credit("t", 10_00)]);
    }));
    assert!(fails(|| {
        given().then_expect_deadline("review", REVIEW_WINDOW);
    }));
    assert!(fails(|| {
        given().then_expect_status(InstanceStatus::Completed);
    }));
    assert!(fails(|| {
        ProcessTest::<Transfer>::new()
            .given(("account", "ada"), sent("bob", "big", 500_00))
            .then_expect_deadline("review", REVIEW_WINDOW * 2);
    }));
    assert!(fails(|| {
        // An event the manager does not list.
        ProcessTest::<Transfer>::new().given(("account", "ada"), MoneyDeposited { amount: 1 });
    }));
    // And the right ones pass.
    assert!(!fails(|| {
        given().then_expect_commands([credit("t", 10_00)]);
    }));
}

/// A stored event the manager cannot read stops it, naming the event and
/// its position; restarted as it is, it stops there again; restarted once
/// the row is mended, it goes on and carries the transfer out.
#[tokio::test]
async fn a_manager_stops_on_an_event_it_cannot_read_and_says_where() {
    use cqrs_core::store::ExpectedVersion;
    use cqrs_core::{NewEvent, RunState, StreamId};
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.db");
    let app = bank_on(Arc::new(SqliteStore::open(&path).unwrap()), &clock).await;
    open(&app, "ada", 100_00).await;
    open(&app, "bob", 0).await;
    let bad = app
        .store()
        .append(
            &StreamId::new("account", "ada"),
            ExpectedVersion::Any,
            vec![NewEvent::new(
                "account.transfer_sent",
                br#"{"amount":"lots"}"#.to_vec(),
            )],
        )
        .await
        .unwrap();
    let mut status = app.process_status("transfer").unwrap();
    for _ in 0..2000 {
        if matches!(status.state, RunState::Failed(_)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        status = app.process_status("transfer").unwrap();
    }
    let RunState::Failed(reason) = &status.state else {
        panic!("the manager did not stop: {status:?}");
    };
    assert!(
        reason.contains("account.transfer_sent") && reason.contains(&bad.last_position.to_string()),
        "{reason}"
    );
    assert!(status.position < bad.last_position, "{status:?}");
    // Restarted, it reads the same event, and stops on it again.
    app.restart_process("transfer").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again = app.process_status("transfer").unwrap();
    assert!(matches!(again.state, RunState::Failed(_)), "{again:?}");

    // The operator mends the row; restarted, the manager goes on from it.
    let mended = rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE events SET payload = ?1 WHERE position = ?2",
            rusqlite::params![
                r#"{"transfer":"mended","to":"bob","amount":100}"#,
                bad.last_position as i64
            ],
        )
        .unwrap();
    assert_eq!(mended, 1);
    app.restart_process("transfer").await.unwrap();
    let transfer = ended(&app, "mended").await;
    assert_eq!(transfer.status, InstanceStatus::Completed);
    assert_eq!(balance(&app, "bob").await, 1_00);
    let status = app.process_status("transfer").unwrap();
    assert!(status.position >= bad.last_position, "{status:?}");
    assert!(!matches!(status.state, RunState::Failed(_)), "{status:?}");
    assert!(matches!(
        app.restart_process("nope").await,
        Err(Error::UnknownProcess { .. })
    ));
}
