use cqrs_core::prelude::*;
use cqrs_core::projection::{ProjectSqlite, SqliteTables};
use cqrs_core::rusqlite;

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Deposited {
    pub amount: u64,
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Withdrawn {
    pub amount: u64,
}

#[derive(Projection, Default)]
#[projection(events(Deposited, Withdrawn), tables = sqlite)]
pub struct BalanceRows;

impl SqliteTables for BalanceRows {
    const MIGRATIONS: &'static [&'static str] = &["CREATE TABLE rows (n INTEGER)"];
    fn reset(db: &rusqlite::Connection) -> rusqlite::Result<()> {
        db.execute_batch("DELETE FROM rows")
    }
}

impl ProjectSqlite<Deposited> for BalanceRows {
    fn project(&mut self, _: &Envelope<Deposited>, _: &rusqlite::Connection) -> rusqlite::Result<()> {
        Ok(())
    }
}

fn main() {}
