// Events, commands and projections named by paths into other modules.

mod events {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "account.opened")]
    pub struct Opened;

    pub mod nested {
        use cqrs_core::prelude::*;

        #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
        pub struct Closed;
    }
}

mod commands {
    use cqrs_core::prelude::*;

    #[derive(Command, Deserialize)]
    #[command(aggregate = crate::write::Account)]
    pub struct Open {
        #[id]
        pub account: String,
    }
}

mod write {
    use cqrs_core::prelude::*;

    use crate::events::nested;

    #[derive(Aggregate, Default)]
    #[aggregate(
        events(crate::events::Opened, nested::Closed),
        commands(crate::commands::Open),
        error = std::io::Error,
    )]
    pub struct Account {
        pub(crate) open: bool,
    }

    impl Apply<crate::events::Opened> for Account {
        fn apply(&mut self, _: &crate::events::Opened) {
            self.open = true;
        }
    }

    impl Apply<nested::Closed> for Account {
        fn apply(&mut self, _: &nested::Closed) {
            self.open = false;
        }
    }

    impl Handle<crate::commands::Open> for Account {
        fn handle(&self, _: &crate::commands::Open) -> Result<Events<Self>, std::io::Error> {
            Ok(events![crate::events::Opened])
        }
    }
}

mod read {
    use cqrs_core::prelude::*;

    #[derive(Projection, Default)]
    #[projection(events(crate::events::Opened, super::events::nested::Closed))]
    pub struct OpenAccounts {
        pub(crate) count: i64,
    }

    impl Project<crate::events::Opened> for OpenAccounts {
        fn project(&mut self, _: &Envelope<crate::events::Opened>) {
            self.count += 1;
        }
    }

    impl Project<super::events::nested::Closed> for OpenAccounts {
        fn project(&mut self, _: &Envelope<super::events::nested::Closed>) {
            self.count -= 1;
        }
    }

    #[derive(Query, Deserialize)]
    #[query(projection = self::OpenAccounts, output = i64)]
    pub struct HowMany;

    impl Answer<HowMany> for OpenAccounts {
        fn answer(&self, _: &HowMany) -> i64 {
            self.count
        }
    }
}

use cqrs_core::prelude::*;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // The aggregate's event descriptors carry each event's own Rust path, so
    // the registry sees one definition per event name.
    cqrs_core::Registry::from_inventory().validate().unwrap();
    let variants = [write::AccountEvent::Opened(events::Opened)];
    assert_eq!(variants.len(), 1);
    let app = Engine::builder().build().await.unwrap();
    let receipt = app
        .execute(commands::Open {
            account: "a".into(),
        })
        .await
        .unwrap();
    let open = app.query(read::HowMany).after(&receipt).await.unwrap();
    assert_eq!(open, 1);
}
