#![allow(dead_code)]

use cqrs_core::prelude::*;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "lamp.switched_on", version = 1)]
pub struct SwitchedOn {
    pub brightness: u8,
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SwitchedOff;

#[derive(Debug)]
pub enum LampError {
    AlreadyOn,
}

impl std::fmt::Display for LampError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the lamp is already on")
    }
}

impl std::error::Error for LampError {}

#[derive(Aggregate, Default, Serialize, Deserialize)]
#[aggregate(
    name = "lamp",
    events(SwitchedOn, SwitchedOff),
    commands(TurnOn, TurnOff),
    error = LampError,
    snapshot_every = 10,
)]
pub struct Lamp {
    on: bool,
}

impl Apply<SwitchedOn> for Lamp {
    fn apply(&mut self, _: &SwitchedOn) {
        self.on = true;
    }
}

impl Apply<SwitchedOff> for Lamp {
    fn apply(&mut self, _: &SwitchedOff) {
        self.on = false;
    }
}

#[derive(Command, Deserialize)]
#[command(aggregate = Lamp, name = "lamp.turn_on")]
pub struct TurnOn {
    #[id]
    pub lamp: String,
    pub brightness: u8,
}

#[derive(Command, Deserialize)]
#[command(aggregate = Lamp)]
pub struct TurnOff(#[id] pub String);

impl Handle<TurnOn> for Lamp {
    fn handle(&self, c: &TurnOn) -> Result<Events<Self>, LampError> {
        if self.on {
            return Err(LampError::AlreadyOn);
        }
        Ok(events![SwitchedOn { brightness: c.brightness }])
    }
}

impl Handle<TurnOff> for Lamp {
    fn handle(&self, _: &TurnOff) -> Result<Events<Self>, LampError> {
        Ok(events![SwitchedOff])
    }
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Ticked;

#[derive(Aggregate, Default)]
#[aggregate(events(Ticked), error = LampError)]
pub struct Counter {
    ticks: u64,
}

impl Apply<Ticked> for Counter {
    fn apply(&mut self, _: &Ticked) {
        self.ticks += 1;
    }
}

#[derive(Projection, Default)]
#[projection(name = "lamp_status", events(SwitchedOn, SwitchedOff))]
pub struct LampStatus {
    on: std::collections::BTreeMap<String, bool>,
}

impl Project<SwitchedOn> for LampStatus {
    fn project(&mut self, e: &Envelope<SwitchedOn>) {
        self.on.insert(e.aggregate_id().to_owned(), true);
    }
}

impl Project<SwitchedOff> for LampStatus {
    fn project(&mut self, e: &Envelope<SwitchedOff>) {
        self.on.insert(e.aggregate_id().to_owned(), false);
    }
}

#[derive(Query, Deserialize)]
#[query(projection = LampStatus, output = Option<bool>, name = "lamp.is_on")]
pub struct IsOn {
    pub lamp: String,
}

impl Answer<IsOn> for LampStatus {
    fn answer(&self, q: &IsOn) -> Option<bool> {
        self.on.get(&q.lamp).copied()
    }
}

fn main() {}
