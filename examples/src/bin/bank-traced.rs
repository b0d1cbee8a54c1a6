//! The bank with its traces exported by OpenTelemetry: a few commands, the
//! projection batches that applied their events and the transfer manager's
//! commands, each span printed as it ends.
//!
//! ```text
//! cargo run --bin bank-traced
//! ```
//!
//! The spans come from `tracing` through `tracing-opentelemetry`; feature
//! `otel` of `cqrs-core` carries the trace context through the log (see
//! `cqrs_core::telemetry`). An application exports to its collector
//! instead: replace `Printer` with the OTLP exporter of `opentelemetry-otlp`
//! and the simple processor with a batch one.

// Amounts are cents, grouped as money: `100_00` is 100.00.
#![allow(clippy::inconsistent_digit_grouping)]

use std::time::Duration;

use cqrs_core::prelude::*;
use cqrs_core::process::InstanceStatus;
use cqrs_examples::bank::{BalanceOf, BankServices, Deposit, OpenAccount, SendTransfer, money};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt as _;

/// What an HTTP client in front of the bank sends as `traceparent`.
const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Prints each span that ends, on one line.
#[derive(Debug)]
struct Printer;

impl SpanExporter for Printer {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        for span in batch {
            println!("{}", line(&span));
        }
        Ok(())
    }
}

/// `name trace/span <- parent, links: .., key=value ..`, ids cut to 8 digits.
fn line(span: &SpanData) -> String {
    let short = |id: String| id[..8].to_owned();
    let context = &span.span_context;
    let mut line = format!(
        "{:<16} {}/{}",
        span.name,
        short(context.trace_id().to_string()),
        short(context.span_id().to_string())
    );
    if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        line += &format!(" <- {}", short(span.parent_span_id.to_string()));
    }
    if !span.links.is_empty() {
        let links: Vec<_> = span
            .links
            .iter()
            .map(|l| {
                format!(
                    "{}/{}",
                    short(l.span_context.trace_id().to_string()),
                    short(l.span_context.span_id().to_string())
                )
            })
            .collect();
        line += &format!(" links: {}", links.join(" "));
    }
    for kv in &span.attributes {
        let key = kv.key.as_str();
        // tracing-opentelemetry's own: where in the code, which thread, time
        // busy and idle.
        let own = key.starts_with("code.")
            || key.starts_with("thread.")
            || matches!(key, "target" | "busy_ns" | "idle_ns");
        if !own {
            line += &format!(" {key}={}", kv.value);
        }
    }
    line
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(Printer)
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bank")));
    tracing::subscriber::set_global_default(subscriber)?;

    let bank = Engine::builder()
        .services(BankServices::default())
        .build()
        .await?;
    for account in ["alice", "bob"] {
        bank.execute(OpenAccount {
            account: account.into(),
            owner: account.into(),
        })
        .await?;
    }
    // A command that continues the caller's trace.
    let deposit = Deposit {
        account: "alice".into(),
        amount: 100_00,
    };
    let receipt = bank
        .execute_with(deposit, Metadata::new().traceparent(CALLER))
        .await?;
    let balance = bank
        .query(BalanceOf {
            account: "alice".into(),
        })
        .after(&receipt)
        .await?
        .unwrap_or(0);
    // A transfer: the manager's credit goes on in the trace of `SendTransfer`.
    bank.execute(SendTransfer {
        from: "alice".into(),
        to: "bob".into(),
        transfer: "t-1".into(),
        amount: 30_00,
    })
    .await?;
    let mut credited = None;
    for _ in 0..1000 {
        let transfer = bank.process_instance("transfer", "t-1").await?;
        if let Some(transfer) = transfer.filter(|t| t.status != InstanceStatus::Running) {
            credited = transfer.history[0].commands[0].position;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let credited = credited.ok_or("the transfer was not credited within 10 s")?;
    // The balances include the credit; then every runner stops, and with
    // it the last batch spans end.
    bank.query(BalanceOf {
        account: "bob".into(),
    })
    .at_least(credited)
    .await?;
    bank.stop().await;
    provider.shutdown()?;
    println!(
        "\nalice had {} after the deposit. Each batch links to the commands whose events it \
         applied; the credit is a child of the transfer.",
        money(balance)
    );
    Ok(())
}
