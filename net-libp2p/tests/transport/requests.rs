//! Request/response between real transports on loopback.

use crate::common::*;
use rhizome_core::{RequestFailure, RequestId};
use rhizome_net::NetConfig;
use rhizome_node::{Transport, TransportEvent};
use std::time::Duration;

const SHORT: Duration = Duration::from_secs(15);

fn failed(event: &TransportEvent, wanted: RequestId) -> Option<RequestFailure> {
    match event {
        TransportEvent::RequestFailed { id, reason } if *id == wanted => Some(*reason),
        _ => None,
    }
}

#[tokio::test]
async fn request_and_response_round_trip() {
    let mut a = start(41, config()).await;
    let mut b = start_with_bootstrap(42, config(), &[&a]).await;
    expect_peer_up(&mut a, b.peer).await;

    a.transport.request(b.peer, RequestId(7), b"ping".to_vec(), SHORT);
    let request = expect_event(&mut b, "request", |event| matches!(event, TransportEvent::Request { .. })).await;
    let TransportEvent::Request { from, id, bytes } = request else { unreachable!() };
    assert_eq!((from, bytes.as_slice()), (a.peer, &b"ping"[..]));
    b.transport.respond(from, id, b"pong".to_vec());

    let response = expect_event(&mut a, "response", |event| matches!(event, TransportEvent::Response { .. })).await;
    assert_eq!(response, TransportEvent::Response { id: RequestId(7), bytes: b"pong".to_vec() });
    let metrics = a.handle.metrics();
    assert_eq!((metrics.requests_sent, metrics.responses_received), (1, 1));
    wait_for_metrics(&b.handle, "response sent", |metrics| {
        metrics.requests_received == 1 && metrics.responses_sent == 1
    })
    .await;
    let peers = a.handle.peers().await;
    let b_info = peers.iter().find(|info| info.peer == b.peer).expect("B is known");
    assert!(b_info.connected && b_info.healthy);
    assert!(b_info.successes >= 1);
}

#[tokio::test]
async fn unanswered_request_fails_with_timeout_at_its_own_deadline_and_a_late_answer_is_ignored() {
    let mut a = start(43, config()).await;
    let mut b = start_with_bootstrap(44, config(), &[&a]).await;
    expect_peer_up(&mut a, b.peer).await;

    let sent_at = tokio::time::Instant::now();
    a.transport.request(b.peer, RequestId(1), b"slow".to_vec(), Duration::from_millis(300));
    let request = expect_event(&mut b, "request", |event| matches!(event, TransportEvent::Request { .. })).await;
    let failure = expect_event(&mut a, "timeout", |event| failed(event, RequestId(1)).is_some()).await;
    assert_eq!(failed(&failure, RequestId(1)), Some(RequestFailure::Timeout));
    assert!(sent_at.elapsed() >= Duration::from_millis(300));
    assert_eq!(a.handle.metrics().requests_failed_timeout, 1);

    let TransportEvent::Request { from, id, .. } = request else { unreachable!() };
    b.transport.respond(from, id, b"too late".to_vec());
    wait_for_metrics(&a.handle, "late response ignored", |metrics| metrics.responses_late == 1).await;
    assert_eq!(a.transport.try_next_event(), None, "no Response after the RequestFailed");
}

#[tokio::test]
async fn request_to_a_peer_without_addresses_fails_unreachable() {
    let mut a = start(45, config()).await;
    a.transport.request(peer(46), RequestId(3), b"anyone?".to_vec(), SHORT);
    let failure = expect_event(&mut a, "failure", |event| failed(event, RequestId(3)).is_some()).await;
    assert_eq!(failed(&failure, RequestId(3)), Some(RequestFailure::Unreachable));
    assert_eq!(a.handle.metrics().requests_failed_unreachable, 1);
}

#[tokio::test]
async fn request_to_a_peer_whose_address_is_dead_fails_unreachable() {
    let dead = rhizome_net::to_libp2p_peer_id(&peer(48)).unwrap();
    let addr = closed_tcp_addr().with_p2p(dead).unwrap();
    let mut a = start(47, NetConfig { bootstrap: vec![addr], ..config() }).await;
    a.transport.request(peer(48), RequestId(4), b"hello?".to_vec(), SHORT);
    let failure = expect_event(&mut a, "failure", |event| failed(event, RequestId(4)).is_some()).await;
    assert_eq!(failed(&failure, RequestId(4)), Some(RequestFailure::Unreachable));
    let peers = a.handle.peers().await;
    let dead_info = peers.iter().find(|info| info.peer == peer(48)).expect("bootstrap peer is tracked");
    assert!(!dead_info.connected);
    assert!(dead_info.attempts >= 1 && dead_info.successes == 0);
}

#[tokio::test]
async fn oversized_request_is_refused_locally_and_by_the_receiver() {
    let mut a = start(51, config()).await;
    let mut b = start_with_bootstrap(52, NetConfig { max_request_bytes: 1_024, ..config() }, &[&a]).await;
    expect_peer_up(&mut a, b.peer).await;

    // B's own bound refuses before sending.
    b.transport.request(a.peer, RequestId(1), vec![0; 2_048], SHORT);
    let failure = expect_event(&mut b, "local refusal", |event| failed(event, RequestId(1)).is_some()).await;
    assert_eq!(failed(&failure, RequestId(1)), Some(RequestFailure::Unreachable));
    assert_eq!(b.handle.metrics().requests_too_large, 1);

    // A allows it, B's codec refuses it on arrival and never surfaces it.
    a.transport.request(b.peer, RequestId(2), vec![0; 2_048], SHORT);
    let failure = expect_event(&mut a, "remote refusal", |event| failed(event, RequestId(2)).is_some()).await;
    assert_eq!(failed(&failure, RequestId(2)), Some(RequestFailure::Unreachable));
    wait_for_metrics(&b.handle, "inbound too large", |metrics| metrics.inbound_requests_too_large == 1).await;
    assert_eq!(b.handle.metrics().requests_received, 0);
}

#[tokio::test]
async fn oversized_response_is_refused_and_the_requester_fails_fast() {
    let mut a = start(53, config()).await;
    let mut b = start_with_bootstrap(54, NetConfig { max_response_bytes: 1_024, ..config() }, &[&a]).await;
    expect_peer_up(&mut a, b.peer).await;

    a.transport.request(b.peer, RequestId(5), b"give me a lot".to_vec(), SHORT);
    let request = expect_event(&mut b, "request", |event| matches!(event, TransportEvent::Request { .. })).await;
    let TransportEvent::Request { from, id, .. } = request else { unreachable!() };
    b.transport.respond(from, id, vec![0; 2_048]);
    let failure = expect_event(&mut a, "failure", |event| failed(event, RequestId(5)).is_some()).await;
    assert_eq!(failed(&failure, RequestId(5)), Some(RequestFailure::Unreachable));
    assert_eq!(b.handle.metrics().responses_too_large, 1);
}

#[tokio::test]
async fn requests_over_the_per_peer_limit_are_refused_and_counted() {
    let mut a = start(55, config()).await;
    let mut b = start_with_bootstrap(56, NetConfig { max_inbound_requests_per_peer: 1, ..config() }, &[&a]).await;
    expect_peer_up(&mut a, b.peer).await;

    a.transport.request(b.peer, RequestId(1), b"first".to_vec(), SHORT);
    expect_event(&mut b, "first request", |event| matches!(event, TransportEvent::Request { .. })).await;
    a.transport.request(b.peer, RequestId(2), b"second".to_vec(), SHORT);
    let failure = expect_event(&mut a, "refusal", |event| failed(event, RequestId(2)).is_some()).await;
    assert_eq!(failed(&failure, RequestId(2)), Some(RequestFailure::Unreachable));
    assert_eq!(b.handle.metrics().inbound_refused_over_limit, 1);
    assert_eq!(b.handle.metrics().requests_received, 1);
}

#[tokio::test]
async fn request_round_trip_over_quic() {
    let quic = || NetConfig { listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()], ..config() };
    let mut a = start(57, quic()).await;
    assert!(a.addrs.iter().all(|addr| addr.to_string().contains("/quic-v1/p2p/")));
    let mut b = start_with_bootstrap(58, quic(), &[&a]).await;
    expect_peer_up(&mut a, b.peer).await;

    b.transport.request(a.peer, RequestId(9), b"over quic".to_vec(), SHORT);
    let request = expect_event(&mut a, "request", |event| matches!(event, TransportEvent::Request { .. })).await;
    let TransportEvent::Request { from, id, .. } = request else { unreachable!() };
    a.transport.respond(from, id, b"yes".to_vec());
    let response = expect_event(&mut b, "response", |event| matches!(event, TransportEvent::Response { .. })).await;
    assert_eq!(response, TransportEvent::Response { id: RequestId(9), bytes: b"yes".to_vec() });
}
