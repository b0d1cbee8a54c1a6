//! Throwaway NATS servers with JetStream for tests: one node, or a
//! three-node cluster on loopback.
//!
//! Each server gets ports of its own on 127.0.0.1 and a data directory in a
//! fresh temporary directory; it is killed when the value is dropped, and a
//! watchdog shell kills it if the test process dies without unwinding.
//!
//! When `nats-server` is not installed, [`TestNats::start`] prints a
//! visible `SKIPPED` line and returns `None`, unless `CQRS_REQUIRE_NATS=1`
//! or `CI=true` is set: then it panics (CI never skips a test silently).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a server may take to come up (a cluster: to elect a leader).
const READY_WITHIN: Duration = Duration::from_secs(30);

/// One `nats-server` process, which can be stopped, killed and started
/// again on the same ports and data.
#[derive(Debug)]
struct Node {
    name: String,
    port: u16,
    monitor: u16,
    cluster: Option<u16>,
    data: PathBuf,
    log: PathBuf,
    child: Mutex<Option<Child>>,
}

impl Node {
    fn args(&self, binary: &Path, cluster: Option<(&str, &[u16])>) -> Command {
        let mut command = Command::new(binary);
        command
            .args(["-a", "127.0.0.1", "-js", "-n", &self.name])
            .args(["-p", &self.port.to_string()])
            .args(["-m", &self.monitor.to_string()])
            .arg("-sd")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log);
        if let (Some(port), Some((name, ports))) = (self.cluster, cluster) {
            let routes: Vec<String> = ports
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            command
                .args(["--cluster_name", name])
                .args(["--cluster", &format!("nats://127.0.0.1:{port}")])
                .args(["--routes", &routes.join(",")]);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    fn is_running(&self) -> bool {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    fn pid(&self) -> Option<u32> {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Child::id)
    }

    /// Sends `signal` and waits for the process to end.
    fn end(&self, signal: &str) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut c) = child.take() {
            let _ = Command::new("kill")
                .args([signal, &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// NATS servers of their own for one test (or one test binary): a single
/// node, or a cluster of three.
#[derive(Debug)]
pub struct TestNats {
    /// Holds the data directories and logs; removed on drop.
    dir: tempfile::TempDir,
    binary: PathBuf,
    cluster_name: Option<String>,
    nodes: Vec<Node>,
}

impl TestNats {
    /// Starts one JetStream server.
    ///
    /// # Panics
    ///
    /// When `nats-server` is missing and required, or it does not start.
    pub fn start() -> Option<Self> {
        Self::start_nodes(1)
    }

    /// Starts a JetStream cluster of three servers, and waits until it has
    /// a meta leader.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn start_cluster() -> Option<Self> {
        Self::start_nodes(3)
    }

    fn start_nodes(count: usize) -> Option<Self> {
        let Some(binary) = find_binary() else {
            let why = "no `nats-server` (apt-get install nats-server)";
            assert!(
                !crate::required("CQRS_REQUIRE_NATS"),
                "NATS is required (CQRS_REQUIRE_NATS=1 or CI=true) but missing: {why}"
            );
            eprintln!("SKIPPED: {why}");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("cqrs-nats-")
            .tempdir()
            .expect("cannot create a temporary directory for NATS");
        let ports = free_ports(if count > 1 { count * 3 } else { 2 });
        let nodes = (0..count)
            .map(|i| Node {
                name: format!("node-{i}"),
                port: ports[i * if count > 1 { 3 } else { 2 }],
                monitor: ports[i * if count > 1 { 3 } else { 2 } + 1],
                cluster: (count > 1).then(|| ports[i * 3 + 2]),
                data: dir.path().join(format!("node-{i}")),
                log: dir.path().join(format!("node-{i}.log")),
                child: Mutex::new(None),
            })
            .collect();
        let nats = Self {
            binary,
            cluster_name: (count > 1).then(|| format!("cqrs-test-{}", std::process::id())),
            nodes,
            dir,
        };
        nats.spawn_watchdog();
        for i in 0..count {
            nats.spawn(i);
        }
        nats.wait_ready();
        Some(nats)
    }

    fn spawn(&self, i: usize) {
        let node = &self.nodes[i];
        let routes: Vec<u16> = self.nodes.iter().filter_map(|n| n.cluster).collect();
        let cluster = self.cluster_name.as_deref().map(|n| (n, routes.as_slice()));
        let child = node
            .args(&self.binary, cluster)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        *node.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
    }

    /// Waits until every running node answers, and (a cluster) JetStream
    /// has a meta leader.
    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_WITHIN;
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            loop {
                let ready = http_get(node.monitor, "/healthz?js-enabled-only=true")
                    .is_some_and(|body| body.contains("ok"))
                    && (self.nodes.len() == 1
                        || http_get(node.monitor, "/jsz")
                            .is_some_and(|body| body.contains("\"leader\"")));
                if ready {
                    break;
                }
                assert!(
                    node.is_running(),
                    "nats-server {} exited:\n{}",
                    node.name,
                    node.log_text()
                );
                assert!(
                    Instant::now() < deadline,
                    "nats-server {} not ready within {READY_WITHIN:?}:\n{}",
                    node.name,
                    node.log_text()
                );
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    }

    /// The client URL of every node, comma-separated (what
    /// `JetStream::connect` takes).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The names of the nodes (`node-0`, ..), as JetStream reports leaders.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Kills node `name` with SIGKILL.
    ///
    /// # Panics
    ///
    /// For a name that is not one of [`node_names`](Self::node_names).
    pub fn kill(&self, name: &str) {
        self.node(name).end("-KILL");
    }

    /// Stops every node (SIGTERM, waiting for each to exit).
    pub fn stop(&self) {
        for node in &self.nodes {
            node.end("-TERM");
        }
    }

    /// Kills every node with SIGKILL.
    pub fn kill_all(&self) {
        for node in &self.nodes {
            node.end("-KILL");
        }
    }

    /// Starts node `name` again on its ports and data.
    ///
    /// # Panics
    ///
    /// When it does not come up.
    pub fn start_node(&self, name: &str) {
        let i = self
            .nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        if !self.nodes[i].is_running() {
            self.spawn(i);
        }
        self.wait_ready();
    }

    /// Starts every stopped node again.
    ///
    /// # Panics
    ///
    /// When they do not come up.
    pub fn start_again(&self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].is_running() {
                self.spawn(i);
            }
        }
        self.wait_ready();
    }

    /// Node `name`'s log, for a failing test's message.
    pub fn log(&self, name: &str) -> String {
        self.node(name).log_text()
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// A detached shell that kills the servers once this process is gone,
    /// for servers never dropped (a static, a test process killed).
    fn spawn_watchdog(&self) {
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 0.5; done; \
             pkill -KILL -f -- '-sd {dir}/' >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.path().display(),
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    /// The process ids of the running nodes.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(Node::pid).collect()
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// `count` ports free on loopback now.
fn free_ports(count: usize) -> Vec<u16> {
    // All held at once, so they differ; released just before the servers
    // bind them.
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("no free port on loopback"))
        .collect();
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .expect("a bound listener has an address")
                .port()
        })
        .collect()
}

/// The body of `GET path` on the monitoring port, `None` when it does not
/// answer.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_owned())
}
