//! The time deadlines are measured by: the system's, or one a test moves.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::BoxFuture;
use crate::record::Timestamp;

/// Where the engine reads the time its process managers' deadlines are set
/// and fired by. [`SystemClock`] by default; [`ManualClock`] in tests.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The time now.
    fn now(&self) -> Timestamp;

    /// Resolves once [`now`](Self::now) is at or after `time`.
    fn wait_until(&self, time: Timestamp) -> BoxFuture<'_, ()>;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn wait_until(&self, time: Timestamp) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let left = time
                    .as_micros()
                    .saturating_sub(Timestamp::now().as_micros());
                if left <= 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_micros(left.unsigned_abs())).await;
            }
        })
    }
}

/// A clock that stands still until a test moves it: deadlines pass when
/// the test says so, at once, whatever the real time.
///
/// ```
/// use cqrs_core::process::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(300));
/// assert_eq!(clock.now().as_micros() - start.as_micros(), 300_000_000);
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<watch::Sender<Timestamp>>,
}

impl ManualClock {
    /// A clock set to the current system time.
    pub fn new() -> Self {
        Self::at(Timestamp::now())
    }

    /// A clock set to `time`.
    pub fn at(time: Timestamp) -> Self {
        Self {
            now: Arc::new(watch::Sender::new(time)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.now
            .send_modify(|now| now.0 = now.0.saturating_add(micros));
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.borrow()
    }

    fn wait_until(&self, time: Timestamp) -> BoxFuture<'_, ()> {
        let mut now = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as `self`.
            let _ = now.wait_for(|now| now.0 >= time.0).await;
        })
    }
}
