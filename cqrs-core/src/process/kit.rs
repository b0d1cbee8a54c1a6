//! The test kit of process managers: given events, expect commands and
//! deadlines; move the clock, expect what the deadlines send.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde::Serialize;

use super::runner::{self, DEADLINE_EVENT, Dispatch, Instance, Stop};
use super::{InstanceStatus, Issued, Outcome, Outgoing, ProcessManager};
use crate::BoxFuture;
use crate::aggregate::Aggregate;
use crate::command::{Command, Receipt};
use crate::event::Event;
use crate::record::{Metadata, RecordedEvent, StreamId, Timestamp};

/// Runs a process manager's reactions the way the engine does (the same
/// routing, deadlines and refusals), without a store: each command is
/// taken as done unless the test said it is refused.
///
/// Every `then_expect_*` panics, with what was expected and what
/// happened, when the manager did otherwise.
///
/// ```
/// # use cqrs_core::prelude::*;
/// # use cqrs_core::process::{Issued, ProcessTest};
/// # use std::time::Duration;
/// # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// # pub struct Ordered { pub order: String }
/// # #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// # pub struct Paid { pub order: String }
/// # #[derive(Command, Serialize, Deserialize, Debug)]
/// # #[command(aggregate = Order)]
/// # pub struct Cancel { #[id] pub order: String }
/// # #[derive(Aggregate, Default)]
/// # #[aggregate(name = "order", events(Ordered, Paid), commands(Cancel), error = std::io::Error)]
/// # pub struct Order;
/// # impl Apply<Ordered> for Order { fn apply(&mut self, _: &Ordered) {} }
/// # impl Apply<Paid> for Order { fn apply(&mut self, _: &Paid) {} }
/// # impl Handle<Cancel> for Order { fn handle(&self, _: &Cancel) -> Result<Events<Self>, std::io::Error> { Ok(Events::new()) } }
/// #[derive(ProcessManager, Default, Serialize, Deserialize)]
/// #[process(name = "payment", events(Ordered, Paid), commands(Cancel))]
/// pub struct Payment { order: String }
/// # impl Correlate<Ordered> for Payment { fn correlate(e: &Envelope<Ordered>) -> Correlation { Correlation::start(&e.order) } }
/// # impl Correlate<Paid> for Payment { fn correlate(e: &Envelope<Paid>) -> Correlation { Correlation::join(&e.order) } }
/// # impl React<Ordered> for Payment {
/// #     fn react(&mut self, e: &Envelope<Ordered>) -> Reaction<Self> {
/// #         self.order = e.order.clone();
/// #         Reaction::new().deadline("payment", Duration::from_secs(3600))
/// #     }
/// # }
/// # impl React<Paid> for Payment { fn react(&mut self, _: &Envelope<Paid>) -> Reaction<Self> { Reaction::new().complete() } }
/// # impl Timeout for Payment {
/// #     fn timeout(&mut self, _: &Deadline) -> Reaction<Self> { Reaction::new().send(Cancel { order: self.order.clone() }).complete() }
/// # }
/// let hour = Duration::from_secs(3600);
/// ProcessTest::<Payment>::new()
///     .given(("order", "o-1"), Ordered { order: "o-1".into() })
///     .then_expect_no_commands()
///     .then_expect_deadline("payment", hour)
///     .advance(hour)
///     .then_expect_commands([Issued::of(&Cancel { order: "o-1".into() })])
///     .then_expect_status(InstanceStatus::Completed);
/// # use cqrs_core::process::InstanceStatus;
/// ```
pub struct ProcessTest<P: ProcessManager> {
    instances: BTreeMap<String, Instance<P>>,
    now: Timestamp,
    log: crate::testing::TestLog,
    /// The commands sent since the last expectation of commands.
    sent: Vec<Issued>,
    refusals: Vec<(Issued, Box<dyn Any + Send>)>,
    /// The instance the last input changed.
    last: Option<String>,
}

impl<P: ProcessManager> std::fmt::Debug for ProcessTest<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessTest")
            .field("manager", &P::NAME)
            .field("instances", &self.instances.keys().collect::<Vec<_>>())
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl<P: ProcessManager> Default for ProcessTest<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: ProcessManager> ProcessTest<P> {
    /// No instances yet; the clock at the system's time now.
    pub fn new() -> Self {
        Self {
            instances: BTreeMap::new(),
            now: Timestamp::now(),
            log: crate::testing::TestLog::default(),
            sent: Vec::new(),
            refusals: Vec::new(),
            last: None,
        }
    }

    /// The manager takes `event`, as if appended to `stream` (e.g.
    /// `("account", "a-1")`), and carries its reaction out.
    ///
    /// # Panics
    ///
    /// When the manager does not list the event, or it does not survive
    /// encoding and decoding.
    #[track_caller]
    pub fn given<E: Event>(mut self, stream: impl Into<StreamId>, event: E) -> Self {
        assert!(
            P::consumes(E::NAME),
            "process manager `{}` does not list event `{}`",
            P::NAME,
            E::NAME
        );
        let payload = crate::codec::encode_event(&event)
            .unwrap_or_else(|e| panic!("event {event:?} does not encode: {e}"));
        let record = self.record(stream.into(), E::NAME, E::VERSION, payload);
        self.take(&record);
        self
    }

    /// The next time the manager sends a command equal to `command` (by
    /// name, stream and JSON body), its aggregate refuses it with `error`.
    pub fn refuse<C: Command + Serialize>(
        mut self,
        command: &C,
        error: <C::Aggregate as Aggregate>::Error,
    ) -> Self {
        self.refusals.push((Issued::of(command), Box::new(error)));
        self
    }

    /// Moves the clock by `by`; the deadlines that pass fire, in the order
    /// they fall due, each one as the engine fires it.
    #[track_caller]
    pub fn advance(mut self, by: Duration) -> Self {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.now = Timestamp(self.now.0.saturating_add(micros));
        loop {
            let due = self
                .instances
                .iter()
                .filter(|(_, i)| i.status == InstanceStatus::Running)
                .flat_map(|(key, i)| i.deadlines.iter().map(move |d| (d.due, key, d)))
                .filter(|(due, _, _)| *due <= self.now)
                .min_by_key(|(due, _, _)| *due)
                .map(|(due, key, d)| (due, key.clone(), d.name.clone(), d.seq));
            let Some((due, key, name, seq)) = due else {
                break;
            };
            let payload = serde_json::json!({ "deadline": name, "seq": seq, "due": due });
            let stream = StreamId::new(runner::deadline_stream(P::NAME), key);
            let record = self.record(stream, DEADLINE_EVENT, 1, payload.to_string().into_bytes());
            self.take(&record);
        }
        self
    }

    /// The manager sent exactly `expected`, in order, since the start or
    /// the last expectation of commands.
    ///
    /// # Panics
    ///
    /// When it sent anything else.
    #[track_caller]
    pub fn then_expect_commands(mut self, expected: impl IntoIterator<Item = Issued>) -> Self {
        let expected: Vec<Issued> = expected.into_iter().collect();
        let sent = std::mem::take(&mut self.sent);
        if sent != expected {
            panic!(
                "process manager `{}` sent other commands than expected\n  expected: {}\n  sent:     {}",
                P::NAME,
                shown(&expected),
                shown(&sent)
            );
        }
        self
    }

    /// The manager sent nothing since the start or the last expectation
    /// of commands.
    ///
    /// # Panics
    ///
    /// When it sent a command.
    #[track_caller]
    pub fn then_expect_no_commands(self) -> Self {
        self.then_expect_commands([])
    }

    /// The instance of the last input has deadline `name` set, due
    /// `after` from the kit's clock now.
    ///
    /// # Panics
    ///
    /// When it has no such deadline, or one due at another time.
    #[track_caller]
    pub fn then_expect_deadline(self, name: &str, after: Duration) -> Self {
        let micros = i64::try_from(after.as_micros()).unwrap_or(i64::MAX);
        let want = Timestamp(self.now.0.saturating_add(micros));
        let instance = self.last_instance();
        match instance.deadlines.iter().find(|d| d.name == name) {
            Some(d) if d.due == want => {}
            Some(d) => panic!(
                "deadline `{name}` is due {} µs from now, not {} µs",
                d.due.0 - self.now.0,
                micros
            ),
            None => panic!(
                "no deadline `{name}` is set; set: {:?}",
                instance
                    .deadlines
                    .iter()
                    .map(|d| &d.name)
                    .collect::<Vec<_>>()
            ),
        }
        self
    }

    /// The instance of the last input has no deadline `name` set.
    ///
    /// # Panics
    ///
    /// When it has.
    #[track_caller]
    pub fn then_expect_no_deadline(self, name: &str) -> Self {
        if self
            .last_instance()
            .deadlines
            .iter()
            .any(|d| d.name == name)
        {
            panic!("deadline `{name}` is set");
        }
        self
    }

    /// The instance of the last input stands as `expected`.
    ///
    /// # Panics
    ///
    /// When it stands otherwise.
    #[track_caller]
    pub fn then_expect_status(self, expected: InstanceStatus) -> Self {
        let status = &self.last_instance().status;
        assert!(
            *status == expected,
            "instance is {status:?}, not {expected:?}"
        );
        self
    }

    /// The state of instance `key`, if there is one.
    pub fn instance(&self, key: &str) -> Option<&P> {
        self.instances.get(key).map(|i| &i.state)
    }

    #[track_caller]
    fn last_instance(&self) -> &Instance<P> {
        match self.last.as_ref().and_then(|key| self.instances.get(key)) {
            Some(instance) => instance,
            None => panic!("no input reached an instance of `{}` yet", P::NAME),
        }
    }

    fn record(
        &mut self,
        stream: StreamId,
        name: &str,
        version: u32,
        payload: Vec<u8>,
    ) -> Arc<RecordedEvent> {
        self.log.record(stream, name, version, payload, self.now)
    }

    #[track_caller]
    fn take(&mut self, record: &Arc<RecordedEvent>) {
        let mut dispatch = Kit {
            sent: Vec::new(),
            refusals: std::mem::take(&mut self.refusals),
            unmatched: None,
        };
        let deadline_stream = runner::deadline_stream(P::NAME);
        let taken = {
            let future = pin!(runner::take(
                &mut self.instances,
                &mut dispatch,
                self.now,
                &deadline_stream,
                record,
            ));
            // Nothing in the kit waits: the reaction runs to its end in
            // one poll, without a runtime.
            match future.poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(taken) => taken,
                Poll::Pending => panic!("the kit's reaction waited, which it never does"),
            }
        };
        self.refusals = dispatch.refusals;
        self.sent.extend(dispatch.sent);
        if let Some(message) = dispatch.unmatched {
            panic!("{message}");
        }
        match taken {
            Ok(Some(key)) => self.last = Some(key),
            Ok(None) => {}
            Err(Stop::Permanent(why) | Stop::Transient(why)) => {
                panic!("process manager `{}` stopped: {why}", P::NAME)
            }
        }
    }
}

use std::future::Future as _;

/// The kit's commands: recorded, and done unless refused.
struct Kit {
    sent: Vec<Issued>,
    refusals: Vec<(Issued, Box<dyn Any + Send>)>,
    unmatched: Option<String>,
}

impl<P: Send + 'static> Dispatch<P> for Kit {
    fn send<'a>(
        &'a mut self,
        command: &'a dyn Outgoing<P>,
        _: Metadata,
        state: &'a mut P,
    ) -> BoxFuture<'a, Outcome<P>> {
        let issued = command.issued();
        self.sent.push(issued.clone());
        let outcome = match self.refusals.iter().position(|(r, _)| *r == issued) {
            Some(index) => {
                let (_, error) = self.refusals.remove(index);
                match command.refuse(error, state) {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        self.unmatched = Some(format!(
                            "the refusal of `{}` does not hold its aggregate's error type",
                            issued.command
                        ));
                        done(&issued)
                    }
                }
            }
            None => done(&issued),
        };
        Box::pin(std::future::ready(outcome))
    }

    fn pause(&self, _: u32) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

fn done<P>(issued: &Issued) -> Outcome<P> {
    Outcome::Done(Receipt {
        aggregate: issued.stream.aggregate.clone(),
        id: issued.stream.id.clone(),
        version: 0,
        position: None,
        events: 0,
        retries: 0,
    })
}

fn shown(commands: &[Issued]) -> String {
    if commands.is_empty() {
        return String::from("(none)");
    }
    let mut text = String::new();
    for (i, c) in commands.iter().enumerate() {
        if i > 0 {
            text.push_str("\n            ");
        }
        let _ = write!(text, "{} to {} {}", c.command, c.stream, c.body);
    }
    text
}
