//! Noticing other processes' commits to a SQLite file: a thread that polls
//! `PRAGMA data_version` and republishes the head when it changes.
//!
//! SQLite has no notifications across processes. `data_version` is a
//! counter of one connection that changes whenever another connection (in
//! this process or another) commits to the file; reading it costs no I/O
//! beyond a shared-memory check, so polling it often is cheap.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;

use super::{open_reader, to_u64};

/// Starts the thread; it ends when the store's head sender is dropped.
pub(super) fn spawn(
    path: PathBuf,
    every: Duration,
    head: &Arc<watch::Sender<u64>>,
    unavailable: &Arc<watch::Sender<Option<String>>>,
) {
    let head = Arc::downgrade(head);
    let unavailable = Arc::downgrade(unavailable);
    let spawned = std::thread::Builder::new()
        .name(String::from("cqrs-sqlite-watcher"))
        .spawn(move || follow(&path, every, &head, &unavailable));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the SQLite watcher thread: other processes' appends are seen at this store's next append");
    }
}

fn follow(
    path: &std::path::Path,
    every: Duration,
    head: &Weak<watch::Sender<u64>>,
    unavailable: &Weak<watch::Sender<Option<String>>>,
) {
    let mut conn: Option<Connection> = None;
    let mut seen: Option<i64> = None;
    loop {
        std::thread::sleep(every);
        let (Some(head), Some(unavailable)) = (head.upgrade(), unavailable.upgrade()) else {
            return;
        };
        let polled = (|| {
            if conn.is_none() {
                conn = Some(open_reader(path).map_err(|e| e.to_string())?);
            }
            let c = conn.as_ref().ok_or("no connection")?;
            let version: i64 = c
                .query_row("PRAGMA data_version", [], |r| r.get(0))
                .map_err(|e| e.to_string())?;
            if seen == Some(version) {
                return Ok(None);
            }
            let position: i64 = c
                .query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
                    r.get(0)
                })
                .map_err(|e| e.to_string())?;
            seen = Some(version);
            Ok::<_, String>(Some(to_u64(position)))
        })();
        match polled {
            Ok(position) => {
                unavailable.send_if_modified(|u| u.take().is_some());
                if let Some(position) = position {
                    head.send_if_modified(|h| {
                        let moved = position > *h;
                        if moved {
                            *h = position;
                        }
                        moved
                    });
                }
            }
            Err(why) => {
                conn = None;
                seen = None;
                unavailable.send_if_modified(|u| {
                    let changed = u.as_deref() != Some(why.as_str());
                    *u = Some(why.clone());
                    changed
                });
            }
        }
    }
}
