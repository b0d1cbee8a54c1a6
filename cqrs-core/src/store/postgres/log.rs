//! Reading the global log: one statement per page, its rows decoded as they
//! arrive, on a task of its own.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use deadpool_postgres::tokio_postgres::types::ToSql;
use futures_core::Stream;
use tokio::task::{JoinError, JoinHandle};

use super::{PostgresStore, event_row, pg_error, to_i64, to_u64};
use crate::error::StoreError;
use crate::record::RecordedEvent;
use crate::store::decode::Spent;
use crate::store::{LogFilter, LogSlice};

impl PostgresStore {
    /// Reads a page (see [`read_page`](Self::read_page)) on a task of its
    /// own, so it goes on (rows arriving, rows decoded) while its caller does
    /// something else: a catch-up reads its next page while it projects this
    /// one. Dropping the returned future cancels the read.
    pub(super) async fn spawn_read_page(
        &self,
        after: u64,
        filter: &LogFilter,
        limit: usize,
        spent: Vec<Arc<RecordedEvent>>,
    ) -> Result<LogSlice, StoreError> {
        let store = self.clone();
        let filter = filter.clone();
        let read = tokio::spawn(async move {
            store
                .read_page(after, &filter, limit, Spent::new(spent))
                .await
        });
        AbortOnDrop(read).await.map_err(|e| StoreError::Backend {
            message: format!("the read of the global log after {after} stopped: {e}"),
            source: Some(Box::new(e)),
        })?
    }

    /// One page of the global log (`Sql::read_log`), refilling `spent`
    /// records.
    async fn read_page(
        &self,
        after: u64,
        filter: &LogFilter,
        limit: usize,
        mut spent: Spent,
    ) -> Result<LogSlice, StoreError> {
        let fail = |e| pg_error(format!("cannot read the global log after {after}"), e);
        let limit = limit.max(1);
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.inner.sql.read_log)
            .await
            .map_err(fail)?;
        let events = (!filter.events.is_empty()).then_some(&filter.events);
        let aggregates = (!filter.aggregates.is_empty()).then_some(&filter.aggregates);
        // The last position one page looks at: 64 pages ahead (as the memory
        // store bounds its scan): a sparse filter takes more pages rather
        // than one that scans the whole log.
        let window_end =
            after.saturating_add(u64::try_from(limit).unwrap_or(u64::MAX).saturating_mul(64));
        let (from, most, until) = (
            to_i64(after),
            i64::try_from(limit).unwrap_or(i64::MAX),
            to_i64(window_end),
        );
        let unknown_in = filter.unknown.as_ref().map(|u| &u.aggregates);
        let known = filter.unknown.as_ref().map(|u| &u.known);
        let params: [&(dyn ToSql + Sync); 7] = [
            &from,
            &events,
            &aggregates,
            &most,
            &until,
            &unknown_in,
            &known,
        ];
        let rows = client.query_raw(&statement, params).await.map_err(fail)?;
        let mut rows = pin!(rows);
        let mut head = 0;
        let mut records: Vec<Arc<RecordedEvent>> = Vec::with_capacity(limit.min(4096));
        let mut in_order = true;
        while let Some(row) = poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
            let row = row.map_err(fail)?;
            head = to_u64(row.try_get(0).map_err(fail)?);
            // With no matching event, the one row is the head alone.
            if row.try_get::<_, Option<i64>>(1).map_err(fail)?.is_some() {
                let record = spent.record(event_row(&row, 1)?);
                in_order &= records.last().is_none_or(|r| r.position < record.position);
                records.push(record);
            }
        }
        drop(client);
        if !in_order {
            // Not seen on any plan; the page is still right if it happens.
            records.sort_unstable_by_key(|r| r.position);
        }
        let through = if records.len() >= limit {
            records.last().map_or(after, |r| r.position)
        } else {
            head.min(window_end).max(after)
        };
        Ok(LogSlice {
            events: records,
            through,
        })
    }
}

/// A spawned task, cancelled when whoever awaits it goes away.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}
