//! Publishing (with the retry queue for topics without peers) and receiving gossip.

use super::SwarmTask;
use crate::identity::{context_of_topic, context_topic, to_core_peer_id};
use crate::metrics::{add, bump};
use crate::retry_queue::HeldPublish;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError};
use rhizome_core::ContextId;
use rhizome_node::{GossipToken, TransportEvent};

/// What one attempt to publish came to.
enum Attempt {
    Sent,
    /// No subscribed peer, or every subscribed peer's queue is full: worth retrying later.
    NoPeers,
    /// Will never work (duplicate, too large, signing failure); already counted.
    Dropped,
}

impl SwarmTask {
    /// Publishes now, or holds the message until a peer subscribes.
    pub(super) fn publish(&mut self, context: ContextId, bytes: Vec<u8>) {
        if bytes.len() > self.config.max_gossip_message_bytes {
            bump(&self.counters.publish_dropped_too_large);
            return;
        }
        match self.try_publish(&context, &bytes) {
            Attempt::Sent | Attempt::Dropped => {}
            Attempt::NoPeers => {
                bump(&self.counters.publish_no_peers);
                let now_ms = self.now_ms();
                let outcome = self.retry.push(context, bytes, now_ms);
                if outcome.queued {
                    bump(&self.counters.publish_queued);
                } else {
                    bump(&self.counters.publish_dropped_queue_full);
                }
                add(&self.counters.publish_dropped_queue_full, outcome.evicted as u64);
            }
        }
    }

    fn try_publish(&mut self, context: &ContextId, bytes: &[u8]) -> Attempt {
        // gossipsub consumes the payload even when it refuses it, so it gets a copy: the
        // original may have to wait in the retry queue.
        match self.swarm.behaviour_mut().gossipsub.publish(context_topic(context), bytes.to_vec()) {
            Ok(_) => {
                bump(&self.counters.gossip_published);
                Attempt::Sent
            }
            Err(PublishError::NoPeersSubscribedToTopic | PublishError::AllQueuesFull(_)) => Attempt::NoPeers,
            Err(PublishError::Duplicate) => {
                bump(&self.counters.publish_duplicate);
                Attempt::Dropped
            }
            Err(PublishError::MessageTooLarge) => {
                bump(&self.counters.publish_dropped_too_large);
                Attempt::Dropped
            }
            Err(error) => {
                tracing::warn!(%context, %error, "publish failed");
                bump(&self.counters.publish_failed);
                Attempt::Dropped
            }
        }
    }

    /// Retries held publishes (of one context, or all), after dropping the ones too old.
    pub(super) fn retry_publishes(&mut self, context: Option<ContextId>) {
        let expired = self.retry.expire(self.now_ms());
        add(&self.counters.publish_dropped_too_old, expired as u64);
        let mut still_waiting: Vec<HeldPublish> = Vec::new();
        let mut contexts_without_peers: Vec<ContextId> = Vec::new();
        for held in self.retry.take(context) {
            // Once a context found no peer, its later messages will not either this round.
            if contexts_without_peers.contains(&held.context) {
                still_waiting.push(held);
                continue;
            }
            match self.try_publish(&held.context, &held.bytes) {
                Attempt::Sent => bump(&self.counters.publish_retried),
                Attempt::Dropped => {}
                Attempt::NoPeers => {
                    contexts_without_peers.push(held.context);
                    still_waiting.push(held);
                }
            }
        }
        self.retry.restore(still_waiting);
    }

    pub(super) fn on_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message { propagation_source, message_id, message } => {
                self.health.record_seen(propagation_source, self.now_ms());
                let acceptance = self.accept_gossip(message);
                self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    acceptance,
                );
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::debug!(peer = %peer_id, %topic, "peer subscribed");
                if let Some(context) = context_of_topic(&topic) {
                    if self.retry.has_context(&context) {
                        self.retry_publishes(Some(context));
                    }
                }
            }
            _ => {}
        }
    }

    /// Checks a received message and hands it to the node. Valid messages are accepted (and so
    /// relayed) even if the node's queue is full: other peers still need them.
    fn accept_gossip(&mut self, message: gossipsub::Message) -> MessageAcceptance {
        if message.data.len() > self.config.max_gossip_message_bytes {
            bump(&self.counters.gossip_too_large);
            return MessageAcceptance::Reject;
        }
        // The source, not the relaying neighbour: the node asks the publisher for parents and
        // treats a heartbeat as evidence about the publisher.
        let Some(from) = message.source.as_ref().and_then(to_core_peer_id) else {
            bump(&self.counters.gossip_bad_source);
            return MessageAcceptance::Reject;
        };
        let Some(context) = context_of_topic(&message.topic) else {
            bump(&self.counters.gossip_unknown_topic);
            return MessageAcceptance::Ignore;
        };
        if self
            .events
            .push(TransportEvent::Gossip { from, context, bytes: message.data, token: GossipToken::default() })
            .is_ok()
        {
            bump(&self.counters.gossip_received);
        }
        MessageAcceptance::Accept
    }
}
