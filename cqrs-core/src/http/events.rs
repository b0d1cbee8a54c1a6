//! `GET /events`: the global log as Server-Sent Events, resumable.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::Shared;
use crate::record::{EventView, RecordedEvent};
use crate::store::{LogFilter, Store};

/// How many events one read of the log takes.
const PAGE: usize = 256;

/// The feed: `?aggregate=a,b` and `?event=x,y` filter it; it starts after
/// `Last-Event-ID` (what a reconnecting `EventSource` sends) or `?after=`,
/// from the start of the log otherwise, and follows the log live.
pub(super) async fn feed(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let list = |key: &str| -> Vec<String> {
        params
            .get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let filter = LogFilter::events(list("event")).aggregates(list("aggregate"));
    let resume = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .or_else(|| params.get("after").cloned());
    let after = match super::position(resume.as_deref(), "`Last-Event-ID` or `after`") {
        Ok(after) => after.unwrap_or(0),
        Err(problem) => return problem.into_response(),
    };
    let (send, receive) = mpsc::channel(PAGE);
    let store = Arc::clone(shared.engine.store());
    tokio::spawn(follow(store, filter, after, send));
    Sse::new(Feed { receive })
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Reads the log after `after` and sends what `filter` selects, then
/// waits for the head to move; ends when the client is gone.
async fn follow(
    store: Arc<dyn Store>,
    filter: LogFilter,
    mut after: u64,
    send: mpsc::Sender<Event>,
) {
    let mut head = store.watch_head();
    loop {
        let slice = match store.read_log(after, &filter, PAGE).await {
            Ok(slice) => slice,
            Err(e) => {
                // Said to the client; it reconnects from its last id.
                let _ = send
                    .send(Event::default().event("error").data(e.to_string()))
                    .await;
                return;
            }
        };
        for record in &slice.events {
            if send.send(event(record)).await.is_err() {
                return;
            }
        }
        let stalled = slice.through <= after;
        let caught_up = stalled || slice.events.len() < PAGE;
        after = slice.through.max(after);
        if stalled && *head.borrow() > after {
            // The head is ahead of what can be read yet (a transaction in
            // flight before it): wait a moment rather than read again at once.
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
                () = send.closed() => return,
            }
            continue;
        }
        if caught_up {
            tokio::select! {
                changed = head.wait_for(|head| *head > after) => if changed.is_err() { return },
                () = send.closed() => return,
            }
        }
    }
}

/// One event as the feed sends it: its `id` is the position, its `event`
/// the event's name, its `data` the event as JSON.
fn event(record: &RecordedEvent) -> Event {
    let fed = EventView::from(record);
    // A name stored by hand may hold a line break, which SSE cannot carry.
    let name: &str = if record.event_name.contains(['\n', '\r']) {
        "event"
    } else {
        &record.event_name
    };
    Event::default()
        .id(record.position.to_string())
        .event(name)
        .data(serde_json::to_string(&fed).unwrap_or_default())
}

/// The channel's receiving end as a stream, for `Sse`.
struct Feed {
    receive: mpsc::Receiver<Event>,
}

impl futures_core::Stream for Feed {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receive.poll_recv(cx).map(|event| event.map(Ok))
    }
}
