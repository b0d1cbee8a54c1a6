// The generated code names everything by absolute path: shadowing the
// prelude's names at module level changes nothing. (Primitive types are not
// shadowed here: serde's own derives do not support that, though ours name
// them `::core::primitive::*`.)
#![deny(warnings)]
#![allow(dead_code, unused_macros)]

use cqrs_core::prelude::*;

type Result = ();
struct Ok;
struct Err;
struct Option;
struct Some;
struct None;
struct Box;
struct String;
struct Vec;
struct From;
struct Into;
struct Send;
struct Sync;
struct Sized;
struct Future;
struct Display;
macro_rules! concat {
    ($($t:tt)*) => {
        compile_error!("the prelude's `concat!` is shadowed")
    };
}
macro_rules! module_path {
    ($($t:tt)*) => {
        compile_error!("the prelude's `module_path!` is shadowed")
    };
}
macro_rules! unreachable {
    ($($t:tt)*) => {
        compile_error!("the prelude's `unreachable!` is shadowed")
    };
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "shadow.opened", version = 3)]
pub struct Opened {
    pub owner: std::string::String,
}

#[derive(Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Opened), commands(Open, Touch), error = std::io::Error, snapshot_every = 5)]
pub struct Account {
    open: bool,
}

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {
        self.open = true;
    }
}

#[derive(Command, Deserialize)]
#[command(aggregate = Account)]
pub struct Open {
    #[id]
    pub account: std::string::String,
}

#[derive(Command, Deserialize)]
#[command(aggregate = Account, async)]
pub struct Touch(#[id] pub u64);

impl Handle<Open> for Account {
    fn handle(&self, c: &Open) -> core::result::Result<Events<Self>, std::io::Error> {
        core::result::Result::Ok(events![Opened {
            owner: c.account.clone()
        }])
    }
}

impl HandleAsync<Touch> for Account {
    async fn handle(
        &self,
        _: &Touch,
        _: &(),
    ) -> core::result::Result<Events<Self>, std::io::Error> {
        core::result::Result::Ok(Events::new())
    }
}

#[derive(Projection, Default)]
#[projection(events(Opened))]
pub struct Owners {
    count: u64,
}

impl Project<Opened> for Owners {
    fn project(&mut self, _: &Envelope<Opened>) {
        self.count += 1;
    }
}

#[derive(Query, Deserialize)]
#[query(projection = Owners, output = core::option::Option<u64>)]
pub struct OwnerCount;

impl Answer<OwnerCount> for Owners {
    fn answer(&self, _: &OwnerCount) -> core::option::Option<u64> {
        core::option::Option::Some(self.count)
    }
}

fn main() {
    let _: Result = ();
    let _ = (Ok, Err, Option, Some, None, Box, String, Vec, From, Into);
    let _ = (Send, Sync, Sized, Future, Display);
}
