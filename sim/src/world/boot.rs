//! Booting one node: its clock, its database on its simulated disk, the node loop with the
//! recorder as observer, and joining the run's context. The same closure boots a node again
//! after a crash, from what its disk kept.

use super::cluster::Shared;
use crate::disk::SimDisk;
use crate::record::{NodeObserver, PendingTracker};
use rhizome_core::{Keypair, Timestamp};
use rhizome_node::{start, Clock, NodeHandle, NodeParts};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Unix time the simulated clocks start at (HLCs look like real ones).
pub(super) const EPOCH_MS: u64 = 1_700_000_000_000;

/// Node time, both clocks from virtual time: monotonic is simulated time since the start (on
/// the same epoch as the wall clock, so the two agree until a skew); the wall clock adds the
/// node's skew, which therefore moves its HLC and drift checks but never its timers.
struct SimClock {
    start: tokio::time::Instant,
    skew_ms: Arc<AtomicI64>,
}

impl SimClock {
    fn elapsed_ms(&self) -> u64 {
        tokio::time::Instant::now().duration_since(self.start).as_millis() as u64
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(EPOCH_MS + self.elapsed_ms())
    }

    fn wall_ms(&self) -> u64 {
        ((EPOCH_MS + self.elapsed_ms()) as i64 + self.skew_ms.load(Ordering::Relaxed)).max(0) as u64
    }
}

/// What a node keeps across its boots.
pub(super) struct BootParts {
    pub(super) index: usize,
    pub(super) keypair: Keypair,
    pub(super) disk: SimDisk,
    pub(super) handle: Arc<Mutex<Option<NodeHandle>>>,
    pub(super) skew_ms: Arc<AtomicI64>,
    pub(super) boots: Arc<AtomicI64>,
    /// Whether the node joins the context with its genesis when it holds none; an invited
    /// node joins later, by the invitation the admin issues when it adds it.
    pub(super) joins_with_genesis: bool,
}

/// The madsim init closure of a node: runs on its first boot and on every restart.
pub(super) fn boot_node(
    shared: &Shared,
    parts: BootParts,
) -> impl Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static {
    let shared = shared.clone();
    let BootParts { index, keypair: slot_keypair, disk, handle: slot_handle, skew_ms: skew, boots, joins_with_genesis } =
        parts;
    move || {
        let shared = shared.clone();
        let keypair = slot_keypair.clone();
        let disk = disk.clone();
        let slot_handle = slot_handle.clone();
        let skew = skew.clone();
        let boot = boots.fetch_add(1, Ordering::Relaxed) as u64;
        Box::pin(async move {
            let transport = shared.net.attach(index);
            let db = match redb::Database::builder().create_with_backend(disk.clone()) {
                Ok(db) => db,
                Err(error) => {
                    shared.note_failure(format!("n{index}: opening its database after boot {boot}: {error}"));
                    return;
                }
            };
            let parts = NodeParts {
                config: shared.config.clone(),
                keypair,
                rng_seed: shared.seed ^ ((index as u64) << 32) ^ boot,
                transport,
                clock: Arc::new(SimClock { start: shared.start, skew_ms: skew }),
                db,
                wasm: Some(shared.host.clone()),
                observer: Some(Box::new(NodeObserver {
                    index,
                    recorder: shared.recorder.clone(),
                    start: shared.start,
                    pending: PendingTracker::new(shared.config.core.limits.max_pending_deltas),
                })),
                // Commits run on the node's own task: no threads in a simulated world.
                committer: None,
            };
            let (handle, task) = match start(parts) {
                Ok(started) => started,
                Err(error) => {
                    shared.note_failure(format!("n{index}: restart failed: {error}"));
                    return;
                }
            };
            let running = tokio::spawn(task.run());
            if let Ok(app) = handle.install_app(shared.module.as_ref().clone()).await {
                let joined = handle.status().await.is_ok_and(|status| !status.contexts.is_empty());
                if !joined && joins_with_genesis {
                    let join = rhizome_node::JoinWith {
                        bootstrap: Vec::new(),
                        genesis: Some(shared.genesis.clone()),
                        keys: Vec::new(),
                    };
                    let _ = handle.join_context(shared.context, app, join).await;
                }
            }
            *slot_handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
            if let Ok(Err(error)) = running.await {
                shared.note_failure(format!("n{index}: node stopped: {error}"));
            }
        })
    }
}
