// All five derives on items a `macro_rules!` macro produces, the listed
// types passed as `ty`, `path` and `ident` fragments: the generated code's
// own bindings (`self`, `event`, `serializer`) must not be resolved in the
// fragments' hygiene context.

use cqrs_core::prelude::*;

#[derive(Debug)]
pub struct BulbError;

impl std::fmt::Display for BulbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bulb error")
    }
}

impl std::error::Error for BulbError {}

macro_rules! domain {
    ($module:ident, $fragment:ident) => {
        domain!(@ $module, $fragment);
    };
    (@ $module:ident, ty) => {
        mod $module {
            use super::*;
            domain!(@items Lit, Light, Lamp, Lights, HowMany, Documents<u64>, String);
        }
    };
    (@ $module:ident, path) => {
        mod $module {
            use super::*;
            domain!(@paths self::Lit, self::Light, Lamp, Lights, HowMany);
        }
    };
    (@ $module:ident, ident) => {
        mod $module {
            use super::*;
            domain!(@idents Lit, Light, Lamp, Lights, HowMany);
        }
    };
    (@items $ev:ty, $cmd:ty, $agg:ident, $view:ident, $ask:ident, $docs:ty, $id:ty) => {
        #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
        #[event(name = "bulb.lit")]
        pub struct Lit {
            pub by: $id,
        }

        #[derive(Aggregate, Default, Serialize, Deserialize)]
        #[aggregate(events($ev), commands($cmd), error = BulbError, snapshot_every = 10)]
        pub struct $agg {
            lit: bool,
        }

        impl Apply<$ev> for $agg {
            fn apply(&mut self, _: &$ev) {
                self.lit = true;
            }
        }

        #[derive(Command, Deserialize)]
        #[command(aggregate = $agg)]
        pub struct Light {
            #[id]
            pub bulb: $id,
        }

        impl Handle<$cmd> for $agg {
            fn handle(&self, command: &$cmd) -> Result<Events<Self>, BulbError> {
                Ok(events![Lit { by: command.bulb.clone() }])
            }
        }

        #[derive(Projection, Default)]
        #[projection(events($ev))]
        pub struct $view {
            #[document]
            lit: $docs,
        }

        impl Project<$ev> for $view {
            fn project(&mut self, e: &Envelope<$ev>) {
                *self.lit.entry(e.aggregate_id()).or_default() += 1;
            }
        }

        #[derive(Query, Deserialize)]
        #[query(projection = $view, output = usize)]
        pub struct $ask;

        impl Answer<$ask> for $view {
            fn answer(&self, _: &$ask) -> usize {
                self.lit.len()
            }
        }
    };
    (@paths $ev:path, $cmd:path, $agg:ident, $view:ident, $ask:ident) => {
        domain!(@plain $ev, $cmd, $agg, $view, $ask);
    };
    (@idents $ev:ident, $cmd:ident, $agg:ident, $view:ident, $ask:ident) => {
        domain!(@plain $ev, $cmd, $agg, $view, $ask);
    };
    (@plain $ev:path, $cmd:path, $agg:ident, $view:ident, $ask:ident) => {
        #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
        pub struct Lit;

        #[derive(Aggregate, Default)]
        #[aggregate(events($ev), commands($cmd), error = BulbError)]
        pub struct $agg {
            lit: bool,
        }

        impl Apply<$ev> for $agg {
            fn apply(&mut self, _: &$ev) {
                self.lit = true;
            }
        }

        #[derive(Command, Deserialize)]
        #[command(aggregate = $agg, async)]
        pub struct Light(#[id] pub u32);

        impl HandleAsync<$cmd> for $agg {
            async fn handle(&self, _: &$cmd, _: &()) -> Result<Events<Self>, BulbError> {
                Ok(events![Lit])
            }
        }

        #[derive(Projection, Default)]
        #[projection(events($ev))]
        pub struct $view {
            lit: u64,
        }

        impl Project<$ev> for $view {
            fn project(&mut self, _: &Envelope<$ev>) {
                self.lit += 1;
            }
        }

        #[derive(Query, Deserialize)]
        #[query(projection = $view, output = u64)]
        pub struct $ask;

        impl Answer<$ask> for $view {
            fn answer(&self, _: &$ask) -> u64 {
                self.lit
            }
        }
    };
}

domain!(as_types, ty);
domain!(as_paths, path);
domain!(as_idents, ident);

fn main() {
    use cqrs_core::EventSet;
    assert_eq!(as_types::LampEvent::NAMES, &["bulb.lit"]);
    assert_eq!(as_paths::LampEvent::NAMES, &["Lit"]);
    assert_eq!(as_idents::LampEvent::NAMES, &["Lit"]);
}
