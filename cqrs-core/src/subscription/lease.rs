//! Holding a subscription's lease: taking it, renewing it, standing by.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::LeaseOptions;
use crate::store::{CheckpointStore, Fence, LeaseGrant};

/// What the lease lets this runner do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The first request is under way.
    Unknown,
    /// It holds the lease: commits carry this fence.
    Active(Fence),
    /// Another holder has it, or the store cannot be reached: why.
    Standby(String),
}

/// A name for this runner as a lease holder: the process id, for people
/// reading the lease table, and a random part, so a restarted process is a
/// new holder.
pub(crate) fn holder_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("pid-{}-{}", std::process::id(), &random[..12])
}

/// Takes and renews the lease on one name, publishing the [`Role`].
pub(crate) struct LeaseKeeper {
    pub(crate) store: Arc<dyn CheckpointStore>,
    pub(crate) name: String,
    pub(crate) holder: String,
    pub(crate) options: LeaseOptions,
}

/// A running [`LeaseKeeper`]: its role, and how to stop it.
#[derive(Debug)]
pub(crate) struct Keeping {
    pub(crate) role: watch::Receiver<Role>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Keeping {
    /// Stops renewing and gives the lease up if held, so a standby takes
    /// over at once.
    pub(crate) async fn release(self) {
        self.stop.send_replace(true);
        // A keeper stuck on an unreachable store is not waited for long:
        // the lease then simply runs out.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

impl LeaseKeeper {
    /// Starts keeping the lease on a task of its own.
    pub(crate) fn spawn(self) -> Keeping {
        let (role_tx, role) = watch::channel(Role::Unknown);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(self.run(role_tx, stop_rx));
        Keeping { role, stop, task }
    }

    async fn run(self, role: watch::Sender<Role>, mut stop: watch::Receiver<bool>) {
        let ttl = self.options.ttl_value();
        let mut renewed_at: Option<Instant> = None;
        let mut first = true;
        loop {
            let wait = match (first, &*role.borrow()) {
                (true, _) => Duration::ZERO,
                (false, Role::Active(_)) => self.options.renew_every_value(),
                (false, Role::Unknown | Role::Standby(_)) => self.options.retry_every_value(),
            };
            first = false;
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                () = tokio::time::sleep(wait) => {}
            }
            let asked = Instant::now();
            let answer =
                tokio::time::timeout(ttl, self.store.acquire_lease(&self.name, &self.holder, ttl))
                    .await;
            let next = match answer {
                Ok(Ok(LeaseGrant::Held(fence))) => {
                    renewed_at = Some(asked);
                    Role::Active(fence)
                }
                Ok(Ok(LeaseGrant::Taken { holder, expires_in })) => {
                    renewed_at = None;
                    Role::Standby(format!(
                        "the lease is held by {holder} (for {} ms more)",
                        expires_in.as_millis()
                    ))
                }
                Ok(Err(error)) => self.unsure(&role, renewed_at, &error.to_string()),
                Err(_) => self.unsure(&role, renewed_at, "the lease store did not answer"),
            };
            role.send_if_modified(|now| {
                let changed = *now != next;
                if changed {
                    match &next {
                        Role::Active(fence) => {
                            tracing::info!(name = %self.name, token = fence.token, "lease taken");
                        }
                        Role::Standby(why) => {
                            tracing::info!(name = %self.name, %why, "standing by")
                        }
                        Role::Unknown => {}
                    }
                    *now = next;
                }
                changed
            });
        }
        let held = match &*role.borrow() {
            Role::Active(fence) => Some(fence.clone()),
            _ => None,
        };
        if let Some(fence) = held {
            let _ = tokio::time::timeout(ttl, self.store.release_lease(&fence)).await;
        }
    }

    /// The role after a request that failed: still active while the last
    /// renewal's term runs (by this process's clock, started before that
    /// request was sent), standing by after.
    fn unsure(&self, role: &watch::Sender<Role>, renewed_at: Option<Instant>, why: &str) -> Role {
        let current = role.borrow().clone();
        match (current, renewed_at) {
            (Role::Active(fence), Some(at)) if at.elapsed() < self.options.ttl_value() => {
                tracing::warn!(name = %self.name, %why, "renewing the lease failed; retrying");
                Role::Active(fence)
            }
            _ => Role::Standby(format!("cannot reach the lease store: {why}")),
        }
    }
}

impl LeaseOptions {
    /// How often the holder renews.
    pub(crate) fn renew_every_value(&self) -> Duration {
        self.renew_every
    }
}
