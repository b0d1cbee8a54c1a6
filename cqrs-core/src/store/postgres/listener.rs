//! The live head: LISTEN/NOTIFY on a dedicated connection, plus a slow poll.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::tokio_postgres::{AsyncMessage, Client, Config, NoTls};
use tokio::sync::{mpsc, watch};
use tokio::time::MissedTickBehavior;

use super::{publish, to_u64};

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Follows the head of the log forever (the store aborts the task when it is
/// dropped), reconnecting whenever the connection drops.
pub(super) async fn follow_head(
    config: Config,
    channel: String,
    head_sql: String,
    head: Arc<watch::Sender<u64>>,
    poll: Duration,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Ok((client, mut connection)) = config.connect(NoTls).await {
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
            let _ = listen(&client, &channel, &head_sql, &head, &mut heard, poll).await;
            driver.abort();
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
                let position: i64 = client.query_one(&statement, &[]).await?.get(0);
                publish(head, to_u64(position));
            }
        }
    }
}
