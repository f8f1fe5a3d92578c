//! Shared helpers: real transports on loopback, and waiting on events with generous timeouts
//! (the machine may be slow; nothing here sleeps a fixed time to "let things settle").

#![allow(dead_code, unreachable_pub)]

use libp2p::Multiaddr;
use rhizome_core::{Keypair, PeerId};
use rhizome_net::{Libp2pTransport, NetConfig, NetHandle, NetMetrics};
use rhizome_node::{Transport, TransportEvent};
use std::time::Duration;

/// How long any single expectation may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running transport.
pub struct TestNode {
    pub transport: Libp2pTransport,
    pub handle: NetHandle,
    pub addrs: Vec<Multiaddr>,
    pub peer: PeerId,
}

/// A config for loopback tests: TCP only, no background timers firing during a test.
pub fn config() -> NetConfig {
    NetConfig { listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()], min_peers: 0, ..NetConfig::default() }
}

/// The secret of test node `seed`.
pub fn secret(seed: u8) -> [u8; 32] {
    [seed; 32]
}

/// The core peer id of test node `seed`.
pub fn peer(seed: u8) -> PeerId {
    Keypair::from_secret_bytes(secret(seed)).peer_id()
}

/// Starts a transport and waits for its listeners.
pub async fn start(seed: u8, config: NetConfig) -> TestNode {
    let (transport, handle) = rhizome_net::spawn(secret(seed), config).expect("transport starts");
    let addrs = tokio::time::timeout(PATIENCE, handle.listen_addrs()).await.expect("listeners come up");
    assert!(!addrs.is_empty());
    TestNode { transport, handle, addrs, peer: peer(seed) }
}

/// Starts a transport that bootstraps from `others`.
pub async fn start_with_bootstrap(seed: u8, mut config: NetConfig, others: &[&TestNode]) -> TestNode {
    config.bootstrap = others.iter().flat_map(|other| other.addrs.clone()).collect();
    start(seed, config).await
}

/// The next event matching `wanted`, skipping others; panics after [`PATIENCE`].
pub async fn expect_event(
    node: &mut TestNode,
    what: &str,
    mut wanted: impl FnMut(&TransportEvent) -> bool,
) -> TransportEvent {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, node.transport.next_event()).await {
            Ok(Some(event)) if wanted(&event) => return event,
            Ok(Some(_)) => {}
            Ok(None) => panic!("transport closed while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// Waits for `PeerUp(peer)`.
pub async fn expect_peer_up(node: &mut TestNode, peer: PeerId) {
    expect_event(node, "peer up", |event| *event == TransportEvent::PeerUp(peer)).await;
}

/// Waits for `PeerUp` of every peer in `peers`, in any order.
pub async fn expect_peers_up(node: &mut TestNode, peers: &[PeerId]) {
    let mut missing: Vec<PeerId> = peers.to_vec();
    while !missing.is_empty() {
        let event = expect_event(
            node,
            "peers up",
            |event| matches!(event, TransportEvent::PeerUp(peer) if missing.contains(peer)),
        )
        .await;
        missing.retain(|peer| TransportEvent::PeerUp(*peer) != event);
    }
}

/// Waits until `check` holds for the node's metrics; panics after [`PATIENCE`].
pub async fn wait_for_metrics(handle: &NetHandle, what: &str, check: impl Fn(&NetMetrics) -> bool) -> NetMetrics {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let metrics = handle.metrics();
        if check(&metrics) {
            return metrics;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}: {metrics:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback TCP address nobody listens on.
pub fn closed_tcp_addr() -> Multiaddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
}
