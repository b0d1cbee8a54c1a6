//! The figures: which samples each one takes, in which order, and how they
//! become ratios.

mod nats;

use std::cell::Cell;
use std::time::Instant;

use cqrs_tests::nats::TestNats;
use cqrs_tests::pg::{TestPostgres, unique_schema};

use crate::report::{self, Better, Figure};
use crate::runner::{Failure, Fields, Runner, Side, field};

/// The stream lengths of the growth figure.
const GROWTH_SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

/// Workload sizes; `--quick` shrinks the database ones and the run count.
#[derive(Clone, Debug)]
pub(crate) struct Sizes {
    runs: usize,
    /// Accounts and commands per account of the memory-store figure.
    mem: (usize, usize),
    /// Accounts per client and commands per account on PostgreSQL, with 1
    /// client and with 8. The single client gets more accounts: its samples
    /// are the shortest, and a fraction of a second is too short to measure
    /// on a shared machine.
    pg_1client: (usize, usize),
    pg_8clients: (usize, usize),
    /// Accounts and commands per account on SQLite.
    sqlite: (usize, usize),
    /// Stored events the projection catches up with.
    catchup: usize,
    /// PostgreSQL growth: accounts timed at stream length N is `pg_growth / N`,
    /// clamped to `pg_growth_clamp`.
    pg_growth: usize,
    pg_growth_clamp: (usize, usize),
    /// PostgreSQL growth: our side times at least this many commands.
    pg_growth_ours: usize,
    /// Events the relay publishes and the read sides catch up with.
    nats_events: usize,
    /// Seconds of commands at 1,000 a second per lag sample.
    nats_lag_seconds: usize,
}

impl Sizes {
    pub(crate) fn full() -> Self {
        Self {
            runs: 5,
            mem: (1_000, 100),
            pg_1client: (80, 50),
            pg_8clients: (20, 50),
            sqlite: (40, 50),
            catchup: 100_000,
            pg_growth: 100_000,
            pg_growth_clamp: (10, 50),
            pg_growth_ours: 200,
            nats_events: 100_000,
            nats_lag_seconds: 8,
        }
    }

    pub(crate) fn quick() -> Self {
        Self {
            runs: 3,
            mem: (1_000, 100),
            pg_1client: (40, 50),
            pg_8clients: (10, 50),
            sqlite: (20, 50),
            catchup: 100_000,
            pg_growth: 20_000,
            pg_growth_clamp: (5, 20),
            pg_growth_ours: 100,
            nats_events: 50_000,
            nats_lag_seconds: 3,
        }
    }

    fn pg_growth_accounts(&self, size: usize) -> usize {
        (self.pg_growth / size).clamp(self.pg_growth_clamp.0, self.pg_growth_clamp.1)
    }
}

/// Pairs of samples per run for the figures whose samples are short: our
/// side of the memory-store command rates and of a catch-up lasts about a
/// tenth of a second, which one hiccup of a shared machine can stretch by a
/// fifth.
const SHORT: usize = 3;

/// What to run.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) figures: Vec<String>,
    pub(crate) runs: Option<usize>,
    pub(crate) sizes: Sizes,
    pub(crate) csv: bool,
    pub(crate) check: bool,
}

struct Bench {
    runner: Runner,
    runs: usize,
    sizes: Sizes,
    pg: Option<Pg>,
    nats: Option<Nats>,
    tmp: tempfile::TempDir,
    figures: Vec<Figure>,
    /// Numbers the JetStream streams of the samples.
    streams: Cell<usize>,
}

/// The throwaway NATS servers: one node, and a cluster of three.
struct Nats {
    single: TestNats,
    cluster: Option<TestNats>,
}

/// The client URL and the process ids (`1,2,3`) of `nats`'s servers.
fn nats_args(nats: &TestNats) -> (String, String) {
    let pids: Vec<String> = nats.pids().iter().map(u32::to_string).collect();
    (nats.url(), pids.join(","))
}

/// The throwaway server and how each side connects to it.
struct Pg {
    server: TestPostgres,
}

impl Pg {
    /// libpq `key=value` form, for cqrs-core and tokio-postgres.
    fn ours(&self) -> String {
        self.server.connection_string()
    }

    /// URL form with the socket directory, for sqlx.
    fn url(&self) -> String {
        let data = self.server.data_dir();
        let socket = data.parent().unwrap_or(&data);
        format!(
            "postgres://postgres@localhost:5432/postgres?host={}",
            socket.display()
        )
    }
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

/// Runs the plan, prints the figures; `Ok(false)` when `--check` found a
/// missed target.
pub(crate) fn run(plan: &Plan, mut runner: Runner) -> Result<bool, Failure> {
    let started = Instant::now();
    let wants = |f: &str| plan.figures.iter().any(|x| x == f);
    if wants("mem") || wants("growth") || wants("pg") {
        runner.build_peers()?;
    }
    let pg = if wants("growth")
        || wants("pg")
        || wants("catchup")
        || wants("reads")
        || wants("inline")
        || wants("nats")
    {
        eprintln!("starting a throwaway durable PostgreSQL ...");
        TestPostgres::start_durable().map(|server| Pg { server })
    } else {
        None
    };
    let nats = if wants("nats") {
        eprintln!("starting throwaway NATS servers (one node, and a cluster of three) ...");
        TestNats::start().map(|single| Nats {
            single,
            cluster: TestNats::start_cluster(),
        })
    } else {
        None
    };
    let mut bench = Bench {
        runner,
        runs: plan.runs.unwrap_or(plan.sizes.runs),
        sizes: plan.sizes.clone(),
        pg,
        nats,
        tmp: tempfile::Builder::new().prefix("cqrs-bench-").tempdir()?,
        figures: Vec::new(),
        streams: Cell::new(0),
    };
    for figure in &plan.figures {
        let at = Instant::now();
        eprintln!("figure `{figure}` ...");
        match figure.as_str() {
            "mem" => bench.memory()?,
            "growth" => bench.growth()?,
            "pg" => bench.postgres()?,
            "catchup" => bench.catchup()?,
            "reads" => bench.reads()?,
            "inline" => bench.inline()?,
            "sqlite" => bench.sqlite()?,
            "nats" => bench.nats()?,
            _ => {}
        }
        eprintln!("figure `{figure}` took {:.1} s", at.elapsed().as_secs_f64());
    }
    if plan.csv {
        print!("{}", report::csv(&bench.figures));
    } else {
        println!(
            "\ncqrs benchmarks: median of {} alternating runs per side ({} for mem_*_cmds_per_s \
             and catchup_*); ratio above 1 = cqrs better\n",
            bench.runs,
            bench.runs * SHORT
        );
        print!("{}", report::table(&bench.figures));
        if bench.pg.is_none()
            && (wants("growth")
                || wants("pg")
                || wants("catchup")
                || wants("reads")
                || wants("inline"))
        {
            println!("\nPostgreSQL figures skipped: no PostgreSQL server binaries found.");
        }
        if bench.nats.is_none() && wants("nats") {
            println!("\nNATS figures skipped: no `nats-server` found.");
        }
    }
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    let missed: Vec<&str> = bench
        .figures
        .iter()
        .filter(|f| f.met() == Some(false))
        .map(|f| f.name.as_str())
        .collect();
    if !missed.is_empty() {
        eprintln!("targets missed: {}", missed.join(", "));
    }
    Ok(!plan.check || missed.is_empty())
}

/// Runs `sides` once per run, rotating which goes first so that drift on
/// the machine hits every side alike; returns each side's samples.
fn rotate<T>(
    runs: usize,
    sides: &mut [&mut dyn FnMut() -> Result<T, Failure>],
) -> Result<Vec<Vec<T>>, Failure> {
    let n = sides.len();
    let mut samples: Vec<Vec<T>> = (0..n).map(|_| Vec::with_capacity(runs)).collect();
    for run in 0..runs {
        for k in 0..n {
            let side = (run + k) % n;
            samples[side].push((sides[side])()?);
        }
    }
    Ok(samples)
}

fn rate(fields: &Fields, what: &str) -> Result<f64, Failure> {
    Ok(field(fields, what)? / field(fields, "seconds")?)
}

fn rates(samples: &[Fields], what: &str) -> Result<Vec<f64>, Failure> {
    samples.iter().map(|f| rate(f, what)).collect()
}

/// Microseconds per command.
fn micros(samples: &[Fields]) -> Result<Vec<f64>, Failure> {
    samples
        .iter()
        .map(|f| Ok(field(f, "seconds")? / field(f, "commands")? * 1e6))
        .collect()
}

/// Both sides must have refused the same commands.
fn same_refusals(ours: &[Fields], theirs: &[Fields]) -> Result<(), Failure> {
    for (o, t) in ours.iter().zip(theirs) {
        let (o, t) = (field(o, "refused")?, field(t, "refused")?);
        if o != t {
            return Err(Failure(format!(
                "the sides refused different numbers of commands: ours {o}, theirs {t}"
            )));
        }
    }
    Ok(())
}

impl Bench {
    fn sample(&self, side: Side, args: Vec<String>) -> Result<Fields, Failure> {
        self.runner.sample(side, &args)
    }

    fn pg(&self) -> Option<&Pg> {
        self.pg.as_ref()
    }

    /// Figure 1 and 6: commands/s on the memory stores, sequential and with
    /// 8 tasks, and the peak memory of the sequential run.
    fn memory(&mut self) -> Result<(), Failure> {
        let (accounts, commands) = self.sizes.mem;
        let runs = self.runs * SHORT;
        let mut seq_ours = Vec::new();
        for clients in [1usize, 8] {
            let args = vec![s("mem-cmds"), s(accounts), s(commands), s(clients)];
            let mut ours = || self.sample(Side::Ours, args.clone());
            let mut theirs = || self.sample(Side::Peer, args.clone());
            let mut samples = rotate(runs, &mut [&mut ours, &mut theirs])?;
            let (theirs, ours) = (
                samples.pop().unwrap_or_default(),
                samples.pop().unwrap_or_default(),
            );
            same_refusals(&ours, &theirs)?;
            let name = if clients == 1 { "seq" } else { "8tasks" };
            let ours_rate = rates(&ours, "commands")?;
            self.figures.push(
                Figure::new(
                    format!("mem_{name}_cmds_per_s_vs_cqrs_es"),
                    "cmd/s",
                    Better::Higher,
                    (ours_rate.clone(), rates(&theirs, "commands")?),
                )
                .target(10.0),
            );
            if clients == 1 {
                // Peak memory grown by the run, per 100,000 stored events.
                let per_100k = |f: &Fields| -> Result<f64, Failure> {
                    let grown = field(f, "rss_kib")? - field(f, "rss_start_kib")?;
                    Ok(grown / 1024.0 / field(f, "events")? * 100_000.0)
                };
                let ours_mib = ours.iter().map(per_100k).collect::<Result<_, _>>()?;
                let theirs_mib = theirs.iter().map(per_100k).collect::<Result<_, _>>()?;
                self.figures.push(Figure::new(
                    "mem_peak_rss_mib_per_100k_events_vs_cqrs_es",
                    "MiB",
                    Better::Lower,
                    (ours_mib, theirs_mib),
                ));
                seq_ours = ours_rate;
            } else {
                self.figures.push(
                    Figure::new(
                        "mem_8tasks_cmds_per_s_vs_mem_seq",
                        "cmd/s",
                        Better::Higher,
                        (ours_rate, seq_ours.clone()),
                    )
                    .target(1.0),
                );
            }
        }
        Ok(())
    }

    /// Figure 2: the cost of one command against the stream length.
    fn growth(&mut self) -> Result<(), Failure> {
        // Memory: ours cached, snapshot and full replay, and cqrs-es.
        let n = GROWTH_SIZES.len();
        let mut mem: Vec<[Vec<f64>; 4]> = (0..n).map(|_| Default::default()).collect();
        for run in 0..self.runs {
            let mut order: Vec<usize> = (0..n).collect();
            if run % 2 == 1 {
                order.reverse();
            }
            for &k in &order {
                let size = GROWTH_SIZES[k];
                let aggregates = crate::growth::aggregates_for(size as u64);
                let ours = |mode: &str| -> Result<f64, Failure> {
                    let f = self.sample(Side::Ours, vec![s("mem-growth"), s(mode), s(size)])?;
                    Ok(field(&f, "seconds")? * 1e6)
                };
                let mut cached = || ours("cached");
                let mut theirs = || -> Result<f64, Failure> {
                    let f =
                        self.sample(Side::Peer, vec![s("mem-growth"), s(size), s(aggregates)])?;
                    Ok(micros(&[f])?[0])
                };
                let pair = rotate_once(run, &mut [&mut cached, &mut theirs])?;
                mem[k][0].push(pair[0]);
                mem[k][3].push(pair[1]);
                mem[k][1].push(ours("snapshot")?);
                mem[k][2].push(ours("replay")?);
            }
        }
        for (k, size) in GROWTH_SIZES.iter().enumerate() {
            self.figures.push(Figure::new(
                format!("mem_cmd_us_at_{size}_events_vs_cqrs_es"),
                "us/cmd",
                Better::Lower,
                (mem[k][0].clone(), mem[k][3].clone()),
            ));
        }
        let last = n - 1;
        for (mode, m) in [("cached", 0), ("snapshot", 1), ("full_replay", 2)] {
            let figure = Figure::new(
                format!("mem_cmd_us_at_10000_vs_10_events_{mode}"),
                "us/cmd",
                Better::Lower,
                (mem[last][m].clone(), mem[0][m].clone()),
            );
            self.figures.push(if m < 2 {
                figure.target(1.0 / 1.5)
            } else {
                figure
            });
        }
        if self.pg().is_none() {
            return Ok(());
        }
        // PostgreSQL: ours cached and snapshot, and postgres-es. Every size
        // runs on a table of the same size (the largest preparation, the
        // rest in other streams): a bigger table costs more per commit
        // whatever the stream length (more index pages to write).
        let total = GROWTH_SIZES
            .iter()
            .map(|&n| n * self.sizes.pg_growth_accounts(n))
            .max()
            .unwrap_or(0);
        let mut pg: Vec<[Vec<f64>; 3]> = (0..n).map(|_| Default::default()).collect();
        for run in 0..self.runs {
            let mut order: Vec<usize> = (0..n).collect();
            if run % 2 == 1 {
                order.reverse();
            }
            for &k in &order {
                let size = GROWTH_SIZES[k];
                let aggregates = self.sizes.pg_growth_accounts(size);
                let (conn, url) = match self.pg() {
                    Some(pg) => (pg.ours(), pg.url()),
                    None => return Ok(()),
                };
                let ours = |mode: &str| -> Result<f64, Failure> {
                    let args = vec![
                        s("pg-growth"),
                        conn.clone(),
                        unique_schema("growth"),
                        s(mode),
                        s(size),
                        s(aggregates),
                        s(self.sizes.pg_growth_ours),
                        s(total),
                    ];
                    Ok(micros(&[self.sample(Side::Ours, args)?])?[0])
                };
                let mut cached = || ours("cached");
                let mut snapshot = || ours("snapshot");
                let mut theirs = || -> Result<f64, Failure> {
                    let args = vec![
                        s("pg-growth"),
                        url.clone(),
                        unique_schema("growth_es"),
                        s(size),
                        s(aggregates),
                        s(total),
                    ];
                    Ok(micros(&[self.sample(Side::Peer, args)?])?[0])
                };
                let three = rotate_once(run, &mut [&mut cached, &mut snapshot, &mut theirs])?;
                for (m, value) in three.into_iter().enumerate() {
                    pg[k][m].push(value);
                }
            }
        }
        for (k, size) in GROWTH_SIZES.iter().enumerate() {
            self.figures.push(Figure::new(
                format!("pg_cmd_us_at_{size}_events_vs_postgres_es"),
                "us/cmd",
                Better::Lower,
                (pg[k][0].clone(), pg[k][2].clone()),
            ));
        }
        for (mode, m) in [("cached", 0), ("snapshot", 1)] {
            self.figures.push(
                Figure::new(
                    format!("pg_cmd_us_at_10000_vs_10_events_{mode}"),
                    "us/cmd",
                    Better::Lower,
                    (pg[last][m].clone(), pg[0][m].clone()),
                )
                .target(1.0 / 1.5),
            );
        }
        Ok(())
    }

    /// Figure 3: commands/s on PostgreSQL with 1 and 8 clients, against
    /// postgres-es and raw inserts of the same rows.
    fn postgres(&mut self) -> Result<(), Failure> {
        let Some(pg) = self.pg() else {
            return Ok(());
        };
        let (conn, url) = (pg.ours(), pg.url());
        let mut figures = Vec::new();
        for clients in [1usize, 8] {
            let (per_client, commands) = if clients == 1 {
                self.sizes.pg_1client
            } else {
                self.sizes.pg_8clients
            };
            let accounts = per_client * clients;
            let workload = [s(accounts), s(commands), s(clients)];
            let mut ours = || {
                let mut args = vec![s("pg-cmds"), conn.clone(), unique_schema("ours")];
                args.extend_from_slice(&workload);
                self.sample(Side::Ours, args)
            };
            let mut theirs = || {
                let mut args = vec![s("pg-cmds"), url.clone(), unique_schema("es")];
                args.extend_from_slice(&workload);
                self.sample(Side::Peer, args)
            };
            let mut raw = || {
                let mut args = vec![s("pg-raw-insert"), conn.clone(), unique_schema("raw")];
                args.extend_from_slice(&workload);
                self.sample(Side::Ours, args)
            };
            // The same rows, `rows` per INSERT and transaction, on one
            // connection.
            let raw_batch = |rows: usize| {
                let args = vec![
                    s("pg-raw-batch"),
                    conn.clone(),
                    unique_schema("batch"),
                    s(accounts),
                    s(commands),
                    s(rows),
                ];
                self.sample(Side::Ours, args)
            };
            // Perfect group commit: every commit carries one command of
            // each of the 8 clients, with no client at all.
            let mut grouped = || raw_batch(8);
            let mut batched = || raw_batch(100);
            let mut samples = if clients == 1 {
                rotate(self.runs, &mut [&mut ours, &mut theirs, &mut raw])?
            } else {
                rotate(
                    self.runs,
                    &mut [&mut ours, &mut theirs, &mut raw, &mut grouped, &mut batched],
                )?
            };
            let batched = if clients == 8 { samples.pop() } else { None };
            let grouped = if clients == 8 { samples.pop() } else { None };
            let raw = samples.pop().unwrap_or_default();
            let theirs = samples.pop().unwrap_or_default();
            let ours = samples.pop().unwrap_or_default();
            same_refusals(&ours, &theirs)?;
            let name = if clients == 1 { "1client" } else { "8clients" };
            figures.push(
                Figure::new(
                    format!("pg_{name}_cmds_per_s_vs_postgres_es"),
                    "cmd/s",
                    Better::Higher,
                    (rates(&ours, "commands")?, rates(&theirs, "commands")?),
                )
                .target(if clients == 1 { 4.0 } else { 10.0 }),
            );
            let raw_figure = Figure::new(
                format!("pg_{name}_events_per_s_vs_raw_insert"),
                "event/s",
                Better::Higher,
                (rates(&ours, "events")?, rates(&raw, "events")?),
            );
            figures.push(if clients == 1 {
                raw_figure.target(0.7)
            } else {
                raw_figure
            });
            if let Some(grouped) = &grouped {
                figures.push(Figure::new(
                    "pg_8clients_events_per_s_vs_8row_insert",
                    "event/s",
                    Better::Higher,
                    (rates(&ours, "events")?, rates(grouped, "events")?),
                ));
            }
            if let Some(batched) = &batched {
                figures.push(Figure::new(
                    "pg_8clients_events_per_s_vs_batched_insert",
                    "event/s",
                    Better::Higher,
                    (rates(&ours, "events")?, rates(batched, "events")?),
                ));
            }
            // What the database itself allows against postgres-es, in the
            // same run: no library on this workload can be more times faster
            // than postgres-es than this. A sequential client waits for each
            // command's commit, so one-row transactions bound it; 8 clients
            // can share a commit, so the batched insert bounds them. (Both
            // sides refuse the same commands, so event rates compare as
            // command rates do.)
            let (ceiling, rows) = match &batched {
                Some(batched) => (batched, "batched_insert"),
                None => (&raw, "raw_insert"),
            };
            figures.push(Figure::new(
                format!("pg_{name}_ceiling_{rows}_events_per_s_vs_postgres_es"),
                "event/s",
                Better::Higher,
                (rates(ceiling, "events")?, rates(&theirs, "events")?),
            ));
            // Closer to what 8 clients can reach: a command needs its
            // commit before its client sends the next, so a commit carries
            // 8 commands at most.
            if let Some(grouped) = &grouped {
                figures.push(Figure::new(
                    "pg_8clients_ceiling_8row_insert_events_per_s_vs_postgres_es",
                    "event/s",
                    Better::Higher,
                    (rates(grouped, "events")?, rates(&theirs, "events")?),
                ));
            }
        }
        self.figures.extend(figures);
        Ok(())
    }

    /// Figure 4: replaying stored events into a projection, against a raw
    /// scan of the same rows.
    fn catchup(&mut self) -> Result<(), Failure> {
        let events = self.sizes.catchup;
        let file = self.tmp.path().join("catchup.db");
        let mut targets = vec![("sqlite", s(file.display()))];
        if let Some(pg) = self.pg() {
            targets.push(("pg", format!("{}|{}", pg.ours(), unique_schema("catchup"))));
        }
        for (kind, target) in targets {
            self.sample(
                Side::Ours,
                vec![s("catchup-fill"), s(kind), target.clone(), s(events)],
            )?;
            // One untimed scan so both sides start with warm caches.
            self.sample(Side::Ours, vec![s("catchup-scan"), s(kind), target.clone()])?;
            let mut replay = || {
                self.sample(
                    Side::Ours,
                    vec![s("catchup-replay"), s(kind), target.clone()],
                )
            };
            let mut scan =
                || self.sample(Side::Ours, vec![s("catchup-scan"), s(kind), target.clone()]);
            let mut samples = rotate(self.runs * SHORT, &mut [&mut replay, &mut scan])?;
            let scan = samples.pop().unwrap_or_default();
            let replay = samples.pop().unwrap_or_default();
            for f in &replay {
                if field(f, "accounts")? * 100.0 < field(f, "events")? {
                    return Err(Failure("the replayed projection missed accounts".into()));
                }
            }
            let name = if kind == "pg" { "pg" } else { "sqlite" };
            self.figures.push(
                Figure::new(
                    format!("catchup_{name}_events_per_s_vs_raw_scan"),
                    "event/s",
                    Better::Higher,
                    (rates(&replay, "events")?, rates(&scan, "events")?),
                )
                .target(0.5),
            );
        }
        Ok(())
    }

    /// Figure 7: a projection catching up from PostgreSQL into a read model
    /// in a SQLite file, as documents and as SQL tables of its own, against
    /// the same projection catching up inside PostgreSQL.
    fn reads(&mut self) -> Result<(), Failure> {
        let Some(pg) = self.pg() else {
            return Ok(());
        };
        let events = self.sizes.catchup;
        let target = format!("{}|{}", pg.ours(), unique_schema("reads"));
        self.sample(
            Side::Ours,
            vec![s("catchup-fill"), s("pg"), target.clone(), s(events)],
        )?;
        let mut next = 0usize;
        let tmp = self.tmp.path().to_path_buf();
        let mut file = move || {
            next += 1;
            format!("sqlite:{}", tmp.join(format!("reads-{next}.db")).display())
        };
        for (name, sqlite, inside) in [
            ("documents", "balances", "balances"),
            ("tables", "bench_rows_sqlite", "bench_rows_pg"),
        ] {
            let mut into_sqlite = || {
                let read = file();
                self.sample(
                    Side::Ours,
                    vec![s("reads-catchup"), target.clone(), read, s(sqlite)],
                )
            };
            let mut in_pg = || {
                self.sample(
                    Side::Ours,
                    vec![s("reads-catchup"), target.clone(), s("pg"), s(inside)],
                )
            };
            let mut samples = rotate(self.runs, &mut [&mut into_sqlite, &mut in_pg])?;
            let in_pg = samples.pop().unwrap_or_default();
            let into_sqlite = samples.pop().unwrap_or_default();
            self.figures.push(
                Figure::new(
                    format!("reads_pg_into_sqlite_{name}_events_per_s_vs_in_pg"),
                    "event/s",
                    Better::Higher,
                    (rates(&into_sqlite, "events")?, rates(&in_pg, "events")?),
                )
                .target(0.8),
            );
        }
        Ok(())
    }

    /// Figure 8: commands/s on PostgreSQL with 8 clients, the balances
    /// projection inline against async.
    fn inline(&mut self) -> Result<(), Failure> {
        let Some(pg) = self.pg() else {
            return Ok(());
        };
        let conn = pg.ours();
        let (per_client, commands) = self.sizes.pg_8clients;
        let clients = 8usize;
        let workload = [s(per_client * clients), s(commands), s(clients)];
        let sample = |placement: &str| {
            let mut args = vec![s("pg-cmds-placed"), conn.clone(), unique_schema(placement)];
            args.extend_from_slice(&workload);
            args.push(s(placement));
            self.sample(Side::Ours, args)
        };
        let mut inline = || sample("inline");
        let mut in_async = || sample("async");
        let mut samples = rotate(self.runs, &mut [&mut inline, &mut in_async])?;
        let in_async = samples.pop().unwrap_or_default();
        let inline = samples.pop().unwrap_or_default();
        self.figures.push(
            Figure::new(
                "pg_8clients_inline_cmds_per_s_vs_async",
                "cmd/s",
                Better::Higher,
                (rates(&inline, "commands")?, rates(&in_async, "commands")?),
            )
            .target(0.8),
        );
        Ok(())
    }

    /// Figure 5: commands/s on SQLite, sequential and 8 tasks, against raw
    /// one-row transactions of the same rows.
    fn sqlite(&mut self) -> Result<(), Failure> {
        let (accounts, commands) = self.sizes.sqlite;
        let mut next = 0usize;
        let mut file = || {
            next += 1;
            s(self.tmp.path().join(format!("sqlite-{next}.db")).display())
        };
        let mut seq = Vec::new();
        let mut tasks = Vec::new();
        let mut raw = Vec::new();
        for run in 0..self.runs {
            let one = |clients: usize, f: String| {
                self.sample(
                    Side::Ours,
                    vec![s("sqlite-cmds"), f, s(accounts), s(commands), s(clients)],
                )
            };
            let (a, b, c) = (file(), file(), file());
            let mut first = || one(1, a.clone());
            let mut second = || one(8, b.clone());
            let samples = rotate_once(run, &mut [&mut first, &mut second])?;
            let mut samples = samples.into_iter();
            seq.push(samples.next().ok_or_else(|| Failure("no sample".into()))?);
            tasks.push(samples.next().ok_or_else(|| Failure("no sample".into()))?);
            raw.push(self.sample(
                Side::Ours,
                vec![s("sqlite-raw-insert"), c, s(accounts), s(commands)],
            )?);
        }
        let raw_rate = rates(&raw, "events")?;
        for (name, samples) in [("seq", &seq), ("8tasks", &tasks)] {
            self.figures.push(Figure::new(
                format!("sqlite_{name}_events_per_s_vs_raw_insert"),
                "event/s",
                Better::Higher,
                (rates(samples, "events")?, raw_rate.clone()),
            ));
        }
        Ok(())
    }
}

/// One round of `rotate`: every side once, the first one chosen by `run`.
fn rotate_once<T>(
    run: usize,
    sides: &mut [&mut dyn FnMut() -> Result<T, Failure>],
) -> Result<Vec<T>, Failure> {
    let n = sides.len();
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for k in 0..n {
        let side = (run + k) % n;
        out[side] = Some((sides[side])()?);
    }
    Ok(out.into_iter().flatten().collect())
}
