//! What the derives registered: descriptors, the registry built from them, and
//! the printable catalog.
//!
//! Every derive submits a [`Registration`] to an [`inventory`] collection, so an
//! [`Engine`](crate::Engine) finds all aggregates, commands, projections and queries linked
//! into the program without the user listing them again. Where `inventory`
//! does not run (some embedded or wasm targets) or a program wants a subset,
//! build a [`Registry`] by hand with [`Registry::register`].

use std::any::TypeId;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub use crate::dispatch::{ExecuteJsonFn, JsonBody, QueryJsonFn};
use crate::error::RegistryError;
use crate::projection::runner::{ProjectionHost, RunningProjection};

/// Starts a projection's runner.
pub type StartProjectionFn = fn(&ProjectionHost) -> RunningProjection;
/// Starts a projection inline: its follower, and what appends fold.
pub type StartInlineFn = fn(
    &ProjectionHost,
) -> (
    RunningProjection,
    Arc<dyn crate::store::inline::InlineProjection>,
);

/// An event type: its stored name, schema version and Rust path, the older
/// names and versions it reads, and its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventDescriptor {
    /// The stored name.
    pub name: &'static str,
    /// The schema version.
    pub version: u32,
    /// The Rust path of the type.
    pub rust_type: &'static str,
    /// The names it was stored under before (`aliases(..)`).
    pub aliases: &'static [&'static str],
    /// The versions its upcasters read (`upcast(from = N, ..)`), ascending.
    pub upcasts: &'static [u32],
    /// The shape of its payload ([`Event::SHAPE`](crate::Event::SHAPE)),
    /// what the [schema lock](crate::schema) records.
    pub shape: &'static str,
}

impl EventDescriptor {
    /// Every name it reads: its own, then its aliases.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + use<> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }

    /// The [`fingerprint`](crate::schema::fingerprint) of its shape.
    pub fn fingerprint(&self) -> u64 {
        crate::schema::fingerprint(self.shape)
    }

    /// The first version its upcasters should read but none does: each
    /// version from the oldest upcaster's up to the current one needs one.
    pub fn upcast_gap(&self) -> Option<u32> {
        let oldest = *self.upcasts.iter().min()?;
        (oldest..self.version).find(|v| !self.upcasts.contains(v))
    }
}

/// An aggregate: its name, events, commands and options.
#[derive(Debug, Clone, Copy)]
pub struct AggregateDescriptor {
    /// The stream type name.
    pub name: &'static str,
    /// The Rust path of the type.
    pub rust_type: &'static str,
    /// The events in `events(..)`.
    pub events: &'static [EventDescriptor],
    /// The command names in `commands(..)`.
    pub commands: &'static [&'static str],
    /// The snapshot policy.
    pub snapshot_every: Option<u64>,
    /// The Rust name of the services type.
    pub services_type: &'static str,
    /// The id of the services type.
    pub services_type_id: fn() -> TypeId,
}

/// A command: its name, aggregate and JSON entry point.
#[derive(Debug, Clone, Copy)]
pub struct CommandDescriptor {
    /// The command name.
    pub name: &'static str,
    /// The Rust path of the type.
    pub rust_type: &'static str,
    /// The aggregate name.
    pub aggregate: &'static str,
    /// Decodes a JSON body and executes it.
    pub execute_json: ExecuteJsonFn,
    /// The JSON Schema of its body, as JSON text (from the types as
    /// written; see the HTTP adapter's `/openapi.json`).
    pub body_schema: &'static str,
    /// Its aggregate's domain error, boxed, as JSON when the error type is
    /// `Serialize`.
    pub error_json: ErrorJsonFn,
}

/// A boxed domain error as JSON, if it is `Serialize`.
pub type ErrorJsonFn =
    fn(&(dyn std::error::Error + Send + Sync + 'static)) -> Option<serde_json::Value>;

/// A projection: its name, consumed events and runner.
#[derive(Debug, Clone, Copy)]
pub struct ProjectionDescriptor {
    /// The projection name.
    pub name: &'static str,
    /// The Rust path of the type.
    pub rust_type: &'static str,
    /// The names of consumed events.
    pub events: &'static [&'static str],
    /// Starts the runner.
    pub start: StartProjectionFn,
    /// Starts it inline ([`Placement::Inline`](crate::Placement::Inline)),
    /// for the projections that can run so (`None`: those kept in SQL
    /// tables of their own).
    pub start_inline: Option<StartInlineFn>,
}

/// A process manager: its name, the events it reacts to, the commands it
/// sends, and its runner.
#[derive(Debug, Clone, Copy)]
pub struct ProcessDescriptor {
    /// The manager's name.
    pub name: &'static str,
    /// The Rust path of the type.
    pub rust_type: &'static str,
    /// The names of the events it reacts to.
    pub events: &'static [&'static str],
    /// The names of the commands it sends.
    pub commands: &'static [&'static str],
    /// Starts the runner.
    pub start: StartProcessFn,
}

/// Starts a process manager's runner.
pub type StartProcessFn =
    fn(&crate::process::runner::ProcessHost) -> crate::process::RunningProcess;

/// A query: its name, projection and JSON entry point.
#[derive(Debug, Clone, Copy)]
pub struct QueryDescriptor {
    /// The query name.
    pub name: &'static str,
    /// The Rust path of the type.
    pub rust_type: &'static str,
    /// The projection name.
    pub projection: &'static str,
    /// The Rust name of the output type.
    pub output_type: &'static str,
    /// Decodes a JSON body, answers it, encodes the answer.
    pub query_json: QueryJsonFn,
    /// The JSON Schema of its body, as JSON text.
    pub body_schema: &'static str,
    /// The JSON Schema of its answer, as JSON text.
    pub output_schema: &'static str,
}

/// One registered definition.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Registration {
    /// From `#[derive(Event)]`.
    Event(&'static EventDescriptor),
    /// From `#[derive(Aggregate)]`.
    Aggregate(&'static AggregateDescriptor),
    /// From `#[derive(Command)]`.
    Command(&'static CommandDescriptor),
    /// From `#[derive(Projection)]`.
    Projection(&'static ProjectionDescriptor),
    /// From `#[derive(Query)]`.
    Query(&'static QueryDescriptor),
    /// From `#[derive(ProcessManager)]`.
    Process(&'static ProcessDescriptor),
}

inventory::collect!(Registration);

/// A type a derive registered; lets a [`Registry`] be built by hand.
pub trait Registered {
    /// Its descriptor.
    const REGISTRATION: Registration;
}

/// The definitions an engine runs: by default every derive linked into the
/// program.
///
/// # Examples
///
/// ```
/// use cqrs_core::prelude::*;
/// use cqrs_core::Registry;
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
/// let registry = Registry::new().register::<Probe>().register::<Ping>().register::<Pinged>();
/// registry.validate()?;
/// println!("{}", registry.catalog());
/// # Ok::<(), cqrs_core::RegistryError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Registry {
    events: Vec<&'static EventDescriptor>,
    aggregates: Vec<&'static AggregateDescriptor>,
    commands: Vec<&'static CommandDescriptor>,
    projections: Vec<&'static ProjectionDescriptor>,
    queries: Vec<&'static QueryDescriptor>,
    processes: Vec<&'static ProcessDescriptor>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every definition the derives submitted to `inventory` in this program.
    pub fn from_inventory() -> Self {
        let mut registry = Self::new();
        for registration in inventory::iter::<Registration> {
            registry.add(*registration);
        }
        registry
    }

    /// Adds one derived type.
    #[must_use]
    pub fn register<T: Registered>(mut self) -> Self {
        self.add(T::REGISTRATION);
        self
    }

    /// Adds one registration; the same definition twice counts once.
    pub fn add(&mut self, registration: Registration) {
        fn push<T>(list: &mut Vec<&'static T>, item: &'static T) {
            if !list.iter().any(|known| std::ptr::eq(*known, item)) {
                list.push(item);
            }
        }
        match registration {
            Registration::Event(d) => push(&mut self.events, d),
            Registration::Aggregate(d) => push(&mut self.aggregates, d),
            Registration::Command(d) => push(&mut self.commands, d),
            Registration::Projection(d) => push(&mut self.projections, d),
            Registration::Query(d) => push(&mut self.queries, d),
            Registration::Process(d) => push(&mut self.processes, d),
        }
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.aggregates.is_empty()
            && self.commands.is_empty()
            && self.projections.is_empty()
            && self.queries.is_empty()
            && self.processes.is_empty()
    }

    /// Checks what the compiler cannot see across crates: unique names, and
    /// references that resolve.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Empty`], [`RegistryError::Duplicate`] naming both
    /// definitions, or [`RegistryError::Dangling`].
    pub fn validate(&self) -> Result<(), RegistryError> {
        if self.is_empty() {
            return Err(RegistryError::Empty);
        }
        unique(
            "aggregate",
            self.aggregates.iter().map(|a| (a.name, a.rust_type)),
        )?;
        unique(
            "command",
            self.commands.iter().map(|c| (c.name, c.rust_type)),
        )?;
        unique(
            "projection",
            self.projections.iter().map(|p| (p.name, p.rust_type)),
        )?;
        unique("query", self.queries.iter().map(|q| (q.name, q.rust_type)))?;
        unique(
            "process manager",
            self.processes.iter().map(|p| (p.name, p.rust_type)),
        )?;
        // An event belongs to one aggregate: the same name twice is ambiguous
        // for every projection that routes on it.
        let owned = self
            .aggregates
            .iter()
            .flat_map(|a| a.events.iter().map(|e| (e.name, e.rust_type)));
        unique("event", owned)?;
        // Standalone event types may be listed by an aggregate too: only two
        // different types with one name clash, an alias counting as a name
        // (stored events of it decode as the type that lists it).
        let mut by_name: BTreeMap<&str, &str> = BTreeMap::new();
        let all_events = self
            .events()
            .into_iter()
            .flat_map(|e| e.names().map(move |name| (name, e.rust_type)));
        for (name, rust_type) in all_events {
            match by_name.get(name) {
                Some(first) if *first != rust_type => {
                    return Err(RegistryError::Duplicate {
                        kind: "event",
                        name,
                        first,
                        second: rust_type,
                    });
                }
                _ => {
                    by_name.insert(name, rust_type);
                }
            }
        }
        for event in self.events() {
            if let Some(missing) = event.upcast_gap() {
                return Err(RegistryError::UpcastGap {
                    event: event.name,
                    rust_type: event.rust_type,
                    version: event.version,
                    missing,
                });
            }
        }
        for c in &self.commands {
            if !self.aggregates.iter().any(|a| a.name == c.aggregate) {
                return Err(RegistryError::Dangling {
                    kind: "command",
                    name: c.name,
                    definition: c.rust_type,
                    missing_kind: "aggregate",
                    missing: c.aggregate,
                });
            }
        }
        for q in &self.queries {
            if !self.projections.iter().any(|p| p.name == q.projection) {
                return Err(RegistryError::Dangling {
                    kind: "query",
                    name: q.name,
                    definition: q.rust_type,
                    missing_kind: "projection",
                    missing: q.projection,
                });
            }
        }
        Ok(())
    }

    /// Every registered event type, standalone or listed by an aggregate,
    /// once each, in registration order.
    pub fn events(&self) -> Vec<&'static EventDescriptor> {
        let mut events: Vec<&'static EventDescriptor> = Vec::new();
        let listed = self.aggregates.iter().flat_map(|a| a.events.iter());
        for event in self.events.iter().copied().chain(listed) {
            if !events
                .iter()
                .any(|e| e.name == event.name && e.rust_type == event.rust_type)
            {
                events.push(event);
            }
        }
        events
    }

    /// Every name a registered event is stored under: names and aliases.
    pub fn event_names(&self) -> impl Iterator<Item = &'static str> + use<> {
        self.events().into_iter().flat_map(|e| e.names())
    }

    /// The registered aggregates.
    pub fn aggregates(&self) -> &[&'static AggregateDescriptor] {
        &self.aggregates
    }

    /// The registered commands.
    pub fn commands(&self) -> &[&'static CommandDescriptor] {
        &self.commands
    }

    /// The registered projections.
    pub fn projections(&self) -> &[&'static ProjectionDescriptor] {
        &self.projections
    }

    /// The registered queries.
    pub fn queries(&self) -> &[&'static QueryDescriptor] {
        &self.queries
    }

    /// The registered process managers.
    pub fn processes(&self) -> &[&'static ProcessDescriptor] {
        &self.processes
    }

    /// The command of this name.
    pub fn command(&self, name: &str) -> Option<&'static CommandDescriptor> {
        self.commands.iter().copied().find(|c| c.name == name)
    }

    /// The query of this name.
    pub fn query(&self, name: &str) -> Option<&'static QueryDescriptor> {
        self.queries.iter().copied().find(|q| q.name == name)
    }

    /// Everything registered, one entry per definition, sorted by kind and name.
    pub fn catalog(&self) -> Catalog {
        let mut entries = Vec::new();
        let mut owner_of: BTreeMap<&str, &str> = BTreeMap::new();
        for a in &self.aggregates {
            entries.push(CatalogEntry::new(
                Kind::Aggregate,
                a.name,
                None,
                None,
                a.rust_type,
            ));
            for e in a.events {
                owner_of.insert(e.rust_type, a.name);
                entries.push(CatalogEntry::new(
                    Kind::Event,
                    e.name,
                    Some(e.version),
                    Some(a.name),
                    e.rust_type,
                ));
            }
        }
        for e in &self.events {
            if !owner_of.contains_key(e.rust_type) {
                entries.push(CatalogEntry::new(
                    Kind::Event,
                    e.name,
                    Some(e.version),
                    None,
                    e.rust_type,
                ));
            }
        }
        for c in &self.commands {
            entries.push(CatalogEntry::new(
                Kind::Command,
                c.name,
                None,
                Some(c.aggregate),
                c.rust_type,
            ));
        }
        for p in &self.projections {
            entries.push(CatalogEntry::new(
                Kind::Projection,
                p.name,
                None,
                None,
                p.rust_type,
            ));
        }
        for q in &self.queries {
            entries.push(CatalogEntry::new(
                Kind::Query,
                q.name,
                None,
                Some(q.projection),
                q.rust_type,
            ));
        }
        for p in &self.processes {
            entries.push(CatalogEntry::new(
                Kind::Process,
                p.name,
                None,
                None,
                p.rust_type,
            ));
        }
        entries.sort_by(|a, b| (a.kind, a.name).cmp(&(b.kind, b.name)));
        Catalog { entries }
    }
}

fn unique(
    kind: &'static str,
    items: impl Iterator<Item = (&'static str, &'static str)>,
) -> Result<(), RegistryError> {
    let mut seen: BTreeMap<&'static str, &'static str> = BTreeMap::new();
    for (name, rust_type) in items {
        if let Some(first) = seen.insert(name, rust_type) {
            return Err(RegistryError::Duplicate {
                kind,
                name,
                first,
                second: rust_type,
            });
        }
    }
    Ok(())
}

/// What kind of definition a [`CatalogEntry`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An aggregate.
    Aggregate,
    /// An event.
    Event,
    /// A command.
    Command,
    /// A projection.
    Projection,
    /// A query.
    Query,
    /// A process manager.
    Process,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Process => "process",
            Kind::Aggregate => "aggregate",
            Kind::Event => "event",
            Kind::Command => "command",
            Kind::Projection => "projection",
            Kind::Query => "query",
        })
    }
}

/// One definition in the [`Catalog`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    /// What it is.
    pub kind: Kind,
    /// Its registered name.
    pub name: &'static str,
    /// The schema version, for events.
    pub version: Option<u32>,
    /// The aggregate (events, commands) or projection (queries) it belongs to.
    pub owner: Option<&'static str>,
    /// Its Rust path.
    pub rust_type: &'static str,
}

impl CatalogEntry {
    fn new(
        kind: Kind,
        name: &'static str,
        version: Option<u32>,
        owner: Option<&'static str>,
        rust_type: &'static str,
    ) -> Self {
        Self {
            kind,
            name,
            version,
            owner,
            rust_type,
        }
    }
}

/// Everything an application registered; `Display` prints a table, and it
/// serializes to JSON for export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalog {
    /// The entries, sorted by kind then name.
    pub entries: Vec<CatalogEntry>,
}

impl fmt::Display for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name_width = self
            .entries
            .iter()
            .map(|e| e.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let owner_width = self
            .entries
            .iter()
            .map(|e| e.owner.map_or(1, str::len))
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(
            f,
            "{:<10} {:<name_width$} {:>7} {:<owner_width$} rust type",
            "kind", "name", "version", "owner"
        )?;
        for e in &self.entries {
            let version = e
                .version
                .map_or_else(|| String::from("-"), |v| v.to_string());
            writeln!(
                f,
                "{:<10} {:<name_width$} {:>7} {:<owner_width$} {}",
                e.kind.to_string(),
                e.name,
                version,
                e.owner.unwrap_or("-"),
                e.rust_type
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BoxFuture;
    use crate::command::Receipt;
    use crate::engine::Engine;
    use crate::error::Error;
    use crate::record::Metadata;

    fn execute_stub<'a>(
        _: &'a Engine,
        _: JsonBody<'a>,
        _: Metadata,
    ) -> BoxFuture<'a, Result<Receipt, Error>> {
        Box::pin(async { Err(Error::Shutdown) })
    }

    fn unit_type() -> TypeId {
        TypeId::of::<()>()
    }

    static ACCOUNT: AggregateDescriptor = AggregateDescriptor {
        name: "account",
        rust_type: "bank::Account",
        events: &[EventDescriptor {
            name: "opened",
            version: 1,
            rust_type: "bank::Opened",
            aliases: &[],
            upcasts: &[],
            shape: "unit",
        }],
        commands: &["Open"],
        snapshot_every: None,
        services_type: "()",
        services_type_id: unit_type,
    };
    static LEDGER: AggregateDescriptor = AggregateDescriptor {
        name: "ledger",
        rust_type: "books::Ledger",
        events: &[EventDescriptor {
            name: "opened",
            version: 1,
            rust_type: "books::Opened",
            aliases: &[],
            upcasts: &[],
            shape: "unit",
        }],
        commands: &[],
        snapshot_every: None,
        services_type: "()",
        services_type_id: unit_type,
    };
    static ACCOUNT_AGAIN: AggregateDescriptor = AggregateDescriptor {
        name: "account",
        rust_type: "other::Account",
        events: &[],
        commands: &[],
        snapshot_every: None,
        services_type: "()",
        services_type_id: unit_type,
    };
    static OPEN: CommandDescriptor = CommandDescriptor {
        name: "Open",
        rust_type: "bank::Open",
        aggregate: "account",
        execute_json: execute_stub,
        body_schema: "{}",
        error_json: |_| None,
    };
    static OPEN_ELSEWHERE: CommandDescriptor = CommandDescriptor {
        name: "Open",
        rust_type: "other::Open",
        aggregate: "account",
        execute_json: execute_stub,
        body_schema: "{}",
        error_json: |_| None,
    };
    static ORPHAN: CommandDescriptor = CommandDescriptor {
        name: "Close",
        rust_type: "bank::Close",
        aggregate: "vault",
        execute_json: execute_stub,
        body_schema: "{}",
        error_json: |_| None,
    };

    fn registry(items: &[Registration]) -> Registry {
        let mut registry = Registry::new();
        for item in items {
            registry.add(*item);
        }
        registry
    }

    #[test]
    fn empty_registry_is_an_error() {
        assert_eq!(Registry::new().validate(), Err(RegistryError::Empty));
    }

    #[test]
    fn one_event_name_in_two_aggregates_names_both_definitions() {
        let r = registry(&[
            Registration::Aggregate(&ACCOUNT),
            Registration::Aggregate(&LEDGER),
        ]);
        let err = r.validate().unwrap_err();
        assert_eq!(
            err,
            RegistryError::Duplicate {
                kind: "event",
                name: "opened",
                first: "bank::Opened",
                second: "books::Opened"
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("bank::Opened") && text.contains("books::Opened"),
            "{text}"
        );
    }

    #[test]
    fn duplicate_aggregate_and_command_names() {
        let r = registry(&[
            Registration::Aggregate(&ACCOUNT),
            Registration::Aggregate(&ACCOUNT_AGAIN),
        ]);
        assert!(matches!(
            r.validate(),
            Err(RegistryError::Duplicate {
                kind: "aggregate",
                ..
            })
        ));
        let r = registry(&[
            Registration::Aggregate(&ACCOUNT),
            Registration::Command(&OPEN),
            Registration::Command(&OPEN_ELSEWHERE),
        ]);
        assert_eq!(
            r.validate(),
            Err(RegistryError::Duplicate {
                kind: "command",
                name: "Open",
                first: "bank::Open",
                second: "other::Open"
            })
        );
    }

    #[test]
    fn the_same_definition_twice_counts_once() {
        let r = registry(&[
            Registration::Aggregate(&ACCOUNT),
            Registration::Aggregate(&ACCOUNT),
            Registration::Command(&OPEN),
            Registration::Command(&OPEN),
        ]);
        assert_eq!(r.validate(), Ok(()));
        assert_eq!(r.commands().len(), 1);
    }

    #[test]
    fn a_command_of_an_unregistered_aggregate_is_dangling() {
        let r = registry(&[
            Registration::Aggregate(&ACCOUNT),
            Registration::Command(&ORPHAN),
        ]);
        assert!(matches!(
            r.validate(),
            Err(RegistryError::Dangling {
                missing: "vault",
                ..
            })
        ));
    }

    #[test]
    fn catalog_prints_every_definition() {
        let r = registry(&[
            Registration::Aggregate(&ACCOUNT),
            Registration::Command(&OPEN),
        ]);
        let catalog = r.catalog();
        assert_eq!(catalog.entries.len(), 3);
        let text = catalog.to_string();
        let lines: Vec<_> = text.lines().collect();
        assert!(lines[0].starts_with("kind"), "{text}");
        assert!(
            lines[1].starts_with("aggregate") && lines[1].contains("bank::Account"),
            "{text}"
        );
        assert!(
            lines[2].contains("opened") && lines[2].contains("account"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("command") && lines[3].contains("Open"),
            "{text}"
        );
    }
}
