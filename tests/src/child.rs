//! What the crash tests' child processes share.

use std::sync::Arc;

use cqrs_core::store::{PostgresOptions, PostgresStore, SqliteStore, Store};

/// The store named by a child's arguments: `sqlite <file>` or
/// `postgres <connection> <schema>`. Prints the usage of `program` and exits
/// with status 2 on anything else; a store that cannot be opened is a panic
/// (the parent test sees the child fail).
pub async fn store_from_args(program: &str) -> Arc<dyn Store> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["sqlite", path] => Arc::new(SqliteStore::open(path).expect("cannot open the SQLite file")),
        ["postgres", config, schema] => Arc::new(
            PostgresStore::connect(config, PostgresOptions::new().schema(schema))
                .await
                .expect("cannot connect to PostgreSQL"),
        ),
        _ => {
            eprintln!("usage: {program} sqlite <file> | postgres <connection> <schema>");
            std::process::exit(2);
        }
    }
}
