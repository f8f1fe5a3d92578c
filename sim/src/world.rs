//! One simulated run: builds the madsim world from a scenario and a seed, runs the workload
//! and the fault schedule, then the liveness phase, and checks the invariants.

use crate::checks;
use crate::disk::{SimDisk, TearMode};
use crate::figures::CutWindows;
use crate::network::{draw, Net};
use crate::outcome::RunOutcome;
use crate::record::{Ack, NodeObserver, Sample, SharedRecorder};
use crate::scenario::{Fault, Groups, Scenario};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rhizome_core::{AuthorKey, ContextId, DeltaId, Keypair, RootHash, Timestamp};
use rhizome_node::{start, Clock, ContextBackend, NodeConfig, NodeHandle, NodeParts};
use rhizome_runtime::{AppId, EngineOptions, WasmHost};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What agreement compares: root, heads and handler jobs left.
type Fingerprint = (RootHash, Vec<DeltaId>, usize);

/// Unix time the simulated clocks start at (HLCs look like real ones).
const EPOCH_MS: u64 = 1_700_000_000_000;
/// How often the world samples every node during the run, and during the liveness phase.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
const LIVENESS_POLL_EVERY: Duration = Duration::from_millis(50);

/// Node time: simulated time since the start, plus the node's skew.
struct SimClock {
    start: tokio::time::Instant,
    skew_ms: Arc<AtomicI64>,
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        let elapsed = tokio::time::Instant::now().duration_since(self.start).as_millis() as i64;
        let ms = (EPOCH_MS as i64 + elapsed + self.skew_ms.load(Ordering::Relaxed)).max(0) as u64;
        Timestamp::from_millis(ms)
    }
}

/// One node's place in the world; it outlives the node's crashes.
struct Slot {
    keypair: Keypair,
    disk: SimDisk,
    handle: Arc<Mutex<Option<NodeHandle>>>,
    skew_ms: Arc<AtomicI64>,
    id: Option<madsim::task::NodeId>,
    up: bool,
    paused: bool,
    boots: Arc<AtomicI64>,
}

/// Everything the node tasks share.
#[derive(Clone)]
struct Shared {
    net: Net,
    recorder: SharedRecorder,
    host: WasmHost<ContextBackend>,
    module: Arc<Vec<u8>>,
    context: ContextId,
    members: Vec<AuthorKey>,
    config: NodeConfig,
    start: tokio::time::Instant,
    seed: u64,
    storage_failures: Arc<Mutex<Vec<String>>>,
}

impl Shared {
    /// Records a node that could not open its database, start, or keep running.
    fn note_failure(&self, failure: String) {
        self.storage_failures.lock().unwrap_or_else(|p| p.into_inner()).push(failure);
    }
}

fn keypair(seed: u64, index: usize) -> Keypair {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"rhizome-sim/node-key");
    hasher.update(&seed.to_le_bytes());
    hasher.update(&(index as u64).to_le_bytes());
    Keypair::from_secret_bytes(*hasher.finalize().as_bytes())
}

fn node_config(scenario: &Scenario) -> NodeConfig {
    let mut config =
        NodeConfig { request_timeout_ms: scenario.node.request_timeout_ms.unwrap_or(5_000), ..NodeConfig::default() };
    if let Some(threshold) = scenario.node.snapshot_gap_threshold_deltas {
        config.core.snapshot_gap_threshold_deltas = threshold as u64;
    }
    if let Some(interval) = scenario.node.heartbeat_interval_ms {
        config.core.heartbeat_interval_ms = interval;
    }
    config.core.limits.max_members_per_context = config.core.limits.max_members_per_context.max(scenario.total_nodes());
    // One memo for the whole run: each delta's signature is checked once, not once per node.
    config.signature_memo = Some(rhizome_core::SignatureMemo::default());
    config
}

/// The wasm module for an app name.
pub(crate) fn app_module(app: &str) -> Result<Vec<u8>, String> {
    let file = match app {
        "todo" => "todo.wasm",
        _ => "kv_store.wasm",
    };
    let dir = std::env::var("RHIZOME_WASM_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm"));
    let path = dir.join(file);
    std::fs::read(&path)
        .map_err(|error| format!("{}: {error} (build the apps with `cargo xtask apps`)", path.display()))
}

fn boot_node(
    shared: &Shared,
    index: usize,
    slot_keypair: Keypair,
    disk: SimDisk,
    slot_handle: Arc<Mutex<Option<NodeHandle>>>,
    skew: Arc<AtomicI64>,
    boots: Arc<AtomicI64>,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync + 'static {
    let shared = shared.clone();
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
                if !joined {
                    let _ = handle.join_context(shared.context, app, shared.members.clone()).await;
                }
            }
            *slot_handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
            if let Ok(Err(error)) = running.await {
                shared.note_failure(format!("n{index}: node stopped: {error}"));
            }
        })
    }
}

/// Runs a scenario with a seed; must be called inside a madsim runtime.
pub(crate) async fn run(scenario: Scenario, seed: u64, trace: bool) -> RunOutcome {
    let handle = madsim::runtime::Handle::current();
    let start = tokio::time::Instant::now();
    let total = scenario.total_nodes();
    let recorder = SharedRecorder::new(trace);
    let net_node = handle.create_node().name("network").build();
    let keypairs: Vec<Keypair> = (0..total).map(|index| keypair(seed, index)).collect();
    let peers: Vec<_> = keypairs.iter().map(Keypair::peer_id).collect();
    let mut overrides = BTreeMap::new();
    for link in &scenario.links {
        let profile = scenario.profile(&link.profile);
        for from in &link.from {
            for to in &link.to {
                overrides.insert((*from, *to), profile);
                if !link.one_way {
                    overrides.insert((*to, *from), profile);
                }
            }
        }
    }
    let default_profile = scenario.profile("default");
    let net = Net::new(
        &peers,
        default_profile,
        overrides,
        scenario.mesh.degree,
        scenario.mesh.seen_cache_ids,
        seed,
        net_node,
    );
    let module = match app_module(&scenario.workload.app) {
        Ok(module) => module,
        Err(error) => return RunOutcome::setup_failure("setup", error),
    };
    let host = match WasmHost::new(&EngineOptions::default()) {
        Ok(host) => host,
        Err(error) => return RunOutcome::setup_failure("setup", error.to_string()),
    };
    let app = AppId(*blake3::hash(&module).as_bytes());
    let members: Vec<AuthorKey> = keypairs.iter().map(Keypair::author_key).collect();
    let context = rhizome_node::derive_context_id(&app, &members[0], &[0; 16]);
    let shared = Shared {
        net: net.clone(),
        recorder: recorder.clone(),
        host,
        module: Arc::new(module),
        context,
        members,
        config: node_config(&scenario),
        start,
        seed,
        storage_failures: Arc::default(),
    };
    let mut slots: Vec<Slot> = keypairs
        .iter()
        .map(|keypair| Slot {
            keypair: keypair.clone(),
            disk: SimDisk::new(),
            handle: Arc::default(),
            skew_ms: Arc::default(),
            id: None,
            up: false,
            paused: false,
            boots: Arc::default(),
        })
        .collect();
    let mut world_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0077_6f72_6c64);
    for index in 0..scenario.nodes {
        launch(&handle, &shared, &mut slots, index);
    }
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let stop_writes = Arc::new(AtomicBool::new(false));
    let handles: Vec<Arc<Mutex<Option<NodeHandle>>>> = slots.iter().map(|slot| slot.handle.clone()).collect();
    spawn_workload(&scenario, seed, &handles, context, acks.clone(), stop_writes.clone(), start, &recorder);

    let mut faults = scenario.faults.clone();
    faults.sort_by(|a, b| a.at_s().total_cmp(&b.at_s()));
    let mut applied_faults = Vec::new();
    let mut next_sample = Duration::ZERO;
    let mut added = scenario.nodes;
    let mut cuts = CutWindows::default();
    let mut fault_iter = faults.into_iter().peekable();
    let duration = Duration::from_secs_f64(scenario.duration_s);
    let writes_stop = Duration::from_secs_f64(scenario.writes_stop_s());
    loop {
        let now = start.elapsed();
        let next_fault = fault_iter.peek().map(|fault| Duration::from_secs_f64(fault.at_s()));
        let mut wake = next_sample.min(duration);
        if let Some(at) = next_fault {
            wake = wake.min(at);
        }
        if !stop_writes.load(Ordering::Relaxed) {
            wake = wake.min(writes_stop);
        }
        if wake > now {
            tokio::time::sleep(wake - now).await;
        }
        let now = start.elapsed();
        if now >= writes_stop {
            stop_writes.store(true, Ordering::Relaxed);
        }
        while fault_iter.peek().is_some_and(|fault| Duration::from_secs_f64(fault.at_s()) <= now) {
            let fault = fault_iter.next().expect("peeked");
            recorder.note(now, format!("fault: {}", fault.label()));
            applied_faults.push((now.as_secs_f64(), fault.label()));
            apply_fault(&handle, &shared, &mut slots, &fault, &mut added, &mut world_rng);
            cuts.observe(now, net.is_cut());
        }
        if now >= next_sample {
            sample(&slots, context, start, &recorder).await;
            next_sample = now + SAMPLE_EVERY;
        }
        if now >= duration && fault_iter.peek().is_none() {
            break;
        }
    }
    stop_writes.store(true, Ordering::Relaxed);
    // Liveness: every fault is lifted, then live nodes must agree within the bound.
    let liveness_start = start.elapsed();
    recorder.note(liveness_start, "liveness phase: faults lifted".to_owned());
    applied_faults.push((liveness_start.as_secs_f64(), "liveness".to_owned()));
    cuts.observe(liveness_start, false);
    net.heal();
    net.set_loss(default_profile.loss);
    for (index, slot) in slots.iter_mut().enumerate() {
        net.set_clogged(index, false);
        if slot.paused {
            if let Some(id) = slot.id {
                handle.resume(id);
            }
            slot.paused = false;
        }
    }
    let bound = Duration::from_secs_f64(scenario.liveness_s);
    let mut history: BTreeMap<usize, (Option<Fingerprint>, Duration)> = BTreeMap::new();
    let mut converged_at = None;
    loop {
        let now = start.elapsed();
        let states = fingerprints(&slots, context).await;
        for (index, state) in &states {
            let entry = history.entry(*index).or_insert((None, now));
            if entry.0.as_ref() != Some(state) {
                *entry = (Some(state.clone()), now);
            }
        }
        let all_up = slots.iter().filter(|slot| slot.up).count();
        let agree = states.len() == all_up
            && states.values().all(|state| Some(state) == states.values().next())
            && states.values().all(|state| state.2 == 0);
        if agree {
            converged_at = Some(now - liveness_start);
            break;
        }
        if now - liveness_start >= bound {
            break;
        }
        sample(&slots, context, start, &recorder).await;
        tokio::time::sleep(LIVENESS_POLL_EVERY).await;
    }
    sample(&slots, context, start, &recorder).await;
    let per_node_convergence: Vec<Duration> =
        history.values().map(|(_, changed_at)| changed_at.saturating_sub(liveness_start)).collect();
    let acks = acks.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let storage_failures = shared.storage_failures.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let live: Vec<(usize, NodeHandle)> = slots
        .iter()
        .enumerate()
        .filter(|(_, slot)| slot.up)
        .filter_map(|(index, slot)| {
            slot.handle.lock().unwrap_or_else(|p| p.into_inner()).clone().map(|handle| (index, handle))
        })
        .collect();
    let check_results = checks::evaluate(checks::Inputs {
        scenario: &scenario,
        context,
        live: &live,
        acks: &acks,
        converged_at,
        storage_failures: &storage_failures,
        recorder: &recorder,
        config: &shared.config,
    })
    .await;
    let wall_end = start.elapsed();
    let network = net.stats();
    let figures = crate::figures::figures(crate::figures::RunTotals {
        recorder: &recorder,
        cuts: &cuts,
        network: &network,
        per_node_convergence: &per_node_convergence,
        converged_at,
        writes: acks.len(),
        simulated: wall_end,
        live_nodes: live.len(),
    });
    let (samples, trace_lines) = {
        let mut recorder = recorder.lock();
        (std::mem::take(&mut recorder.samples), recorder.trace_lines.take().unwrap_or_default())
    };
    RunOutcome {
        checks: check_results,
        figures,
        samples,
        faults: applied_faults,
        trace_hash: recorder.trace_hash(),
        trace_lines,
    }
}

fn launch(handle: &madsim::runtime::Handle, shared: &Shared, slots: &mut [Slot], index: usize) {
    let slot = &mut slots[index];
    let init = boot_node(
        shared,
        index,
        slot.keypair.clone(),
        slot.disk.clone(),
        slot.handle.clone(),
        slot.skew_ms.clone(),
        slot.boots.clone(),
    );
    let node = handle
        .create_node()
        .name(format!("n{index}"))
        .ip(std::net::IpAddr::from([10, 0, (index / 256) as u8, (index % 256) as u8]))
        .init(init)
        .build();
    slot.id = Some(node.id());
    slot.up = true;
}

fn resolve_groups(groups: &Groups, live_nodes: usize) -> Vec<Vec<usize>> {
    match groups {
        Groups::Count(count) => {
            let count = (*count).max(1);
            let size = live_nodes.div_ceil(count);
            (0..live_nodes).collect::<Vec<_>>().chunks(size.max(1)).map(<[usize]>::to_vec).collect()
        }
        Groups::Lists(lists) => {
            let mut lists = lists.clone();
            let named: std::collections::BTreeSet<usize> = lists.iter().flatten().copied().collect();
            let rest: Vec<usize> = (0..live_nodes).filter(|node| !named.contains(node)).collect();
            if !rest.is_empty() {
                lists.push(rest);
            }
            lists
        }
    }
}

fn apply_fault(
    handle: &madsim::runtime::Handle,
    shared: &Shared,
    slots: &mut [Slot],
    fault: &Fault,
    added: &mut usize,
    rng: &mut ChaCha8Rng,
) {
    match fault {
        Fault::Partition { groups, .. } => shared.net.partition(&resolve_groups(groups, slots.len())),
        Fault::PartitionOneWay { from, to, .. } => shared.net.partition_one_way(from, to),
        Fault::Heal { .. } => shared.net.heal(),
        Fault::Clog { node, .. } => shared.net.set_clogged(*node, true),
        Fault::Unclog { node, .. } => shared.net.set_clogged(*node, false),
        Fault::Crash { node, tear, .. } => {
            let slot = &mut slots[*node];
            let Some(id) = slot.id.filter(|_| slot.up) else { return };
            slot.disk.kill_io();
            handle.kill(id);
            shared.net.detach(*node);
            let mode = if *tear {
                TearMode::TearLastWrite { keep_fraction_per_mille: (rng.next_u64() % 1_000) as u16 }
            } else {
                TearMode::None
            };
            slot.disk.crash(mode);
            *slot.handle.lock().unwrap_or_else(|p| p.into_inner()) = None;
            slot.up = false;
            slot.paused = false;
        }
        Fault::Restart { node, .. } => {
            let slot = &mut slots[*node];
            if slot.up {
                return;
            }
            if let Some(id) = slot.id {
                handle.restart(id);
                slot.up = true;
            }
        }
        Fault::Pause { node, .. } => {
            let slot = &mut slots[*node];
            if let Some(id) = slot.id.filter(|_| slot.up && !slot.paused) {
                handle.pause(id);
                slot.paused = true;
            }
        }
        Fault::Resume { node, .. } => {
            let slot = &mut slots[*node];
            if let Some(id) = slot.id.filter(|_| slot.paused) {
                handle.resume(id);
                slot.paused = false;
            }
        }
        Fault::AddNode { .. } => {
            if *added < slots.len() {
                launch(handle, shared, slots, *added);
                *added += 1;
            }
        }
        Fault::SetLoss { loss, .. } => shared.net.set_loss(*loss),
        Fault::Skew { node, ms, .. } => slots[*node].skew_ms.store(*ms, Ordering::Relaxed),
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn_workload(
    scenario: &Scenario,
    seed: u64,
    handles: &[Arc<Mutex<Option<NodeHandle>>>],
    context: ContextId,
    acks: Arc<Mutex<Vec<Ack>>>,
    stop: Arc<AtomicBool>,
    start: tokio::time::Instant,
    recorder: &SharedRecorder,
) {
    let rate = scenario.workload.calls_per_node_per_s;
    if rate <= 0.0 {
        return;
    }
    let writers: Vec<usize> = if scenario.workload.writers.is_empty() {
        (0..scenario.total_nodes()).collect()
    } else {
        scenario.workload.writers.clone()
    };
    let todo = scenario.workload.app == "todo";
    let keys = scenario.workload.keys;
    let hot = scenario.workload.key_distribution == "hot";
    let burst = scenario.workload.calls_per_arrival;
    for node in writers {
        let handle_slot = handles[node].clone();
        let acks = acks.clone();
        let stop = stop.clone();
        let recorder = recorder.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x776f_726b ^ ((node as u64) << 20));
        tokio::spawn(async move {
            let mut counter = 0u64;
            loop {
                // Poisson arrivals.
                let gap = -(1.0 - draw(&mut rng)).ln() / rate;
                tokio::time::sleep(Duration::from_secs_f64(gap)).await;
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Some(handle) = handle_slot.lock().unwrap_or_else(|p| p.into_inner()).clone() else { continue };
                let mut calls = Vec::with_capacity(burst);
                for _ in 0..burst {
                    counter += 1;
                    let key_space = if hot && draw(&mut rng) < 0.9 { (keys / 10).max(1) } else { keys };
                    let key = rng.next_u64() % key_space;
                    let (method, input) = if todo {
                        ("add", borsh::to_vec(&format!("n{node} task {counter}")).expect("encode"))
                    } else {
                        ("set", borsh::to_vec(&(format!("k{key}"), format!("n{node}-{counter}"))).expect("encode"))
                    };
                    calls.push((method, input));
                }
                if burst == 1 {
                    let (method, input) = calls.pop().expect("one call");
                    let reply = handle.call(context, method, input).await;
                    record_ack(&acks, &recorder, start, node, method, reply);
                    continue;
                }
                // Spawned together, so they are queued at the node together.
                let spawned: Vec<_> = calls
                    .into_iter()
                    .map(|(method, input)| {
                        let handle = handle.clone();
                        tokio::spawn(async move { (method, handle.call(context, method, input).await) })
                    })
                    .collect();
                for call in spawned {
                    if let Ok((method, reply)) = call.await {
                        record_ack(&acks, &recorder, start, node, method, reply);
                    }
                }
            }
        });
    }
}

/// Records an acknowledged write: it must be on every node by the end.
fn record_ack(
    acks: &Mutex<Vec<Ack>>,
    recorder: &SharedRecorder,
    start: tokio::time::Instant,
    node: usize,
    method: &str,
    reply: Result<rhizome_node::CallReply, rhizome_node::ApiError>,
) {
    if let Ok(rhizome_node::CallReply { delta: Some(delta), .. }) = reply {
        acks.lock().unwrap_or_else(|p| p.into_inner()).push(Ack { node, delta });
        recorder.trace_only(start.elapsed(), format!("n{node} call {method} acknowledged as {delta}"));
    }
}

async fn fingerprints(slots: &[Slot], context: ContextId) -> BTreeMap<usize, Fingerprint> {
    let mut states = BTreeMap::new();
    for (index, slot) in slots.iter().enumerate() {
        if !slot.up || slot.paused {
            continue;
        }
        let Some(handle) = slot.handle.lock().unwrap_or_else(|p| p.into_inner()).clone() else { continue };
        if let Ok(status) = handle.status().await {
            if let Some(state) = status.contexts.iter().find(|state| state.context == context) {
                states.insert(index, (state.root, state.heads.clone(), state.handler_jobs));
            }
        }
    }
    states
}

async fn sample(slots: &[Slot], context: ContextId, start: tokio::time::Instant, recorder: &SharedRecorder) {
    let mut groups: BTreeMap<(RootHash, Vec<DeltaId>), usize> = BTreeMap::new();
    let (mut max_pending, mut total_pending, mut max_buffer, mut live) = (0, 0, 0, 0);
    for slot in slots {
        if !slot.up || slot.paused {
            continue;
        }
        let Some(handle) = slot.handle.lock().unwrap_or_else(|p| p.into_inner()).clone() else { continue };
        let Ok(status) = handle.status().await else { continue };
        let Some(state) = status.contexts.iter().find(|state| state.context == context) else { continue };
        live += 1;
        *groups.entry((state.root, state.heads.clone())).or_default() += 1;
        max_pending = max_pending.max(state.pending);
        total_pending += state.pending;
        max_buffer = max_buffer.max(state.snapshot_buffer);
    }
    let largest = groups.values().copied().max().unwrap_or(0);
    let agreement = if live == 0 { 0.0 } else { largest as f64 / live as f64 };
    recorder.lock().samples.push(Sample {
        t_s: start.elapsed().as_secs_f64(),
        agreement,
        max_pending,
        total_pending,
        max_snapshot_buffer: max_buffer,
        live,
    });
}
