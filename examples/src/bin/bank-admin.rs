//! The bank's admin tool: `cqrs_core::admin` on the bank's registry.
//!
//! ```text
//! cargo run --bin bank-admin -- --store sqlite:bank.db projections
//! cargo run --bin bank-admin -- --store sqlite:bank.db rebuild balances
//! cargo run --bin bank-admin -- --store sqlite:bank.db process transfer t-3-a
//! cargo run --bin bank-admin -- --help
//! ```

use std::process::ExitCode;

use cqrs_core::Engine;
use cqrs_core::store::{PostgresOptions, PostgresStore, SqliteStore};
use cqrs_examples::bank::BankServices;

const USAGE: &str = "usage: bank-admin --store sqlite:<file> | --store postgres:<connection string> <command> [--json] ..\n       bank-admin --help";

#[tokio::main]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let program = args.remove(0);
    let builder = Engine::builder().services(BankServices::default());
    let builder = match args.first().map(String::as_str) {
        Some("--store") if args.len() >= 2 => {
            let store = args[1].clone();
            args.drain(..2);
            match store.split_once(':') {
                Some(("sqlite", path)) if !path.is_empty() => match SqliteStore::open(path) {
                    Ok(store) => builder.store(store),
                    Err(e) => return fail(&format!("cannot open {path}: {e}")),
                },
                Some(("postgres", config)) if !config.is_empty() => {
                    match PostgresStore::connect(config, PostgresOptions::new()).await {
                        Ok(store) => builder.store(store),
                        Err(e) => return fail(&format!("cannot connect to PostgreSQL: {e}")),
                    }
                }
                _ => {
                    eprintln!("error: unknown store `{store}`\n{USAGE}");
                    return ExitCode::from(2);
                }
            }
        }
        Some("--help" | "-h") | None => builder,
        Some(_) => {
            eprintln!("error: the store comes first: --store <store>\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    cqrs_core::admin::run(builder, std::iter::once(program).chain(args)).await
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
