//! The workload: Poisson arrivals of calls on every writing node, each acknowledged write
//! recorded so the checks can look for it on every node.

use crate::network::draw;
use crate::record::{Ack, SharedRecorder};
use crate::scenario::{App, KeyDistribution, Scenario};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rhizome_core::ContextId;
use rhizome_node::NodeHandle;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The running workload: its acknowledged writes and the flag that stops it.
pub(super) struct Workload {
    acks: Arc<Mutex<Vec<Ack>>>,
    stop: Arc<AtomicBool>,
}

/// What every writer task needs.
#[derive(Clone)]
struct Writer {
    context: ContextId,
    acks: Arc<Mutex<Vec<Ack>>>,
    stop: Arc<AtomicBool>,
    start: tokio::time::Instant,
    recorder: SharedRecorder,
    rate: f64,
    app: App,
    hot_keys: bool,
    keys: u64,
    burst: usize,
}

impl Workload {
    /// Spawns one writer task per writing node; `handles` are where each node's handle is
    /// (a writer skips arrivals while its node is down).
    pub(super) fn spawn(
        scenario: &Scenario,
        seed: u64,
        handles: &[Arc<Mutex<Option<NodeHandle>>>],
        context: ContextId,
        start: tokio::time::Instant,
        recorder: &SharedRecorder,
    ) -> Self {
        let workload = Self { acks: Arc::default(), stop: Arc::new(AtomicBool::new(false)) };
        let rate = scenario.workload.calls_per_node_per_s;
        if rate <= 0.0 {
            return workload;
        }
        let writers: Vec<usize> = if scenario.workload.writers.is_empty() {
            (0..scenario.total_nodes()).collect()
        } else {
            scenario.workload.writers.clone()
        };
        let writer = Writer {
            context,
            acks: workload.acks.clone(),
            stop: workload.stop.clone(),
            start,
            recorder: recorder.clone(),
            rate,
            app: scenario.workload.app,
            hot_keys: scenario.workload.key_distribution == KeyDistribution::Hot,
            keys: scenario.workload.keys,
            burst: scenario.workload.calls_per_arrival,
        };
        for node in writers {
            let rng = ChaCha8Rng::seed_from_u64(seed ^ 0x776f_726b ^ ((node as u64) << 20));
            tokio::spawn(writer.clone().write(node, handles[node].clone(), rng));
        }
        workload
    }

    /// Stops every writer at its next arrival.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the writers were stopped.
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The writes acknowledged so far.
    pub(super) fn acks(&self) -> Vec<Ack> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Writer {
    /// One node's writes until the workload stops.
    async fn write(self, node: usize, handle_slot: Arc<Mutex<Option<NodeHandle>>>, mut rng: ChaCha8Rng) {
        let mut counter = 0u64;
        loop {
            // Poisson arrivals.
            let gap = -(1.0 - draw(&mut rng)).ln() / self.rate;
            tokio::time::sleep(Duration::from_secs_f64(gap)).await;
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let Some(handle) = handle_slot.lock().unwrap_or_else(|p| p.into_inner()).clone() else { continue };
            let mut calls = Vec::with_capacity(self.burst);
            for _ in 0..self.burst {
                counter += 1;
                calls.push(self.call(node, counter, &mut rng));
            }
            if self.burst == 1 {
                let (method, input) = calls.pop().expect("one call");
                let reply = handle.call(self.context, method, input).await;
                self.record_ack(node, method, reply);
                continue;
            }
            // Spawned together, so they are queued at the node together.
            let context = self.context;
            let spawned: Vec<_> = calls
                .into_iter()
                .map(|(method, input)| {
                    let handle = handle.clone();
                    tokio::spawn(async move { (method, handle.call(context, method, input).await) })
                })
                .collect();
            for call in spawned {
                if let Ok((method, reply)) = call.await {
                    self.record_ack(node, method, reply);
                }
            }
        }
    }

    /// The `counter`th call of `node`: its method and encoded input. The key is drawn for
    /// every app, so the draws do not depend on the app.
    fn call(&self, node: usize, counter: u64, rng: &mut ChaCha8Rng) -> (&'static str, Vec<u8>) {
        let key_space = if self.hot_keys && draw(rng) < 0.9 { (self.keys / 10).max(1) } else { self.keys };
        let key = rng.next_u64() % key_space;
        match self.app {
            App::Todo => ("add", borsh::to_vec(&format!("n{node} task {counter}")).expect("encode")),
            App::KvStore => ("set", borsh::to_vec(&(format!("k{key}"), format!("n{node}-{counter}"))).expect("encode")),
        }
    }

    /// Records an acknowledged write: it must be on every node by the end.
    fn record_ack(&self, node: usize, method: &str, reply: Result<rhizome_node::CallReply, rhizome_node::ApiError>) {
        if let Ok(rhizome_node::CallReply { delta: Some(delta), .. }) = reply {
            self.acks.lock().unwrap_or_else(|p| p.into_inner()).push(Ack { node, delta });
            self.recorder.trace_only(self.start.elapsed(), format!("n{node} call {method} acknowledged as {delta}"));
        }
    }
}
