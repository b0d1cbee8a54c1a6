//! Derive macros for [`cqrs-core`](https://docs.rs/cqrs-core): `Event`,
//! `Aggregate`, `Command`, `Projection`, `Query` and `ProcessManager`.
//!
//! Depend on `cqrs-core` alone; it re-exports these derives (feature
//! `derive`, on by default), and the generated code names it by absolute path.
//!
//! Each derive is a small compiler: it parses its input into a typed IR,
//! validates it (collecting every mistake, each reported on the user's own
//! token), then expands it. When something is wrong, it still expands the
//! items users refer to (the event enum, the trait impls with `unreachable!()`
//! bodies) next to the errors, so one mistake does not cascade.

mod aggregate;
mod attr;
mod check;
mod command;
mod diag;
mod event;
mod json_schema;
mod process;
mod projection;
mod query;
mod runtime;
mod shape;

use proc_macro::TokenStream;
use syn::DeriveInput;

/// Runs one derive: its input as a `DeriveInput`, or the parse error.
fn run(input: TokenStream, derive: fn(&DeriveInput) -> proc_macro2::TokenStream) -> TokenStream {
    match syn::parse::<DeriveInput>(input) {
        Ok(input) => derive(&input).into(),
        Err(error) => error.to_compile_error().into(),
    }
}

/// A fact that happened in the domain: implements `cqrs_core::Event` and
/// registers the event type.
///
/// # Attribute
///
/// `#[event(..)]` is optional; its keys are:
///
/// | key | value | default |
/// |---|---|---|
/// | `name = ".."` | the stored name: letters, digits, `.`, `-`, `_`, `/` | the type's name |
/// | `version = N` | the schema version, an integer >= 1 | `1` |
/// | `aliases(".." , ..)` | names it was stored under before: read as this event | none |
/// | `upcast(from = N, with = f)` | makes version `N + 1` of a version `N` payload, on JSON: `f: fn(Value) -> Result<Value, UpcastError>` (or `-> Value`); once per older version | none |
/// | `upcast(from = N, shape = S)` | the same, typed: version `N` decodes as `S` (`Deserialize`), and `impl Upcast<S> for Next` makes the next version (the event, or the next upcaster's shape) | none |
///
/// The name is what the event log stores and projections route on: keep it
/// stable once events are written (rename with `aliases(..)`). The type must
/// also derive `Serialize`, `Deserialize`, `Clone`, `Debug` and `PartialEq`.
///
/// Each version from the oldest upcaster's up to the current one needs its
/// upcaster; a typed upcaster is followed by a typed one, or by the current
/// version. See `cqrs_core::upcast`.
///
/// The derive also records the event's shape (`Event::SHAPE`: its fields,
/// their types as written, the serde attributes that change the JSON) for the
/// schema lock (`cqrs_core::schema`).
///
/// Named-field, tuple and unit structs are accepted; enums, unions and
/// generic types are not.
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
/// // Defaults: the type's name, version 1.
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// pub struct AccountClosed;
///
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// pub struct MoneyDeposited(pub u64);
///
/// assert_eq!(AccountOpened::NAME, "account.opened");
/// assert_eq!(AccountOpened::VERSION, 2);
/// assert_eq!(AccountClosed::NAME, "AccountClosed");
/// assert_eq!(MoneyDeposited::VERSION, 1);
///
/// // Version 3, formerly named "money.in": two upcasters.
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// #[event(
///     name = "account.credited",
///     aliases("money.in"),
///     version = 3,
///     upcast(from = 1, with = v1_to_v2),
///     upcast(from = 2, shape = CreditedV2),
/// )]
/// pub struct Credited { pub cents: u64, pub currency: String }
///
/// fn v1_to_v2(mut v1: cqrs_core::upcast::Value) -> Result<cqrs_core::upcast::Value, UpcastError> {
///     cqrs_core::upcast::rename_field(&mut v1, "amount", "cents")?;
///     Ok(v1)
/// }
///
/// #[derive(Deserialize)]
/// pub struct CreditedV2 { pub cents: u64 }
///
/// impl Upcast<CreditedV2> for Credited {
///     fn upcast(v2: CreditedV2) -> Self { Credited { cents: v2.cents, currency: "EUR".into() } }
/// }
///
/// let old: Credited = cqrs_core::decode_event("money.in", 1, br#"{"amount": 5}"#).unwrap();
/// assert_eq!(old, Credited { cents: 5, currency: "EUR".into() });
/// ```
#[proc_macro_derive(
    Event,
    attributes(event, aggregate, command, projection, query, process)
)]
pub fn derive_event(input: TokenStream) -> TokenStream {
    run(input, event::derive)
}

/// The write model: implements `cqrs_core::Aggregate`, generates the event
/// enum `<Name>Event` and registers the aggregate.
///
/// # Attribute
///
/// `#[aggregate(..)]` is required; its keys are:
///
/// | key | value | default |
/// |---|---|---|
/// | `events(A, B, ..)` | the events it records; at least one; required | |
/// | `error = T` | the domain error its handlers return; required | |
/// | `name = ".."` | the stream type name | the type's name |
/// | `commands(X, Y, ..)` | the commands it handles | none |
/// | `services = T` | what async handlers receive besides the state | `()` |
/// | `snapshot_every = N` | snapshot every N events (integer >= 1); needs `Serialize` and `Deserialize` on the aggregate | no snapshots |
///
/// The aggregate is a named-field or unit struct implementing `Default`,
/// without generics.
///
/// # What it generates
///
/// - `enum <Name>Event { A(A), B(B), .. }`, one variant per event, named after
///   the last segment of its path, with the aggregate's visibility, `From`
///   impls, `Clone`, `Debug`, `PartialEq`, and serde impls that store
///   `{"event": name, "version": n, "data": payload}`;
/// - the fold: each event is dispatched to its `impl Apply<E> for Name`;
/// - `EventOf<Name>` for each event, so `events![..]` in a handler accepts only
///   this aggregate's events.
///
/// # Compile-time checks
///
/// An event without `impl Apply<E>` is reported on that event inside
/// `events(..)`; a command that targets another aggregate on that command
/// inside `commands(..)`; a type listed twice on its second occurrence.
///
/// # Examples
///
/// ```
/// use cqrs_core::prelude::*;
///
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// pub struct Opened { pub owner: String }
///
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// pub struct Deposited { pub amount: u64 }
///
/// #[derive(Debug)]
/// pub enum AccountError {
///     NotOpen,
/// }
/// # impl std::fmt::Display for AccountError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("not open") }
/// # }
/// # impl std::error::Error for AccountError {}
///
/// #[derive(Command, Deserialize)]
/// #[command(aggregate = Account)]
/// pub struct Deposit { #[id] pub account: String, pub amount: u64 }
///
/// #[derive(Aggregate, Default, Serialize, Deserialize)]
/// #[aggregate(
///     name = "account",
///     events(Opened, Deposited),
///     commands(Deposit),
///     error = AccountError,
///     snapshot_every = 100,
/// )]
/// pub struct Account { open: bool, balance: u64 }
///
/// impl Apply<Opened> for Account {
///     fn apply(&mut self, _: &Opened) { self.open = true; }
/// }
/// impl Apply<Deposited> for Account {
///     fn apply(&mut self, e: &Deposited) { self.balance += e.amount; }
/// }
/// impl Handle<Deposit> for Account {
///     fn handle(&self, c: &Deposit) -> Result<Events<Self>, AccountError> {
///         if !self.open { return Err(AccountError::NotOpen); }
///         Ok(events![Deposited { amount: c.amount }])
///     }
/// }
///
/// // The generated enum, stored by event name:
/// use cqrs_core::EventSet;
/// let event = AccountEvent::from(Deposited { amount: 5 });
/// assert_eq!(event, AccountEvent::Deposited(Deposited { amount: 5 }));
/// assert_eq!(event.event_name(), "Deposited");
/// assert_eq!(AccountEvent::NAMES, &["Opened", "Deposited"]);
/// assert_eq!(<Account as cqrs_core::Aggregate>::NAME, "account");
/// assert_eq!(<Account as cqrs_core::Aggregate>::SNAPSHOT_EVERY, Some(100));
/// ```
///
/// With services, for handlers that need more than the state (see
/// [`derive@Command`] for the `async` handler):
///
/// ```
/// use cqrs_core::prelude::*;
///
/// pub struct Clock { pub now: u64 }
///
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// pub struct Ticked { pub at: u64 }
///
/// #[derive(Aggregate, Default)]
/// #[aggregate(events(Ticked), error = std::io::Error, services = Clock)]
/// pub struct Timer { last: u64 }
///
/// impl Apply<Ticked> for Timer {
///     fn apply(&mut self, e: &Ticked) { self.last = e.at; }
/// }
/// ```
#[proc_macro_derive(
    Aggregate,
    attributes(aggregate, event, command, projection, query, process)
)]
pub fn derive_aggregate(input: TokenStream) -> TokenStream {
    run(input, aggregate::derive)
}

/// A request to change one aggregate: implements `cqrs_core::Command`, routes
/// it to its handler and registers it for dispatch by name.
///
/// # Attributes
///
/// `#[command(..)]` is required; its keys are:
///
/// | key | value | default |
/// |---|---|---|
/// | `aggregate = X` | the aggregate it changes; required | |
/// | `name = ".."` | the name for `execute_json` | the type's name |
/// | `async` | handled by `impl HandleAsync<Self> for X` (async, receives the services) instead of `impl Handle<Self> for X` | not async |
/// | `allow_unknown_fields` | dispatch by name ignores body fields the command does not have | refused |
///
/// Exactly one field is marked `#[id]`: the id of the target aggregate
/// instance, formatted with `Display`. The command must derive `Deserialize`
/// (for dispatch by name with a JSON body). Named-field and tuple structs are
/// accepted, without generics.
///
/// # Compile-time checks
///
/// A missing handler is reported on the `aggregate = X` value (on `async` for
/// async commands); an `X` that is no aggregate on `X`; an `#[id]` type without
/// `Display` on that type; no `#[id]` on the command's name, a second `#[id]`
/// on itself.
///
/// # Examples
///
/// ```
/// use cqrs_core::prelude::*;
///
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// pub struct Priced { pub cents: u64 }
///
/// pub struct Pricing { pub base: u64 }
///
/// #[derive(Command, Deserialize)]
/// #[command(aggregate = Order, name = "order.price")]
/// pub struct Price { #[id] pub order: u32 }
///
/// #[derive(Command, Deserialize)]
/// #[command(aggregate = Order, async)]
/// pub struct Reprice(#[id] pub u32, pub u64);
///
/// #[derive(Aggregate, Default)]
/// #[aggregate(events(Priced), commands(Price, Reprice), error = std::io::Error, services = Pricing)]
/// pub struct Order { cents: u64 }
///
/// impl Apply<Priced> for Order {
///     fn apply(&mut self, e: &Priced) { self.cents = e.cents; }
/// }
/// impl Handle<Price> for Order {
///     fn handle(&self, _: &Price) -> Result<Events<Self>, std::io::Error> {
///         Ok(events![Priced { cents: 100 }])
///     }
/// }
/// impl HandleAsync<Reprice> for Order {
///     async fn handle(&self, c: &Reprice, pricing: &Pricing) -> Result<Events<Self>, std::io::Error> {
///         Ok(events![Priced { cents: pricing.base + c.1 }])
///     }
/// }
///
/// assert_eq!(Price::NAME, "order.price");
/// assert_eq!(Price { order: 7 }.aggregate_id(), "7");
/// assert_eq!(Reprice(8, 1).aggregate_id(), "8");
/// ```
#[proc_macro_derive(
    Command,
    attributes(command, id, event, aggregate, projection, query, process)
)]
pub fn derive_command(input: TokenStream) -> TokenStream {
    run(input, command::derive)
}

/// A read model fed from the global log: implements
/// `cqrs_core::Projection`, routing each consumed event to its
/// `impl Project<E>`, and registers it so the engine runs it.
///
/// # Attribute
///
/// `#[projection(..)]` is required; its keys are:
///
/// | key | value | default |
/// |---|---|---|
/// | `events(A, B, ..)` | the events it consumes, of any aggregates; at least one; required | |
/// | `name = ".."` | the projection name | the type's name |
/// | `tables = sqlite \| postgres` | its read model is SQL tables of its own (see `cqrs_core::projection::SqliteTables`) | documents or memory |
/// | `unknown_events = skip \| fail` | what it does with an event this build does not know (an unknown name in a stream it reads, a newer version): skip it, counted in its status with a warning, or stop | `fail` |
///
/// The projection is a struct implementing `Default`, without generics. An
/// event without `impl Project<E>` is reported on that event inside
/// `events(..)`.
///
/// # Durable read models: `#[document]`
///
/// A field of type `cqrs_core::Documents<D>` marked `#[document]` is a
/// collection of serde documents by key that the store keeps. After each batch
/// of events the runner saves the documents that changed and the checkpoint in
/// one transaction; after a restart the projection reloads them and resumes
/// from the checkpoint, so every event is counted exactly once. Every field of
/// such a projection must be `#[document]` (any other would start empty after
/// a restart); the collection is stored under the field's name.
///
/// ```
/// use cqrs_core::prelude::*;
///
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// pub struct Deposited { pub amount: u64 }
///
/// #[derive(Projection, Default)]
/// #[projection(name = "durable_balances", events(Deposited))]
/// pub struct DurableBalances {
///     #[document]
///     accounts: Documents<u64>,
/// }
///
/// impl Project<Deposited> for DurableBalances {
///     fn project(&mut self, e: &Envelope<Deposited>) {
///         *self.accounts.entry(e.aggregate_id()).or_default() += e.amount;
///     }
/// }
/// ```
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use cqrs_core::prelude::*;
///
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// pub struct Deposited { pub amount: u64 }
///
/// #[derive(Projection, Default)]
/// #[projection(name = "balances", events(Deposited))]
/// pub struct Balances { by_account: HashMap<String, u64> }
///
/// impl Project<Deposited> for Balances {
///     fn project(&mut self, e: &Envelope<Deposited>) {
///         *self.by_account.entry(e.aggregate_id().to_owned()).or_default() += e.amount;
///     }
/// }
///
/// assert_eq!(Balances::NAME, "balances");
/// assert_eq!(Balances::EVENTS, &["Deposited"]);
/// ```
#[proc_macro_derive(
    Projection,
    attributes(projection, document, event, aggregate, command, query, process)
)]
pub fn derive_projection(input: TokenStream) -> TokenStream {
    run(input, projection::derive)
}

/// A workflow across aggregates: implements
/// `cqrs_core::process::ProcessManager` on the state of one instance,
/// routing each listed event to its `impl Correlate<E>` and
/// `impl React<E>`, and registers it so the engine runs it.
///
/// # Attribute
///
/// `#[process(..)]` is required; its keys are:
///
/// | key | value | default |
/// |---|---|---|
/// | `name = ".."` | the manager's name: letters, digits, `.`, `-`, `_`, `/` | the type's name |
/// | `events(E, ..)` | the events it reacts to, each with `impl Correlate<E>` and `impl React<E>` | required |
/// | `commands(C, ..)` | the commands its reactions may send (`Reaction::send`) | none |
///
/// The type also derives `Default`, `Serialize` and `Deserialize`: each
/// instance starts from `Default` and is saved as JSON with the manager's
/// checkpoint. A refused command reaches `impl Recover<C>` when there is
/// one; a deadline set with `Reaction::deadline` reaches `impl Timeout`.
/// See `cqrs_core::process`.
#[proc_macro_derive(
    ProcessManager,
    attributes(process, event, aggregate, command, projection, query)
)]
pub fn derive_process_manager(input: TokenStream) -> TokenStream {
    run(input, process::derive)
}

/// A question a projection answers: implements `cqrs_core::Query`, answered
/// by `impl Answer<Self> for P`, and registers it for dispatch by name.
///
/// # Attribute
///
/// `#[query(..)]` is required; its keys are:
///
/// | key | value | default |
/// |---|---|---|
/// | `projection = P` | the projection that answers; required | |
/// | `output = T` | the answer's type; required | |
/// | `name = ".."` | the name for `query_json` | the type's name |
/// | `allow_unknown_fields` | dispatch by name ignores body fields the query does not have | refused |
///
/// The query must derive `Deserialize` and its output implement `Serialize`
/// (for dispatch by name with JSON). Any struct, unit structs included,
/// without generics. A projection without `impl Answer<Q>` is reported on the
/// `projection = P` value.
///
/// # Examples
///
/// ```
/// use cqrs_core::prelude::*;
///
/// #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
/// pub struct Deposited { pub amount: u64 }
///
/// #[derive(Projection, Default)]
/// #[projection(events(Deposited))]
/// pub struct Total { cents: u64 }
///
/// impl Project<Deposited> for Total {
///     fn project(&mut self, e: &Envelope<Deposited>) { self.cents += e.amount; }
/// }
///
/// #[derive(Query, Deserialize)]
/// #[query(projection = Total, output = u64, name = "total")]
/// pub struct TotalCents;
///
/// impl Answer<TotalCents> for Total {
///     fn answer(&self, _: &TotalCents) -> u64 { self.cents }
/// }
///
/// assert_eq!(TotalCents::NAME, "total");
/// ```
#[proc_macro_derive(
    Query,
    attributes(query, event, aggregate, command, projection, process)
)]
pub fn derive_query(input: TokenStream) -> TokenStream {
    run(input, query::derive)
}

#[cfg(test)]
mod no_panic {
    //! No input makes a derive panic: odd and broken inputs, through every
    //! derive, give tokens (code or errors), never a panic.

    use syn::DeriveInput;

    type Derive = fn(&DeriveInput) -> proc_macro2::TokenStream;

    const DERIVES: &[(&str, Derive)] = &[
        ("Event", crate::event::derive),
        ("Aggregate", crate::aggregate::derive),
        ("Command", crate::command::derive),
        ("Projection", crate::projection::derive),
        ("Query", crate::query::derive),
    ];

    const INPUTS: &[&str] = &[
        "struct A;",
        "struct A();",
        "struct A { x: u8 }",
        "enum A { X, Y(u8) }",
        "union A { x: u8 }",
        "struct A<'a, T: Clone, const N: usize> where T: Copy { x: &'a [T; N] }",
        "#[event] #[aggregate] #[command] #[projection] #[query] struct A;",
        "#[event()] #[aggregate()] #[command()] #[projection()] #[query()] struct A;",
        "#[event(name)] #[aggregate(name)] #[command(name)] #[projection(name)] #[query(name)] struct A;",
        "#[event = 1] #[aggregate = \"x\"] #[command = 2] #[projection = 3] #[query = 4] struct A;",
        "#[event(name = 1, version = \"x\", version = 0, nme = \"a\")] struct A;",
        "#[event(name = \"\", version = 99999999999999999999999)] struct A;",
        "#[event(name = \" a\\u{0}\", version = -1)] struct A;",
        "#[aggregate(events(), commands(), error = \"E\", services = 1, snapshot_every = 0)] struct A;",
        "#[aggregate(events(A, A, crate::A, ::a::b::A), commands(C, C), error = E)] struct A;",
        "#[aggregate(events(<A as B>::C, A<u8>, [u8; 3]), error = fn())] struct A;",
        "#[aggregate(events = 1, commands = \"x\", error(E), snapshot_every = 1.5)] struct A;",
        "#[aggregate(events(A), error = E, snapshot_every = 18446744073709551616)] struct A;",
        "#[command(aggregate = 1, async = true, async, name = \"\")] struct A { #[id] #[id(x)] a: u8, #[id = 1] b: u8 }",
        "#[command(aggregate = A)] struct A(#[id] u8, #[id] u8);",
        "#[command(aggregate = A)] struct A;",
        "#[command(aggregate = A)] enum A { #[id] X }",
        "#[projection(events(A, A), name = \"\\t\")] struct A { #[document] a: u8, #[document(x)] b: u8, c: u8 }",
        "#[projection(events(A))] struct A(#[document] u8);",
        "#[query(projection = 1, output = , name = \"q\")] struct A;",
        "#[query(projection = P, output = impl Trait)] struct A;",
        "#[query(projection(P), output(u8))] union A { x: u8 }",
        "#[event(upcast, upcast(), upcast = 1, upcast(from), upcast(from = 1, with = 1, shape = \"x\"), version = 3)] struct A;",
        "#[event(version = 4294967295, upcast(from = 4294967294, shape = S), upcast(from = 0, with = f), upcast(from = 1, with = f, with = g))] struct A;",
        "#[event(aliases, aliases = \"a\", aliases(1, \"\", \"a\", \"a\"), aliases[\"b\"], name = \"a\")] struct A;",
        "#[event(version = 2, upcast(from = 1, shape = &S), upcast(from = 1, with = <A as B>::f))] struct A { #[serde(rename)] x: u8 }",
        "#[projection(events(A), unknown_events = 1, unknown_events = skip)] struct A;",
        "#[aggregate(events(A), error = E, snapshot_every = 1)] #[serde(bound = 1, 2, (()))] struct A { #[serde(] x: u8 }",
    ];

    #[test]
    fn no_input_makes_a_derive_panic() {
        let mut tried = 0;
        for input in INPUTS {
            let parsed: DeriveInput = match syn::parse_str(input) {
                Ok(parsed) => parsed,
                // A few inputs are not even valid Rust; the compiler rejects
                // those before any derive runs.
                Err(_) => continue,
            };
            tried += 1;
            for (name, derive) in DERIVES {
                let outcome = std::panic::catch_unwind(|| derive(&parsed).to_string());
                assert!(outcome.is_ok(), "#[derive({name})] panicked on `{input}`");
            }
        }
        assert!(tried >= 24, "only {tried} inputs parsed");
    }
}

#[cfg(test)]
mod arbitrary_tokens {
    //! A property test: arbitrary token trees, as attribute arguments and as
    //! whole inputs, through each derive's parse, validate and expand (and
    //! the shared attribute parser), never make a derive panic.

    use proc_macro2::{
        Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree,
    };
    use proptest::prelude::*;
    use quote::quote;
    use syn::DeriveInput;

    type Derive = fn(&DeriveInput) -> proc_macro2::TokenStream;

    const DERIVES: &[(&str, Derive, &[crate::attr::Key])] = &[
        ("event", crate::event::derive, crate::event::KEYS),
        (
            "aggregate",
            crate::aggregate::derive,
            crate::aggregate::KEYS,
        ),
        ("command", crate::command::derive, crate::command::KEYS),
        (
            "projection",
            crate::projection::derive,
            crate::projection::KEYS,
        ),
        ("query", crate::query::derive, crate::query::KEYS),
    ];

    const WORDS: &[&str] = &[
        "events",
        "commands",
        "error",
        "name",
        "version",
        "aggregate",
        "projection",
        "output",
        "async",
        "services",
        "snapshot_every",
        "id",
        "document",
        "aliases",
        "upcast",
        "from",
        "with",
        "shape",
        "unknown_events",
        "skip",
        "Self",
        "self",
        "crate",
        "super",
        "type",
        "dyn",
        "impl",
        "fn",
        "for",
        "where",
        "A",
        "Lamp",
        "Vec",
        "u8",
        "_",
    ];

    const PUNCTS: &[char] = &[
        '=', ',', ':', ';', '&', '-', '<', '>', '#', '!', '.', '+', '*', '/', '?', '@', '|',
    ];

    fn leaf() -> impl Strategy<Value = TokenTree> {
        prop_oneof![
            prop::sample::select(WORDS)
                .prop_map(|w| TokenTree::Ident(Ident::new(w, Span::call_site()))),
            "[a-z]{1,6}".prop_map(|w| TokenTree::Ident(Ident::new_raw(&w, Span::call_site()))),
            (prop::sample::select(PUNCTS), any::<bool>()).prop_map(|(c, joint)| {
                let spacing = if joint {
                    Spacing::Joint
                } else {
                    Spacing::Alone
                };
                TokenTree::Punct(Punct::new(c, spacing))
            }),
            ".{0,8}".prop_map(|s| TokenTree::Literal(Literal::string(&s))),
            any::<u64>().prop_map(|n| TokenTree::Literal(Literal::u64_unsuffixed(n))),
            any::<i64>().prop_map(|n| TokenTree::Literal(Literal::i64_suffixed(n))),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| TokenTree::Literal(Literal::f64_unsuffixed(f))),
            any::<char>().prop_map(|c| TokenTree::Literal(Literal::character(c))),
            prop::sample::select(&["\"x\"_y", "1u32", "r\"raw\"", "b'a'", "0x_ff"][..])
                .prop_map(|l| TokenTree::Literal(l.parse().expect("a literal"))),
        ]
    }

    fn tokens() -> impl Strategy<Value = TokenStream> {
        let tree = leaf().prop_recursive(3, 32, 6, |inner| {
            (
                prop::sample::select(
                    &[
                        Delimiter::Parenthesis,
                        Delimiter::Bracket,
                        Delimiter::Brace,
                        Delimiter::None,
                    ][..],
                ),
                prop::collection::vec(inner, 0..6),
            )
                .prop_map(|(delimiter, trees)| {
                    TokenTree::Group(Group::new(delimiter, trees.into_iter().collect()))
                })
        });
        prop::collection::vec(tree, 0..12).prop_map(|trees| trees.into_iter().collect())
    }

    /// Runs every derive on `input`, and the attribute parser on its
    /// attributes, catching a panic.
    fn no_derive_panics(input: &DeriveInput) -> Result<(), TestCaseError> {
        for (name, derive, keys) in DERIVES {
            let outcome = std::panic::catch_unwind(|| {
                let _ = derive(input).to_string();
                let cx = crate::diag::Ctxt::new();
                let _ = crate::attr::parse(&cx, &input.attrs, name, keys);
                let _ = cx.check();
            });
            prop_assert!(
                outcome.is_ok(),
                "#[derive({name})] panicked on `{}`",
                quote!(#input)
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_attribute_arguments(
            attr in prop::sample::select(&["event", "aggregate", "command", "projection", "query", "id", "document"][..]),
            args in tokens(),
            shape in 0..4usize,
            on_field in any::<bool>(),
        ) {
            let attr = Ident::new(attr, Span::call_site());
            let attribute = quote!(#[#attr(#args)]);
            let (outer, inner) = if on_field { (quote!(), attribute) } else { (attribute, quote!()) };
            let input = match shape {
                0 => quote!(#outer struct A { #inner #[id] x: u8 }),
                1 => quote!(#outer struct A(#inner u8);),
                2 => quote!(#outer struct A;),
                _ => quote!(#outer enum A { X(#inner u8) }),
            };
            if let Ok(input) = syn::parse2::<DeriveInput>(input) {
                no_derive_panics(&input)?;
            }
        }

        #[test]
        fn arbitrary_name_values(
            attr in prop::sample::select(&["event", "aggregate", "command", "projection", "query"][..]),
            value in tokens(),
        ) {
            let attr = Ident::new(attr, Span::call_site());
            if let Ok(input) = syn::parse2::<DeriveInput>(quote!(#[#attr = #value] struct A;)) {
                no_derive_panics(&input)?;
            }
        }

        #[test]
        fn arbitrary_inputs(head in tokens(), body in tokens()) {
            let input = quote!(#head struct A #body);
            if let Ok(input) = syn::parse2::<DeriveInput>(input) {
                no_derive_panics(&input)?;
            }
        }
    }
}
