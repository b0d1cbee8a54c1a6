//! The settings of a [`SqliteStore`](super::SqliteStore), and its counters.

use std::time::Duration;

/// How hard SQLite works to keep a committed transaction through a power loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// `synchronous=FULL`: every commit is synced to disk before the append
    /// returns. The default: an acknowledged event is never lost.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the WAL is synced at checkpoints only. Survives a
    /// crash of the process; a power loss may drop the last commits (never
    /// corrupts the file).
    Normal,
}

impl Synchronous {
    pub(super) fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// Settings of a [`SqliteStore`](super::SqliteStore).
///
/// # Examples
///
/// ```
/// use cqrs_core::store::{SqliteOptions, Synchronous};
/// let options = SqliteOptions::new().synchronous(Synchronous::Normal).max_group(64);
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    pub(super) synchronous: Synchronous,
    pub(super) max_group: usize,
    pub(super) idle_readers: usize,
    pub(super) poll_interval: Duration,
}

impl SqliteOptions {
    /// The defaults: `synchronous=FULL`, groups of up to 256 writes, up to 4
    /// idle read connections kept, other processes' commits noticed within
    /// 50 ms.
    pub fn new() -> Self {
        Self {
            synchronous: Synchronous::Full,
            max_group: 256,
            idle_readers: 4,
            poll_interval: Duration::from_millis(50),
        }
    }

    /// How often the file is checked for commits by other processes (see
    /// [`SqliteStore`](super::SqliteStore#other-processes)).
    #[must_use]
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every.max(Duration::from_millis(1));
        self
    }

    /// Sets the durability level (see [`Synchronous`]).
    #[must_use]
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// The most writes committed in one transaction (at least 1; 1 turns
    /// group commit off).
    #[must_use]
    pub fn max_group(mut self, max_group: usize) -> Self {
        self.max_group = max_group.max(1);
        self
    }

    /// How many idle read connections are kept open for reuse.
    #[must_use]
    pub fn idle_readers(mut self, idle_readers: usize) -> Self {
        self.idle_readers = idle_readers;
        self
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Counters of the writer thread, to see group commit at work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SqliteStats {
    /// Write transactions committed.
    pub transactions: u64,
    /// Writes (appends, snapshots, checkpoints, read-model commits and
    /// resets) committed by them.
    pub writes: u64,
}
