use cqrs_core::prelude::*;
use cqrs_core::projection::ProjectSqlite;
use cqrs_core::rusqlite;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Deposited {
    pub amount: u64,
}

#[derive(Projection, Default)]
#[projection(events(Deposited), tables = sqlite)]
pub struct BalanceRows;

impl ProjectSqlite<Deposited> for BalanceRows {
    fn project(&mut self, _: &Envelope<Deposited>, _: &rusqlite::Connection) -> rusqlite::Result<()> {
        Ok(())
    }
}

fn main() {}
