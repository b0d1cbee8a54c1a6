//! Errors, one enum per area, joined in [`Error`].

use std::fmt;

use thiserror::Error;

use crate::record::{RecordedEvent, Shown, StreamId};

/// Where in the log an event that failed to decode lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLocation {
    /// Its stream.
    pub stream: StreamId,
    /// Its version in the stream.
    pub version: u64,
    /// Its global position.
    pub position: u64,
}

impl EventLocation {
    /// Where `record` is.
    pub(crate) fn of(record: &RecordedEvent) -> Self {
        Self {
            stream: StreamId::clone(&record.stream),
            version: record.version,
            position: record.position,
        }
    }
}

impl fmt::Display for EventLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream {} version {} position {}",
            self.stream, self.version, self.position
        )
    }
}

/// A stored event or snapshot that this build cannot read.
#[derive(Debug, Error)]
#[error("{kind}{}", at.as_ref().map(|at| format!(" (at {at})")).unwrap_or_default())]
pub struct DecodeError {
    /// What went wrong.
    #[source]
    pub kind: DecodeErrorKind,
    /// Where the event is, when it came from the log.
    pub at: Option<EventLocation>,
}

/// What kind of decoding failure a [`DecodeError`] is.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// No event type of this name (or with it as an alias) is known where
    /// it was read.
    #[error("unknown event `{name}` (schema version {version})")]
    UnknownEvent {
        /// The stored name.
        name: String,
        /// The stored schema version.
        version: u32,
    },
    /// The stored schema version is newer than this build reads.
    #[error(
        "event `{name}` has schema version {found}, newer than version {supported} this build reads"
    )]
    NewerVersion {
        /// The stored name.
        name: String,
        /// The stored version.
        found: u32,
        /// The version the event type reads.
        supported: u32,
    },
    /// The stored schema version is older and no chain of upcasters
    /// brings it to the current one.
    #[error(
        "event `{name}` has schema version {found}, older than version {supported}, and no upcaster reads version {found}"
    )]
    OlderVersion {
        /// The stored name.
        name: String,
        /// The stored version.
        found: u32,
        /// The version the event type reads.
        supported: u32,
    },
    /// The payload does not match the event type.
    #[error("payload of event `{name}` version {version} does not decode")]
    Payload {
        /// The stored name.
        name: String,
        /// The stored version.
        version: u32,
        /// The decoder's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// An upcaster refused the payload, or panicked.
    #[error(
        "event `{name}` has schema version {found}, and its upcaster from version {from} failed: {source}"
    )]
    Upcast {
        /// The stored name.
        name: String,
        /// The stored version.
        found: u32,
        /// The version the failing upcaster reads.
        from: u32,
        /// Why it failed.
        #[source]
        source: crate::upcast::UpcastError,
    },
    /// What the upcasters made of the payload does not decode as the
    /// version they made.
    #[error(
        "event `{name}` has schema version {found}; upcast to version {version}, it does not decode"
    )]
    UpcastOutput {
        /// The stored name.
        name: String,
        /// The stored version.
        found: u32,
        /// The version it was upcast to.
        version: u32,
        /// The decoder's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A snapshot taken by another shape of the aggregate's state (an
    /// older build): ignored, the state is rebuilt from the events.
    #[error(
        "snapshot of aggregate `{aggregate}` was taken by another shape of its state ({}), not the current one ({expected:016x})",
        found.map_or_else(|| String::from("no fingerprint"), |f| format!("{f:016x}"))
    )]
    SnapshotShape {
        /// The aggregate name.
        aggregate: &'static str,
        /// The fingerprint the snapshot carries (`None`: a snapshot from
        /// before fingerprints, or not one at all).
        found: Option<u64>,
        /// The fingerprint of the current state's shape.
        expected: u64,
    },
    /// A snapshot does not decode into the aggregate.
    #[error("snapshot of aggregate `{aggregate}` does not decode")]
    Snapshot {
        /// The aggregate name.
        aggregate: &'static str,
        /// The decoder's complaint.
        #[source]
        source: serde_json::Error,
    },
}

impl DecodeError {
    pub(crate) fn new(kind: DecodeErrorKind) -> Self {
        Self { kind, at: None }
    }

    /// Whether the event is one this build does not know: an unknown name,
    /// or a schema version newer than the code reads. A projection with
    /// `unknown_events = skip` skips these; every other failure (a payload
    /// that does not decode, a missing upcaster) stops it.
    pub fn is_unknown_to_this_build(&self) -> bool {
        matches!(
            self.kind,
            DecodeErrorKind::UnknownEvent { .. } | DecodeErrorKind::NewerVersion { .. }
        )
    }

    /// Records where the undecodable event lives.
    #[must_use]
    pub fn at(mut self, record: &RecordedEvent) -> Self {
        self.at = Some(EventLocation::of(record));
        self
    }
}

/// A failure of the event store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream moved since it was read: another writer appended first.
    #[error("concurrency conflict on stream {stream}: expected version {expected}, found {actual}")]
    Conflict {
        /// The stream.
        stream: StreamId,
        /// The version the append expected.
        expected: u64,
        /// The version the stream has.
        actual: u64,
    },
    /// A stream id that breaks the rule every store applies
    /// ([`StreamId::check`]): refused before any I/O.
    #[error(transparent)]
    InvalidStreamId(#[from] InvalidStreamId),
    /// An append carried an idempotency key already recorded for its
    /// stream: nothing was written. The engine answers such a command
    /// with the receipt of the append that recorded the key.
    #[error("idempotency key `{key}` is already recorded for stream {stream}")]
    DuplicateKey {
        /// The stream.
        stream: StreamId,
        /// The key.
        key: String,
    },
    /// The append was empty or otherwise malformed.
    #[error("invalid append to stream {stream}: {reason}")]
    InvalidAppend {
        /// The stream.
        stream: StreamId,
        /// What is wrong.
        reason: String,
    },
    /// The backend failed (I/O, connection, database error): may pass, so
    /// readers retry it.
    #[error("event store backend failed: {message}")]
    Backend {
        /// What was being done.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The database refused a statement for a reason retrying cannot fix
    /// (a constraint, a syntax error in a read model's own SQL).
    #[error("{message}")]
    Refused {
        /// What was refused, and why.
        message: String,
        /// The database's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A stored event row that this build cannot read: retrying cannot help.
    #[error("the stored event at {at} cannot be read: column `{column}` {reason}")]
    Corrupt {
        /// Where the row is, as far as its readable columns tell.
        at: RowLocation,
        /// The column that does not decode.
        column: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The database was written by a newer build, with a schema this one
    /// does not know; nothing was changed.
    #[error(
        "{database} has schema version {found}, newer than version {supported} this build knows: upgrade this program"
    )]
    NewerSchema {
        /// Which database (a file, a PostgreSQL schema).
        database: String,
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A commit for a consumer whose lease has moved to another holder:
    /// refused, nothing written.
    #[error(
        "commit for `{name}` refused: it carries lease token {token}, but the lease is now {}",
        current.map(|t| format!("held with token {t}")).unwrap_or_else(|| String::from("released"))
    )]
    Fenced {
        /// The consumer.
        name: String,
        /// The token the commit carried.
        token: u64,
        /// The lease's token now (`None`: nobody holds it).
        current: Option<u64>,
    },
    /// A commit whose checkpoint is not after the saved one: refused,
    /// nothing written, so a read model never moves back.
    #[error(
        "commit for `{name}` refused: its checkpoint {attempted} is not after the saved checkpoint {saved}"
    )]
    CheckpointNotAfter {
        /// The consumer.
        name: String,
        /// The checkpoint already saved.
        saved: u64,
        /// The checkpoint the commit carried.
        attempted: u64,
    },
}

impl StoreError {
    /// Whether retrying the same call may succeed: a backend failure (a lost
    /// connection, a busy database) may pass; a conflict, a row that does
    /// not decode, a newer schema or a refused commit will not by waiting.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Backend { .. })
    }
}

/// A stream id refused by [`StreamId::check`]: which part, shown how, and
/// the rule it breaks.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error(
    "invalid stream {part} `{value}`: {rule} (a stream's aggregate name and id are each 1 to {max} bytes of text without control characters)",
    max = StreamId::MAX_LEN
)]
pub struct InvalidStreamId {
    /// The part that breaks the rule.
    pub part: StreamIdPart,
    /// That part as the message shows it: control characters escaped, and
    /// cut after 64 bytes (with its length) when long.
    pub value: String,
    /// The rule it breaks.
    pub rule: StreamIdRule,
}

/// The two parts of a [`StreamId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamIdPart {
    /// [`StreamId::aggregate`], the stream type.
    Aggregate,
    /// [`StreamId::id`], the instance id.
    Id,
}

impl fmt::Display for StreamIdPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Aggregate => "aggregate name",
            Self::Id => "id",
        })
    }
}

/// The rule of [`StreamId::check`] that a part breaks.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamIdRule {
    /// It is the empty string.
    #[error("it is empty")]
    Empty,
    /// It is longer than [`StreamId::MAX_LEN`] bytes.
    #[error("it is {len} bytes long")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// It holds a control character (Unicode category Cc).
    #[error("it holds the control character U+{code:04X} at byte {at}")]
    ControlCharacter {
        /// The character's code point.
        code: u32,
        /// Its byte offset.
        at: usize,
    },
}

/// Where a stored row is, as far as it could be read: a row whose stream or
/// version column is itself broken still names its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowLocation {
    /// The global position.
    pub position: u64,
    /// The stream, when its columns decode.
    pub stream: Option<StreamId>,
    /// The version in the stream, when it decodes.
    pub version: Option<u64>,
}

impl fmt::Display for RowLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.stream, self.version) {
            (Some(stream), Some(version)) => {
                write!(
                    f,
                    "stream {stream} version {version} position {}",
                    self.position
                )
            }
            (Some(stream), None) => write!(f, "stream {stream} position {}", self.position),
            _ => write!(f, "position {}", self.position),
        }
    }
}

/// A problem with what the derives registered.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// Nothing was registered: no derive linked into this binary.
    #[error("the registry is empty: no aggregate, projection or query is linked into this program")]
    Empty,
    /// Two definitions claim one name.
    #[error("{kind} name `{name}` is defined twice: by `{first}` and by `{second}`")]
    Duplicate {
        /// `"event"`, `"command"`, `"aggregate"`, `"projection"` or `"query"`.
        kind: &'static str,
        /// The contested name.
        name: &'static str,
        /// One definition (Rust path).
        first: &'static str,
        /// The other definition (Rust path).
        second: &'static str,
    },
    /// A definition refers to a name nothing registered.
    #[error(
        "{kind} `{name}` (`{definition}`) refers to {missing_kind} `{missing}`, which is not registered"
    )]
    Dangling {
        /// The kind of the referring definition.
        kind: &'static str,
        /// Its name.
        name: &'static str,
        /// Its Rust path.
        definition: &'static str,
        /// The kind of what is missing.
        missing_kind: &'static str,
        /// The missing name.
        missing: &'static str,
    },
    /// An event's upcasters skip a version: stored events of that version
    /// could not be read.
    #[error(
        "event `{event}` (`{rust_type}`) is at version {version} but has no upcaster from version {missing}: \
         stored events of version {missing} could not be read; add `upcast(from = {missing}, ..)`"
    )]
    UpcastGap {
        /// The event name.
        event: &'static str,
        /// Its Rust path.
        rust_type: &'static str,
        /// Its current version.
        version: u32,
        /// The version no upcaster reads.
        missing: u32,
    },
    /// An aggregate declares services the engine was not given.
    #[error(
        "aggregate `{aggregate}` needs services `{services}`: pass them with `EngineBuilder::services`"
    )]
    MissingServices {
        /// The aggregate name.
        aggregate: &'static str,
        /// The services type.
        services: &'static str,
    },
}

/// The error of a typed [`Engine::execute`](crate::Engine::execute): the
/// aggregate's own domain error, or a failure of the engine.
#[derive(Debug, Error)]
pub enum CommandError<E> {
    /// The handler refused the command.
    #[error("command refused: {0}")]
    Domain(E),
    /// The engine could not run the command.
    #[error(transparent)]
    Engine(#[from] Error),
}

impl<E> CommandError<E> {
    /// The domain error, if the handler refused the command.
    pub fn domain(&self) -> Option<&E> {
        match self {
            Self::Domain(e) => Some(e),
            Self::Engine(_) => None,
        }
    }
}

/// Everything that can go wrong in `cqrs-core`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// No process manager of this name runs in this engine.
    #[error("no process manager named `{name}` runs in this engine")]
    UnknownProcess {
        /// The name asked for.
        name: String,
    },
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The registry is inconsistent.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A handler refused a command (untyped, from dispatch by name or `?`).
    #[error("command refused: {0}")]
    Domain(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Every retry of a command met a concurrency conflict.
    #[error(
        "command `{command}` on stream {stream} gave up after {attempts} attempts: the stream kept changing"
    )]
    TooManyConflicts {
        /// The command name.
        command: &'static str,
        /// The stream.
        stream: StreamId,
        /// How many attempts were made.
        attempts: u32,
    },
    /// No command of this name is registered.
    #[error("unknown command `{name}`{}", did_you_mean(.known))]
    UnknownCommand {
        /// The name asked for.
        name: String,
        /// Registered command names.
        known: Vec<&'static str>,
    },
    /// No query of this name is registered.
    #[error("unknown query `{name}`{}", did_you_mean(.known))]
    UnknownQuery {
        /// The name asked for.
        name: String,
        /// Registered query names.
        known: Vec<&'static str>,
    },
    /// A JSON body given by name was refused: too large, not JSON, not the
    /// shape of the named command or query, or with fields it does not have.
    ///
    /// The message carries the reason with its field path, for HTTP and
    /// command-line users who see only `Display`; so `source()` is `None`
    /// rather than a second copy of it.
    #[error("body of {kind} `{name}` refused: {reason}")]
    InvalidBody {
        /// `"command"` or `"query"`.
        kind: &'static str,
        /// Its name.
        name: &'static str,
        /// Why.
        reason: BodyError,
    },
    /// An `Apply` impl panicked on a stored event while its stream was
    /// loaded: every command on the stream gets this error until the event
    /// or the code is fixed.
    #[error("applying stored event `{event}` at {at} panicked: {message}")]
    ApplyPanicked {
        /// The stored event name.
        event: String,
        /// Where the event is.
        at: EventLocation,
        /// The panic's message.
        message: String,
    },
    /// A command's handler, or an `Apply` impl on an event the handler
    /// returned, panicked: the command is refused and nothing was stored.
    #[error(
        "command `{command}` on stream {stream} panicked in {site}; nothing was stored: {message}"
    )]
    CommandPanicked {
        /// The command name.
        command: &'static str,
        /// The stream.
        stream: StreamId,
        /// Where it panicked.
        site: PanicSite,
        /// The panic's message.
        message: String,
    },
    /// An event a handler returned could not be encoded.
    #[error("event `{event}` does not encode as JSON")]
    EventEncode {
        /// The event name.
        event: &'static str,
        /// The encoder's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// An answer could not be encoded as JSON.
    #[error("answer of query `{name}` does not encode as JSON")]
    Encode {
        /// The query name.
        name: &'static str,
        /// The encoder's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A projection did not reach the requested position in time.
    #[error(
        "projection `{projection}` did not reach position {wanted} within {waited_ms} ms (it is at {reached})"
    )]
    Timeout {
        /// The projection.
        projection: &'static str,
        /// The position waited for.
        wanted: u64,
        /// Where it got to.
        reached: u64,
        /// How long was waited.
        waited_ms: u128,
    },
    /// A projection stopped on an error and no longer advances.
    #[error("projection `{projection}` stopped at position {position}: {reason}")]
    ProjectionFailed {
        /// The projection.
        projection: &'static str,
        /// Its last position.
        position: u64,
        /// Why it stopped.
        reason: String,
    },
    /// No projection of this name runs in this engine.
    #[error("unknown projection `{name}`{}", did_you_mean(.known))]
    UnknownProjection {
        /// The name asked for.
        name: String,
        /// The projections this engine runs.
        known: Vec<&'static str>,
    },
    /// The projection exists but is not run by this engine.
    #[error("projection `{0}` is not running in this engine")]
    ProjectionNotRunning(&'static str),
    /// A projection cannot run where the builder placed it.
    #[error("projection `{projection}` cannot run {placement}: {reason}")]
    Placement {
        /// The projection.
        projection: String,
        /// Where it was placed (`inline`, ..).
        placement: &'static str,
        /// Why not.
        reason: String,
    },
    /// Another process holds the lease of this subscription: only the
    /// holder may rebuild or restart it.
    #[error(
        "`{name}` stands by in this process ({reason}): rebuild or restart it where it is active"
    )]
    Standby {
        /// The projection (or other subscription).
        name: String,
        /// Why it stands by.
        reason: String,
    },
    /// A read side was built without a source of events.
    #[error(
        "a read side needs a source of events: call `ReadSideBuilder::source` (a `JetStreamSource`, \
         with the `nats` feature)"
    )]
    NoSource,
    /// The engine was shut down.
    #[error("the engine is shut down")]
    Shutdown,
}

/// Where in a command a panic struck (see [`Error::CommandPanicked`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanicSite {
    /// The command's `Handle` or `HandleAsync` impl.
    Handler,
    /// The aggregate's `Apply` impl, on an event the handler returned.
    ///
    /// (Not named `Apply`: a public item of that name beside the trait
    /// makes rustc spell the trait `cqrs_core::Apply` in every diagnostic.)
    Applying {
        /// The event name.
        event: &'static str,
    },
}

impl fmt::Display for PanicSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handler => f.write_str("its handler"),
            Self::Applying { event } => write!(f, "`Apply` of its event `{event}`"),
        }
    }
}

/// Why a JSON body given by name was refused (see [`Error::InvalidBody`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Larger than the limit set with
    /// [`EngineBuilder::max_body_size`](crate::EngineBuilder::max_body_size).
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes of JSON text.
        limit: usize,
    },
    /// Not JSON, or not the shape of the type: the decoder's complaint and
    /// where in the body it arose.
    #[error("{}{error}", at_path(.path))]
    Decode {
        /// The path of the value that does not decode (`account`,
        /// `lines[2].price`); empty for the body itself.
        path: String,
        /// The decoder's complaint.
        error: serde_json::Error,
    },
    /// Fields the type does not have: refused, unless the type allows
    /// unknown fields (`#[command(allow_unknown_fields)]`,
    /// `#[query(allow_unknown_fields)]`).
    #[error(
        "unknown field{} {}{}",
        if .fields.len() == 1 { "" } else { "s" },
        quoted(.fields),
        known_fields(.expected)
    )]
    UnknownFields {
        /// Their paths in the body (`amuont`, `meta.typo`).
        fields: Vec<String>,
        /// The fields the type has at the top level, when known.
        expected: Option<&'static [&'static str]>,
    },
}

fn at_path(path: &str) -> String {
    if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("at `{path}`: ")
    }
}

fn quoted<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("`{}`", Shown(s.as_ref())))
        .collect();
    quoted.join(", ")
}

fn known_fields(fields: &Option<&'static [&'static str]>) -> String {
    match fields {
        None => String::new(),
        Some([]) => String::from(" (it has no fields)"),
        Some(fields) => format!(" (its fields: {})", quoted(fields)),
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<CommandError<E>> for Error {
    fn from(e: CommandError<E>) -> Self {
        match e {
            CommandError::Domain(e) => Error::Domain(Box::new(e)),
            CommandError::Engine(e) => e,
        }
    }
}

fn did_you_mean(known: &[&'static str]) -> String {
    if known.is_empty() {
        String::from(" (none are registered)")
    } else {
        format!(" (known: {})", known.join(", "))
    }
}
