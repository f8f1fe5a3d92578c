//! The world's nodes: one slot per node that may ever exist (its key, disk and clock skew
//! outlive its crashes), what their tasks share, and the faults carried out on them.

use super::boot::{boot_node, BootParts};
use super::setup;
use crate::disk::{SimDisk, TearMode};
use crate::faults::FaultTarget;
use crate::network::Net;
use crate::record::SharedRecorder;
use crate::scenario::{Scenario, DEFAULT_PROFILE};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rhizome_core::link::Probability;
use rhizome_core::{ContextId, Keypair};
use rhizome_node::{ContextBackend, NodeConfig, NodeHandle};
use rhizome_runtime::{AppId, EngineOptions, WasmHost};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Everything the node tasks share.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) net: Net,
    pub(super) recorder: SharedRecorder,
    pub(super) host: WasmHost<ContextBackend>,
    pub(super) module: Arc<Vec<u8>>,
    pub(super) context: ContextId,
    /// The context's genesis, by node 0, naming every node a member: each node joins with it.
    pub(super) genesis: rhizome_core::DeltaRef,
    pub(super) config: NodeConfig,
    pub(super) start: tokio::time::Instant,
    pub(super) seed: u64,
    pub(super) storage_failures: Arc<Mutex<Vec<String>>>,
}

impl Shared {
    /// Records a node that could not open its database, start, or keep running.
    pub(super) fn note_failure(&self, failure: String) {
        self.storage_failures.lock().unwrap_or_else(|p| p.into_inner()).push(failure);
    }
}

/// One node's place in the world; it outlives the node's crashes.
pub(super) struct Slot {
    keypair: Keypair,
    disk: SimDisk,
    handle: Arc<Mutex<Option<NodeHandle>>>,
    skew_ms: Arc<AtomicI64>,
    id: Option<madsim::task::NodeId>,
    pub(super) up: bool,
    pub(super) paused: bool,
    boots: Arc<AtomicI64>,
}

impl Slot {
    /// The running node's handle, once it has booted.
    pub(super) fn handle(&self) -> Option<NodeHandle> {
        self.handle.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The handle of a node that is up, booted and not paused: one that can answer now.
    pub(super) fn answering(&self) -> Option<NodeHandle> {
        if !self.up || self.paused {
            return None;
        }
        self.handle()
    }
}

/// The nodes of a world and what faults do to them.
pub(super) struct Cluster {
    runtime: madsim::runtime::Handle,
    pub(super) shared: Shared,
    pub(super) slots: Vec<Slot>,
    /// Nodes booted so far (the next `add_node` boots this index).
    booted: usize,
    /// Draws for faults (how much of a torn write survives).
    rng: ChaCha8Rng,
    /// The default profile's loss, which the liveness phase restores.
    default_loss: Probability,
    /// Who is honest, byzantine, an outsider or invited.
    pub(super) roles: crate::roles::Roles,
}

impl Cluster {
    /// Builds the network and every node's slot; boots none.
    pub(super) fn build(
        scenario: &Scenario,
        seed: u64,
        start: tokio::time::Instant,
        recorder: &SharedRecorder,
    ) -> Result<Self, String> {
        let runtime = madsim::runtime::Handle::current();
        let net_node = runtime.create_node().name("network").build();
        let keypairs: Vec<Keypair> = (0..scenario.total_nodes()).map(|index| setup::keypair(seed, index)).collect();
        let peers: Vec<_> = keypairs.iter().map(Keypair::peer_id).collect();
        let net = setup::network(scenario, &peers, seed, net_node);
        let module = setup::app_module(scenario.workload.app)?;
        let host = WasmHost::new(&EngineOptions::default()).map_err(|error| error.to_string())?;
        let app = AppId(*blake3::hash(&module).as_bytes());
        // Outsiders and invited nodes are left out: they are not members until an admin adds them.
        let in_genesis: Vec<&Keypair> = keypairs
            .iter()
            .enumerate()
            .filter(|(index, _)| scenario.roles.in_genesis(*index))
            .map(|(_, k)| k)
            .collect();
        let members =
            in_genesis.iter().skip(1).map(|keypair| (keypair.author_key(), rhizome_core::Role::Member)).collect();
        let nonce = rhizome_node::genesis_nonce(&app, &[0; 16]);
        let mut recipients: Vec<_> = in_genesis.iter().map(|keypair| keypair.author_key()).collect();
        recipients.sort_unstable();
        // The epoch-0 key, drawn from the seed as every node key is, so a seed's run is the same.
        let entropy = *blake3::hash(&seed.to_le_bytes()).as_bytes();
        let key = rhizome_core::seal::genesis_key(&keypairs[0], &entropy, &nonce, &recipients);
        let genesis =
            rhizome_core::CausalDelta::genesis(&keypairs[0], rhizome_core::Hlc::default(), nonce, members, &key)
                .map_err(|error| format!("making the genesis: {error}"))?;
        let genesis = Arc::new(genesis);
        let context = genesis.context;
        let shared = Shared {
            net,
            recorder: recorder.clone(),
            host,
            module: Arc::new(module),
            context,
            genesis,
            config: setup::node_config(scenario),
            start,
            seed,
            storage_failures: Arc::default(),
        };
        let slots = keypairs
            .into_iter()
            .map(|keypair| Slot {
                keypair,
                disk: SimDisk::new(),
                handle: Arc::default(),
                skew_ms: Arc::default(),
                id: None,
                up: false,
                paused: false,
                boots: Arc::default(),
            })
            .collect();
        Ok(Self {
            runtime,
            shared,
            slots,
            booted: 0,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x0077_6f72_6c64),
            default_loss: scenario.profile(DEFAULT_PROFILE).loss,
            roles: scenario.roles.clone(),
        })
    }

    /// Boots the scenario's initial nodes.
    pub(super) fn boot_initial(&mut self, nodes: usize) {
        for _ in 0..nodes {
            self.add_node();
        }
    }

    /// Where each node's handle will be, for tasks that outlive a crash (the workload).
    pub(super) fn handle_slots(&self) -> Vec<Arc<Mutex<Option<NodeHandle>>>> {
        self.slots.iter().map(|slot| slot.handle.clone()).collect()
    }

    /// Nodes that are up and have booted, with their handles.
    pub(super) fn live(&self) -> Vec<(usize, NodeHandle)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.up)
            .filter_map(|(index, slot)| slot.handle().map(|handle| (index, handle)))
            .collect()
    }

    /// Live honest nodes: those the convergence and lost-write checks judge.
    pub(super) fn honest_live(&self) -> Vec<(usize, NodeHandle)> {
        self.live().into_iter().filter(|(index, _)| self.roles.is_honest(*index)).collect()
    }

    /// A slot's key (the adversary tasks sign with it).
    pub(super) fn keypair(&self, index: usize) -> &Keypair {
        &self.slots[index].keypair
    }

    /// Every slot's boot counter (boots started so far), by index.
    pub(super) fn boot_counters(&self) -> Vec<Arc<AtomicI64>> {
        self.slots.iter().map(|slot| slot.boots.clone()).collect()
    }

    /// Every slot's boot count now.
    pub(super) fn boots(&self) -> Vec<u64> {
        self.slots.iter().map(|slot| slot.boots.load(Ordering::Relaxed) as u64).collect()
    }

    /// Every slot's peer id, by index.
    pub(super) fn peers(&self) -> Vec<rhizome_core::PeerId> {
        self.slots.iter().map(|slot| slot.keypair.peer_id()).collect()
    }

    /// What nodes failed to open, start or keep running.
    pub(super) fn storage_failures(&self) -> Vec<String> {
        self.shared.storage_failures.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn launch(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        let init = boot_node(
            &self.shared,
            BootParts {
                index,
                keypair: slot.keypair.clone(),
                disk: slot.disk.clone(),
                handle: slot.handle.clone(),
                skew_ms: slot.skew_ms.clone(),
                boots: slot.boots.clone(),
                joins_with_genesis: !self.roles.invited.contains(&index),
            },
        );
        let node = self
            .runtime
            .create_node()
            .name(format!("n{index}"))
            .ip(std::net::IpAddr::from([10, 0, (index / 256) as u8, (index % 256) as u8]))
            .init(init)
            .build();
        slot.id = Some(node.id());
        slot.up = true;
    }
}

impl FaultTarget for Cluster {
    fn node_count(&self) -> usize {
        self.slots.len()
    }

    fn default_loss(&self) -> Probability {
        self.default_loss
    }

    fn partition(&mut self, groups: &[Vec<usize>]) {
        self.shared.net.partition(groups);
    }

    fn partition_one_way(&mut self, from: &[usize], to: &[usize]) {
        self.shared.net.partition_one_way(from, to);
    }

    fn heal(&mut self) {
        self.shared.net.heal();
    }

    fn set_clogged(&mut self, node: usize, clogged: bool) {
        self.shared.net.set_clogged(node, clogged);
    }

    fn crash(&mut self, node: usize, tear: bool) {
        let slot = &mut self.slots[node];
        let Some(id) = slot.id.filter(|_| slot.up) else { return };
        slot.disk.kill_io();
        self.runtime.kill(id);
        self.shared.net.detach(node);
        let mode = if tear {
            TearMode::TearLastWrite { keep_fraction_per_mille: (self.rng.next_u64() % 1_000) as u16 }
        } else {
            TearMode::None
        };
        slot.disk.crash(mode);
        *slot.handle.lock().unwrap_or_else(|p| p.into_inner()) = None;
        slot.up = false;
        slot.paused = false;
    }

    fn restart(&mut self, node: usize) {
        let slot = &mut self.slots[node];
        if slot.up {
            return;
        }
        if let Some(id) = slot.id {
            self.runtime.restart(id);
            slot.up = true;
        }
    }

    fn pause(&mut self, node: usize) {
        let slot = &mut self.slots[node];
        if let Some(id) = slot.id.filter(|_| slot.up && !slot.paused) {
            self.runtime.pause(id);
            slot.paused = true;
        }
    }

    fn resume(&mut self, node: usize) {
        let slot = &mut self.slots[node];
        if let Some(id) = slot.id.filter(|_| slot.paused) {
            self.runtime.resume(id);
            slot.paused = false;
        }
    }

    fn add_node(&mut self) {
        if self.booted < self.slots.len() {
            self.launch(self.booted);
            self.booted += 1;
        }
    }

    fn set_loss(&mut self, loss: Probability) {
        self.shared.net.set_loss(loss);
    }

    fn set_skew_ms(&mut self, node: usize, ms: i64) {
        self.slots[node].skew_ms.store(ms, Ordering::Relaxed);
    }
}
