//! Traces through the log (feature `otel`), exported to memory: a command
//! continues the trace its caller gave, its events carry its span's
//! context, the projection batch that applied them links to it, and the
//! command a process manager sends for one of them stays in its trace, also
//! when a deadline causes it.

// Amounts are cents, grouped as money: `100_00` is 100.00.
#![allow(clippy::inconsistent_digit_grouping)]

use std::sync::OnceLock;
use std::time::Duration;

use cqrs_core::process::{InstanceStatus, ManualClock};
use cqrs_core::store::LogFilter;
use cqrs_core::{Engine, Metadata, RecordedEvent};
use cqrs_examples::bank::*;
use cqrs_tests::transfers::{ended, instance_when};
use opentelemetry::trace::{SpanContext, SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt as _;

/// The caller's trace: what an HTTP client sends as `traceparent`.
const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// One exporter for the whole test binary: the subscriber is global, as the
/// engine's consumers run on the runtime's other threads.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bank")));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        exporter
    })
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

/// The exported spans once `found` picks one out (at most 10 s: a batch span
/// ends after its checkpoint is saved, a moment after its query answered).
async fn span_where(what: &str, found: impl Fn(&[SpanData]) -> Option<SpanData>) -> SpanData {
    for _ in 0..1000 {
        let spans = exporter().get_finished_spans().unwrap();
        if let Some(span) = found(&spans) {
            return span;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let names: Vec<_> = exporter()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .map(|s| format!("{} {:?}", s.name, s.attributes))
        .collect();
    panic!("no span {what} among {names:#?}");
}

fn command_span(spans: &[SpanData], command: &str, id: &str) -> Option<SpanData> {
    spans
        .iter()
        .find(|s| {
            s.name == "command"
                && attribute(s, "command").as_deref() == Some(command)
                && attribute(s, "id").as_deref() == Some(id)
        })
        .cloned()
}

fn links_to(span: &SpanData, to: &SpanContext) -> bool {
    span.links.iter().any(|l| {
        l.span_context.trace_id() == to.trace_id() && l.span_context.span_id() == to.span_id()
    })
}

/// The batch span of consumer `kind = name` (`projection`, `process`) that
/// links to `command`.
async fn batch_linked_to((kind, name): (&str, &str), command: &SpanContext) -> SpanData {
    let span_name = format!("{kind}_batch");
    let what = format!("{span_name} of `{name}` linked to {command:?}");
    span_where(&what, |spans| {
        spans
            .iter()
            .find(|s| {
                s.name == span_name
                    && attribute(s, kind).as_deref() == Some(name)
                    && links_to(s, command)
            })
            .cloned()
    })
    .await
}

fn traceparent_of(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

async fn events_of(app: &Engine, id: &str) -> Vec<std::sync::Arc<RecordedEvent>> {
    app.store()
        .read_log(0, &LogFilter::all(), 10_000)
        .await
        .unwrap()
        .events
        .into_iter()
        .filter(|e| e.stream.id.as_str() == id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commands_trace_reaches_the_projection_and_the_process_manager() {
    exporter();
    let clock = ManualClock::new();
    let app = Engine::builder()
        .services(BankServices::default())
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    for id in ["t-alice", "t-bob"] {
        app.execute(OpenAccount {
            account: id.into(),
            owner: id.into(),
        })
        .await
        .unwrap();
    }
    let receipt = app
        .execute_with(
            Deposit {
                account: "t-alice".into(),
                amount: 1_000_00,
            },
            Metadata::new().traceparent(CALLER),
        )
        .await
        .unwrap();
    assert_eq!(
        app.query(BalanceOf {
            account: "t-alice".into()
        })
        .after(&receipt)
        .await
        .unwrap(),
        Some(1_000_00)
    );

    // The command continues the caller's trace.
    let deposit = span_where("for the deposit", |s| command_span(s, "Deposit", "t-alice")).await;
    let caller_trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    assert_eq!(deposit.span_context.trace_id(), caller_trace);
    assert_eq!(
        deposit.parent_span_id,
        SpanId::from_hex("00f067aa0ba902b7").unwrap()
    );
    assert!(deposit.parent_span_is_remote);

    // Its event carries the command span's own context, not the caller's.
    let deposited = events_of(&app, "t-alice")
        .await
        .into_iter()
        .find(|e| e.event_name == "account.deposited")
        .unwrap();
    assert_eq!(
        deposited.metadata.traceparent.as_deref(),
        Some(traceparent_of(&deposit.span_context).as_str())
    );

    // The batch of `balances` that applied the event links to the command.
    let batch = batch_linked_to(("projection", "balances"), &deposit.span_context).await;
    let position = receipt.position.unwrap();
    let from: u64 = attribute(&batch, "from").unwrap().parse().unwrap();
    let through: u64 = attribute(&batch, "through").unwrap().parse().unwrap();
    assert!(
        from < position && position <= through,
        "the batch {from}..={through} holds position {position}"
    );
    // A batch is not a child of any one command: it has its own trace.
    assert_ne!(batch.span_context.trace_id(), caller_trace);

    // A transfer: the manager's batch links to `SendTransfer`, and the
    // credit it sends is a child of `SendTransfer`, in the same trace.
    app.execute(SendTransfer {
        from: "t-alice".into(),
        to: "t-bob".into(),
        transfer: "t-1".into(),
        amount: 30_00,
    })
    .await
    .unwrap();
    let send = span_where("for the transfer", |s| {
        command_span(s, "SendTransfer", "t-alice")
    })
    .await;
    let credit = span_where("for the credit", |s| {
        command_span(s, "ReceiveTransfer", "t-bob")
    })
    .await;
    assert_eq!(credit.span_context.trace_id(), send.span_context.trace_id());
    assert_eq!(credit.parent_span_id, send.span_context.span_id());
    assert_eq!(
        attribute(&credit, "actor").as_deref(),
        Some("process:transfer")
    );
    batch_linked_to(("process", "transfer"), &send.span_context).await;
    let received = events_of(&app, "t-bob")
        .await
        .into_iter()
        .find(|e| e.event_name == "account.transfer_received")
        .unwrap();
    assert_eq!(
        received.metadata.traceparent.as_deref(),
        Some(traceparent_of(&credit.span_context).as_str())
    );

    // A transfer held for review and refunded when its deadline passes:
    // the deadline event, and the refund it causes, stay in its trace.
    app.execute(SendTransfer {
        from: "t-alice".into(),
        to: "t-bob".into(),
        transfer: "t-2".into(),
        amount: REVIEW_ABOVE + 1,
    })
    .await
    .unwrap();
    let held = span_where("for the held transfer", |spans| {
        spans
            .iter()
            .filter(|s| {
                s.name == "command" && attribute(s, "command").as_deref() == Some("SendTransfer")
            })
            .find(|s| s.span_context.span_id() != send.span_context.span_id())
            .cloned()
    })
    .await;
    instance_when(&app, "t-2", |i| !i.deadlines.is_empty()).await;
    clock.advance(REVIEW_WINDOW);
    let refund = span_where("for the refund", |s| {
        command_span(s, "RefundTransfer", "t-alice")
    })
    .await;
    assert_eq!(refund.span_context.trace_id(), held.span_context.trace_id());
    assert_eq!(refund.parent_span_id, held.span_context.span_id());
    let deadline = app
        .store()
        .read_log(0, &LogFilter::all(), 10_000)
        .await
        .unwrap()
        .events
        .into_iter()
        .find(|e| e.event_name == "$deadline")
        .unwrap();
    assert_eq!(
        deadline.metadata.traceparent.as_deref(),
        Some(traceparent_of(&held.span_context).as_str())
    );
    assert_eq!(ended(&app, "t-2").await.status, InstanceStatus::Completed);
    app.shutdown();
}
