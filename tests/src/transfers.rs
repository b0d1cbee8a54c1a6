//! Waiting for the bank's `transfer` process manager.

use std::time::Duration;

use cqrs_core::Engine;
use cqrs_core::process::{InstanceStatus, ProcessInstance};

/// Transfer `id` once `ready` says so (at most 10 s).
///
/// # Panics
///
/// When it does not get there in time, with what it is at.
pub async fn instance_when(
    app: &Engine,
    id: &str,
    ready: impl Fn(&ProcessInstance) -> bool,
) -> ProcessInstance {
    for _ in 0..2000 {
        if let Some(instance) = app.process_instance("transfer", id).await.unwrap()
            && ready(&instance)
        {
            return instance;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "transfer {id} did not get there in 10 s: {:?}",
        app.process_instance("transfer", id).await
    );
}

/// Transfer `id` once it has ended.
pub async fn ended(app: &Engine, id: &str) -> ProcessInstance {
    instance_when(app, id, |i| i.status != InstanceStatus::Running).await
}
