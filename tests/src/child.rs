//! What the crash tests' child processes share.

use std::sync::Arc;

use cqrs_core::store::{PostgresOptions, PostgresStore, SqliteStore, Store};

/// The store named by a child's arguments: `sqlite <file>` or
/// `postgres <connection> <schema>`. Prints the usage of `program` and exits
/// with status 2 on anything else; a store that cannot be opened is a panic
/// (the parent test sees the child fail).
pub async fn store_from_args(program: &str) -> Arc<dyn Store> {
    match stores_from_args(program).await {
        (store, None) => store,
        (_, Some(_)) => usage(program),
    }
}

/// The event store and, after the word `read`, the read store named by a
/// child's arguments: `<store> [read <store>]`, each `sqlite <file>` or
/// `postgres <connection> <schema>`.
pub async fn stores_from_args(program: &str) -> (Arc<dyn Store>, Option<Arc<dyn Store>>) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    stores_from(program, &args).await
}

/// [`stores_from_args`] on `args`.
pub async fn stores_from(program: &str, args: &[&str]) -> (Arc<dyn Store>, Option<Arc<dyn Store>>) {
    let (events, rest) = match split(args) {
        Some(split) => split,
        None => usage(program),
    };
    let events = open(events).await;
    let read = match rest {
        [] => None,
        ["read", read @ ..] => match split(read) {
            Some((read, [])) => Some(open(read).await),
            _ => usage(program),
        },
        _ => usage(program),
    };
    (events, read)
}

/// One store's arguments, and what follows them.
fn split<'a>(args: &'a [&'a str]) -> Option<(&'a [&'a str], &'a [&'a str])> {
    match *args.first()? {
        "sqlite" if args.len() >= 2 => Some(args.split_at(2)),
        "postgres" if args.len() >= 3 => Some(args.split_at(3)),
        _ => None,
    }
}

async fn open(args: &[&str]) -> Arc<dyn Store> {
    match args {
        ["sqlite", path] => Arc::new(SqliteStore::open(path).expect("cannot open the SQLite file")),
        ["postgres", config, schema] => Arc::new(
            PostgresStore::connect(config, PostgresOptions::new().schema(*schema))
                .await
                .expect("cannot connect to PostgreSQL"),
        ),
        _ => unreachable!("`split` gives one store's arguments"),
    }
}

fn usage(program: &str) -> ! {
    eprintln!(
        "usage: {program} <store> [read <store>], a store being sqlite <file> | postgres <connection> <schema>"
    );
    std::process::exit(2);
}

/// Prints one line for the parent test, at once: it reads them as they
/// come ([`crate::process::Child::wait_for`]).
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The value of environment variable `name`, or `default` when it is not
/// set or does not parse.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a child says about a subscription it watches, as it changes:
/// `state <role> <state>` when its role changes (`active`, `standby`,
/// `starting`, `retrying`, `failed`), `refused <error>` the first time a
/// commit of it is refused; [`observe`](Self::observe) gives the position
/// when it grew, for the child's own line.
#[derive(Debug)]
pub struct Narrator {
    role: &'static str,
    refused: bool,
    last: u64,
    only_active: bool,
}

impl Narrator {
    /// Growth counts only while active (a standby projection folds
    /// without saving) when `only_active`.
    pub fn new(only_active: bool) -> Self {
        Self {
            role: "",
            refused: false,
            last: 0,
            only_active,
        }
    }

    /// Says what changed; `Some(position)` when the position grew.
    pub fn observe(
        &mut self,
        state: &cqrs_core::RunState,
        last_error: Option<&str>,
        position: u64,
    ) -> Option<u64> {
        use cqrs_core::RunState;
        let role = match state {
            RunState::Live | RunState::CatchingUp => "active",
            RunState::Standby(_) => "standby",
            RunState::Starting => "starting",
            RunState::Retrying(_) => "retrying",
            RunState::Failed(_) => "failed",
            _ => "other",
        };
        if role != self.role {
            self.role = role;
            say(&format!("state {role} {state}"));
        }
        if let Some(error) = last_error
            && !self.refused
            && (error.contains("refused") || error.contains("fence"))
        {
            self.refused = true;
            say(&format!("refused {error}"));
        }
        let counts = !self.only_active || self.role == "active";
        (counts && position > self.last).then(|| {
            self.last = position;
            position
        })
    }
}
