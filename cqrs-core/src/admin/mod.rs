//! An admin command line (feature `admin`), for the application's own
//! binary: the registry lives there, so the tool is a function it calls.
//!
//! ```no_run
//! # async fn app() -> std::process::ExitCode {
//! let builder = cqrs_core::Engine::builder(); // the application's store, services, ..
//! cqrs_core::admin::main(builder).await
//! # }
//! ```
//!
//! | command | what it does |
//! |---|---|
//! | `catalog` | everything registered |
//! | `stream <type>/<id>` | one stream's events |
//! | `log [--from N] [--limit N] [--aggregate A].. [--event E].. [--follow]` | the global log (the last 20 events unless `--from`) |
//! | `projections` | each projection's saved position, the head and the lag |
//! | `processes` | each process manager's position and its instances by status |
//! | `process <name> <instance>` | one instance: state, deadlines, history |
//! | `relays` | each relay's position and lag |
//! | `rebuild <projection>` | rebuilds it from the start, with a progress bar and an ETA |
//! | `checkpoint reset <name> [--to N]` | deletes a projection's read model and checkpoint (it rebuilds on its next start), or sets its checkpoint to `N` |
//!
//! Every listing takes `--json`, one JSON document on stdout, for
//! scripts. A failure prints one line on stderr and exits with status 1;
//! wrong arguments exit with status 2.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::engine::{Engine, EngineBuilder};
use crate::error::Error;
use crate::process::InstanceStatus;
use crate::process::runner::saved_instances;
use crate::record::{EventView, RecordedEvent, StreamId};
use crate::store::{CheckpointStore, LogFilter};

/// Where the checkpoints of what the admin tool does not run live.
#[derive(Debug)]
pub(crate) struct Stores {
    pub(crate) read: Option<Arc<dyn CheckpointStore>>,
    pub(crate) projections: HashMap<String, Arc<dyn CheckpointStore>>,
    pub(crate) relays: Vec<String>,
}

#[derive(Debug, Parser)]
#[command(
    about = "Inspect and operate a cqrs application: its catalog, streams, log, projections, process managers and relays"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Args)]
struct Json {
    /// One JSON document on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Everything registered: aggregates, events, commands, projections, queries, process managers.
    Catalog(Json),
    /// One stream's events, given as `<type>/<id>` (e.g. `account/ada`).
    Stream {
        /// `<aggregate type>/<id>`.
        stream: String,
        #[command(flatten)]
        json: Json,
    },
    /// The global log: the last 20 events, or from a position on.
    Log {
        /// Start after this global position (default: 20 before the head).
        #[arg(long)]
        from: Option<u64>,
        /// At most this many events (default 20; with --follow, no limit).
        #[arg(long)]
        limit: Option<usize>,
        /// Only streams of this aggregate type (repeatable).
        #[arg(long)]
        aggregate: Vec<String>,
        /// Only events of this name (repeatable).
        #[arg(long)]
        event: Vec<String>,
        /// Keep following the log as it grows, until interrupted.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        json: Json,
    },
    /// Each projection's saved position, the log's head and the lag.
    Projections(Json),
    /// Each process manager's position and its instances by status.
    Processes(Json),
    /// One process manager instance: state, deadlines, history.
    Process {
        /// The process manager's name.
        name: String,
        /// The instance's key.
        instance: String,
        #[command(flatten)]
        json: Json,
    },
    /// Each relay's position and lag.
    Relays(Json),
    /// Rebuild a projection from the start of the log, showing progress.
    Rebuild {
        /// The projection's name.
        projection: String,
    },
    /// Checkpoints of projections.
    Checkpoint {
        #[command(subcommand)]
        action: CheckpointCmd,
    },
}

#[derive(Debug, Subcommand)]
enum CheckpointCmd {
    /// Delete a projection's read model and checkpoint (it rebuilds on its
    /// next start), or with --to set its checkpoint and keep its documents.
    Reset {
        /// The projection's name.
        name: String,
        /// Set the checkpoint to this position instead.
        #[arg(long)]
        to: Option<u64>,
    },
}

/// Runs the admin command line on the process's arguments; what `main` of
/// the application's admin binary returns.
pub async fn main(builder: EngineBuilder) -> ExitCode {
    run(builder, std::env::args_os()).await
}

/// Runs the admin command line on `args` (the first is the program's name).
pub async fn run<I, T>(builder: EngineBuilder, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match execute(builder, cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What a command failed on, as its one line.
type Failed = String;

fn failed(e: impl std::fmt::Display) -> Failed {
    e.to_string()
}

async fn execute(builder: EngineBuilder, command: Cmd) -> Result<(), Failed> {
    if let Cmd::Rebuild { projection } = &command {
        let engine = builder
            .only_projection(projection)
            .build()
            .await
            .map_err(failed)?;
        let result = rebuild(&engine, projection).await;
        engine.stop().await;
        return result;
    }
    let (builder, stores) = builder.for_admin();
    let engine = builder.build().await.map_err(failed)?;
    match command {
        Cmd::Catalog(Json { json }) => {
            let catalog = engine.catalog();
            if json {
                print_json(&catalog)
            } else {
                print!("{catalog}");
                Ok(())
            }
        }
        Cmd::Stream { stream, json } => show_stream(&engine, &stream, json.json).await,
        Cmd::Log {
            from,
            limit,
            aggregate,
            event,
            follow,
            json,
        } => {
            let filter = LogFilter::events(event).aggregates(aggregate);
            tail(&engine, from, limit, &filter, follow, json.json).await
        }
        Cmd::Projections(Json { json }) => projections(&engine, &stores, json).await,
        Cmd::Processes(Json { json }) => processes(&engine, json).await,
        Cmd::Process {
            name,
            instance,
            json,
        } => process(&engine, &name, &instance, json.json).await,
        Cmd::Relays(Json { json }) => relays(&engine, &stores, json).await,
        Cmd::Checkpoint {
            action: CheckpointCmd::Reset { name, to },
        } => reset(&engine, &stores, &name, to).await,
        Cmd::Rebuild { .. } => unreachable!("handled above"),
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<(), Failed> {
    let text = serde_json::to_string_pretty(value).map_err(failed)?;
    println!("{text}");
    Ok(())
}

fn print_event(record: &RecordedEvent) {
    println!(
        "#{:<6} {:<24} v{:<5} {:<28} {}",
        record.position,
        record.stream.to_string(),
        record.version,
        record.event_name,
        String::from_utf8_lossy(&record.payload)
    );
}

async fn show_stream(engine: &Engine, stream: &str, json: bool) -> Result<(), Failed> {
    let Some((aggregate, id)) = stream.split_once('/') else {
        return Err(format!(
            "a stream is `<type>/<id>` (e.g. `account/ada`), not `{stream}`"
        ));
    };
    let stream = StreamId::new(aggregate, id);
    stream.check().map_err(failed)?;
    let events = engine
        .store()
        .read_stream(&stream, 1)
        .await
        .map_err(failed)?;
    if json {
        return print_json(
            &events
                .iter()
                .map(|e| EventView::from(&**e))
                .collect::<Vec<_>>(),
        );
    }
    if events.is_empty() {
        println!("stream {stream} has no events");
    }
    for e in &events {
        print_event(e);
    }
    Ok(())
}

async fn tail(
    engine: &Engine,
    from: Option<u64>,
    limit: Option<usize>,
    filter: &LogFilter,
    follow: bool,
    json: bool,
) -> Result<(), Failed> {
    let store = engine.store();
    let head = store.head().await.map_err(failed)?;
    let mut after = from.unwrap_or_else(|| head.saturating_sub(20));
    let mut left = limit.unwrap_or(if follow { usize::MAX } else { 20 });
    let mut head_watch = store.watch_head();
    let mut stdout = std::io::stdout();
    loop {
        let page = left.min(512);
        if page == 0 {
            return Ok(());
        }
        let slice = store.read_log(after, filter, page).await.map_err(failed)?;
        for e in &slice.events {
            if json {
                let line = serde_json::to_string(&EventView::from(&**e)).map_err(failed)?;
                println!("{line}");
            } else {
                print_event(e);
            }
        }
        let _ = stdout.flush();
        left = left.saturating_sub(slice.events.len());
        let moved = slice.through > after;
        after = slice.through.max(after);
        if !moved || slice.events.len() < page {
            if !follow {
                return Ok(());
            }
            let now = after;
            if head_watch.wait_for(|head| *head > now).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// Where a projection's checkpoint lives.
fn read_store_of(engine: &Engine, stores: &Stores, name: &str) -> Arc<dyn CheckpointStore> {
    stores
        .projections
        .get(name)
        .or(stores.read.as_ref())
        .cloned()
        .unwrap_or_else(|| Arc::clone(engine.store()) as Arc<dyn CheckpointStore>)
}

#[derive(Serialize)]
struct Saved {
    name: String,
    /// `None`: never saved (a projection kept in memory saves nothing).
    position: Option<u64>,
    head: u64,
    lag: Option<u64>,
}

async fn projections(engine: &Engine, stores: &Stores, json: bool) -> Result<(), Failed> {
    let head = engine.store().head().await.map_err(failed)?;
    let mut rows = Vec::new();
    for p in engine.registry().projections() {
        let position = read_store_of(engine, stores, p.name)
            .load_checkpoint(p.name)
            .await
            .map_err(failed)?;
        rows.push(Saved {
            name: p.name.to_owned(),
            position,
            head,
            lag: position.map(|p| head.saturating_sub(p)),
        });
    }
    print_saved(&rows, json, "projection")
}

fn print_saved(rows: &[Saved], json: bool, what: &str) -> Result<(), Failed> {
    if json {
        return print_json(&rows);
    }
    println!("{what:<24} {:>10} {:>10} {:>10}", "position", "head", "lag");
    for r in rows {
        let (position, lag) = match (r.position, r.lag) {
            (Some(p), Some(l)) => (p.to_string(), l.to_string()),
            _ => (String::from("-"), String::from("not saved")),
        };
        println!("{:<24} {position:>10} {:>10} {lag:>10}", r.name, r.head);
    }
    Ok(())
}

#[derive(Serialize)]
struct ProcessRow {
    name: &'static str,
    position: Option<u64>,
    head: u64,
    running: usize,
    completed: usize,
    failed: usize,
}

async fn processes(engine: &Engine, json: bool) -> Result<(), Failed> {
    let head = engine.store().head().await.map_err(failed)?;
    let mut rows = Vec::new();
    for p in engine.registry().processes() {
        let consumer = crate::process::runner::consumer_name(p.name);
        let position = engine
            .store()
            .load_checkpoint(&consumer)
            .await
            .map_err(failed)?;
        let instances = saved_instances(&**engine.store(), p.name)
            .await
            .map_err(failed)?;
        let mut row = ProcessRow {
            name: p.name,
            position,
            head,
            running: 0,
            completed: 0,
            failed: 0,
        };
        for instance in instances.values() {
            match instance.status {
                InstanceStatus::Running => row.running += 1,
                InstanceStatus::Completed => row.completed += 1,
                InstanceStatus::Failed(_) => row.failed += 1,
            }
        }
        rows.push(row);
    }
    if json {
        return print_json(&rows);
    }
    println!(
        "{:<24} {:>10} {:>10} {:>8} {:>10} {:>7}",
        "process manager", "position", "head", "running", "completed", "failed"
    );
    for r in &rows {
        let position = r
            .position
            .map_or_else(|| String::from("-"), |p| p.to_string());
        println!(
            "{:<24} {position:>10} {:>10} {:>8} {:>10} {:>7}",
            r.name, r.head, r.running, r.completed, r.failed
        );
    }
    Ok(())
}

async fn process(engine: &Engine, name: &str, key: &str, json: bool) -> Result<(), Failed> {
    if !engine.registry().processes().iter().any(|p| p.name == name) {
        return Err(failed(Error::UnknownProcess {
            name: name.to_owned(),
        }));
    }
    let Some(instance) = saved_instances(&**engine.store(), name)
        .await
        .map_err(failed)?
        .remove(key)
    else {
        return Err(format!("process manager `{name}` has no instance `{key}`"));
    };
    if json {
        return print_json(&instance);
    }
    let status = match &instance.status {
        InstanceStatus::Running => String::from("running"),
        InstanceStatus::Completed => String::from("completed"),
        InstanceStatus::Failed(why) => format!("failed: {why}"),
    };
    println!("{name} {key}: {status}");
    println!("state: {}", instance.state);
    for d in &instance.deadlines {
        println!("deadline `{}` due at {} µs", d.name, d.due.0);
    }
    for step in &instance.history {
        println!("#{} {}", step.position, step.input);
        for c in &step.commands {
            let outcome = c
                .refused
                .as_ref()
                .map_or_else(|| String::from("done"), |why| format!("refused: {why}"));
            println!(
                "    -> {} to {} ({outcome})",
                c.issued.command, c.issued.stream
            );
        }
    }
    Ok(())
}

async fn relays(engine: &Engine, stores: &Stores, json: bool) -> Result<(), Failed> {
    let head = engine.store().head().await.map_err(failed)?;
    let mut rows = Vec::new();
    for name in &stores.relays {
        let position = engine.store().load_checkpoint(name).await.map_err(failed)?;
        rows.push(Saved {
            name: name.clone(),
            position,
            head,
            lag: position.map(|p| head.saturating_sub(p)),
        });
    }
    print_saved(&rows, json, "relay")
}

async fn reset(
    engine: &Engine,
    stores: &Stores,
    name: &str,
    to: Option<u64>,
) -> Result<(), Failed> {
    if !engine
        .registry()
        .projections()
        .iter()
        .any(|p| p.name == name)
    {
        let known: Vec<_> = engine
            .registry()
            .projections()
            .iter()
            .map(|p| p.name)
            .collect();
        return Err(failed(Error::UnknownProjection {
            name: name.to_owned(),
            known,
        }));
    }
    let read = read_store_of(engine, stores, name);
    match to {
        Some(position) => {
            read.save_checkpoint(name, position).await.map_err(failed)?;
            println!("checkpoint of `{name}` set to {position}; its documents are kept");
        }
        None => {
            read.reset_read_model(name, None).await.map_err(failed)?;
            println!(
                "read model and checkpoint of `{name}` deleted: it rebuilds on its next start"
            );
        }
    }
    Ok(())
}

async fn rebuild(engine: &Engine, name: &str) -> Result<(), Failed> {
    if engine.projection_status(name).is_some_and(|s| !s.durable) {
        return Err(format!(
            "`{name}` keeps its read model in memory: every process that runs it builds it at start, \
             there is nothing saved to rebuild"
        ));
    }
    let started = Instant::now();
    // Another process may hold the projection's lease: wait for it to
    // expire or be given up (bounded by the lease's takeover time).
    let patience = Instant::now() + Duration::from_secs(15);
    let mut said = false;
    let rebuild = loop {
        match engine.rebuild(name).await {
            Ok(rebuild) => break rebuild,
            Err(Error::Standby { reason, .. }) if Instant::now() < patience => {
                if !said {
                    eprintln!("waiting for the lease of `{name}`: {reason}");
                    said = true;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(failed(e)),
        }
    };
    let mut progress = rebuild.subscribe();
    // The target comes with the runner's first report, after the reset:
    // set on every report, not taken from the first value seen.
    let bar = indicatif::ProgressBar::new(progress.borrow().target);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} positions, {per_sec}, ETA {eta}",
        )
        .map_err(failed)?
        .progress_chars("=> "),
    );
    bar.set_message(format!("rebuilding {name}"));
    loop {
        let now = *progress.borrow_and_update();
        bar.set_length(now.target);
        bar.set_position(now.position.min(now.target));
        if now.done {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), progress.changed()).await {
            Ok(Ok(())) | Err(_) => {}
            // The runner ended the rebuild: `finished` says how.
            Ok(Err(_)) => break,
        }
        if let Some(status) = engine.projection_status(name)
            && let crate::RunState::Failed(reason) = status.state
        {
            bar.abandon();
            return Err(format!("rebuilding `{name}` failed: {reason}"));
        }
    }
    let done = rebuild.finished().await.map_err(failed)?;
    bar.finish_and_clear();
    println!(
        "rebuilt `{name}`: {} events through position {} in {} ms",
        done.events,
        done.position,
        started.elapsed().as_millis()
    );
    Ok(())
}
