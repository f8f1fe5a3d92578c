//! Peers coming and going, discovery and shutdown, on loopback.

use crate::common::*;
use rhizome_core::RequestId;
use rhizome_net::NetConfig;
use rhizome_node::{Transport, TransportEvent};
use std::time::Duration;

#[tokio::test]
async fn peer_up_on_first_connection_and_peer_down_when_it_closes() {
    let mut a = start(61, config()).await;
    let mut b = start_with_bootstrap(62, config(), &[&a]).await;
    expect_peer_up(&mut a, b.peer).await;
    expect_peer_up(&mut b, a.peer).await;
    wait_for_metrics(&a.handle, "connected gauge", |metrics| metrics.connected_peers == 1).await;

    b.handle.shutdown().await;
    expect_event(&mut a, "peer down", |event| *event == TransportEvent::PeerDown(b.peer)).await;
    let info = a.handle.peers().await.into_iter().find(|info| info.peer == b.peer).expect("B is still known");
    assert!(!info.connected);
    assert!(info.last_seen_ms_ago.is_some());

    // B's transport hands out what it had queued, then reports the end.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while b.transport_next().await.is_some() {
        assert!(tokio::time::Instant::now() < deadline, "B's transport never closed");
    }
    assert!(b.handle.dial(a.addrs[0].clone()).await.is_err(), "a stopped task refuses work");
}

#[tokio::test]
async fn listen_addresses_carry_our_peer_id() {
    let a = start(63, NetConfig::default()).await;
    let suffix = format!("/p2p/{}", a.handle.libp2p_peer_id());
    assert_eq!(a.addrs.len(), 2, "TCP and QUIC by default: {:?}", a.addrs);
    assert!(a.addrs.iter().all(|addr| addr.to_string().ends_with(&suffix)));
    assert_eq!(a.handle.local_peer_id(), peer(63));
    assert_eq!(rhizome_net::to_core_peer_id(&a.handle.libp2p_peer_id()), Some(peer(63)));
}

#[tokio::test]
async fn dialling_through_the_handle_connects_and_kademlia_finds_a_third_peer() {
    let mut a = start(64, config()).await;
    let b = start(65, config()).await;
    a.handle.dial(b.addrs[0].clone()).await.unwrap();
    expect_peer_up(&mut a, b.peer).await;

    // C knows only B; a Kademlia bootstrap (C is short of peers) walks it to A.
    let short = NetConfig { min_peers: 2, bootstrap_interval_ms: 200, ..config() };
    let mut c = start_with_bootstrap(66, short, &[&b]).await;
    expect_peers_up(&mut c, &[b.peer, a.peer]).await;
}

#[tokio::test]
async fn a_node_short_of_peers_bootstraps_again_and_redials() {
    let dead = rhizome_net::to_libp2p_peer_id(&peer(69)).unwrap();
    let addr = closed_tcp_addr().with_p2p(dead).unwrap();
    let config = NetConfig { bootstrap: vec![addr], min_peers: 1, bootstrap_interval_ms: 100, ..config() };
    let a = start(68, config).await;
    wait_for_metrics(&a.handle, "repeated bootstrap", |metrics| {
        metrics.bootstrap_runs >= 2 && metrics.dials_failed >= 2
    })
    .await;
    let info = a.handle.peers().await.into_iter().find(|info| info.peer == peer(69)).expect("tracked");
    assert!(info.attempts >= 2 && info.successes == 0);
}

#[tokio::test]
async fn a_request_dials_a_known_peer_that_restarted() {
    let listen = closed_tcp_addr();
    let a_config = || NetConfig { listen: vec![listen.clone()], ..config() };
    let a = start(70, a_config()).await;
    let mut b = start_with_bootstrap(71, config(), &[&a]).await;
    expect_peer_up(&mut b, a.peer).await;
    a.handle.shutdown().await;
    expect_event(&mut b, "peer down", |event| *event == TransportEvent::PeerDown(a.peer)).await;

    // A comes back on the same address; B is not connected and must dial it for the request.
    let mut a = start(70, a_config()).await;
    b.transport.request(a.peer, RequestId(1), b"are you back".to_vec(), Duration::from_secs(15));
    let request = expect_event(&mut a, "request", |event| matches!(event, TransportEvent::Request { .. })).await;
    let TransportEvent::Request { from, id, .. } = request else { unreachable!() };
    a.transport.respond(from, id, b"yes".to_vec());
    // The connection the request opened comes up first, then the answer arrives over it.
    expect_peer_up(&mut b, a.peer).await;
    let response = expect_event(&mut b, "response", |event| matches!(event, TransportEvent::Response { .. })).await;
    assert_eq!(response, TransportEvent::Response { id: RequestId(1), bytes: b"yes".to_vec() });
}

#[tokio::test]
async fn spawn_with_mdns_enabled_starts() {
    let node = start(72, NetConfig { enable_mdns: true, ..config() }).await;
    assert!(!node.addrs.is_empty());
}

#[tokio::test]
async fn bad_bootstrap_address_is_refused_at_spawn() {
    let config = NetConfig { bootstrap: vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()], ..config() };
    let error = rhizome_net::spawn(secret(67), config).expect_err("refused");
    assert!(matches!(error, rhizome_net::NetError::BadMultiaddr(_)));
}

trait NextEvent {
    async fn transport_next(&mut self) -> Option<TransportEvent>;
}

impl NextEvent for TestNode {
    async fn transport_next(&mut self) -> Option<TransportEvent> {
        tokio::time::timeout(PATIENCE, self.transport.next_event()).await.expect("transport answers")
    }
}
