//! One fresh store per test, of each kind the engine runs on: memory, a
//! SQLite file, and a schema of its own on the test binary's shared
//! PostgreSQL server; and [`on_every_store!`](crate::on_every_store), which
//! runs a test body once per kind.

use std::sync::Arc;

use cqrs_core::MemoryStore;
use cqrs_core::store::{PostgresOptions, PostgresStore, SqliteStore, Store};

use crate::pg::{TestPostgres, unique_schema};

/// The kinds of store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`MemoryStore`].
    Memory,
    /// [`SqliteStore`] on a file in a temporary directory.
    SqliteFile,
    /// [`PostgresStore`] in a fresh schema.
    Postgres,
}

/// A store for one test, and what must live as long as it.
#[derive(Debug)]
pub struct TestStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Its kind.
    pub kind: Kind,
    /// The SQLite file's directory.
    _dir: Option<tempfile::TempDir>,
}

/// A fresh store of `kind` for the test named `test`; `None` when it is
/// PostgreSQL and PostgreSQL is not installed (and not required, see
/// [`TestPostgres::start`]).
///
/// # Panics
///
/// When the store cannot be opened.
pub async fn open(kind: Kind, test: &str) -> Option<TestStore> {
    let (store, dir): (Arc<dyn Store>, _) = match kind {
        Kind::Memory => (Arc::new(MemoryStore::new()), None),
        Kind::SqliteFile => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let store = SqliteStore::open(dir.path().join("events.db")).expect("a SQLite file");
            (Arc::new(store), Some(dir))
        }
        Kind::Postgres => {
            let server = tokio::task::spawn_blocking(TestPostgres::shared)
                .await
                .expect("starting PostgreSQL does not panic")?;
            let options = PostgresOptions::new()
                .schema(unique_schema(test))
                .max_connections(4);
            let store = PostgresStore::connect(&server.connection_string(), options)
                .await
                .expect("a PostgreSQL schema");
            (Arc::new(store), None)
        }
    };
    Some(TestStore {
        store,
        kind,
        _dir: dir,
    })
}

/// Runs each `async fn case(store: TestStore)` named once per kind of store,
/// as `memory::case`, `sqlite_file::case` and `postgres::case`.
#[macro_export]
macro_rules! on_every_store {
    ($($case:ident),* $(,)?) => {
        $crate::on_every_store!(@kind memory, Memory: $($case),*);
        $crate::on_every_store!(@kind sqlite_file, SqliteFile: $($case),*);
        $crate::on_every_store!(@kind postgres, Postgres: $($case),*);
    };
    (@kind $module:ident, $kind:ident: $($case:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let kind = $crate::stores::Kind::$kind;
                    if let Some(store) = $crate::stores::open(kind, stringify!($case)).await {
                        super::$case(store).await;
                    }
                }
            )*
        }
    };
}
