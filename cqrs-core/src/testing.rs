//! Test kit: given events, when a command, then events or an error; and given
//! events, then query answers.
//!
//! The helpers run the same code paths as the engine (the generated dispatch,
//! the real encoding of events) without a store or a runtime of their own.
//!
//! # Examples
//!
//! ```
//! use cqrs_core::prelude::*;
//! use cqrs_core::testing::AggregateTest;
//!
//! #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
//! pub struct Incremented { pub by: u64 }
//!
//! #[derive(Command, Deserialize)]
//! #[command(aggregate = Counter)]
//! pub struct Increment { #[id] pub counter: String, pub by: u64 }
//!
//! #[derive(Debug, thiserror::Error, PartialEq)]
//! pub enum CounterError { #[error("too big")] TooBig }
//!
//! #[derive(Aggregate, Default)]
//! #[aggregate(events(Incremented), commands(Increment), error = CounterError)]
//! pub struct Counter { value: u64 }
//!
//! impl Apply<Incremented> for Counter {
//!     fn apply(&mut self, e: &Incremented) { self.value += e.by; }
//! }
//! impl Handle<Increment> for Counter {
//!     fn handle(&self, c: &Increment) -> Result<Events<Self>, CounterError> {
//!         if self.value + c.by > 10 { return Err(CounterError::TooBig); }
//!         Ok(events![Incremented { by: c.by }])
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! AggregateTest::<Counter>::new()
//!     .given(Incremented { by: 4 })
//!     .when(Increment { counter: "c".into(), by: 5 })
//!     .await
//!     .then_expect_events(events![Incremented { by: 5 }]);
//!
//! AggregateTest::<Counter>::new()
//!     .given(Incremented { by: 8 })
//!     .when(Increment { counter: "c".into(), by: 5 })
//!     .await
//!     .then_expect_error(CounterError::TooBig);
//! # }
//! ```

pub use crate::process::ProcessTest;

use std::fmt::Debug;
use std::sync::Arc;

use crate::aggregate::Aggregate;
use crate::command::Command;
use crate::error::DecodeError;
use crate::event::{Event, EventOf, EventSet, Events};
use crate::projection::Projection;
use crate::query::Query;
use crate::record::{Metadata, RecordedEvent, StreamId, Timestamp};

/// Given events, when a command, then events or a domain error.
#[derive(Debug)]
#[must_use = "a test does nothing until `when` is awaited"]
pub struct AggregateTest<A: Aggregate> {
    state: A,
    services: Option<A::Services>,
}

impl<A: Aggregate> AggregateTest<A> {
    /// A fresh aggregate with no history.
    pub fn new() -> Self {
        Self {
            state: A::default(),
            services: None,
        }
    }

    /// One more event in the aggregate's history.
    pub fn given<E: EventOf<A>>(mut self, event: E) -> Self {
        self.state.apply_event(&event.into());
        self
    }

    /// One more event in the aggregate's history, as the log stores it:
    /// its stored name (or an alias), schema version and JSON payload,
    /// decoded as a load decodes it (an older version upcast).
    ///
    /// ```
    /// # use cqrs_core::prelude::*;
    /// # use cqrs_core::testing::AggregateTest;
    /// # use serde_json::json;
    /// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    /// #[event(version = 2, upcast(from = 1, with = v1_to_v2))]
    /// pub struct Incremented { pub by: u64 }
    ///
    /// /// Version 1 counted in tens.
    /// fn v1_to_v2(v1: serde_json::Value) -> Result<serde_json::Value, UpcastError> {
    ///     let tens = v1["tens"].as_u64().ok_or("`tens` is not a number")?;
    ///     Ok(json!({ "by": tens * 10 }))
    /// }
    /// # #[derive(Command, Deserialize)]
    /// # #[command(aggregate = Counter)]
    /// # pub struct Increment { #[id] pub counter: String, pub by: u64 }
    /// # #[derive(Aggregate, Default)]
    /// # #[aggregate(events(Incremented), commands(Increment), error = std::io::Error)]
    /// # pub struct Counter { value: u64 }
    /// # impl Apply<Incremented> for Counter { fn apply(&mut self, e: &Incremented) { self.value += e.by; } }
    /// # impl Handle<Increment> for Counter {
    /// #     fn handle(&self, c: &Increment) -> Result<Events<Self>, std::io::Error> { Ok(events![Incremented { by: c.by }]) }
    /// # }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let counter = AggregateTest::<Counter>::new()
    ///     .given_stored("Incremented", 1, json!({ "tens": 3 }))
    ///     .when(Increment { counter: "c".into(), by: 2 })
    ///     .await
    ///     .then_expect_events(events![Incremented { by: 2 }]);
    /// assert_eq!(counter.value, 32);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When the payload does not decode, with the [`DecodeError`].
    pub fn given_stored(mut self, name: &str, version: u32, payload: serde_json::Value) -> Self {
        let bytes = payload.to_string().into_bytes();
        match <A::Event as EventSet>::decode(name, version, &bytes) {
            Ok(event) => self.state.apply_event(&event),
            Err(e) => panic!("stored event `{name}` version {version} does not decode: {e}"),
        }
        self
    }

    /// Several more events in the aggregate's history: an [`Events`] (as
    /// `events![..]` builds it), or a `Vec` or an array of the aggregate's
    /// event enum.
    pub fn given_all(mut self, events: impl EventList<A>) -> Self {
        for event in events.into_event_vec() {
            self.state.apply_event(&event);
        }
        self
    }

    /// The services the handler receives (needed when the aggregate declares
    /// `services = T` other than `()`).
    pub fn with_services(mut self, services: A::Services) -> Self {
        self.services = Some(services);
        self
    }

    /// Runs the handler of `command` against the history.
    ///
    /// # Panics
    ///
    /// When the aggregate needs services and none were given.
    pub async fn when<C: Command<Aggregate = A>>(self, command: C) -> Outcome<A> {
        let services = self.services();
        let result = C::dispatch(&self.state, &command, services).await;
        self.outcome(result)
    }

    /// Runs the handler of `command` against the history, without an async
    /// runtime: for a handler that does not wait (a [`Handle`](crate::Handle),
    /// not a [`HandleAsync`](crate::HandleAsync)), in a plain `#[test]`.
    ///
    /// ```
    /// # use cqrs_core::prelude::*;
    /// # use cqrs_core::testing::AggregateTest;
    /// # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    /// # pub struct Incremented { pub by: u64 }
    /// # #[derive(Command, Deserialize)]
    /// # #[command(aggregate = Counter)]
    /// # pub struct Increment { #[id] pub counter: String, pub by: u64 }
    /// # #[derive(Aggregate, Default)]
    /// # #[aggregate(events(Incremented), commands(Increment), error = std::io::Error)]
    /// # pub struct Counter { value: u64 }
    /// # impl Apply<Incremented> for Counter { fn apply(&mut self, e: &Incremented) { self.value += e.by; } }
    /// # impl Handle<Increment> for Counter {
    /// #     fn handle(&self, c: &Increment) -> Result<Events<Self>, std::io::Error> { Ok(events![Incremented { by: c.by }]) }
    /// # }
    /// let counter = AggregateTest::<Counter>::new()
    ///     .given(Incremented { by: 1 })
    ///     .when_now(Increment { counter: "c".into(), by: 2 })
    ///     .then_expect_events(events![Incremented { by: 2 }]);
    /// assert_eq!(counter.value, 3);
    /// ```
    ///
    /// # Panics
    ///
    /// When the aggregate needs services and none were given, or when the
    /// handler waits for something (then use `.when(..).await`).
    pub fn when_now<C: Command<Aggregate = A>>(self, command: C) -> Outcome<A> {
        let polled = {
            let handled = std::pin::pin!(C::dispatch(&self.state, &command, self.services()));
            let mut context = std::task::Context::from_waker(std::task::Waker::noop());
            handled.poll(&mut context)
        };
        let std::task::Poll::Ready(result) = polled else {
            panic!(
                "the handler of `{}` on `{}` waits (a `HandleAsync`): use `.when(..).await` in an async test",
                std::any::type_name::<C>(),
                A::NAME
            );
        };
        self.outcome(result)
    }

    /// The services given, or `()` when the aggregate needs none.
    fn services(&self) -> &A::Services {
        match (
            &self.services,
            crate::aggregate::unit_services::<A::Services>(),
        ) {
            (Some(services), _) => services,
            (None, Some(unit)) => unit,
            (None, None) => panic!(
                "aggregate `{}` needs services `{}`: call `.with_services(..)` before `.when(..)`",
                A::NAME,
                std::any::type_name::<A::Services>()
            ),
        }
    }

    /// The handler's result, with its events applied to the state.
    fn outcome(self, result: Result<Events<A>, A::Error>) -> Outcome<A> {
        let mut state = self.state;
        let result = result.map(Events::into_vec);
        if let Ok(events) = &result {
            for event in events {
                state.apply_event(event);
            }
        }
        Outcome { result, state }
    }
}

impl<A: Aggregate> Default for AggregateTest<A> {
    fn default() -> Self {
        Self::new()
    }
}

/// Events of aggregate `A` as the kit takes them: an [`Events`], or any
/// `Vec` or array of `A`'s event enum.
pub trait EventList<A: Aggregate> {
    /// The events, in order.
    fn into_event_vec(self) -> Vec<A::Event>;
}

impl<A: Aggregate> EventList<A> for Events<A> {
    fn into_event_vec(self) -> Vec<A::Event> {
        self.into_vec()
    }
}

impl<A: Aggregate> EventList<A> for Vec<A::Event> {
    fn into_event_vec(self) -> Vec<A::Event> {
        self
    }
}

impl<A: Aggregate, const N: usize> EventList<A> for [A::Event; N] {
    fn into_event_vec(self) -> Vec<A::Event> {
        self.into()
    }
}

/// What a handler decided, to assert on.
#[derive(Debug)]
pub struct Outcome<A: Aggregate> {
    result: Result<Vec<A::Event>, A::Error>,
    state: A,
}

impl<A: Aggregate> Outcome<A> {
    /// Asserts the handler emitted exactly these events, in order: an
    /// [`Events`] (as `events![..]` builds it), or a `Vec` or an array of
    /// the aggregate's event enum, as [`given_all`](AggregateTest::given_all) takes.
    ///
    /// # Panics
    ///
    /// When it emitted others or refused the command.
    pub fn then_expect_events(self, expected: impl EventList<A>) -> A {
        let expected = expected.into_event_vec();
        match &self.result {
            Ok(events) => assert_eq!(
                events.as_slice(),
                expected.as_slice(),
                "the handler emitted other events than expected"
            ),
            Err(e) => panic!("expected events {expected:?}, but the command was refused: {e}"),
        }
        self.state
    }

    /// Asserts the handler refused with this error.
    ///
    /// # Panics
    ///
    /// When it accepted the command or refused with another error.
    pub fn then_expect_error(self, expected: A::Error) -> A
    where
        A::Error: PartialEq,
    {
        match &self.result {
            Ok(events) => {
                panic!("expected the error `{expected}`, but the handler emitted {events:?}")
            }
            Err(e) => assert_eq!(e, &expected, "the handler refused with another error"),
        }
        self.state
    }

    /// Asserts the handler refused with an error the predicate accepts.
    ///
    /// # Panics
    ///
    /// When it accepted the command or the predicate rejects the error.
    pub fn then_expect_error_matching(self, predicate: impl FnOnce(&A::Error) -> bool) -> A {
        match &self.result {
            Ok(events) => panic!("expected an error, but the handler emitted {events:?}"),
            Err(e) => assert!(
                predicate(e),
                "the handler refused with an unexpected error: {e:?}"
            ),
        }
        self.state
    }

    /// The events emitted, or the error.
    pub fn result(&self) -> Result<&[A::Event], &A::Error> {
        self.result.as_deref()
    }

    /// The state after the emitted events were applied.
    pub fn state(&self) -> &A {
        &self.state
    }
}

/// Given events, then query answers, for projections.
///
/// ```
/// # use cqrs_core::prelude::*;
/// use cqrs_core::testing::ProjectionTest;
/// # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// # pub struct Incremented { pub by: u64 }
/// #[derive(Projection, Default)]
/// #[projection(events(Incremented))]
/// pub struct Totals { total: u64 }
///
/// impl Project<Incremented> for Totals {
///     fn project(&mut self, e: &Envelope<Incremented>) { self.total += e.by; }
/// }
///
/// #[derive(Query, Deserialize)]
/// #[query(projection = Totals, output = u64)]
/// pub struct Total;
/// impl Answer<Total> for Totals { fn answer(&self, _: &Total) -> u64 { self.total } }
///
/// ProjectionTest::<Totals>::new()
///     .given(("counter", "c-1"), Incremented { by: 2 })
///     .given(("counter", "c-2"), Incremented { by: 3 })
///     .then_expect(Total, 5);
/// ```
#[derive(Debug)]
pub struct ProjectionTest<P: Projection> {
    state: P,
    log: TestLog,
}

/// The log a test kit makes up: positions and stream versions counted as
/// a store would.
#[derive(Debug, Default)]
pub(crate) struct TestLog {
    position: u64,
    versions: std::collections::HashMap<StreamId, u64>,
}

impl TestLog {
    /// The next event of the log, appended to `stream` at `timestamp`.
    pub(crate) fn record(
        &mut self,
        stream: StreamId,
        name: &str,
        version: u32,
        payload: Vec<u8>,
        timestamp: Timestamp,
    ) -> Arc<RecordedEvent> {
        self.position += 1;
        let stream_version = self.versions.entry(stream.clone()).or_default();
        *stream_version += 1;
        Arc::new(RecordedEvent {
            event_id: timestamp.event_id(),
            stream: Arc::new(stream),
            version: *stream_version,
            position: self.position,
            event_name: name.to_owned().into(),
            schema_version: version,
            payload,
            metadata: Metadata::new(),
            timestamp,
        })
    }
}

impl<P: Projection> ProjectionTest<P> {
    /// An empty read model.
    pub fn new() -> Self {
        Self {
            state: P::default(),
            log: TestLog::default(),
        }
    }

    /// Projects one event as if appended to `stream` (e.g. `("account", "a-1")`).
    ///
    /// # Panics
    ///
    /// When the event does not survive encoding and decoding.
    pub fn given<E: Event>(mut self, stream: impl Into<StreamId>, event: E) -> Self {
        if let Err(e) = self.try_given(stream.into(), &event) {
            panic!("event {event:?} could not be projected: {e}");
        }
        self
    }

    fn try_given<E: Event>(&mut self, stream: StreamId, event: &E) -> Result<(), DecodeError> {
        let payload = crate::codec::encode_event(event).map_err(|source| {
            DecodeError::new(crate::error::DecodeErrorKind::Payload {
                name: E::NAME.to_owned(),
                version: E::VERSION,
                source,
            })
        })?;
        self.project(stream, E::NAME, E::VERSION, payload)
    }

    /// Projects one event as the log stores it, appended to `stream`: its
    /// stored name (or an alias), schema version and JSON payload, decoded
    /// as the runner decodes it (an older version upcast). An event the
    /// projection does not consume is passed over, as the runner's filter
    /// would.
    ///
    /// # Panics
    ///
    /// When the payload does not decode, with the [`DecodeError`].
    pub fn given_stored(
        mut self,
        stream: impl Into<StreamId>,
        name: &str,
        version: u32,
        payload: serde_json::Value,
    ) -> Self {
        let bytes = payload.to_string().into_bytes();
        if let Err(e) = self.project(stream.into(), name, version, bytes) {
            panic!("stored event `{name}` version {version} could not be projected: {e}");
        }
        self
    }

    fn project(
        &mut self,
        stream: StreamId,
        name: &str,
        version: u32,
        payload: Vec<u8>,
    ) -> Result<(), DecodeError> {
        let record = self
            .log
            .record(stream, name, version, payload, Timestamp::now());
        self.state.project_recorded(&record)
    }

    /// The answer to `query` now.
    pub fn query<Q: Query<Projection = P>>(&self, query: Q) -> Q::Output {
        Q::answer_from(&self.state, &query)
    }

    /// Asserts the answer to `query`.
    ///
    /// # Panics
    ///
    /// When the answer differs.
    pub fn then_expect<Q: Query<Projection = P>>(self, query: Q, expected: Q::Output) -> Self
    where
        Q::Output: PartialEq + Debug,
    {
        assert_eq!(
            self.query(query),
            expected,
            "the projection answered otherwise"
        );
        self
    }

    /// The read model.
    pub fn state(&self) -> &P {
        &self.state
    }
}

impl<P: Projection> Default for ProjectionTest<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Into<String>, I: Into<String>> From<(A, I)> for StreamId {
    fn from((aggregate, id): (A, I)) -> Self {
        StreamId::new(aggregate, id)
    }
}
