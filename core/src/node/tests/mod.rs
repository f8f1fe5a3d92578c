//! Node behaviour tests: single nodes and hand-driven pairs here, and whole clusters on the
//! virtual-clock harness in `cluster.rs`.

mod cluster;
mod evidence;
mod ingest;
mod members;
mod sealing;
mod sync;
mod timers;
mod vouching;

use crate::testing::TestNode;
use crate::testing::{DeltaFactory, KvCounterApplier, KvOp};
use crate::wire::{GossipMessage, GossipV1, SyncRequest, SyncRequestV1, SyncResponse, SyncResponseV1};
use crate::{Config, ContextId, DeltaRef, InboundRequestId, Input, Keypair, Output, PeerId, RequestId, Timestamp};

pub(super) const T0: Timestamp = Timestamp::from_secs(1_000_000);

/// The test context's genesis: key 1 is its admin, keys 2..=4 members.
pub(super) fn genesis() -> DeltaRef {
    crate::testing::genesis_of(&key(1), (2..=4).map(|k| key(k).author_key()), 0)
}

pub(super) fn context() -> ContextId {
    genesis().context
}

pub(super) fn key(n: u8) -> Keypair {
    Keypair::from_secret_bytes([n; 32])
}

/// A node with key `n`, joined to the test context whose members are keys 1..=4.
pub(super) fn node(n: u8, config: Config) -> TestNode<KvCounterApplier> {
    let mut node = TestNode::new(config, key(n), u64::from(n), KvCounterApplier::default(), T0);
    node.join_context(&genesis()).unwrap();
    // Joining applied the genesis; its event is of no interest to the tests.
    drain(&mut node);
    node
}

/// A factory signing as key `n`, its parentless deltas on the genesis.
pub(super) fn author(n: u8) -> DeltaFactory {
    DeltaFactory::signed_on(&genesis(), [n; 32])
}

/// A delta by key `n` on `parents` at `hlc`, its payload sealed under the test context's key.
pub(super) fn sealed_delta(n: u8, parents: Vec<crate::DeltaId>, hlc: crate::Hlc, payload: &[u8]) -> crate::CausalDelta {
    let (author, context) = (key(n).author_key(), context());
    let header = crate::seal::SealHeader { context: &context, author: &author, parents: &parents, hlc: &hlc };
    let sealed = crate::seal::seal_payload(&crate::testing::test_context_key(), &header, &[0; 32], payload).encode();
    crate::CausalDelta::new_signed(&key(n), context, parents, hlc, sealed)
}

pub(super) fn set(key: &str, value: &str) -> Vec<u8> {
    KvOp::encode(&[KvOp::Set { key: key.as_bytes().to_vec(), value: value.as_bytes().to_vec() }])
}

pub(super) fn gossip(delta: &DeltaRef) -> Vec<u8> {
    GossipMessage::encode_v1(GossipV1::Delta(delta.clone()))
}

pub(super) fn drain(node: &mut TestNode<KvCounterApplier>) -> Vec<Output> {
    std::iter::from_fn(|| node.poll_output()).collect()
}

pub(super) fn requests(outputs: &[Output]) -> Vec<(PeerId, RequestId, SyncRequestV1)> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Request { to, request_id, bytes, .. } => {
                Some((*to, *request_id, SyncRequest::decode(bytes, &Default::default()).unwrap()))
            }
            _ => None,
        })
        .collect()
}

/// Serves every request `client` has outstanding in `outputs` from `server`, feeding the
/// responses back, until the client sends no more requests. Returns the client's other outputs.
pub(super) fn exchange(
    client: &mut TestNode<KvCounterApplier>,
    server: &mut TestNode<KvCounterApplier>,
    mut outputs: Vec<Output>,
    now: Timestamp,
) -> Vec<Output> {
    let mut rest = Vec::new();
    for _ in 0..10_000 {
        let mut sent_any = false;
        for output in std::mem::take(&mut outputs) {
            match output {
                Output::Request { to, request_id, bytes, .. } if to == server.peer_id() => {
                    sent_any = true;
                    server.handle_input(
                        now,
                        Input::Request { from: client.peer_id(), request_id: InboundRequestId(request_id.0), bytes },
                    );
                    for reply in drain(server) {
                        if let Output::Respond { bytes, .. } = reply {
                            client.handle_input(now, Input::Response { request_id, bytes });
                        }
                    }
                    outputs.extend(drain(client));
                }
                other => rest.push(other),
            }
        }
        if !sent_any {
            return rest;
        }
    }
    panic!("exchange did not settle");
}

pub(super) fn response_of(outputs: &[Output]) -> SyncResponseV1 {
    outputs
        .iter()
        .find_map(|output| match output {
            Output::Respond { bytes, .. } => Some(SyncResponse::decode(bytes, &Default::default()).unwrap()),
            _ => None,
        })
        .expect("a response")
}
