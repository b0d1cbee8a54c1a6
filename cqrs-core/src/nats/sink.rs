//! Publishing relayed events to the stream: pipelined, in order, each
//! expecting the one before it.

use std::sync::Arc;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use tokio::sync::Mutex;

use super::message::{header, headers};
use super::subject::subject;
use super::{JetStream, backend};
use crate::BoxFuture;
use crate::error::StoreError;
use crate::record::RecordedEvent;
use crate::subscription::Sink;

/// The relay's [`Sink`]: the JetStream stream.
#[derive(Clone, Debug)]
pub struct JetStreamSink {
    js: JetStream,
    /// The newest event the stream holds, as this sink knows it (`None`:
    /// read it from the stream before the next publish).
    last: Arc<Mutex<Option<Last>>>,
}

/// The stream's newest message: its event's position and id (`None`: the
/// stream holds none).
#[derive(Clone, Debug)]
struct Last(Option<(u64, String)>);

impl JetStreamSink {
    pub(crate) fn new(js: JetStream) -> Self {
        Self {
            js,
            last: Arc::new(Mutex::new(None)),
        }
    }

    /// Reads the stream's newest message.
    async fn read_last(&self) -> Result<Last, StoreError> {
        let stream = self.js.stream_or_create().await?;
        // Read with the stream: fresh.
        let info = stream.cached_info();
        if info.state.messages == 0 {
            return Ok(Last(None));
        }
        let sequence = info.state.last_sequence;
        let message = stream
            .get_raw_message(sequence)
            .await
            .map_err(|e| backend(format!("cannot read message {sequence} of the stream"), e))?;
        let position = message
            .headers
            .get(header::POSITION)
            .and_then(|v| v.as_str().parse().ok());
        let id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned());
        match (position, id) {
            (Some(position), Some(id)) => Ok(Last(Some((position, id)))),
            _ => Err(StoreError::Refused {
                message: format!(
                    "the newest message of the stream `{}` (sequence {sequence}) was not published by a relay: \
                     the stream must hold relayed events only",
                    self.js.stream_name()
                ),
                source: None,
            }),
        }
    }
}

impl Sink for JetStreamSink {
    fn last_position(&self) -> BoxFuture<'_, Result<Option<u64>, StoreError>> {
        Box::pin(async move {
            let last = self.read_last().await?;
            let position = last.0.as_ref().map(|(p, _)| *p);
            *self.last.lock().await = Some(last);
            Ok(position)
        })
    }

    fn publish<'a>(
        &'a self,
        events: &'a [Arc<RecordedEvent>],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            let mut last = self.last.lock().await;
            let known = match last.take() {
                Some(known) => known,
                None => self.read_last().await?,
            };
            // Anything the stream already holds is skipped: a retry of a
            // batch publishes only what did not land.
            let held = known.0.as_ref().map_or(0, |(p, _)| *p);
            let mut previous = known.0.clone();
            let mut acks = Vec::with_capacity(events.len());
            let context = self.js.context();
            for event in events.iter().filter(|e| e.position > held) {
                let id = event.event_id.hyphenated().to_string();
                let mut message = PublishMessage::build()
                    .payload(event.payload.clone().into())
                    .headers(headers(event, previous.as_ref().map_or(0, |(p, _)| *p))?)
                    .message_id(&id);
                if let Some((_, last_id)) = &previous {
                    // Refused if the one before did not land: never
                    // overtaken, so the stream keeps the global order.
                    message = message.expected_last_message_id(last_id);
                }
                let subject = subject(
                    self.js.prefix(),
                    &event.stream.aggregate,
                    &event.stream.id,
                    &event.event_name,
                );
                match context.send_publish(subject, message).await {
                    Ok(ack) => acks.push((event.position, id.clone(), ack)),
                    Err(e) => {
                        // The stream's last message is read again before
                        // the retry.
                        return Err(publish_error(event, &e.to_string(), e.kind()));
                    }
                }
                previous = Some((event.position, id));
            }
            let mut now = known;
            for (position, id, ack) in acks {
                match ack.await {
                    Ok(_) => now = Last(Some((position, id))),
                    Err(e) => {
                        // Whatever landed after `now` is found by the next
                        // read of the stream.
                        let kind = e.kind();
                        return Err(publish_error_at(position, &e.to_string(), kind));
                    }
                }
            }
            *last = Some(now);
            Ok(())
        })
    }
}

fn publish_error(event: &RecordedEvent, reason: &str, kind: PublishErrorKind) -> StoreError {
    publish_error_at(event.position, reason, kind)
}

fn publish_error_at(position: u64, reason: &str, kind: PublishErrorKind) -> StoreError {
    match kind {
        PublishErrorKind::MaxPayloadExceeded => StoreError::Refused {
            message: format!(
                "the event at position {position} is larger than the NATS server takes: {reason}"
            ),
            source: None,
        },
        _ => StoreError::Backend {
            message: format!(
                "publishing the event at position {position} to JetStream failed: {reason}"
            ),
            source: None,
        },
    }
}
