//! Throwaway PostgreSQL servers for tests.
//!
//! [`TestPostgres::start`] runs `initdb` and `pg_ctl` in a fresh temporary
//! directory (as the `postgres` user when the tests run as root, since the
//! server refuses to run as root), listening only on a unix socket in that
//! directory, so nothing clashes with other servers on the machine. The
//! server stops when the value is dropped, also when a test panics; a small
//! watchdog process also stops it if the test process dies without unwinding.
//!
//! When PostgreSQL is not installed, `start` prints a visible `SKIPPED` line
//! and returns `None`, unless `CQRS_REQUIRE_POSTGRES=1` or `CI=true` is set:
//! then it panics (CI never skips a test silently).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The port number names the socket file (`.s.PGSQL.<port>`) in the private
/// socket directory; no TCP port is opened.
const PORT: u16 = 5432;

/// A PostgreSQL server of its own, in a temporary directory.
#[derive(Debug)]
pub struct TestPostgres {
    /// Holds the data directory and the socket; removed on drop.
    dir: tempfile::TempDir,
    bindir: PathBuf,
    /// Run the server binaries through `runuser -u postgres --`.
    as_postgres: bool,
    durable: bool,
    running: Mutex<bool>,
}

impl TestPostgres {
    /// Starts a fast, non-durable server (`fsync=off`,
    /// `synchronous_commit=off`, `full_page_writes=off`): for tests that do
    /// not test durability.
    ///
    /// Returns `None` (after printing `SKIPPED: ..` to stderr) when
    /// PostgreSQL is not installed and `CQRS_REQUIRE_POSTGRES=1` is not set.
    ///
    /// # Panics
    ///
    /// When PostgreSQL is missing and required, or the server fails to start.
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// Starts a server with PostgreSQL's durable defaults (`fsync=on`,
    /// `synchronous_commit=on`), for crash and restart tests.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_durable() -> Option<Self> {
        Self::start_with(true)
    }

    /// One fast server shared by every test of this test binary, started on
    /// first use. Tests sharing it must each use their own schema (see
    /// [`unique_schema`]). It is stopped by its watchdog when the test
    /// process exits.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn shared() -> Option<&'static Self> {
        static SHARED: OnceLock<Option<TestPostgres>> = OnceLock::new();
        SHARED.get_or_init(Self::start).as_ref()
    }

    fn start_with(durable: bool) -> Option<Self> {
        let Some(bindir) = find_bindir() else {
            missing(
                "no PostgreSQL server binaries (pg_config --bindir, /usr/lib/postgresql/*/bin)",
            );
            return None;
        };
        let as_postgres = running_as_root();
        if as_postgres && !user_exists("postgres") {
            missing("the server cannot run as root, and there is no `postgres` user");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("cqrs-pg-")
            .tempdir()
            .expect("cannot create a temporary directory for PostgreSQL");
        if as_postgres {
            run(Command::new("chown").arg("postgres").arg(dir.path()));
        }
        let server = Self {
            dir,
            bindir,
            as_postgres,
            durable,
            running: Mutex::new(false),
        };
        let data = server.data_dir();
        server.run_tool(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                // Syncing the fresh cluster to disk is not what tests test.
                "--no-sync",
            ],
        );
        server.spawn_watchdog();
        server.start_again();
        Some(server)
    }

    /// The connection string (libpq `key=value` form) for database `postgres`.
    pub fn connection_string(&self) -> String {
        format!(
            "host={} port={PORT} user=postgres dbname=postgres",
            self.dir.path().display()
        )
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server again on the same data directory (after
    /// [`stop`](Self::stop) or [`stop_immediate`](Self::stop_immediate)).
    ///
    /// # Panics
    ///
    /// When the server does not start; the panic shows its log.
    pub fn start_again(&self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if *running {
            return;
        }
        let mut options = format!(
            "-c listen_addresses='' -k {} -p {PORT} -c max_connections=300",
            self.dir.path().display()
        );
        if !self.durable {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        let output = self.tool(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        if !output.status.success() {
            panic!(
                "PostgreSQL did not start: {}\n{}\n--- server log ---\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        *running = true;
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`).
    pub fn stop(&self) {
        self.stop_mode("fast");
    }

    /// Stops the server like a crash (`pg_ctl stop -m immediate`): no
    /// shutdown checkpoint, recovery on the next start.
    pub fn stop_immediate(&self) {
        self.stop_mode("immediate");
    }

    fn stop_mode(&self, mode: &str) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if !*running {
            return;
        }
        let data = self.data_dir();
        let output = self.tool(
            "pg_ctl",
            &["-D", path_str(&data), "-m", mode, "-w", "-t", "60", "stop"],
        );
        if !output.status.success() {
            eprintln!(
                "pg_ctl stop -m {mode} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        *running = false;
    }

    /// Runs a server binary, as `postgres` when we are root.
    fn tool(&self, name: &str, args: &[&str]) -> Output {
        let program = self.bindir.join(name);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }

    fn run_tool(&self, name: &str, args: &[&str]) {
        let output = self.tool(name, args);
        assert!(
            output.status.success(),
            "{name} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A detached shell that waits for this process to end, then stops the
    /// server and removes its directory: the cleanup for servers that are
    /// never dropped (statics, a test process killed or aborted).
    fn spawn_watchdog(&self) {
        let pg_ctl = self.bindir.join("pg_ctl");
        let prefix = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 0.5; done; \
             {prefix}'{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            pg_ctl = pg_ctl.display(),
            data = self.data_dir().display(),
            dir = self.dir.path().display(),
        );
        // Not waited for: it outlives this process on purpose.
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A schema name no other caller in this process gets: `<prefix>_<n>`, with
/// `prefix` reduced to what a schema name allows.
pub fn unique_schema(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut name: String = prefix
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '_' }
        })
        .take(40)
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, 't');
    }
    format!("{name}_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Either a visible skip or, when PostgreSQL is required, a failure.
fn missing(why: &str) {
    if crate::required("CQRS_REQUIRE_POSTGRES") {
        panic!("PostgreSQL is required (CQRS_REQUIRE_POSTGRES=1 or CI=true) but not usable: {why}");
    }
    eprintln!(
        "SKIPPED: PostgreSQL not found (set CQRS_REQUIRE_POSTGRES=1 to make this a failure): {why}"
    );
}

fn find_bindir() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_server(&dir) {
            return Some(dir);
        }
    }
    // Debian installs the server binaries off the PATH, one dir per version.
    let mut dirs: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, dir)| dir)
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
