//! The composed libp2p behaviour and how each part is configured.

use crate::codec::{SyncCodec, SYNC_PROTOCOL};
use crate::config::NetConfig;
use crate::error::NetError;
use crate::metrics::Counters;
use libp2p::gossipsub::{self, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::kad::{self, store::MemoryStore, Mode, StoreInserts};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{connection_limits, identify, mdns, StreamProtocol};
use rhizome_core::wire::gossip_message_id;
use std::sync::Arc;
use std::time::Duration;

/// The Kademlia protocol: a private DHT of rhizome nodes, not the public IPFS one.
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/rhizome/kad/1.0.0");

/// What identify announces as our protocol family.
const IDENTIFY_PROTOCOL_VERSION: &str = "/rhizome/id/1.0.0";

/// Room for gossipsub's envelope (source, signature, key, topic, sequence number) on top of the
/// payload bound, so a payload at the bound still fits in one frame.
const GOSSIP_ENVELOPE_BYTES: usize = 16 * 1024;

/// How soon after start gossipsub's first heartbeat runs: quick, so a young cluster's mesh forms
/// in well under a second instead of gossipsub's default five.
const GOSSIP_HEARTBEAT_INITIAL_DELAY: Duration = Duration::from_millis(100);

/// Every protocol a rhizome node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) kad: Toggle<kad::Behaviour<MemoryStore>>,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) sync: request_response::Behaviour<SyncCodec>,
}

impl Behaviour {
    pub(crate) fn new(key: &Keypair, config: &NetConfig, counters: Arc<Counters>) -> Result<Self, NetError> {
        let local = key.public().to_peer_id();
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_established_per_peer(Some(config.max_connections_per_peer))
            .with_max_pending_incoming(Some(config.max_pending_connections))
            .with_max_pending_outgoing(Some(config.max_pending_connections));
        let identify =
            identify::Behaviour::new(identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_owned(), key.public()));
        let kad = config.enable_kademlia.then(|| {
            let mut kad_config = kad::Config::new(KAD_PROTOCOL);
            kad_config
                .set_periodic_bootstrap_interval(Some(Duration::from_millis(config.bootstrap_interval_ms)))
                // We keep no DHT records; refuse to store what peers push at us.
                .set_record_filtering(StoreInserts::FilterBoth);
            let mut kad = kad::Behaviour::with_config(local, MemoryStore::new(local), kad_config);
            // Server mode from the start: peers on a LAN or loopback never get a confirmed
            // external address, and in client mode they could not find each other.
            kad.set_mode(Some(Mode::Server));
            kad
        });
        let mdns = if config.enable_mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), local)
                    .map_err(|error| NetError::Transport(format!("mdns: {error}")))?,
            )
        } else {
            None
        };
        let gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config(config)?)
            .map_err(|error| NetError::BadConfig(format!("gossipsub: {error}")))?;
        let sync = request_response::Behaviour::with_codec(
            SyncCodec::new(config.max_request_bytes, config.max_response_bytes, counters),
            [(SYNC_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(Duration::from_millis(config.request_timeout_upper_bound_ms))
                .with_max_concurrent_streams(config.max_inbound_requests_per_peer.saturating_mul(2).max(8)),
        );
        Ok(Self {
            limits: connection_limits::Behaviour::new(limits),
            identify,
            kad: kad.into(),
            mdns: mdns.into(),
            gossipsub,
            sync,
        })
    }
}

/// Gossipsub tuned for clusters of 2 to 20 nodes: a short heartbeat and initial delay so
/// meshes form fast, a low D_low and no outbound quota (in a small cluster most links are
/// inbound for someone), flood publishing (the publisher reaches every subscribed peer
/// directly; the mesh only matters for relays), content-addressed message ids (BLAKE3 of the
/// payload, so the same bytes are never delivered twice), signed messages (the source is the
/// publisher, which the node needs) and manual validation (we reject oversized payloads and
/// non-ed25519 sources before they are relayed).
fn gossip_config(config: &NetConfig) -> Result<gossipsub::Config, NetError> {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .mesh_n(config.gossip_mesh_n)
        .mesh_n_low(config.gossip_mesh_n_low)
        .mesh_n_high(config.gossip_mesh_n_high)
        .mesh_outbound_min(config.gossip_mesh_outbound_min)
        .gossip_lazy(config.gossip_mesh_n)
        .heartbeat_interval(Duration::from_millis(config.gossip_heartbeat_interval_ms))
        .heartbeat_initial_delay(GOSSIP_HEARTBEAT_INITIAL_DELAY)
        .flood_publish(config.gossip_flood_publish)
        .duplicate_cache_time(Duration::from_millis(config.gossip_duplicate_cache_ms))
        .max_transmit_size(config.max_gossip_message_bytes.saturating_add(GOSSIP_ENVELOPE_BYTES))
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(|message: &gossipsub::Message| MessageId::new(&gossip_message_id(&message.data)));
    builder.build().map_err(|error| NetError::BadConfig(format!("gossipsub: {error}")))
}
