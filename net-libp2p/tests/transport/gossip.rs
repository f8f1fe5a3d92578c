//! Gossip between real transports on loopback.

use crate::common::*;
use rhizome_core::ContextId;
use rhizome_net::NetConfig;
use rhizome_node::{Transport, TransportEvent};
use std::time::Duration;

fn gossip_from(event: &TransportEvent, context: ContextId) -> Option<(rhizome_core::PeerId, Vec<u8>)> {
    match event {
        TransportEvent::Gossip { from, context: topic, bytes, .. } if *topic == context => Some((*from, bytes.clone())),
        _ => None,
    }
}

#[tokio::test]
async fn gossip_reaches_a_subscribed_peer_naming_the_publisher() {
    let context = ContextId::hash_of(b"direct");
    let mut a = start(11, config()).await;
    let mut b = start_with_bootstrap(12, config(), &[&a]).await;
    a.transport.subscribe(context);
    b.transport.subscribe(context);
    expect_peer_up(&mut a, b.peer).await;

    a.transport.publish(context, b"hello".to_vec());
    let event = expect_event(&mut b, "gossip", |event| gossip_from(event, context).is_some()).await;
    assert_eq!(gossip_from(&event, context), Some((a.peer, b"hello".to_vec())));
    wait_for_metrics(&b.handle, "gossip received", |metrics| metrics.gossip_received == 1).await;
}

#[tokio::test]
async fn gossip_relayed_by_a_middle_node_names_the_publisher_not_the_relay() {
    // A line A - B - C: no Kademlia, so A and C only know B and never connect to each other.
    let line = || NetConfig { enable_kademlia: false, ..config() };
    let context = ContextId::hash_of(b"line");
    let mut b = start(21, line()).await;
    let mut a = start_with_bootstrap(22, line(), &[&b]).await;
    let mut c = start_with_bootstrap(23, line(), &[&b]).await;
    for node in [&mut a, &mut b, &mut c] {
        node.transport.subscribe(context);
    }
    expect_peers_up(&mut b, &[a.peer, c.peer]).await;

    // Publish until C hears one: the first may go out before B's mesh includes C.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (from, bytes) = loop {
        assert!(tokio::time::Instant::now() < deadline, "C never received A's gossip");
        let round = a.handle.metrics().gossip_published + a.handle.metrics().publish_queued;
        a.transport.publish(context, format!("from a #{round}").into_bytes());
        let heard = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                match c.transport.next_event().await {
                    Some(event) => {
                        if let Some(gossip) = gossip_from(&event, context) {
                            return gossip;
                        }
                    }
                    None => panic!("C closed"),
                }
            }
        })
        .await;
        if let Ok(gossip) = heard {
            break gossip;
        }
    };
    assert_eq!(from, a.peer, "the source is the publisher A, not the relay B");
    assert!(bytes.starts_with(b"from a #"));

    let a_peers = a.handle.peers().await;
    assert!(a_peers.iter().all(|info| info.peer != c.peer || !info.connected), "A and C must not be connected");
    assert!(a_peers.iter().any(|info| info.peer == b.peer && info.connected));
}

#[tokio::test]
async fn publish_without_peers_is_queued_and_delivered_once_a_peer_subscribes() {
    let context = ContextId::hash_of(b"queued");
    let mut a = start(31, config()).await;
    a.transport.subscribe(context);
    a.transport.publish(context, b"early".to_vec());
    let metrics = wait_for_metrics(&a.handle, "publish queued", |metrics| metrics.publish_queued == 1).await;
    assert_eq!(metrics.publish_no_peers, 1);
    assert_eq!(metrics.gossip_published, 0);

    let mut b = start_with_bootstrap(32, config(), &[&a]).await;
    b.transport.subscribe(context);
    let event = expect_event(&mut b, "queued gossip", |event| gossip_from(event, context).is_some()).await;
    assert_eq!(gossip_from(&event, context), Some((a.peer, b"early".to_vec())));
    let metrics = a.handle.metrics();
    assert_eq!(metrics.publish_retried, 1);
    assert_eq!(metrics.gossip_published, 1);
    assert_eq!(metrics.publish_dropped_queue_full + metrics.publish_dropped_too_old, 0);
}

#[tokio::test]
async fn held_publish_older_than_its_max_age_is_dropped_and_counted() {
    let context = ContextId::hash_of(b"aged");
    let config = NetConfig { max_publish_retry_age_ms: 50, publish_retry_interval_ms: 100, ..config() };
    let mut a = start(33, config).await;
    a.transport.publish(context, b"stale".to_vec());
    wait_for_metrics(&a.handle, "publish dropped for age", |metrics| metrics.publish_dropped_too_old == 1).await;
    assert_eq!(a.handle.metrics().publish_queued, 1);
}

#[tokio::test]
async fn oversized_publish_is_refused_and_counted() {
    let context = ContextId::hash_of(b"big");
    let mut a = start(34, NetConfig { max_gossip_message_bytes: 100, ..config() }).await;
    a.transport.publish(context, vec![0; 101]);
    let metrics =
        wait_for_metrics(&a.handle, "too large counted", |metrics| metrics.publish_dropped_too_large == 1).await;
    assert_eq!(metrics.publish_queued, 0);
}
