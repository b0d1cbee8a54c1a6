use cqrs_core::prelude::*;

#[derive(Query, Deserialize)]
#[query(output = u64)]
pub struct TotalCents;

fn main() {}
