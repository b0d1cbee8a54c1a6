//! The live head: LISTEN/NOTIFY on a dedicated connection, plus a slow poll.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::tokio_postgres::{AsyncMessage, Client, Config, NoTls};
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::{describe, publish, to_u64};

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Follows the head of the log forever (the store aborts the task when it is
/// dropped), reconnecting whenever the connection drops, and says on
/// `unavailable` while it cannot reach the server.
pub(super) async fn follow_head(
    config: Config,
    channel: String,
    head_sql: String,
    head: Arc<watch::Sender<u64>>,
    unavailable: Arc<watch::Sender<Option<String>>>,
    poll: Duration,
) {
    let mut backoff = Duration::from_millis(50);
    let report = |why: Option<String>| {
        unavailable.send_if_modified(|now| {
            let changed = *now != why;
            *now = why.clone();
            changed
        });
    };
    loop {
        match config.connect(NoTls).await {
            Err(e) => report(Some(format!(
                "cannot connect to PostgreSQL: {}",
                describe(&e)
            ))),
            Ok((client, mut connection)) => {
                backoff = Duration::from_millis(50);
                let (notes, mut heard) = mpsc::unbounded_channel();
                // Drives the connection and forwards its notifications; it ends
                // when the connection breaks or `client` is dropped.
                let driver = tokio::spawn(async move {
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            Ok(AsyncMessage::Notification(note)) => {
                                if notes.send(note.payload().to_owned()).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                // Returns only when the connection failed.
                let lost = listen(
                    &client, &channel, &head_sql, &head, &mut heard, poll, &report,
                )
                .await;
                driver.abort();
                report(Some(match lost {
                    Err(e) => format!("the connection to PostgreSQL failed: {}", describe(&e)),
                    Ok(()) => String::from("the connection to PostgreSQL was closed"),
                }));
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(poll).min(MAX_BACKOFF);
    }
}

async fn listen(
    client: &Client,
    channel: &str,
    head_sql: &str,
    head: &watch::Sender<u64>,
    heard: &mut mpsc::UnboundedReceiver<String>,
    poll: Duration,
    report: &impl Fn(Option<String>),
) -> Result<(), deadpool_postgres::tokio_postgres::Error> {
    // `channel` is the validated schema name.
    client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await?;
    let statement = client.prepare(head_sql).await?;
    // The first tick is immediate: reading the head after LISTEN catches
    // whatever committed while no one was listening.
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            note = heard.recv() => match note {
                // A notification is sent at commit: its position, and every
                // lower one, is readable now.
                Some(payload) => match payload.parse::<u64>() {
                    Ok(position) => publish(head, position),
                    Err(_) => tick.reset_immediately(),
                },
                None => return Ok(()),
            },
            _ = tick.tick() => {
                // A server that stopped answering (not closed the
                // connection) counts as lost too.
                let answer = tokio::time::timeout(
                    poll.max(Duration::from_secs(5)),
                    client.query_one(&statement, &[]),
                )
                .await;
                let Ok(answer) = answer else { return Ok(()) };
                let position: i64 = answer?.get(0);
                publish(head, to_u64(position));
                report(None);
            }
        }
    }
}
