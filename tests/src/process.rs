//! Child processes of the fault tests: started with their stdout piped,
//! read line by line on a thread of their own, signalled, and killed when
//! dropped.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running child and the lines it printed.
#[derive(Debug)]
pub struct Child {
    /// How failures name it.
    pub name: String,
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Child {
    /// Starts `command` with stdout piped (stdin closed, stderr inherited).
    ///
    /// # Panics
    ///
    /// When it cannot be started.
    pub fn spawn(name: impl Into<String>, mut command: Command) -> Self {
        let name = name.into();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            name,
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line starting with `prefix` (printed since the last
    /// call, or before); returns the line.
    ///
    /// # Panics
    ///
    /// When none comes within `within`; the message shows the last lines.
    pub fn wait_for(&mut self, prefix: &str, within: Duration) -> String {
        self.wait_until(prefix, within, |_| true)
    }

    /// Waits for a line starting with `prefix` whose rest satisfies
    /// `accept`; returns the line.
    ///
    /// # Panics
    ///
    /// As [`wait_for`](Self::wait_for).
    pub fn wait_until(
        &mut self,
        prefix: &str,
        within: Duration,
        mut accept: impl FnMut(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + within;
        let mut i = 0;
        loop {
            while i < self.seen.len() {
                if let Some(rest) = self.seen[i].strip_prefix(prefix)
                    && accept(rest)
                {
                    return self.seen.remove(i);
                }
                i += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "{} did not print `{prefix}..` within {within:?}; it printed last: {:?}",
                    self.name,
                    self.seen.iter().rev().take(10).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Every line printed so far and not yet taken, and drops them.
    pub fn drain(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen)
    }

    /// Drops what it printed so far (the next `wait_for` sees only what
    /// comes after).
    pub fn forget(&mut self) {
        self.drain();
    }

    /// Sends `signal` (`KILL`, `STOP`, `CONT`, ..).
    ///
    /// # Panics
    ///
    /// When `kill` fails.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.name);
    }

    /// SIGKILL, and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for it to exit by itself, at most `within`; `None` if it did
    /// not.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}
