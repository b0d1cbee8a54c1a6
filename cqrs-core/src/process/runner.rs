//! A process manager on the subscription loop: its instances saved with
//! its checkpoint, its commands sent through the engine, its deadlines
//! fired by a task of their own.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, PoisonError, RwLock, Weak};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;
use uuid::Uuid;

use super::{
    Clock, Deadline, Ending, InstanceStatus, Outcome, ProcessInstance, ProcessManager, Reaction,
    Sent, Step, idempotency_key,
};
use crate::error::{Error, StoreError};
use crate::projection::runner::panic_message;
use crate::record::{Metadata, NewEvent, RecordedEvent, StreamId, Timestamp};
use crate::store::{
    CheckpointStore, DocumentChange, ExpectedVersion, Fence, LogFilter, LogSlice, Store,
};
use crate::subscription::lease::{LeaseKeeper, holder_id};
use crate::subscription::runner::{Control, Failure, Handler, Progress, Runner};
use crate::subscription::{Backoff, LeaseOptions, RunState, Source};

/// The name of the events that say a deadline passed.
pub(crate) const DEADLINE_EVENT: &str = "$deadline";
/// The collection a manager's instances are saved in.
const INSTANCES: &str = "instances";
/// How often a command that failed in a way that may pass is tried again
/// before the batch is given up (and read again after a pause).
const SEND_ATTEMPTS: u32 = 5;

/// The name a manager's checkpoint, instances and lease are kept under.
pub(crate) fn consumer_name(manager: &str) -> String {
    format!("process:{manager}")
}

/// The stream type of a manager's deadline events.
pub(crate) fn deadline_stream(manager: &str) -> String {
    format!("$process:{manager}")
}

/// What a process manager's runner gets from the engine.
#[derive(Clone, Debug)]
pub struct ProcessHost {
    pub(crate) source: Arc<dyn Source>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) engine: Weak<crate::engine::Shared>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) batch_size: usize,
    pub(crate) lease: LeaseOptions,
    pub(crate) backoff: Backoff,
}

/// How a process manager stands: where it is in the log, and its
/// instances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessStatus {
    /// Its name.
    pub name: &'static str,
    /// The global position its instances include.
    pub position: u64,
    /// The log's head as it last saw it.
    pub head: u64,
    /// What its runner is doing.
    pub state: RunState,
    /// The last failure it met, even if it recovered since.
    pub last_error: Option<String>,
    /// Instances waiting for more input.
    pub running: usize,
    /// Instances done.
    pub completed: usize,
    /// Instances that ended on a failure.
    pub failed: usize,
    /// Deadlines set and still to come, over all instances.
    pub deadlines: usize,
}

impl ProcessStatus {
    /// How many positions it is behind the log.
    pub fn lag(&self) -> u64 {
        self.head.saturating_sub(self.position)
    }
}

/// The instances as last committed, for status and inspection.
type View = Arc<RwLock<BTreeMap<String, ProcessInstance>>>;

/// A started process manager.
#[derive(Debug)]
pub struct RunningProcess {
    pub(crate) name: &'static str,
    pub(crate) progress: watch::Receiver<Progress>,
    pub(crate) view: View,
    pub(crate) control: mpsc::Sender<Control>,
    pub(crate) task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl RunningProcess {
    /// Its status now.
    pub(crate) fn status(&self) -> ProcessStatus {
        let progress = self.progress.borrow().clone();
        let view = self.view.read().unwrap_or_else(PoisonError::into_inner);
        let mut status = ProcessStatus {
            name: self.name,
            position: progress.position,
            head: progress.head,
            state: progress.state,
            last_error: progress.last_error,
            running: 0,
            completed: 0,
            failed: 0,
            deadlines: 0,
        };
        for instance in view.values() {
            match instance.status {
                InstanceStatus::Running => status.running += 1,
                InstanceStatus::Completed => status.completed += 1,
                InstanceStatus::Failed(_) => status.failed += 1,
            }
            status.deadlines += instance.deadlines.len();
        }
        status
    }

    /// Instance `key` as this process last committed it; read from the
    /// store when this process does not run the manager (another holds
    /// its lease).
    pub(crate) async fn instance(
        &self,
        store: &dyn CheckpointStore,
        key: &str,
    ) -> Result<Option<ProcessInstance>, Error> {
        let active = matches!(
            self.progress.borrow().state,
            RunState::CatchingUp | RunState::Live | RunState::Retrying(_) | RunState::Failed(_)
        );
        if active {
            let view = self.view.read().unwrap_or_else(PoisonError::into_inner);
            return Ok(view.get(key).cloned());
        }
        let mut saved = saved_instances(store, self.name).await?;
        Ok(saved.remove(key))
    }
}

/// Every instance of process manager `manager` as saved in `store`, by
/// key: what a process that does not run the manager (another holds its
/// lease, or an admin tool) can read.
pub(crate) async fn saved_instances(
    store: &dyn CheckpointStore,
    manager: &str,
) -> Result<BTreeMap<String, ProcessInstance>, Error> {
    let saved = store.load_read_model(&consumer_name(manager)).await?;
    saved
        .documents
        .into_iter()
        .filter(|(collection, _, _)| collection == INSTANCES)
        .map(|(_, key, body)| {
            let stored: StoredInstance = serde_json::from_slice(&body).map_err(|e| {
                Error::Store(StoreError::Refused {
                    source: None,
                    message: format!(
                        "saved instance `{key}` of process manager `{manager}` does not decode: {e}"
                    ),
                })
            })?;
            let view = stored.view(key.clone());
            Ok((key, view))
        })
        .collect()
}

/// A deadline set and not yet passed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) name: String,
    pub(crate) due: Timestamp,
    /// Which setting of the deadline this is: a deadline set again under
    /// the same name gets a new one, so the event of the earlier setting
    /// is not taken for it.
    pub(crate) seq: u64,
}

/// An instance as saved, its state as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredInstance {
    state: serde_json::Value,
    #[serde(flatten)]
    status: InstanceStatus,
    #[serde(default)]
    deadlines: Vec<Pending>,
    #[serde(default)]
    history: Vec<Step>,
    #[serde(default)]
    seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    correlation_id: Option<Uuid>,
    /// The trace context of the event that started the instance: its
    /// deadline events carry it, so what a deadline causes stays in the
    /// workflow's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
}

impl StoredInstance {
    fn view(&self, key: String) -> ProcessInstance {
        ProcessInstance {
            key,
            status: self.status.clone(),
            state: self.state.clone(),
            deadlines: self
                .deadlines
                .iter()
                .map(|d| Deadline {
                    name: d.name.clone(),
                    due: d.due,
                })
                .collect(),
            history: self.history.clone(),
        }
    }
}

/// An instance in memory.
pub(crate) struct Instance<P> {
    pub(crate) state: P,
    pub(crate) status: InstanceStatus,
    pub(crate) deadlines: Vec<Pending>,
    pub(crate) history: Vec<Step>,
    pub(crate) seq: u64,
    pub(crate) correlation_id: Option<Uuid>,
    pub(crate) traceparent: Option<String>,
}

impl<P: ProcessManager> Instance<P> {
    fn stored(&self) -> Result<StoredInstance, serde_json::Error> {
        Ok(StoredInstance {
            state: serde_json::to_value(&self.state)?,
            status: self.status.clone(),
            deadlines: self.deadlines.clone(),
            history: self.history.clone(),
            seq: self.seq,
            correlation_id: self.correlation_id,
            traceparent: self.traceparent.clone(),
        })
    }
}

/// A deadline to fire: when, for which instance, which setting.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    due: Timestamp,
    instance: String,
    name: String,
    seq: u64,
    correlation_id: Option<Uuid>,
    traceparent: Option<String>,
}

/// What a deadline event says.
#[derive(Debug, Serialize, Deserialize)]
struct DeadlinePassed {
    deadline: String,
    seq: u64,
    due: Timestamp,
}

/// Starts process manager `P` on its own task, with its deadline task.
pub(crate) fn start<P: ProcessManager>(host: &ProcessHost) -> RunningProcess {
    let consumer = consumer_name(P::NAME);
    let (progress_tx, progress) = watch::channel(Progress {
        position: 0,
        head: *host.source.watch_head().borrow(),
        state: RunState::Starting,
        last_error: None,
    });
    let (control, control_rx) = mpsc::channel(4);
    let view: View = Arc::default();
    let timers = Arc::new(watch::Sender::new(BTreeSet::new()));
    let mut names = crate::projection::runner::stored_names(P::EVENTS, P::EVENT_DESCRIPTORS);
    names.push(DEADLINE_EVENT);
    names.sort_unstable();
    let handler = ProcessHandler::<P> {
        consumer: consumer.clone(),
        read: Arc::clone(&host.store) as Arc<dyn CheckpointStore>,
        engine: host.engine.clone(),
        clock: Arc::clone(&host.clock),
        backoff: host.backoff,
        deadline_stream: deadline_stream(P::NAME),
        instances: BTreeMap::new(),
        dirty: BTreeSet::new(),
        view: Arc::clone(&view),
        timers: Arc::clone(&timers),
    };
    let lease = LeaseKeeper {
        store: Arc::clone(&host.store) as Arc<dyn CheckpointStore>,
        name: consumer.clone(),
        holder: holder_id(),
        options: host.lease,
    };
    let progress_tx = Arc::new(progress_tx);
    let runner = Runner {
        name: consumer.clone(),
        source: Arc::clone(&host.source),
        filter: LogFilter::events(names),
        batch: host.batch_size,
        lease: Some(lease),
        backoff: host.backoff,
        progress: Arc::clone(&progress_tx),
        handler,
    };
    let span = tracing::info_span!("process_manager", process = P::NAME);
    let task = tokio::spawn(
        runner
            .run(host.shutdown.clone(), control_rx)
            .instrument(span.clone()),
    );
    let firing = Firing {
        manager: P::NAME,
        store: Arc::clone(&host.store),
        clock: Arc::clone(&host.clock),
        timers: timers.subscribe(),
        progress: progress_tx.subscribe(),
        backoff: host.backoff,
    };
    tokio::spawn(firing.run(host.shutdown.clone()).instrument(span));
    RunningProcess {
        name: P::NAME,
        progress,
        view,
        control,
        task: std::sync::Mutex::new(Some(task)),
    }
}

/// Reacts to events, sends commands, saves instances with the checkpoint.
struct ProcessHandler<P> {
    consumer: String,
    read: Arc<dyn CheckpointStore>,
    engine: Weak<crate::engine::Shared>,
    clock: Arc<dyn Clock>,
    backoff: Backoff,
    deadline_stream: String,
    instances: BTreeMap<String, Instance<P>>,
    /// Instances changed since the last commit.
    dirty: BTreeSet<String>,
    view: View,
    /// The deadlines of the committed instances, for the firing task.
    timers: Arc<watch::Sender<BTreeSet<Timer>>>,
}

/// Why an input could not be taken.
pub(crate) enum Stop {
    /// Retried after a pause, from the saved state.
    Transient(String),
    /// The manager stops at the input.
    Permanent(String),
}

impl<P: ProcessManager> ProcessHandler<P> {
    /// Takes one recorded event through the engine.
    async fn take(
        &mut self,
        engine: &crate::Engine,
        record: &Arc<RecordedEvent>,
    ) -> Result<(), Stop> {
        let mut dispatch = ThroughEngine {
            engine,
            backoff: self.backoff,
        };
        let now = self.clock.now();
        let touched = take(
            &mut self.instances,
            &mut dispatch,
            now,
            &self.deadline_stream,
            record,
        )
        .await?;
        if let Some(key) = touched {
            self.dirty.insert(key);
        }
        Ok(())
    }

    /// Publishes what was committed: the view and the timers.
    fn committed(&mut self, stored: Vec<(String, StoredInstance)>) {
        if stored.is_empty() {
            // Nothing changed: the firing task is not woken.
            return;
        }
        let mut view = self.view.write().unwrap_or_else(PoisonError::into_inner);
        self.timers.send_modify(|timers| {
            let keys: BTreeSet<&str> = stored.iter().map(|(key, _)| key.as_str()).collect();
            timers.retain(|t| !keys.contains(t.instance.as_str()));
            for (key, instance) in stored {
                if instance.status == InstanceStatus::Running {
                    for d in &instance.deadlines {
                        timers.insert(Timer {
                            due: d.due,
                            instance: key.clone(),
                            name: d.name.clone(),
                            seq: d.seq,
                            correlation_id: instance.correlation_id,
                            traceparent: instance.traceparent.clone(),
                        });
                    }
                }
                view.insert(key.clone(), instance.view(key));
            }
        });
    }

    fn encode_dirty(&self) -> Result<Vec<(String, StoredInstance)>, Failure> {
        self.dirty
            .iter()
            .filter_map(|key| self.instances.get(key).map(|i| (key, i)))
            .map(|(key, instance)| {
                instance
                    .stored()
                    .map(|stored| (key.clone(), stored))
                    .map_err(|e| Failure::Permanent {
                        position: 0,
                        reason: format!(
                            "the state of instance `{key}` of process manager `{}` does not encode: {e}",
                            P::NAME
                        ),
                    })
            })
            .collect()
    }

    fn clear(&mut self) {
        self.instances.clear();
        self.dirty.clear();
        self.view
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.timers.send_replace(BTreeSet::new());
    }
}

/// Carries a reaction out: its deadlines, its commands (and the
/// reactions to their refusals), its ending; recorded in the history.
pub(crate) async fn carry_out<P: ProcessManager>(
    dispatch: &mut dyn Dispatch<P>,
    now: Timestamp,
    key: &str,
    instance: &mut Instance<P>,
    record: &RecordedEvent,
    input: String,
    reaction: Reaction<P>,
) -> Result<(), Stop> {
    let mut step = Step {
        position: record.position,
        event_id: record.event_id,
        input,
        commands: Vec::new(),
    };
    let correlation = instance
        .correlation_id
        .or(record.metadata.correlation_id)
        .unwrap_or(record.event_id);
    let mut queue = VecDeque::from([reaction]);
    let mut sent = 0;
    while let Some(reaction) = queue.pop_front() {
        for (name, after) in reaction.deadlines {
            instance.deadlines.retain(|d| d.name != name);
            if let Some(after) = after {
                instance.seq += 1;
                let micros = i64::try_from(after.as_micros()).unwrap_or(i64::MAX);
                instance.deadlines.push(Pending {
                    name,
                    due: Timestamp(now.0.saturating_add(micros)),
                    seq: instance.seq,
                });
            }
        }
        let mut refused_for_good = None;
        for command in &reaction.commands {
            let issued = command.issued();
            let idempotency_key = idempotency_key(P::NAME, key, record.event_id, sent);
            sent += 1;
            let mut metadata = Metadata::new()
                .correlation_id(correlation)
                .causation_id(record.event_id)
                .actor(format!("process:{}", P::NAME))
                .idempotency_key(idempotency_key.clone());
            // The workflow stays in the trace of the command that started it.
            metadata
                .traceparent
                .clone_from(&record.metadata.traceparent);
            let mut attempt = 0;
            let outcome = loop {
                match dispatch
                    .send(&**command, metadata.clone(), &mut instance.state)
                    .await
                {
                    Outcome::Failed(e) if may_pass(&e) => {
                        attempt += 1;
                        if attempt >= SEND_ATTEMPTS {
                            return Err(Stop::Transient(format!(
                                "command `{}` for instance `{key}` failed: {e}",
                                issued.command
                            )));
                        }
                        dispatch.pause(attempt).await;
                    }
                    outcome => break outcome,
                }
            };
            match outcome {
                Outcome::Done(receipt) => step.commands.push(Sent {
                    issued,
                    idempotency_key,
                    position: receipt.position,
                    refused: None,
                }),
                Outcome::Refused { error, recovery } => {
                    let why = format!("command `{}` was refused: {error}", issued.command);
                    step.commands.push(Sent {
                        issued,
                        idempotency_key,
                        position: None,
                        refused: Some(error),
                    });
                    match recovery {
                        Some(recovery) => queue.push_back(recovery),
                        None => {
                            refused_for_good = Some(why);
                            break;
                        }
                    }
                }
                Outcome::Failed(e) => {
                    refused_for_good = Some(format!(
                        "command `{}` could not be sent: {e}",
                        issued.command
                    ));
                    step.commands.push(Sent {
                        issued,
                        idempotency_key,
                        position: None,
                        refused: Some(e.to_string()),
                    });
                    break;
                }
            }
        }
        if let Some(why) = refused_for_good {
            instance.status = InstanceStatus::Failed(why);
            queue.clear();
        } else {
            match reaction.end {
                Some(Ending::Completed) => instance.status = InstanceStatus::Completed,
                Some(Ending::Failed(why)) => instance.status = InstanceStatus::Failed(why),
                None => {}
            }
        }
        if instance.status != InstanceStatus::Running {
            instance.deadlines.clear();
            queue.clear();
        }
    }
    instance.history.push(step);
    Ok(())
}

/// Takes one recorded event into `instances`: routes it to its instance
/// (or takes a deadline event), reacts, and carries the reaction out;
/// answers the key of the instance it changed.
pub(crate) async fn take<P: ProcessManager>(
    instances: &mut BTreeMap<String, Instance<P>>,
    dispatch: &mut dyn Dispatch<P>,
    now: Timestamp,
    deadline_stream: &str,
    record: &Arc<RecordedEvent>,
) -> Result<Option<String>, Stop> {
    if &*record.event_name == DEADLINE_EVENT {
        if record.stream.aggregate != deadline_stream {
            return Ok(None);
        }
        return take_deadline(instances, dispatch, now, record).await;
    }
    if !P::consumes(&record.event_name) {
        return Ok(None);
    }
    let routed = match P::route(record) {
        Ok(Some(routed)) => routed,
        Ok(None) => return Ok(None),
        Err(e) => return Err(Stop::Permanent(e.to_string())),
    };
    let (key, may_start) = match routed.correlation {
        super::Correlation::Start(key) => (key, true),
        super::Correlation::Join(key) => (key, false),
        super::Correlation::Ignore => return Ok(None),
    };
    // Ended: later events for it are not taken.
    if instances
        .get(&key)
        .is_some_and(|i| i.status != InstanceStatus::Running)
    {
        return Ok(None);
    }
    let mut instance = match instances.remove(&key) {
        Some(running) => running,
        None if may_start => Instance {
            state: P::default(),
            status: InstanceStatus::Running,
            deadlines: Vec::new(),
            history: Vec::new(),
            seq: 0,
            correlation_id: record.metadata.correlation_id,
            traceparent: record.metadata.traceparent.clone(),
        },
        None => return Ok(None),
    };
    let react = routed.react;
    let reaction = std::panic::catch_unwind(AssertUnwindSafe(|| react(&mut instance.state)));
    let outcome = match reaction {
        Ok(reaction) => {
            carry_out(
                dispatch,
                now,
                &key,
                &mut instance,
                record,
                record.event_name.to_string(),
                reaction,
            )
            .await
        }
        Err(panic) => Err(Stop::Permanent(format!(
            "`React<{}>` of process manager `{}` panicked: {}",
            record.event_name,
            P::NAME,
            panic_message(&*panic)
        ))),
    };
    instances.insert(key.clone(), instance);
    outcome.map(|()| Some(key))
}

/// Takes a deadline event: the instance's `Timeout`, if the deadline is
/// still set as it was when it fired.
async fn take_deadline<P: ProcessManager>(
    instances: &mut BTreeMap<String, Instance<P>>,
    dispatch: &mut dyn Dispatch<P>,
    now: Timestamp,
    record: &Arc<RecordedEvent>,
) -> Result<Option<String>, Stop> {
    let Ok(passed) = serde_json::from_slice::<DeadlinePassed>(&record.payload) else {
        return Err(Stop::Permanent(format!(
            "the deadline event at position {} does not decode",
            record.position
        )));
    };
    let key = record.stream.id.clone();
    let Some(instance) = instances.get_mut(&key) else {
        return Ok(None);
    };
    let set = instance
        .deadlines
        .iter()
        .position(|d| d.name == passed.deadline && d.seq == passed.seq);
    // Cancelled, set again since, or the instance ended: nothing changes.
    let Some(index) = set.filter(|_| instance.status == InstanceStatus::Running) else {
        return Ok(None);
    };
    let pending = instance.deadlines.remove(index);
    let deadline = Deadline {
        name: pending.name,
        due: pending.due,
    };
    let input = format!("deadline:{}", deadline.name);
    let reaction =
        std::panic::catch_unwind(AssertUnwindSafe(|| instance.state.on_deadline(&deadline)));
    match reaction {
        Ok(Some(reaction)) => {
            carry_out(dispatch, now, &key, instance, record, input, reaction).await?;
        }
        Ok(None) => {
            instance.status = InstanceStatus::Failed(format!(
                "deadline `{}` passed, and `{}` has no `impl Timeout`",
                deadline.name,
                P::NAME
            ));
            instance.deadlines.clear();
        }
        Err(panic) => {
            return Err(Stop::Permanent(format!(
                "`Timeout` of process manager `{}` panicked: {}",
                P::NAME,
                panic_message(&*panic)
            )));
        }
    }
    Ok(Some(key))
}

/// Where a reaction's commands go: the engine, or the test kit.
pub(crate) trait Dispatch<P>: Send {
    /// Sends one command.
    fn send<'a>(
        &'a mut self,
        command: &'a dyn super::Outgoing<P>,
        metadata: Metadata,
        state: &'a mut P,
    ) -> crate::BoxFuture<'a, Outcome<P>>;

    /// Waits before sending again after a failure that may pass.
    fn pause(&self, attempt: u32) -> crate::BoxFuture<'_, ()>;
}

/// Commands through the engine.
struct ThroughEngine<'e> {
    engine: &'e crate::Engine,
    backoff: Backoff,
}

impl<P: Send + 'static> Dispatch<P> for ThroughEngine<'_> {
    fn send<'a>(
        &'a mut self,
        command: &'a dyn super::Outgoing<P>,
        metadata: Metadata,
        state: &'a mut P,
    ) -> crate::BoxFuture<'a, Outcome<P>> {
        command.send(self.engine, metadata, state)
    }

    fn pause(&self, attempt: u32) -> crate::BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(self.backoff.delay(attempt)))
    }
}

/// Whether a failure to send a command may pass by trying again.
fn may_pass(error: &Error) -> bool {
    match error {
        Error::Store(e) => e.is_transient(),
        Error::TooManyConflicts { .. } => true,
        _ => false,
    }
}

impl<P: ProcessManager> Handler for ProcessHandler<P> {
    fn needs_lease(&self) -> bool {
        true
    }

    fn follows_in_standby(&self) -> bool {
        // Its reactions send commands: only the holder may react at all.
        false
    }

    async fn restore(&mut self) -> Result<u64, Failure> {
        self.clear();
        let saved = self
            .read
            .load_read_model(&self.consumer)
            .await
            .map_err(|e| Failure::from_store(&e, 0))?;
        let checkpoint = saved.checkpoint.unwrap_or(0);
        let mut stored = Vec::new();
        for (collection, key, body) in saved.documents {
            if collection != INSTANCES {
                continue;
            }
            let decoded = serde_json::from_slice::<StoredInstance>(&body).and_then(|s| {
                let state = serde_json::from_value::<P>(s.state.clone())?;
                Ok((s, state))
            });
            let (saved_instance, state) = decoded.map_err(|e| Failure::Permanent {
                position: checkpoint,
                reason: format!(
                    "saved instance `{key}` of process manager `{}` does not decode: {e}",
                    P::NAME
                ),
            })?;
            self.instances.insert(
                key.clone(),
                Instance {
                    state,
                    status: saved_instance.status.clone(),
                    deadlines: saved_instance.deadlines.clone(),
                    history: saved_instance.history.clone(),
                    seq: saved_instance.seq,
                    correlation_id: saved_instance.correlation_id,
                    traceparent: saved_instance.traceparent.clone(),
                },
            );
            stored.push((key, saved_instance));
        }
        self.committed(stored);
        Ok(checkpoint)
    }

    async fn apply(&mut self, from: u64, slice: &LogSlice) -> Result<(), Failure> {
        let Some(shared) = self.engine.upgrade() else {
            return Err(Failure::Transient(String::from("the engine is gone")));
        };
        let engine = crate::Engine::from_shared(shared);
        for record in &slice.events {
            match self.take(&engine, record).await {
                Ok(()) => {}
                Err(Stop::Transient(reason)) => return Err(Failure::Transient(reason)),
                Err(Stop::Permanent(reason)) => {
                    // The instance's state may be half changed, and it may
                    // be one that an earlier event of the batch changed
                    // too: nothing of the batch is committed (as for a
                    // projection). The commands already sent for it carry
                    // their keys, so reading it again sends none twice.
                    return Err(Failure::Permanent {
                        position: from,
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    async fn commit(&mut self, through: u64, fence: Option<&Fence>) -> Result<(), Failure> {
        let stored = self.encode_dirty()?;
        let mut changes = Vec::with_capacity(stored.len());
        for (key, instance) in &stored {
            let body = serde_json::to_vec(instance).map_err(|e| Failure::Permanent {
                position: 0,
                reason: format!("instance `{key}` does not encode: {e}"),
            })?;
            changes.push(DocumentChange {
                collection: INSTANCES.to_owned(),
                key: key.clone(),
                body: Some(body),
            });
        }
        self.read
            .commit_read_model(&self.consumer, changes, through, fence)
            .await
            .map_err(|e| Failure::from_store(&e, through))?;
        self.dirty.clear();
        self.committed(stored);
        Ok(())
    }

    fn landed(&mut self) {
        if let Ok(stored) = self.encode_dirty() {
            self.committed(stored);
        }
        self.dirty.clear();
    }

    fn discard(&mut self) {
        self.clear();
    }

    async fn reset(&mut self, fence: Option<&Fence>) -> Result<(), Failure> {
        self.read
            .reset_read_model(&self.consumer, fence)
            .await
            .map_err(|e| Failure::from_store(&e, 0))?;
        self.clear();
        Ok(())
    }

    fn batch_span(&self, from: u64, slice: &LogSlice) -> tracing::Span {
        tracing::info_span!(
            "process_batch",
            process = P::NAME,
            from,
            through = slice.through,
            events = slice.events.len(),
        )
    }

    async fn saved_checkpoint(&mut self) -> Result<Option<u64>, Failure> {
        self.read
            .load_checkpoint(&self.consumer)
            .await
            .map_err(|e| Failure::from_store(&e, 0))
    }
}

/// Fires the deadlines that pass: appends each one's deadline event, once
/// (by idempotency key), while this process runs the manager.
struct Firing {
    manager: &'static str,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    timers: watch::Receiver<BTreeSet<Timer>>,
    progress: watch::Receiver<Progress>,
    backoff: Backoff,
}

impl Firing {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut fired: BTreeSet<Timer> = BTreeSet::new();
        let mut attempt = 0;
        loop {
            let active = matches!(
                self.progress.borrow_and_update().state,
                RunState::CatchingUp | RunState::Live | RunState::Retrying(_)
            );
            let next = {
                let timers = self.timers.borrow_and_update();
                fired.retain(|t| timers.contains(t));
                timers.iter().find(|t| !fired.contains(t)).cloned()
            };
            let clock = Arc::clone(&self.clock);
            let wait = async {
                match (&next, active) {
                    (Some(timer), true) => clock.wait_until(timer.due).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                changed = self.timers.changed() => if changed.is_err() { return },
                changed = self.progress.changed() => if changed.is_err() { return },
                () = wait => {
                    let Some(timer) = next else { continue };
                    match self.fire(&timer).await {
                        Ok(()) => {
                            attempt = 0;
                            fired.insert(timer);
                        }
                        Err(e) => {
                            tracing::warn!(process = self.manager, error = %e, "firing a deadline failed");
                            attempt += 1;
                            tokio::select! {
                                _ = shutdown.changed() => return,
                                () = tokio::time::sleep(self.backoff.delay(attempt)) => {}
                            }
                        }
                    }
                }
            }
        }
    }

    /// Appends the deadline event of `timer`; one that is there already
    /// (fired by this process before a restart, or by another) is fine.
    async fn fire(&self, timer: &Timer) -> Result<(), StoreError> {
        let stream = StreamId::new(deadline_stream(self.manager), timer.instance.clone());
        let payload = serde_json::to_vec(&DeadlinePassed {
            deadline: timer.name.clone(),
            seq: timer.seq,
            due: timer.due,
        })
        .map_err(|e| StoreError::Refused {
            message: format!("a deadline event does not encode: {e}"),
            source: None,
        })?;
        let mut metadata = Metadata::new().idempotency_key(format!(
            "{}/{}/deadline/{}/{}",
            self.manager, timer.instance, timer.name, timer.seq
        ));
        metadata.correlation_id = timer.correlation_id;
        metadata.traceparent.clone_from(&timer.traceparent);
        let mut event = NewEvent::new(DEADLINE_EVENT, payload);
        event.metadata = metadata;
        match self
            .store
            .append(&stream, ExpectedVersion::Any, vec![event])
            .await
        {
            Ok(_) | Err(StoreError::DuplicateKey { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
