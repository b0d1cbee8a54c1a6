//! Figure 9: NATS JetStream. The relay from a store to a stream on one
//! node and on three, a remote read side catching up from a stream into
//! SQLite and PostgreSQL, and the lag from a command's commit to its
//! visibility on a read side.

use std::cell::Cell;

use super::{Bench, Fields, Figure, Nats, Pg, Side, field, nats_args, rates, rotate, s};
use crate::report::Better;
use crate::runner::Failure;
use cqrs_tests::nats::TestNats;
use cqrs_tests::pg::unique_schema;

/// The lag figure's command rate, and the p99 it must stay under.
const LAG_RATE: usize = 1_000;
const LAG_TARGET_MS: f64 = 20.0;

/// CPU time of the sample's process and of the NATS servers, in
/// microseconds per event.
fn cpu_per_event(samples: &[Fields]) -> Result<Vec<f64>, Failure> {
    samples
        .iter()
        .map(|f| Ok((field(f, "cpu_s")? + field(f, "server_cpu_s")?) / field(f, "events")? * 1e6))
        .collect()
}

fn values(samples: &[Fields], what: &str) -> Result<Vec<f64>, Failure> {
    samples.iter().map(|f| field(f, what)).collect()
}

impl Bench {
    /// A stream name no sample used before.
    fn stream(&self) -> String {
        let n = self.streams.get() + 1;
        self.streams.set(n);
        format!("S{n:05}")
    }

    pub(super) fn nats(&mut self) -> Result<(), Failure> {
        let Some(nats) = self.nats.as_ref() else {
            return Ok(());
        };
        let file = s(self.tmp.path().join("nats-events.db").display());
        self.sample(
            Side::Ours,
            vec![
                s("catchup-fill"),
                s("sqlite"),
                file.clone(),
                s(self.sizes.nats_events),
            ],
        )?;
        let mut figures = self.nats_relay(nats, &file)?;
        figures.extend(self.nats_catch_up(&nats.single, &file)?);
        figures.extend(self.nats_lag(&nats.single)?);
        self.figures.extend(figures);
        Ok(())
    }

    /// The relay from the store `file` to one node and to an R3 stream on
    /// three, against raw pipelined publishes of the same messages.
    fn nats_relay(&self, nats: &Nats, file: &str) -> Result<Vec<Figure>, Failure> {
        let mut figures = Vec::new();
        let mut one_node = Vec::new();
        let servers = [
            ("1node", Some(&nats.single), 1),
            ("r3", nats.cluster.as_ref(), 3),
        ];
        for (name, server, replicas) in servers {
            let Some(server) = server else {
                continue;
            };
            let (url, pids) = nats_args(server);
            let task = |task: &str, mode: Option<&str>| {
                let mut args = vec![
                    s(task),
                    url.clone(),
                    self.stream(),
                    s(replicas),
                    s(file),
                    pids.clone(),
                ];
                args.extend(mode.map(s));
                self.sample(Side::Ours, args)
            };
            let mut relay = || task("nats-relay", None);
            let mut raw = || task("nats-publish", Some("prebuilt"));
            let mut ceiling = || task("nats-publish", Some("read"));
            let mut samples = rotate(self.runs, &mut [&mut relay, &mut raw, &mut ceiling])?;
            let ceiling = samples.pop().unwrap_or_default();
            let raw = samples.pop().unwrap_or_default();
            let relay = samples.pop().unwrap_or_default();
            let ours = rates(&relay, "events")?;
            let figure = Figure::new(
                format!("nats_relay_{name}_events_per_s_vs_raw_publish"),
                "event/s",
                Better::Higher,
                (ours.clone(), rates(&raw, "events")?),
            );
            figures.push(if replicas == 1 {
                figure.target(0.8)
            } else {
                figure
            });
            // What the machine allows a relay: the raw publishes with the
            // store read and the messages built inside the clock, as a
            // relay must, and nothing else (no checkpoints, no batches).
            figures.push(Figure::new(
                format!("nats_relay_{name}_ceiling_read_and_publish_events_per_s_vs_raw_publish"),
                "event/s",
                Better::Higher,
                (rates(&ceiling, "events")?, rates(&raw, "events")?),
            ));
            figures.push(Figure::new(
                format!("nats_relay_{name}_cpu_us_per_event_vs_raw_publish"),
                "us/event",
                Better::Lower,
                (cpu_per_event(&relay)?, cpu_per_event(&raw)?),
            ));
            if replicas == 1 {
                one_node = ours;
            } else if !one_node.is_empty() {
                // What three replicas cost the relay.
                figures.push(Figure::new(
                    "nats_relay_r3_events_per_s_vs_relay_1node",
                    "event/s",
                    Better::Higher,
                    (ours, one_node.clone()),
                ));
            }
        }
        Ok(figures)
    }

    /// A remote read side catching up from a stream holding the events of
    /// the store `file`, into SQLite and PostgreSQL, against a raw pull
    /// consumer that only acknowledges, and one that also decodes (the
    /// ceiling).
    fn nats_catch_up(&self, nats: &TestNats, file: &str) -> Result<Vec<Figure>, Failure> {
        let events = self.sizes.nats_events;
        let (url, pids) = nats_args(nats);
        let mut figures = Vec::new();
        let stream = self.stream();
        self.sample(
            Side::Ours,
            vec![
                s("nats-fill"),
                url.clone(),
                stream.clone(),
                s(1),
                s(file),
                pids.clone(),
            ],
        )?;
        let next = Cell::new(0usize);
        let catch_up = |read: String| {
            let args = vec![
                s("nats-catchup"),
                url.clone(),
                stream.clone(),
                read,
                s(events),
                pids.clone(),
            ];
            self.sample(Side::Ours, args)
        };
        let consume = |mode: &str| {
            let args = vec![
                s("nats-consume"),
                url.clone(),
                stream.clone(),
                s(events),
                pids.clone(),
                s(mode),
            ];
            self.sample(Side::Ours, args)
        };
        let mut into_sqlite = || {
            next.set(next.get() + 1);
            let file = self.tmp.path().join(format!("nats-read-{}.db", next.get()));
            catch_up(format!("sqlite:{}", file.display()))
        };
        let pg = self.pg().map(Pg::ours);
        let mut into_pg = || match &pg {
            Some(pg) => catch_up(format!("pg:{pg}|{}", unique_schema("nats_read"))),
            None => Ok(Fields::new()),
        };
        let mut raw = || consume("ack");
        let mut ceiling = || consume("decode");
        let mut samples = rotate(
            self.runs,
            &mut [&mut into_sqlite, &mut into_pg, &mut raw, &mut ceiling],
        )?;
        let ceiling = samples.pop().unwrap_or_default();
        let raw = samples.pop().unwrap_or_default();
        let into_pg = samples.pop().unwrap_or_default();
        let into_sqlite = samples.pop().unwrap_or_default();
        let raw_rate = rates(&raw, "events")?;
        let mut reads = vec![("sqlite", into_sqlite)];
        if pg.is_some() {
            reads.push(("pg", into_pg));
        }
        for (name, ours) in reads {
            for f in &ours {
                if field(f, "accounts")? * 100.0 < field(f, "events")? {
                    return Err(Failure("the read side missed accounts".into()));
                }
            }
            figures.push(
                Figure::new(
                    format!("nats_catchup_{name}_events_per_s_vs_raw_pull"),
                    "event/s",
                    Better::Higher,
                    (rates(&ours, "events")?, raw_rate.clone()),
                )
                .target(0.7),
            );
            figures.push(Figure::new(
                format!("nats_catchup_{name}_cpu_us_per_event_vs_raw_pull"),
                "us/event",
                Better::Lower,
                (cpu_per_event(&ours)?, cpu_per_event(&raw)?),
            ));
        }
        // What the machine allows a read side: the raw pull consumer that
        // also decodes every message, and stores nothing.
        figures.push(Figure::new(
            "nats_catchup_ceiling_pull_and_decode_events_per_s_vs_raw_pull",
            "event/s",
            Better::Higher,
            (rates(&ceiling, "events")?, raw_rate),
        ));
        Ok(figures)
    }

    /// The lag from a command's commit to its visibility on a read side,
    /// at a steady rate, the read model in SQLite: no baseline but the
    /// target. Its two parts: from the commit to the server, and from the
    /// server to the read model.
    fn nats_lag(&self, nats: &TestNats) -> Result<Vec<Figure>, Failure> {
        let (url, pids) = nats_args(nats);
        let mut figures = Vec::new();
        let mut lags = Vec::with_capacity(self.runs);
        for run in 0..self.runs {
            let dir = self.tmp.path().join(format!("nats-lag-{run}"));
            std::fs::create_dir_all(&dir)?;
            let sample = self.sample(
                Side::Ours,
                vec![
                    s("nats-lag"),
                    url.clone(),
                    self.stream(),
                    s(dir.display()),
                    s(LAG_RATE),
                    s(self.sizes.nats_lag_seconds),
                    pids.clone(),
                    s("sqlite"),
                ],
            )?;
            let rate = field(&sample, "commands")? / field(&sample, "seconds")?;
            if rate < LAG_RATE as f64 * 0.9 {
                return Err(Failure(format!(
                    "the lag sample sent {rate:.0} commands/s, not {LAG_RATE}: the machine is too busy"
                )));
            }
            lags.push(sample);
        }
        let target = vec![LAG_TARGET_MS; lags.len()];
        for (name, what) in [
            ("nats_lag_p50_ms_vs_20ms", "p50_ms"),
            ("nats_lag_p99_ms_vs_20ms", "p99_ms"),
            ("nats_lag_commit_to_stream_p99_ms_vs_20ms", "relay_p99_ms"),
            (
                "nats_lag_stream_to_read_model_p99_ms_vs_20ms",
                "read_p99_ms",
            ),
        ] {
            let figure = Figure::new(
                name,
                "ms",
                Better::Lower,
                (values(&lags, what)?, target.clone()),
            );
            figures.push(if what == "p99_ms" {
                figure.target(1.0)
            } else {
                figure
            });
        }
        Ok(figures)
    }
}
