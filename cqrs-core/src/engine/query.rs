//! A query on its way to a projection, optionally waiting for a position.

use std::future::IntoFuture;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::Engine;
use crate::BoxFuture;
use crate::command::Receipt;
use crate::error::Error;
use crate::projection::Projection;
use crate::query::Query;
use crate::subscription::RunState;

/// A query about to be answered; `.await` it.
///
/// By default it answers from the projection's state as it is now. Call
/// [`after`](Self::after) to wait until a command's events are included.
#[derive(Debug)]
#[must_use = "a query does nothing until awaited"]
pub struct QueryRequest<'a, Q> {
    engine: &'a Engine,
    query: Q,
    wait_for: Option<u64>,
    timeout: Duration,
}

impl<'a, Q: Query> QueryRequest<'a, Q> {
    pub(crate) fn new(engine: &'a Engine, query: Q) -> Self {
        let timeout = engine.shared.config.query_timeout;
        Self {
            engine,
            query,
            wait_for: None,
            timeout,
        }
    }

    /// Waits until the projection includes the command behind `receipt`
    /// (read-your-writes). A receipt with no events does not wait.
    pub fn after(mut self, receipt: &Receipt) -> Self {
        self.wait_for = receipt.position.max(self.wait_for);
        self
    }

    /// Waits until the projection includes global position `position`.
    pub fn at_least(mut self, position: u64) -> Self {
        self.wait_for = Some(position).max(self.wait_for);
        self
    }

    /// How long to wait at most (default: the engine's query timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn run(self) -> Result<Q::Output, Error> {
        let Self {
            engine,
            query,
            wait_for,
            timeout,
        } = self;
        let name = <Q::Projection as Projection>::NAME;
        let running = engine
            .shared
            .projections
            .get(name)
            .ok_or(Error::ProjectionNotRunning(name))?;
        if let Some(wanted) = wait_for {
            let mut status = running.progress.clone();
            let started = Instant::now();
            let reached = tokio::time::timeout(timeout, async {
                loop {
                    let outcome = {
                        let s = status.borrow_and_update();
                        match &s.state {
                            _ if s.position >= wanted => Some(Ok(())),
                            RunState::Failed(reason) => Some(Err(Error::ProjectionFailed {
                                projection: name,
                                position: s.position,
                                reason: reason.clone(),
                            })),
                            _ => None,
                        }
                    };
                    if let Some(outcome) = outcome {
                        return outcome;
                    }
                    if status.changed().await.is_err() {
                        return Err(Error::Shutdown);
                    }
                }
            })
            .await;
            match reached {
                Ok(result) => result?,
                Err(_) => {
                    return Err(Error::Timeout {
                        projection: name,
                        wanted,
                        reached: status.borrow().position,
                        waited_ms: started.elapsed().as_millis(),
                    });
                }
            }
        }
        let state = running
            .state
            .downcast_ref::<RwLock<Q::Projection>>()
            .ok_or(Error::ProjectionNotRunning(name))?;
        // An inline projection's fold is read only once its transaction
        // ended (see `projection::inline`).
        let _gate = match &running.gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        let guard = state.read().unwrap_or_else(PoisonError::into_inner);
        Ok(Q::answer_from(&guard, &query))
    }
}

impl<'a, Q: Query> IntoFuture for QueryRequest<'a, Q> {
    type Output = Result<Q::Output, Error>;
    type IntoFuture = BoxFuture<'a, Result<Q::Output, Error>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}
