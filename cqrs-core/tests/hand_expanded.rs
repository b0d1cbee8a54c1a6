//! The contract between the derives and the runtime, written out by hand: what
//! `#[derive(Event, Aggregate, Command, Projection, Query)]` generate for a
//! small domain, run through the engine. The macro crate's expansion must stay
//! equivalent to this.
#![allow(missing_docs, missing_debug_implementations)]

use std::collections::HashMap;

use cqrs_core::__private;
use cqrs_core::prelude::*;
use cqrs_core::registry::{
    AggregateDescriptor, CommandDescriptor, EventDescriptor, ProjectionDescriptor, QueryDescriptor,
    Registration,
};
use cqrs_core::{EventSet, Registered, Registry};

// ---- what the user writes -------------------------------------------------

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Opened {
    pub owner: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Deposited {
    pub amount: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("account not open")]
    NotOpen,
}

#[derive(Default, Serialize, Deserialize)]
pub struct Account {
    open: bool,
    balance: u64,
}

#[derive(Deserialize)]
pub struct Open {
    pub id: String,
    pub owner: String,
}

#[derive(Deserialize)]
pub struct Deposit {
    pub id: String,
    pub amount: u64,
}

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {
        self.open = true;
    }
}

impl Apply<Deposited> for Account {
    fn apply(&mut self, e: &Deposited) {
        self.balance += e.amount;
    }
}

impl Handle<Open> for Account {
    fn handle(&self, c: &Open) -> Result<Events<Self>, AccountError> {
        Ok(events![Opened {
            owner: c.owner.clone()
        }])
    }
}

impl HandleAsync<Deposit> for Account {
    async fn handle(&self, c: &Deposit, _: &()) -> Result<Events<Self>, AccountError> {
        if !self.open {
            return Err(AccountError::NotOpen);
        }
        Ok(events![Deposited { amount: c.amount }])
    }
}

#[derive(Default)]
pub struct Totals {
    by_account: HashMap<String, u64>,
}

impl Project<Deposited> for Totals {
    fn project(&mut self, e: &Envelope<Deposited>) {
        *self
            .by_account
            .entry(e.aggregate_id().to_owned())
            .or_default() += e.amount;
    }
}

#[derive(Deserialize)]
pub struct TotalOf {
    pub id: String,
}

impl Answer<TotalOf> for Totals {
    fn answer(&self, q: &TotalOf) -> u64 {
        self.by_account.get(&q.id).copied().unwrap_or(0)
    }
}

// ---- what #[derive(Event)] on `Opened` (with `#[event(name = "account.opened")]`) generates

const _: () = {
    #[automatically_derived]
    impl ::cqrs_core::Event for Opened {
        const NAME: &'static str = "account.opened";
        const VERSION: u32 = 1;
    }
    #[automatically_derived]
    impl ::cqrs_core::Registered for Opened {
        const REGISTRATION: ::cqrs_core::registry::Registration =
            ::cqrs_core::registry::Registration::Event(&::cqrs_core::registry::EventDescriptor {
                name: "account.opened",
                version: 1,
                rust_type: ::core::concat!(::core::module_path!(), "::", "Opened"),
                aliases: &[],
                upcasts: &[],
                shape: "{\n    owner: String,\n}",
            });
    }
    ::cqrs_core::__private::inventory::submit! {
        <Opened as ::cqrs_core::Registered>::REGISTRATION
    }
};

// ---- #[derive(Event)] on `Deposited`

const _: () = {
    impl ::cqrs_core::Event for Deposited {
        const NAME: &'static str = "Deposited";
        const VERSION: u32 = 1;
    }
    impl Registered for Deposited {
        const REGISTRATION: Registration = Registration::Event(&EventDescriptor {
            name: "Deposited",
            version: 1,
            rust_type: concat!(module_path!(), "::", "Deposited"),
            aliases: &[],
            upcasts: &[],
            shape: "{\n    amount: u64,\n}",
        });
    }
    __private::inventory::submit! { <Deposited as Registered>::REGISTRATION }
};

// ---- #[derive(Aggregate)] with
// #[aggregate(name = "account", events(Opened, Deposited), commands(Open, Deposit),
//             error = AccountError, snapshot_every = 3)]

/// Events of aggregate [`Account`].
#[derive(Clone, Debug, PartialEq)]
pub enum AccountEvent {
    /// [`Opened`]
    Opened(Opened),
    /// [`Deposited`]
    Deposited(Deposited),
}

const _: () = {
    impl ::core::convert::From<Opened> for AccountEvent {
        fn from(e: Opened) -> Self {
            Self::Opened(e)
        }
    }
    impl ::core::convert::From<Deposited> for AccountEvent {
        fn from(e: Deposited) -> Self {
            Self::Deposited(e)
        }
    }
    // `EventOf<Account>` follows from the `From` impls (cqrs-core's blanket impl).

    impl ::cqrs_core::EventSet for AccountEvent {
        const NAMES: &'static [&'static str] = &[
            <Opened as ::cqrs_core::Event>::NAME,
            <Deposited as ::cqrs_core::Event>::NAME,
        ];
        fn event_name(&self) -> &'static str {
            match self {
                Self::Opened(_) => <Opened as ::cqrs_core::Event>::NAME,
                Self::Deposited(_) => <Deposited as ::cqrs_core::Event>::NAME,
            }
        }
        fn event_version(&self) -> u32 {
            match self {
                Self::Opened(_) => <Opened as ::cqrs_core::Event>::VERSION,
                Self::Deposited(_) => <Deposited as ::cqrs_core::Event>::VERSION,
            }
        }
        fn encode(
            &self,
        ) -> ::core::result::Result<::std::vec::Vec<u8>, __private::serde_json::Error> {
            match self {
                Self::Opened(e) => __private::encode_event(e),
                Self::Deposited(e) => __private::encode_event(e),
            }
        }
        fn decode(
            name: &str,
            version: u32,
            payload: &[u8],
        ) -> ::core::result::Result<Self, ::cqrs_core::DecodeError> {
            if __private::is_stored_name::<Opened>(name) {
                return __private::decode_event::<Opened>(name, version, payload).map(Self::Opened);
            }
            if __private::is_stored_name::<Deposited>(name) {
                return __private::decode_event::<Deposited>(name, version, payload)
                    .map(Self::Deposited);
            }
            ::core::result::Result::Err(__private::unknown_event(name, version))
        }
    }

    impl __private::serde::Serialize for AccountEvent {
        fn serialize<S: __private::serde::Serializer>(
            &self,
            serializer: S,
        ) -> ::core::result::Result<S::Ok, S::Error> {
            match self {
                Self::Opened(e) => __private::serialize_tagged(serializer, e),
                Self::Deposited(e) => __private::serialize_tagged(serializer, e),
            }
        }
    }
    impl<'de> __private::serde::Deserialize<'de> for AccountEvent {
        fn deserialize<D: __private::serde::Deserializer<'de>>(
            deserializer: D,
        ) -> ::core::result::Result<Self, D::Error> {
            __private::deserialize_tagged(deserializer)
        }
    }

    /// The fingerprint of the state's shape, carried by its snapshots.
    const ACCOUNT_SHAPE: u64 = __private::fingerprint("{\n    balance: u64,\n    open: bool,\n}");

    impl ::cqrs_core::Aggregate for Account {
        const NAME: &'static str = "account";
        const SNAPSHOT_EVERY: ::core::option::Option<u64> = ::core::option::Option::Some(3);
        type Event = AccountEvent;
        type Error = AccountError;
        type Services = ();
        fn apply_event(&mut self, event: &AccountEvent) {
            match event {
                AccountEvent::Opened(e) => <Self as ::cqrs_core::Apply<Opened>>::apply(self, e),
                AccountEvent::Deposited(e) => {
                    <Self as ::cqrs_core::Apply<Deposited>>::apply(self, e)
                }
            }
        }
        // With `snapshot_every`: Some(..); without it: None (no serde bound).
        fn encode_snapshot(
            &self,
        ) -> ::core::option::Option<
            ::core::result::Result<::std::vec::Vec<u8>, __private::serde_json::Error>,
        > {
            ::core::option::Option::Some(__private::encode_snapshot(self, ACCOUNT_SHAPE))
        }
        fn decode_snapshot(
            bytes: &[u8],
        ) -> ::core::option::Option<::core::result::Result<Self, ::cqrs_core::DecodeError>>
        {
            ::core::option::Option::Some(__private::decode_snapshot(
                "account",
                bytes,
                ACCOUNT_SHAPE,
            ))
        }
    }

    impl Registered for Account {
        const REGISTRATION: Registration = Registration::Aggregate(&AggregateDescriptor {
            name: "account",
            rust_type: concat!(module_path!(), "::", "Account"),
            events: &[
                __private::event_descriptor::<Opened>(concat!(module_path!(), "::", "Opened")),
                __private::event_descriptor::<Deposited>(concat!(
                    module_path!(),
                    "::",
                    "Deposited"
                )),
            ],
            commands: &[
                <Open as ::cqrs_core::Command>::NAME,
                <Deposit as ::cqrs_core::Command>::NAME,
            ],
            snapshot_every: Some(3),
            services_type: "()",
            services_type_id: __private::type_id_of::<()>,
        });
    }
    __private::inventory::submit! { <Account as Registered>::REGISTRATION }
};

// ---- #[derive(Command)] on `Open` with #[command(aggregate = Account)] and `#[id] id`

const _: () = {
    impl ::cqrs_core::Command for Open {
        const NAME: &'static str = "Open";
        type Aggregate = Account;
        fn aggregate_id(&self) -> ::std::string::String {
            ::std::string::ToString::to_string(&self.id)
        }
        fn dispatch<'a>(
            state: &'a Account,
            command: &'a Self,
            _services: &'a <Account as ::cqrs_core::Aggregate>::Services,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<
                ::cqrs_core::Events<Account>,
                <Account as ::cqrs_core::Aggregate>::Error,
            >,
        > + ::core::marker::Send
        + 'a {
            ::core::future::ready(<Account as ::cqrs_core::Handle<Self>>::handle(
                state, command,
            ))
        }
    }
    impl Registered for Open {
        const REGISTRATION: Registration = Registration::Command(&CommandDescriptor {
            name: "Open",
            rust_type: concat!(module_path!(), "::", "Open"),
            aggregate: <Account as ::cqrs_core::Aggregate>::NAME,
            execute_json: __private::execute_json::<Open>,
            body_schema: "{}",
            error_json: |_| None,
        });
    }
    __private::inventory::submit! { <Open as Registered>::REGISTRATION }
};

// ---- #[derive(Command)] on `Deposit` with #[command(aggregate = Account, async)]

const _: () = {
    impl ::cqrs_core::Command for Deposit {
        const NAME: &'static str = "Deposit";
        type Aggregate = Account;
        fn aggregate_id(&self) -> ::std::string::String {
            ::std::string::ToString::to_string(&self.id)
        }
        fn dispatch<'a>(
            state: &'a Account,
            command: &'a Self,
            services: &'a <Account as ::cqrs_core::Aggregate>::Services,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<
                ::cqrs_core::Events<Account>,
                <Account as ::cqrs_core::Aggregate>::Error,
            >,
        > + ::core::marker::Send
        + 'a {
            <Account as ::cqrs_core::HandleAsync<Self>>::handle(state, command, services)
        }
    }
    impl Registered for Deposit {
        const REGISTRATION: Registration = Registration::Command(&CommandDescriptor {
            name: "Deposit",
            rust_type: concat!(module_path!(), "::", "Deposit"),
            aggregate: <Account as ::cqrs_core::Aggregate>::NAME,
            execute_json: __private::execute_json::<Deposit>,
            body_schema: "{}",
            error_json: |_| None,
        });
    }
    __private::inventory::submit! { <Deposit as Registered>::REGISTRATION }
};

// ---- #[derive(Projection)] with #[projection(name = "totals", events(Deposited))]

const _: () = {
    impl ::cqrs_core::Projection for Totals {
        const NAME: &'static str = "totals";
        const EVENTS: &'static [&'static str] = &[<Deposited as ::cqrs_core::Event>::NAME];
        fn project_recorded(
            &mut self,
            record: &::std::sync::Arc<::cqrs_core::RecordedEvent>,
        ) -> ::core::result::Result<(), ::cqrs_core::DecodeError> {
            if record.event_name == <Deposited as ::cqrs_core::Event>::NAME {
                let envelope = ::cqrs_core::Envelope::<Deposited>::decode(record)?;
                <Self as ::cqrs_core::Project<Deposited>>::project(self, &envelope);
                return ::core::result::Result::Ok(());
            }
            ::core::result::Result::Ok(())
        }
    }
    impl Registered for Totals {
        const REGISTRATION: Registration = Registration::Projection(&ProjectionDescriptor {
            name: "totals",
            rust_type: concat!(module_path!(), "::", "Totals"),
            events: <Totals as ::cqrs_core::Projection>::EVENTS,
            start: __private::start_projection::<Totals>,
            start_inline: Some(__private::start_inline_projection::<Totals>),
        });
    }
    __private::inventory::submit! { <Totals as Registered>::REGISTRATION }
};

// ---- #[derive(Query)] with #[query(projection = Totals, output = u64)]

const _: () = {
    impl ::cqrs_core::Query for TotalOf {
        const NAME: &'static str = "TotalOf";
        type Projection = Totals;
        type Output = u64;
        fn answer_from(projection: &Totals, query: &Self) -> u64 {
            <Totals as ::cqrs_core::Answer<Self>>::answer(projection, query)
        }
    }
    impl Registered for TotalOf {
        const REGISTRATION: Registration = Registration::Query(&QueryDescriptor {
            name: "TotalOf",
            rust_type: concat!(module_path!(), "::", "TotalOf"),
            projection: <Totals as ::cqrs_core::Projection>::NAME,
            output_type: "u64",
            query_json: __private::query_json::<TotalOf>,
            body_schema: "{}",
            output_schema: "{}",
        });
    }
    __private::inventory::submit! { <TotalOf as Registered>::REGISTRATION }
};

// ---- a durable projection: #[derive(Projection)] with a `#[document]` field
// #[projection(name = "ledger", events(Deposited))]
// pub struct Ledger { #[document] accounts: Documents<u64> }

#[derive(Default)]
pub struct Ledger {
    accounts: cqrs_core::Documents<u64>,
}

impl Project<Deposited> for Ledger {
    fn project(&mut self, e: &Envelope<Deposited>) {
        *self.accounts.entry(e.aggregate_id()).or_default() += e.amount;
        // Counts every event it saw: doubles if a restart replayed old events.
        *self.accounts.entry("__events").or_default() += 1;
    }
}

#[derive(Deserialize)]
pub struct LedgerOf {
    pub id: String,
}

impl Answer<LedgerOf> for Ledger {
    fn answer(&self, q: &LedgerOf) -> Option<u64> {
        self.accounts.get(&q.id).copied()
    }
}

const _: () = {
    impl ::cqrs_core::Projection for Ledger {
        const NAME: &'static str = "ledger";
        const EVENTS: &'static [&'static str] = &[<Deposited as ::cqrs_core::Event>::NAME];
        fn project_recorded(
            &mut self,
            record: &::std::sync::Arc<::cqrs_core::RecordedEvent>,
        ) -> ::core::result::Result<(), ::cqrs_core::DecodeError> {
            if record.event_name == <Deposited as ::cqrs_core::Event>::NAME {
                let envelope = ::cqrs_core::Envelope::<Deposited>::decode(record)?;
                <Self as ::cqrs_core::Project<Deposited>>::project(self, &envelope);
            }
            ::core::result::Result::Ok(())
        }
        fn document_collections(
            &mut self,
        ) -> ::std::vec::Vec<(
            &'static str,
            &mut dyn ::cqrs_core::projection::DocumentCollection,
        )> {
            ::std::vec![("accounts", &mut self.accounts)]
        }
    }
    impl Registered for Ledger {
        const REGISTRATION: Registration = Registration::Projection(&ProjectionDescriptor {
            name: "ledger",
            rust_type: concat!(module_path!(), "::", "Ledger"),
            events: <Ledger as ::cqrs_core::Projection>::EVENTS,
            start: __private::start_projection::<Ledger>,
            start_inline: Some(__private::start_inline_projection::<Ledger>),
        });
    }
    __private::inventory::submit! { <Ledger as Registered>::REGISTRATION }
    impl ::cqrs_core::Query for LedgerOf {
        const NAME: &'static str = "LedgerOf";
        type Projection = Ledger;
        type Output = Option<u64>;
        fn answer_from(projection: &Ledger, query: &Self) -> Option<u64> {
            <Ledger as ::cqrs_core::Answer<Self>>::answer(projection, query)
        }
    }
    impl Registered for LedgerOf {
        const REGISTRATION: Registration = Registration::Query(&QueryDescriptor {
            name: "LedgerOf",
            rust_type: concat!(module_path!(), "::", "LedgerOf"),
            projection: "ledger",
            output_type: "Option<u64>",
            query_json: __private::query_json::<LedgerOf>,
            body_schema: "{}",
            output_schema: "{}",
        });
    }
    __private::inventory::submit! { <LedgerOf as Registered>::REGISTRATION }
};

// ---- the contract, exercised ----------------------------------------------

#[tokio::test]
async fn hand_expanded_domain_runs_end_to_end() {
    let registry = Registry::from_inventory();
    registry.validate().unwrap();
    let catalog = registry.catalog().to_string();
    assert!(catalog.contains("account.opened"), "{catalog}");

    let engine = Engine::builder().build().await.unwrap();
    let refused = engine
        .execute(Deposit {
            id: "a".into(),
            amount: 5,
        })
        .await;
    assert!(matches!(
        refused,
        Err(CommandError::Domain(AccountError::NotOpen))
    ));

    engine
        .execute(Open {
            id: "a".into(),
            owner: "Ada".into(),
        })
        .await
        .unwrap();
    for _ in 0..4 {
        engine
            .execute(Deposit {
                id: "a".into(),
                amount: 5,
            })
            .await
            .unwrap();
    }
    let receipt = engine
        .execute_json("Deposit", serde_json::json!({ "id": "a", "amount": 10 }))
        .await
        .unwrap();
    assert_eq!(receipt.version, 6);
    assert_eq!(
        engine
            .query(TotalOf { id: "a".into() })
            .after(&receipt)
            .await
            .unwrap(),
        30
    );
    let json = engine
        .query_json("TotalOf", serde_json::json!({ "id": "a" }))
        .await
        .unwrap();
    assert_eq!(json, serde_json::json!(30));

    let event = AccountEvent::from(Deposited { amount: 7 });
    let text = serde_json::to_string(&event).unwrap();
    assert_eq!(
        text,
        r#"{"event":"Deposited","version":1,"data":{"amount":7}}"#
    );
    assert_eq!(serde_json::from_str::<AccountEvent>(&text).unwrap(), event);
    assert_eq!(AccountEvent::NAMES, &["account.opened", "Deposited"]);
}

#[tokio::test]
async fn a_durable_projection_resumes_from_its_checkpoint_and_rebuilds() {
    use cqrs_core::store::CheckpointStore;
    let store = MemoryStore::new();
    let first = Engine::builder()
        .store(store.clone())
        .build()
        .await
        .unwrap();
    first
        .execute(Open {
            id: "d".into(),
            owner: "D".into(),
        })
        .await
        .unwrap();
    let mut last = None;
    for _ in 0..10 {
        last = Some(
            first
                .execute(Deposit {
                    id: "d".into(),
                    amount: 2,
                })
                .await
                .unwrap(),
        );
    }
    let last = last.unwrap();
    assert_eq!(
        first
            .query(LedgerOf { id: "d".into() })
            .after(&last)
            .await
            .unwrap(),
        Some(20)
    );
    assert!(first.projection_status("ledger").unwrap().durable);
    first.shutdown();
    drop(first);
    let saved = store.load_read_model("ledger").await.unwrap();
    assert_eq!(saved.checkpoint, Some(11));
    assert_eq!(saved.documents.len(), 2);

    // A new engine on the same store restores the documents and resumes
    // after the checkpoint: nothing is counted twice.
    let second = Engine::builder()
        .store(store.clone())
        .build()
        .await
        .unwrap();
    let r = second
        .execute(Deposit {
            id: "d".into(),
            amount: 5,
        })
        .await
        .unwrap();
    assert_eq!(
        second
            .query(LedgerOf { id: "d".into() })
            .after(&r)
            .await
            .unwrap(),
        Some(25)
    );
    assert_eq!(
        second
            .query(LedgerOf {
                id: "__events".into()
            })
            .after(&r)
            .await
            .unwrap(),
        Some(11)
    );

    // Rebuild from zero: documents and checkpoint reset, the log replayed.
    let rebuild = second.rebuild("ledger").await.unwrap();
    let progress = rebuild.subscribe();
    let done = rebuild.finished().await.unwrap();
    assert!(
        done.done && done.position >= 12 && done.target >= 12,
        "{done:?}"
    );
    assert_eq!(done.events, 11, "only the ledger's events are read");
    assert_eq!(*progress.borrow(), done);
    assert_eq!(
        second
            .query(LedgerOf {
                id: "__events".into()
            })
            .await
            .unwrap(),
        Some(11)
    );
    assert_eq!(
        second.query(LedgerOf { id: "d".into() }).await.unwrap(),
        Some(25)
    );
    assert!(matches!(
        second.rebuild("nope").await,
        Err(cqrs_core::Error::UnknownProjection { .. })
    ));
}
