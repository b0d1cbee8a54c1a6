//! What the compiler cannot see across crates: two definitions with one name.
//! The engine refuses to start and names both. This binary links two domains
//! that clash on purpose.

use cqrs_core::prelude::*;
use cqrs_core::{Error, Registry, RegistryError};

mod shop {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "opened")]
    pub(crate) struct Opened;

    #[derive(Command, Deserialize, Debug)]
    #[command(aggregate = Shop, name = "open")]
    pub(crate) struct Open {
        #[id]
        pub(crate) id: u32,
    }

    #[derive(Aggregate, Default, Debug)]
    #[aggregate(name = "shop", events(Opened), commands(Open), error = std::io::Error)]
    pub(crate) struct Shop;

    impl Apply<Opened> for Shop {
        fn apply(&mut self, _: &Opened) {}
    }

    impl Handle<Open> for Shop {
        fn handle(&self, _: &Open) -> Result<Events<Self>, std::io::Error> {
            Ok(events![Opened])
        }
    }

    #[derive(Projection, Default, Debug)]
    #[projection(name = "openings", events(Opened))]
    pub(crate) struct Openings(pub(crate) u32);

    impl Project<Opened> for Openings {
        fn project(&mut self, _: &Envelope<Opened>) {
            self.0 += 1;
        }
    }
}

mod bank {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "opened")]
    pub(crate) struct Opened;

    #[derive(Command, Deserialize, Debug)]
    #[command(aggregate = Vault, name = "open")]
    pub(crate) struct Open {
        #[id]
        pub(crate) id: u32,
    }

    #[derive(Aggregate, Default, Debug)]
    #[aggregate(name = "vault", events(Opened), commands(Open), error = std::io::Error)]
    pub(crate) struct Vault;

    impl Apply<Opened> for Vault {
        fn apply(&mut self, _: &Opened) {}
    }

    impl Handle<Open> for Vault {
        fn handle(&self, _: &Open) -> Result<Events<Self>, std::io::Error> {
            Ok(events![Opened])
        }
    }

    #[derive(Projection, Default, Debug)]
    #[projection(name = "openings", events(Opened))]
    pub(crate) struct Openings(pub(crate) u32);

    impl Project<Opened> for Openings {
        fn project(&mut self, _: &Envelope<Opened>) {
            self.0 += 1;
        }
    }
}

fn duplicate(err: &RegistryError) -> (&'static str, &'static str, [&'static str; 2]) {
    match err {
        RegistryError::Duplicate {
            kind,
            name,
            first,
            second,
        } => {
            let mut both = [*first, *second];
            both.sort_unstable();
            (*kind, *name, both)
        }
        other => panic!("expected a duplicate, got {other}"),
    }
}

#[tokio::test]
async fn the_engine_refuses_a_program_with_two_definitions_of_one_name() {
    let err = Engine::builder().build().await.unwrap_err();
    let Error::Registry(err) = &err else {
        panic!("expected a registry error, got {err}")
    };
    let (kind, name, both) = duplicate(err);
    // Commands are checked before events; either way both definitions are named.
    assert!(["command", "event", "projection"].contains(&kind), "{err}");
    assert!(
        both[0].starts_with("duplicates::bank::") && both[1].starts_with("duplicates::shop::"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(both[0]) && text.contains(both[1]) && text.contains(name),
        "{text}"
    );
}

#[test]
fn each_kind_of_duplicate_names_both_definitions() {
    let events = Registry::new()
        .register::<shop::Shop>()
        .register::<bank::Vault>();
    assert_eq!(
        duplicate(&events.validate().unwrap_err()),
        (
            "event",
            "opened",
            ["duplicates::bank::Opened", "duplicates::shop::Opened"]
        )
    );

    let commands = Registry::new()
        .register::<shop::Shop>()
        .register::<shop::Open>()
        .register::<bank::Open>();
    assert_eq!(
        duplicate(&commands.validate().unwrap_err()),
        (
            "command",
            "open",
            ["duplicates::bank::Open", "duplicates::shop::Open"]
        )
    );

    let projections = Registry::new()
        .register::<shop::Shop>()
        .register::<shop::Openings>()
        .register::<bank::Openings>();
    assert_eq!(
        duplicate(&projections.validate().unwrap_err()),
        (
            "projection",
            "openings",
            ["duplicates::bank::Openings", "duplicates::shop::Openings"]
        )
    );

    // Standalone event registrations clash too, even outside aggregates.
    let loose = Registry::new()
        .register::<shop::Shop>()
        .register::<shop::Opened>()
        .register::<bank::Opened>();
    assert_eq!(duplicate(&loose.validate().unwrap_err()).0, "event");
}

#[tokio::test]
async fn one_consistent_half_runs_with_an_explicit_registry() {
    let registry = Registry::new()
        .register::<shop::Shop>()
        .register::<shop::Open>()
        .register::<shop::Opened>()
        .register::<shop::Openings>();
    let app = Engine::builder().registry(registry).build().await.unwrap();
    let r = app.execute(shop::Open { id: 1 }).await.unwrap();
    assert_eq!(r.version, 1);
    assert_eq!(app.catalog().entries.len(), 4);
}
