//! An in-process cluster of core [`Node`]s on a virtual clock, in the manner of quinn-proto's
//! `Pair`: every message goes through one seeded scheduler that applies the core's link model
//! ([`crate::link`], the one the simulator's transport applies too) — latency, jitter, loss,
//! duplication, reordering, bandwidth — and can partition links. Nothing here reads a clock or
//! OS randomness, so a seed replays a run exactly, and [`Cluster::trace_hash`] proves it.
//!
//! Gossip is a full-mesh topic (every node subscribes to the one context) sent best-effort;
//! requests and responses are routed point to point on reliable streams, as the simulator and
//! libp2p send them: a loss costs a retransmission, and only a stream that gives up (or a
//! partition) surfaces as the requester's own timeout.

use super::KvCounterApplier;
use crate::config::Config;
use crate::identity::Keypair;
use crate::ids::{ContextId, DeltaId, PeerId, RootHash};
use crate::link::{Delivery, Fate, LatencyDistribution, LinkProfile, LinkQueue};
use crate::node::test_node::TestNode;
use crate::node::{Event, Handled, InboundRequestId, Input, NodeError, Output, RequestId};
use crate::time::Timestamp;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

/// How often (in inputs fed, over all nodes) the harness checks a node's invariants.
const INVARIANT_CHECK_EVERY_INPUTS: u64 = 97;

/// Bytes a message costs on a link besides its payload (framing, topic, ids), as in the
/// simulator: they count against a limited bandwidth.
const MESSAGE_OVERHEAD_BYTES: usize = 64;

/// The cluster's links unless a test says otherwise: a LAN, 5–20 ms, nothing lost.
pub fn lan_profile() -> LinkProfile {
    LinkProfile {
        latency: LatencyDistribution::Uniform { min: Duration::from_millis(5), max: Duration::from_millis(20) },
        ..LinkProfile::default()
    }
}

/// How to build a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Nodes at the start.
    pub nodes: usize,
    /// Most nodes the cluster may grow to; all of their keys are context members.
    pub max_nodes: usize,
    /// Drives every node's RNG and the scheduler.
    pub seed: u64,
    /// Every node's configuration.
    pub node_config: Config,
    /// How every link behaves.
    pub link: LinkProfile,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self { nodes: 3, max_nodes: 8, seed: 1, node_config: Config::default(), link: lan_profile() }
    }
}

#[derive(Debug, Clone)]
enum Payload {
    Input(Input),
    /// A request, remembered so its response can be routed back.
    Request {
        from: usize,
        their_id: RequestId,
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
struct Scheduled {
    to: usize,
    from: usize,
    payload: Payload,
}

/// Message and fault counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Messages handed to a node.
    pub delivered: u64,
    /// Messages lost to the link's loss (gossip, or a stream that gave up).
    pub dropped: u64,
    /// Messages lost to a partition.
    pub partitioned: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Bytes handed to nodes.
    pub bytes_delivered: u64,
}

/// Several nodes, one context, one virtual clock.
#[derive(Debug)]
pub struct Cluster {
    /// Inputs fed to any node so far.
    inputs_fed: u64,
    config: ClusterConfig,
    context: ContextId,
    /// The context's genesis, by key 0, naming every key a member.
    genesis: crate::delta::DeltaRef,
    keys: Vec<Keypair>,
    nodes: Vec<TestNode<KvCounterApplier>>,
    index_of: BTreeMap<PeerId, usize>,
    now: Timestamp,
    rng: ChaCha8Rng,
    /// Each directed link's send queue (bandwidth).
    links: BTreeMap<(usize, usize), LinkQueue>,
    queue: BinaryHeap<Reverse<(Timestamp, u64)>>,
    scheduled: BTreeMap<u64, Scheduled>,
    next_seq: u64,
    /// (responder, inbound id) → (requester, requester's id).
    routes: BTreeMap<(usize, InboundRequestId), (usize, RequestId)>,
    next_inbound_id: u64,
    blocked: BTreeSet<(usize, usize)>,
    events: Vec<(usize, Event)>,
    stats: ClusterStats,
    trace: blake3::Hasher,
}

impl Cluster {
    /// Builds the cluster: every node joins the context (members: all `max_nodes` keys) and
    /// is connected to every other.
    pub fn new(config: ClusterConfig) -> Self {
        assert!(config.nodes <= config.max_nodes, "more nodes than max_nodes");
        let keys: Vec<Keypair> = (0..config.max_nodes)
            .map(|index| {
                let mut material = config.seed.to_le_bytes().to_vec();
                material.extend_from_slice(&(index as u64).to_le_bytes());
                Keypair::from_secret_bytes(*blake3::hash(&material).as_bytes())
            })
            .collect();
        let genesis = super::genesis_of(&keys[0], keys.iter().map(Keypair::author_key), config.seed);
        let mut cluster = Self {
            inputs_fed: 0,
            context: genesis.context,
            genesis,
            keys,
            nodes: Vec::new(),
            index_of: BTreeMap::new(),
            now: Timestamp::from_secs(1_000_000),
            rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x9e37_79b9_7f4a_7c15),
            links: BTreeMap::new(),
            queue: BinaryHeap::new(),
            scheduled: BTreeMap::new(),
            next_seq: 0,
            routes: BTreeMap::new(),
            next_inbound_id: 0,
            blocked: BTreeSet::new(),
            events: Vec::new(),
            stats: ClusterStats::default(),
            trace: blake3::Hasher::new(),
            config,
        };
        for _ in 0..cluster.config.nodes {
            cluster.add_node();
        }
        cluster
    }

    /// Adds a fresh node (empty state), joined to the context and connected to everyone.
    /// Returns its index.
    pub fn add_node(&mut self) -> usize {
        let index = self.nodes.len();
        assert!(index < self.config.max_nodes, "cluster is at max_nodes");
        let seed = self.config.seed.wrapping_mul(1_000_003).wrapping_add(index as u64);
        let node = TestNode::new(
            self.config.node_config.clone(),
            self.keys[index].clone(),
            seed,
            KvCounterApplier::default(),
            self.now,
        );
        self.index_of.insert(node.peer_id(), index);
        self.nodes.push(node);
        let join = Input::Join {
            context: self.context,
            genesis: Some(self.genesis.clone()),
            bootstrap: Vec::new(),
            keys: Vec::new(),
        };
        let joined = self.input(index, join);
        assert_eq!(joined, Handled::Joined, "the cluster context is valid");
        for other in 0..index {
            let (peer_a, peer_b) = (self.nodes[other].peer_id(), self.nodes[index].peer_id());
            self.input(other, Input::PeerUp { peer: peer_b });
            self.input(index, Input::PeerUp { peer: peer_a });
        }
        index
    }

    /// The shared context.
    pub fn context(&self) -> ContextId {
        self.context
    }

    /// Virtual now.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Node `index`.
    pub fn node(&self, index: usize) -> &TestNode<KvCounterApplier> {
        &self.nodes[index]
    }

    /// Node `index`, mutable (e.g. to corrupt its state in a test).
    pub fn node_mut(&mut self, index: usize) -> &mut TestNode<KvCounterApplier> {
        &mut self.nodes[index]
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Changes how every link behaves from now on (messages in flight keep their fate).
    pub fn set_link(&mut self, link: LinkProfile) {
        self.config.link = link;
    }

    /// Blocks every link between different groups (both directions). Nodes in no group are
    /// cut off from everyone.
    pub fn partition(&mut self, groups: &[&[usize]]) {
        let group_of = |node: usize| groups.iter().position(|group| group.contains(&node));
        self.blocked.clear();
        for a in 0..self.nodes.len() {
            for b in 0..self.nodes.len() {
                if a != b && (group_of(a).is_none() || group_of(a) != group_of(b)) {
                    self.blocked.insert((a, b));
                }
            }
        }
    }

    /// Cuts `node` off from everyone.
    pub fn isolate(&mut self, node: usize) {
        for other in 0..self.nodes.len() {
            if other != node {
                self.blocked.insert((node, other));
                self.blocked.insert((other, node));
            }
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// A local write of `payload` on node `index`.
    pub fn write(&mut self, index: usize, payload: Vec<u8>) -> Result<DeltaId, NodeError> {
        let context = self.context;
        self.input(index, Input::LocalWrite { context, payload, basis: None }).authored()
    }

    /// Runs until virtual time `until`.
    pub fn run_until(&mut self, until: Timestamp) {
        loop {
            let next_message = self.queue.peek().map(|Reverse((at, _))| *at).unwrap_or(Timestamp::MAX);
            let next_timer = self.nodes.iter().map(|node| node.poll_timeout()).min().unwrap_or(Timestamp::MAX);
            let next = next_message.min(next_timer);
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            if next_message <= next_timer {
                let Reverse((_, seq)) = self.queue.pop().expect("peeked above");
                let scheduled = self.scheduled.remove(&seq).expect("every queued seq is scheduled");
                self.deliver(scheduled);
            } else {
                for index in 0..self.nodes.len() {
                    if self.nodes[index].poll_timeout() <= self.now {
                        self.input(index, Input::Timeout);
                    }
                }
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs for `millis` of virtual time.
    pub fn run_for_millis(&mut self, millis: u64) {
        self.run_until(self.now.add_millis(millis));
    }

    /// Runs until every node has the same heads and root, or `max_millis` pass. Returns the
    /// virtual milliseconds it took, or `None` if it did not converge.
    pub fn run_until_converged(&mut self, max_millis: u64) -> Option<u64> {
        let start = self.now;
        let deadline = start.add_millis(max_millis);
        while self.now < deadline {
            if self.converged() {
                return Some(self.now.saturating_since(start).as_millis() as u64);
            }
            self.run_for_millis(100);
        }
        self.converged().then(|| self.now.saturating_since(start).as_millis() as u64)
    }

    /// True if every node has the same heads and root (and none has pending deltas).
    pub fn converged(&self) -> bool {
        let reference = self.fingerprint(0);
        (1..self.nodes.len()).all(|index| self.fingerprint(index) == reference)
            && self.nodes.iter().all(|node| node.dag(&self.context).is_some_and(|dag| dag.pending_len() == 0))
    }

    /// Heads and root of node `index`.
    pub fn fingerprint(&self, index: usize) -> (Vec<DeltaId>, RootHash) {
        let node = &self.nodes[index];
        (node.dag(&self.context).map(|dag| dag.heads_vec()).unwrap_or_default(), node.root_hash(&self.context))
    }

    /// Events every node emitted so far, with the node index.
    pub fn events(&self) -> &[(usize, Event)] {
        &self.events
    }

    /// Message counts so far.
    pub fn stats(&self) -> ClusterStats {
        self.stats
    }

    /// BLAKE3 over every input and output of every node, in order, as hex.
    pub fn trace_hash(&self) -> String {
        self.trace.clone().finalize().to_hex().to_string()
    }

    fn deliver(&mut self, scheduled: Scheduled) {
        let Scheduled { to, from, payload } = scheduled;
        let input = match payload {
            Payload::Input(input) => input,
            Payload::Request { from: requester, their_id, bytes } => {
                let inbound = InboundRequestId(self.next_inbound_id);
                self.next_inbound_id += 1;
                self.routes.insert((to, inbound), (requester, their_id));
                Input::Request { from: self.nodes[from].peer_id(), request_id: inbound, bytes }
            }
        };
        self.stats.delivered += 1;
        self.input(to, input);
    }

    /// Feeds one input, a local command or a delivery, through the node's one door and the
    /// trace.
    fn input(&mut self, index: usize, input: Input) -> Handled {
        self.trace_input(index, &input);
        if let Input::Gossip { bytes, .. } | Input::Request { bytes, .. } | Input::Response { bytes, .. } = &input {
            self.stats.bytes_delivered += bytes.len() as u64;
        }
        let now = self.now;
        let handled = self.nodes[index].handle_input(now, input);
        self.drain(index);
        // Every node's invariants, now and then: each check walks the node's whole DAG.
        self.inputs_fed += 1;
        if self.inputs_fed.is_multiple_of(INVARIANT_CHECK_EVERY_INPUTS) {
            self.nodes[index].check_invariants();
        }
        handled
    }

    fn drain(&mut self, index: usize) {
        while let Some(output) = self.nodes[index].poll_output() {
            self.trace_output(index, &output);
            match output {
                Output::Broadcast { bytes, .. } => {
                    let from = self.nodes[index].peer_id();
                    for to in 0..self.nodes.len() {
                        if to != index {
                            let input = Input::Gossip { from, bytes: bytes.clone() };
                            self.send(index, to, Payload::Input(input));
                        }
                    }
                }
                Output::Request { to, request_id, bytes, .. } => {
                    if let Some(&target) = self.index_of.get(&to) {
                        self.send(index, target, Payload::Request { from: index, their_id: request_id, bytes });
                    }
                }
                Output::Respond { request_id, bytes, .. } => {
                    if let Some((requester, their_id)) = self.routes.remove(&(index, request_id)) {
                        self.send(index, requester, Payload::Input(Input::Response { request_id: their_id, bytes }));
                    }
                }
                Output::EvictBlobs { .. } => {}
                Output::Event(event) => self.events.push((index, event)),
            }
        }
    }

    fn send(&mut self, from: usize, to: usize, payload: Payload) {
        if self.blocked.contains(&(from, to)) {
            self.stats.partitioned += 1;
            return;
        }
        let (size, delivery) = match &payload {
            Payload::Input(Input::Gossip { bytes, .. }) => (bytes.len(), Delivery::BestEffort),
            Payload::Input(Input::Response { bytes, .. }) | Payload::Request { bytes, .. } => {
                (bytes.len(), Delivery::Reliable)
            }
            // The cluster sends no other input over a link; were it to, a stream would carry it.
            Payload::Input(_) => (0, Delivery::Reliable),
        };
        let now = Duration::from_nanos(self.now.as_nanos());
        let link = self.links.entry((from, to)).or_default();
        let fate = link.transmit(&self.config.link, now, size + MESSAGE_OVERHEAD_BYTES, delivery, &mut self.rng);
        if fate == Fate::Lost {
            self.stats.dropped += 1;
            return;
        }
        for (copy, delay) in fate.delays().enumerate() {
            self.stats.duplicated += u64::from(copy > 0);
            let seq = self.next_seq;
            self.next_seq += 1;
            self.queue.push(Reverse((self.now.saturating_add(delay), seq)));
            self.scheduled.insert(seq, Scheduled { to, from, payload: payload.clone() });
        }
    }

    fn trace_input(&mut self, index: usize, input: &Input) {
        let bytes: Vec<u8> = match input {
            Input::Gossip { bytes, .. } | Input::Request { bytes, .. } | Input::Response { bytes, .. } => bytes.clone(),
            other => format!("{other:?}").into_bytes(),
        };
        self.trace_bytes(b"in", index, &bytes);
    }

    fn trace_output(&mut self, index: usize, output: &Output) {
        let bytes: Vec<u8> = match output {
            Output::Broadcast { bytes, .. } | Output::Request { bytes, .. } | Output::Respond { bytes, .. } => {
                bytes.clone()
            }
            other => format!("{other:?}").into_bytes(),
        };
        self.trace_bytes(b"out", index, &bytes);
    }

    fn trace_bytes(&mut self, tag: &[u8], index: usize, bytes: &[u8]) {
        self.trace.update(tag);
        self.trace.update(&(index as u64).to_le_bytes());
        self.trace.update(&self.now.as_nanos().to_le_bytes());
        self.trace.update(&(bytes.len() as u64).to_le_bytes());
        self.trace.update(bytes);
    }
}
