//! Events: the facts an aggregate records, and the set of them one aggregate owns.

use std::fmt::Debug;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aggregate::Aggregate;
use crate::error::DecodeError;
use crate::upcast::Upcaster;

/// A fact that happened in the domain, stored in the event log.
///
/// Implemented by `#[derive(Event)]`; the name is what the log stores and what
/// projections route on, so it must stay stable once events are written.
/// The schema version says which shape of the payload this type reads.
///
/// # Examples
///
/// ```
/// use cqrs_core::prelude::*;
///
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// #[event(name = "account.opened", version = 2)]
/// pub struct AccountOpened { pub owner: String }
///
/// assert_eq!(AccountOpened::NAME, "account.opened");
/// assert_eq!(AccountOpened::VERSION, 2);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event",
    label = "not an event",
    note = "add `#[derive(Event)]` to `{Self}`"
)]
pub trait Event:
    Serialize + DeserializeOwned + Clone + Debug + PartialEq + Send + Sync + 'static
{
    /// The stored event name (`#[event(name = "..")]`, default: the type name).
    const NAME: &'static str;
    /// The schema version of this shape (`#[event(version = N)]`, default 1).
    const VERSION: u32;
    /// The names it was stored under before (`#[event(aliases("..", ..))]`):
    /// stored events of those names decode as this type, and projections
    /// read them too.
    const ALIASES: &'static [&'static str] = &[];
    /// How the older versions become this one (`#[event(upcast(from = N,
    /// ..))]`, see [`upcast`](crate::upcast)), at most one per version.
    const UPCASTERS: &'static [Upcaster<Self>] = &[];
    /// The shape of the payload as `#[derive(Event)]` saw it: fields, types
    /// as written, serde attributes that change the JSON. What the
    /// [schema lock](crate::schema) records; empty when implemented by hand.
    const SHAPE: &'static str = "";
}

/// Decodes a payload stored under `name` (`E`'s name or one of its
/// aliases) at schema version `version` as `E`, running its upcasters when
/// the version is older: what every reader of the log does.
///
/// # Errors
///
/// Another name, a newer version, an older version no upcaster reads, a
/// payload or an upcast value that does not decode, an upcaster that fails:
/// each a [`DecodeError`] of its own kind, never a panic.
///
/// # Examples
///
/// ```
/// use cqrs_core::prelude::*;
///
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// #[event(name = "account.opened", aliases("opened"), version = 2, upcast(from = 1, with = v1_to_v2))]
/// pub struct AccountOpened { pub owner: String, pub currency: String }
///
/// fn v1_to_v2(mut v1: serde_json::Value) -> Result<serde_json::Value, UpcastError> {
///     cqrs_core::upcast::object_mut(&mut v1)?.insert("currency".into(), "EUR".into());
///     Ok(v1)
/// }
///
/// let stored = br#"{"owner": "Ada"}"#;
/// let opened: AccountOpened = cqrs_core::decode_event("opened", 1, stored)?;
/// assert_eq!(opened.currency, "EUR");
/// # Ok::<(), cqrs_core::DecodeError>(())
/// ```
pub fn decode_event<E: Event>(name: &str, version: u32, payload: &[u8]) -> Result<E, DecodeError> {
    crate::codec::decode_event(name, version, payload)
}

/// The closed set of events of one aggregate: the enum `#[derive(Aggregate)]`
/// generates (`<Aggregate>Event`), one variant per event type.
///
/// It serializes as `{"event": name, "version": n, "data": payload}`, so the
/// stored form never depends on Rust variant names.
pub trait EventSet: Clone + Debug + PartialEq + Send + Sync + Sized + 'static {
    /// The names of every event in the set, in declaration order.
    const NAMES: &'static [&'static str];

    /// The stored name of this event.
    fn event_name(&self) -> &'static str;

    /// The schema version of this event.
    fn event_version(&self) -> u32;

    /// Encodes the payload (the event struct alone) as JSON.
    ///
    /// # Errors
    ///
    /// When the event's `Serialize` implementation fails.
    fn encode(&self) -> Result<Vec<u8>, serde_json::Error>;

    /// Decodes a stored payload by its name and schema version.
    ///
    /// # Errors
    ///
    /// An unknown name, an unsupported version or a payload that does not
    /// match the type.
    fn decode(name: &str, version: u32, payload: &[u8]) -> Result<Self, DecodeError>;
}

/// Marks `Self` as one of the events aggregate `A` declares in `events(..)`.
///
/// `events![..]` and [`Events::push`] accept only such events, so a handler
/// that emits a foreign event does not compile.
// The aggregate is often still being inferred where this is checked (inside
// `events![..]`), so the message does not name it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not one of this aggregate's events",
    label = "not listed in the aggregate's `events(..)`",
    note = "list `{Self}` in `#[aggregate(events(..))]`, or emit one of the aggregate's events"
)]
pub trait EventOf<A: Aggregate>: Event + Into<A::Event> {}

// Every event the aggregate's enum converts from: `#[derive(Aggregate)]`
// generates the `From` impls only, so one type listed under two paths is
// one conflict, not two. Not recommended in errors: the message above says
// more than "`From<E>` is not implemented for the enum".
#[diagnostic::do_not_recommend]
impl<A: Aggregate, E: Event + Into<A::Event>> EventOf<A> for E {}

/// The events a command handler decided to record, in order.
///
/// Build it with [`events!`](crate::events) or [`Events::push`].
///
/// # Examples
///
/// ```
/// # use cqrs_core::prelude::*;
/// # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// # pub struct Pinged;
/// # #[derive(Command, Deserialize)]
/// # #[command(aggregate = Probe)]
/// # pub struct Ping { #[id] pub id: u32 }
/// # #[derive(Aggregate, Default)]
/// # #[aggregate(events(Pinged), commands(Ping), error = std::io::Error)]
/// # pub struct Probe;
/// # impl Apply<Pinged> for Probe { fn apply(&mut self, _: &Pinged) {} }
/// # impl Handle<Ping> for Probe {
/// #     fn handle(&self, _: &Ping) -> Result<Events<Self>, std::io::Error> { Ok(events![Pinged]) }
/// # }
/// let mut events = Events::<Probe>::new();
/// events.push(Pinged);
/// assert_eq!(events.len(), 1);
/// ```
pub struct Events<A: Aggregate> {
    items: Items<A::Event>,
    _aggregate: PhantomData<fn() -> A>,
}

/// Most commands emit one event: it is kept inline, without a heap
/// allocation per command.
#[derive(Clone, PartialEq)]
enum Items<E> {
    None,
    One(E),
    Many(Vec<E>),
}

impl<A: Aggregate> Events<A> {
    /// No events: the command changed nothing.
    pub fn new() -> Self {
        Self {
            items: Items::None,
            _aggregate: PhantomData,
        }
    }

    /// Appends one event of this aggregate.
    pub fn push<E: EventOf<A>>(&mut self, event: E) {
        let event = event.into();
        self.items = match std::mem::replace(&mut self.items, Items::None) {
            Items::None => Items::One(event),
            Items::One(first) => Items::Many(vec![first, event]),
            Items::Many(mut all) => {
                all.push(event);
                Items::Many(all)
            }
        };
    }

    /// Appends one event of this aggregate, by value (for chaining).
    #[must_use]
    pub fn with<E: EventOf<A>>(mut self, event: E) -> Self {
        self.push(event);
        self
    }

    /// How many events.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// The events, in order.
    pub fn as_slice(&self) -> &[A::Event] {
        match &self.items {
            Items::None => &[],
            Items::One(event) => std::slice::from_ref(event),
            Items::Many(all) => all,
        }
    }

    /// The events, in order, by value.
    pub fn into_vec(self) -> Vec<A::Event> {
        match self.items {
            Items::None => Vec::new(),
            Items::One(event) => vec![event],
            Items::Many(all) => all,
        }
    }
}

impl<A: Aggregate> Default for Events<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Aggregate> Debug for Events<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<A: Aggregate> Clone for Events<A> {
    fn clone(&self) -> Self {
        Self {
            items: self.items.clone(),
            _aggregate: PhantomData,
        }
    }
}

impl<A: Aggregate> PartialEq for Events<A> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<A: Aggregate> IntoIterator for Events<A> {
    type Item = A::Event;
    type IntoIter = std::vec::IntoIter<A::Event>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

/// Builds [`Events`] from a list of event values of the handler's aggregate.
///
/// ```
/// # use cqrs_core::prelude::*;
/// # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// # pub struct Pinged;
/// # #[derive(Command, Deserialize)]
/// # #[command(aggregate = Probe)]
/// # pub struct Ping { #[id] pub id: u32 }
/// # #[derive(Aggregate, Default)]
/// # #[aggregate(events(Pinged), commands(Ping), error = std::io::Error)]
/// # pub struct Probe;
/// # impl Apply<Pinged> for Probe { fn apply(&mut self, _: &Pinged) {} }
/// impl Handle<Ping> for Probe {
///     fn handle(&self, _: &Ping) -> Result<Events<Self>, std::io::Error> {
///         Ok(events![Pinged, Pinged])
///     }
/// }
/// ```
#[macro_export]
macro_rules! events {
    () => { $crate::Events::new() };
    ($($event:expr),+ $(,)?) => {{
        let mut __cqrs_events = $crate::Events::new();
        $( __cqrs_events.push($event); )+
        __cqrs_events
    }};
}
