//! Runs samples in child processes, alternating the sides, and keeps the
//! results of every figure for the table and the CSV.
//!
//! Every sample is a fresh process: ours is this binary again (`__run ..`),
//! theirs is `cqrs-bench-peers` (built from `benches/peers` on first use).
//! Both print `RESULT key=value ..` on stderr; stdout goes to `/dev/null`
//! (cqrs-es's `MemStore` prints two lines there per command). A process per
//! sample also gives each its own peak-memory figure and allocator.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What went wrong, said for a person.
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

/// The fields of one `RESULT` line.
pub(crate) type Fields = HashMap<String, f64>;

/// Reads a field a child must have reported.
pub(crate) fn field(fields: &Fields, key: &str) -> Result<f64, Failure> {
    fields
        .get(key)
        .copied()
        .ok_or_else(|| Failure(format!("the sample did not report `{key}`")))
}

/// Which program runs a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// cqrs-core, or a raw database baseline: this binary.
    Ours,
    /// cqrs-es / postgres-es: the peer binary.
    Peer,
}

/// Starts child processes.
#[derive(Debug)]
pub(crate) struct Runner {
    exe: PathBuf,
    peers: Option<PathBuf>,
    pub(crate) verbose: bool,
}

impl Runner {
    pub(crate) fn new(verbose: bool) -> Result<Self, Failure> {
        Ok(Self {
            exe: std::env::current_exe()?,
            peers: None,
            verbose,
        })
    }

    /// Builds `benches/peers` (release) once, into `target/peers`.
    pub(crate) fn build_peers(&mut self) -> Result<(), Failure> {
        if self.peers.is_some() {
            return Ok(());
        }
        let benches = Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest = benches.join("peers").join("Cargo.toml");
        let target = benches
            .parent()
            .unwrap_or(benches)
            .join("target")
            .join("peers");
        eprintln!("building the cqrs-es side (benches/peers, release) ...");
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| Failure(format!("cannot run cargo to build the peers: {e}")))?;
        if !status.success() {
            return Err(Failure(format!("building {} failed", manifest.display())));
        }
        self.peers = Some(target.join("release").join("cqrs-bench-peers"));
        Ok(())
    }

    /// Runs one sample and returns what it reported.
    pub(crate) fn sample(&self, side: Side, args: &[String]) -> Result<Fields, Failure> {
        let mut command = match side {
            Side::Ours => {
                let mut c = Command::new(&self.exe);
                c.arg("__run");
                c
            }
            Side::Peer => Command::new(
                self.peers
                    .as_ref()
                    .ok_or_else(|| Failure("the peer binary is not built".into()))?,
            ),
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if self.verbose {
            eprintln!("  {side:?}: {}", args.join(" "));
        }
        let output = command
            .output()
            .map_err(|e| Failure(format!("cannot start a sample ({side:?}): {e}")))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let result = stderr.lines().rev().find_map(|l| l.strip_prefix("RESULT"));
        if self.verbose
            && let Some(line) = result
        {
            eprintln!("   ->{line}");
        }
        match result {
            Some(line) if output.status.success() => Ok(parse(line)),
            _ => Err(Failure(format!(
                "the sample `{}` ({side:?}) failed:\n{stderr}",
                args.join(" ")
            ))),
        }
    }
}

fn parse(line: &str) -> Fields {
    line.split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// The median (the mean of the middle two for an even count).
pub(crate) fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}
