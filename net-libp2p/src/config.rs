//! Every setting of the network layer, each bound with its unit in its name.
//!
//! Plain data on purpose: the binary maps its own TOML into it, and tests build it by hand.

use crate::error::NetError;
use crate::identity::peer_of_addr;
use libp2p::Multiaddr;
use rhizome_core::Limits;

/// Settings of one libp2p transport.
#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
    /// Addresses to listen on (TCP and QUIC both work).
    pub listen: Vec<Multiaddr>,
    /// Peers dialled at start and whenever the node is short of peers. Each ends in
    /// `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Local-network discovery by multicast DNS.
    pub enable_mdns: bool,
    /// Kademlia discovery (random walks, routing-table bootstrap). Off gives a fixed topology
    /// made of the bootstrap addresses and explicit dials only.
    pub enable_kademlia: bool,
    /// Below this many connected peers the node bootstraps again and redials known peers.
    pub min_peers: usize,
    /// How often a node short of peers bootstraps again.
    pub bootstrap_interval_ms: u64,
    /// How often peer health is evaluated.
    pub health_check_interval_ms: u64,
    /// How often a Kademlia random walk looks for new peers.
    pub peer_exchange_interval_ms: u64,
    /// A peer seen (connected, or any message) within this is fresh.
    pub healthy_if_seen_within_ms: u64,
    /// A peer whose success rate is at or below this is unhealthy (once it has enough attempts).
    pub min_success_rate: f64,
    /// With fewer attempts than this, a peer's success rate is not judged.
    pub min_attempts_for_rate: u32,
    /// Peers remembered by the health table; the stalest disconnected one is evicted beyond.
    pub max_tracked_peers: usize,
    /// Addresses remembered per peer.
    pub max_addrs_per_peer: usize,
    /// Established connections, all peers together.
    pub max_connections: u32,
    /// Established connections to one peer.
    pub max_connections_per_peer: u32,
    /// Connections being set up (incoming and outgoing each).
    pub max_pending_connections: u32,
    /// A connection with no protocol needing it is closed after this long.
    pub idle_connection_timeout_ms: u64,
    /// Largest gossip payload published or accepted.
    pub max_gossip_message_bytes: usize,
    /// Largest request sent or accepted.
    pub max_request_bytes: usize,
    /// Largest response sent or accepted.
    pub max_response_bytes: usize,
    /// Requests from one peer waiting for our answer at once; more are refused and counted.
    pub max_inbound_requests_per_peer: usize,
    /// Requests from all peers waiting for our answer at once.
    pub max_inbound_requests: usize,
    /// Our requests waiting for an answer at once; more fail at once as unreachable.
    pub max_outbound_requests: usize,
    /// The longest any request may live inside libp2p; per-request timeouts are shorter and
    /// enforced by our own deadline table.
    pub request_timeout_upper_bound_ms: u64,
    /// Publishes held while a topic has no peers.
    pub publish_retry_queue_messages: usize,
    /// Bytes held by the publish retry queue.
    pub publish_retry_queue_bytes: usize,
    /// A held publish older than this is dropped.
    pub max_publish_retry_age_ms: u64,
    /// How often held publishes are retried even without a new subscriber.
    pub publish_retry_interval_ms: u64,
    /// Gossip messages and peer requests waiting for the node; more are dropped and counted.
    /// Responses, request failures and peer up/down always get through (see `events.rs`).
    pub event_queue_len: usize,
    /// Calls from the node (publish, request, respond) waiting for the swarm task.
    pub command_queue_len: usize,
    /// Gossipsub target mesh degree (D).
    pub gossip_mesh_n: usize,
    /// Gossipsub mesh degree below which peers are grafted (D_low).
    pub gossip_mesh_n_low: usize,
    /// Gossipsub mesh degree above which peers are pruned (D_high).
    pub gossip_mesh_n_high: usize,
    /// Gossipsub outbound mesh peers kept (D_out); 0 suits clusters where most links are inbound.
    pub gossip_mesh_outbound_min: usize,
    /// Gossipsub heartbeat (mesh maintenance, IHAVE gossip).
    pub gossip_heartbeat_interval_ms: u64,
    /// Send own publishes to every subscribed peer, not only the mesh.
    pub gossip_flood_publish: bool,
    /// How long a message id is remembered for deduplication.
    pub gossip_duplicate_cache_ms: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            listen: vec![
                "/ip4/127.0.0.1/tcp/0".parse().expect("valid literal multiaddr"),
                "/ip4/127.0.0.1/udp/0/quic-v1".parse().expect("valid literal multiaddr"),
            ],
            bootstrap: Vec::new(),
            enable_mdns: false,
            enable_kademlia: true,
            min_peers: 3,
            bootstrap_interval_ms: 300_000,
            health_check_interval_ms: 60_000,
            peer_exchange_interval_ms: 120_000,
            healthy_if_seen_within_ms: 300_000,
            min_success_rate: 0.5,
            min_attempts_for_rate: 3,
            max_tracked_peers: 1_024,
            max_addrs_per_peer: 8,
            max_connections: 256,
            max_connections_per_peer: 2,
            max_pending_connections: 64,
            idle_connection_timeout_ms: 300_000,
            max_gossip_message_bytes: limits.max_message_bytes,
            max_request_bytes: limits.max_message_bytes,
            max_response_bytes: limits.max_message_bytes,
            max_inbound_requests_per_peer: 32,
            max_inbound_requests: 1_024,
            max_outbound_requests: 4_096,
            request_timeout_upper_bound_ms: 300_000,
            publish_retry_queue_messages: 1_024,
            publish_retry_queue_bytes: 64 * 1024 * 1024,
            max_publish_retry_age_ms: 30_000,
            publish_retry_interval_ms: 1_000,
            event_queue_len: 4_096,
            command_queue_len: 4_096,
            gossip_mesh_n: 4,
            gossip_mesh_n_low: 2,
            gossip_mesh_n_high: 8,
            gossip_mesh_outbound_min: 0,
            gossip_heartbeat_interval_ms: 700,
            gossip_flood_publish: true,
            gossip_duplicate_cache_ms: 120_000,
        }
    }
}

impl NetConfig {
    /// Checks the settings that would otherwise fail deep inside libp2p or make a bound
    /// meaningless.
    pub fn validate(&self) -> Result<(), NetError> {
        let bad = |reason: &str| Err(NetError::BadConfig(reason.to_owned()));
        if self.listen.is_empty() {
            return bad("listen is empty");
        }
        for addr in &self.bootstrap {
            if peer_of_addr(addr).is_none() {
                return Err(NetError::BadMultiaddr(format!("bootstrap address {addr} does not end in /p2p/<peer id>")));
            }
        }
        let positive = [
            ("bootstrap_interval_ms", self.bootstrap_interval_ms),
            ("health_check_interval_ms", self.health_check_interval_ms),
            ("peer_exchange_interval_ms", self.peer_exchange_interval_ms),
            ("publish_retry_interval_ms", self.publish_retry_interval_ms),
            ("gossip_heartbeat_interval_ms", self.gossip_heartbeat_interval_ms),
            ("gossip_duplicate_cache_ms", self.gossip_duplicate_cache_ms),
            ("request_timeout_upper_bound_ms", self.request_timeout_upper_bound_ms),
            ("max_connections", u64::from(self.max_connections)),
            ("max_connections_per_peer", u64::from(self.max_connections_per_peer)),
            ("max_pending_connections", u64::from(self.max_pending_connections)),
        ];
        for (name, value) in positive {
            if value == 0 {
                return bad(&format!("{name} must be positive"));
            }
        }
        let positive_sizes = [
            ("max_gossip_message_bytes", self.max_gossip_message_bytes),
            ("max_request_bytes", self.max_request_bytes),
            ("max_response_bytes", self.max_response_bytes),
            ("max_inbound_requests_per_peer", self.max_inbound_requests_per_peer),
            ("max_inbound_requests", self.max_inbound_requests),
            ("max_outbound_requests", self.max_outbound_requests),
            ("max_tracked_peers", self.max_tracked_peers),
            ("max_addrs_per_peer", self.max_addrs_per_peer),
            ("event_queue_len", self.event_queue_len),
            ("command_queue_len", self.command_queue_len),
        ];
        for (name, value) in positive_sizes {
            if value == 0 {
                return bad(&format!("{name} must be positive"));
            }
        }
        // The length prefix of a request or response frame is a u32.
        if self.max_request_bytes > u32::MAX as usize || self.max_response_bytes > u32::MAX as usize {
            return bad("max_request_bytes and max_response_bytes must fit in a u32");
        }
        if !(0.0..=1.0).contains(&self.min_success_rate) {
            return bad("min_success_rate must be within 0..=1");
        }
        let mesh_ordered = self.gossip_mesh_outbound_min <= self.gossip_mesh_n_low
            && self.gossip_mesh_n_low <= self.gossip_mesh_n
            && self.gossip_mesh_n <= self.gossip_mesh_n_high
            && self.gossip_mesh_outbound_min * 2 <= self.gossip_mesh_n;
        if !mesh_ordered || self.gossip_mesh_n == 0 {
            return bad("gossip mesh needs 2*outbound_min <= n, outbound_min <= n_low <= n <= n_high, n > 0");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(NetConfig::default().validate(), Ok(()));
    }

    #[test]
    fn bootstrap_address_without_peer_id_is_refused() {
        let config = NetConfig { bootstrap: vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()], ..NetConfig::default() };
        assert!(matches!(config.validate(), Err(NetError::BadMultiaddr(_))));
    }

    #[test]
    fn mesh_parameters_out_of_order_are_refused() {
        let config = NetConfig { gossip_mesh_n_low: 5, gossip_mesh_n: 4, ..NetConfig::default() };
        assert!(matches!(config.validate(), Err(NetError::BadConfig(_))));
    }
}
