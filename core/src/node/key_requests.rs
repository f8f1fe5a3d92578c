//! Asking members for a key this node was handed but cannot open.
//!
//! A membership delta wraps each key to each recipient, and nobody but the recipient can tell
//! whether its wrap opens. A member could hand one member a wrap that does not: the ledger then
//! lists that member as holding the key, honest writers seal under it, and the member would
//! quarantine everything written under it, and all that follows, for good. So a member that an
//! applied delta lists as a recipient of a key it does not hold asks another recipient for it,
//! point to point (`SyncRequestV2::Key`), at every sync tick until it holds it. The answer is
//! the key wrapped from the answering member to the asker, checked like any wrap: its key id
//! must be the one asked for. A member answers only a current member the ledger counts among
//! the key's recipients, so a request never hands a key to anyone the group did not give it to.

use super::requests::Purpose;
use super::{Node, PeerId};
use crate::applier::Applier;
use crate::ids::{AuthorKey, ContextId};
use crate::seal::{unwrap_key, wrap_key, KeyEpoch, KeyId};
use crate::wire::{SyncRequestV2, SyncResponse, SyncResponseV2};

/// Keys one context asks for per sync tick at most: each answer costs the answering member an
/// X25519 agreement, and a node missing many keys catches up over a few ticks.
pub(crate) const MAX_KEY_REQUESTS_PER_TICK: usize = 4;

/// One key asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyWanted {
    pub(crate) context: ContextId,
    pub(crate) epoch: KeyEpoch,
    pub(crate) key_id: KeyId,
}

impl Node {
    /// The keys of `context` this node needs and lacks although applied deltas handed them
    /// to it: those quarantined deltas wait for, and those the current view seals under. Only
    /// keys some delta was admitted under (or will be) count, so junk keys a member lists us
    /// for in grants are never asked for and cannot crowd the ones that matter out.
    fn missing_keys(&self, context: &ContextId) -> Vec<(KeyEpoch, KeyId, Vec<AuthorKey>)> {
        let Some(replica) = self.replicas.get(context) else { return Vec::new() };
        let dag = &replica.dag;
        if dag.keyring().len() >= self.config.limits.max_keys_per_context {
            // A key answered now could not be kept: asking would cost a member an agreement at
            // every tick for nothing (the ring counts what it refused).
            return Vec::new();
        }
        let view = dag.members();
        let mut needed = dag.keys_awaited();
        needed.extend(view.member_keys().map(|key_id| (view.epoch(), *key_id)));
        needed
            .into_iter()
            .filter(|(epoch, key_id)| !dag.keyring().holds(*epoch, key_id))
            .filter_map(|(epoch, key_id)| {
                let recipients = dag.membership().recipients(epoch, &key_id)?;
                recipients.contains(&self.author).then(|| {
                    let others = recipients.iter().filter(|key| **key != self.author).copied().collect();
                    (epoch, key_id, others)
                })
            })
            .collect()
    }

    /// Asks a connected member for each key this node lacks (newest first, at most
    /// [`MAX_KEY_REQUESTS_PER_TICK`] per context), unless a request for it is in flight. Keys
    /// no connected member could answer are passed over before the cap applies.
    pub(super) fn request_missing_keys(&mut self) {
        let contexts: Vec<ContextId> = self.replicas.keys().copied().collect();
        for context in contexts {
            let missing = self.missing_keys(&context);
            let mut asked = 0;
            for (epoch, key_id, holders) in missing.into_iter().rev() {
                if asked == MAX_KEY_REQUESTS_PER_TICK {
                    break;
                }
                let wanted = KeyWanted { context, epoch, key_id };
                if self.requests.has_key_request(&wanted) {
                    continue;
                }
                let Some(peer) = self.choose_key_holder(&context, &holders) else { continue };
                asked += 1;
                self.metrics.key_requests_sent += 1;
                let request = SyncRequestV2::Key { context, epoch, key_id };
                self.send_request_v2(peer, request, Purpose::Key(wanted));
            }
        }
    }

    /// A connected member peer among `holders`, at random.
    fn choose_key_holder(&mut self, context: &ContextId, holders: &[AuthorKey]) -> Option<PeerId> {
        let replica = self.replicas.get(context)?;
        let candidates: Vec<PeerId> = holders
            .iter()
            .map(|key| PeerId::from_bytes(*key.as_bytes()))
            .filter(|peer| self.connected.contains(peer) && replica.is_member_peer(peer))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let index = self.random_index(candidates.len());
        Some(candidates[index])
    }

    /// Answers a member's key request: the key wrapped to it, if we hold the key and the
    /// requester is a current member that an applied delta handed it to.
    pub(super) fn serve_key_request(&mut self, from: PeerId, request: SyncRequestV2) -> Vec<u8> {
        let SyncRequestV2::Key { context, epoch, key_id } = request;
        let requester = AuthorKey::from_bytes(*from.as_bytes());
        let wrap = self.replicas.get(&context).and_then(|replica| {
            let dag = &replica.dag;
            let entitled = dag.members().contains(&requester)
                && dag
                    .membership()
                    .recipients(epoch, &key_id)
                    .is_some_and(|recipients| recipients.contains(&requester));
            let key = dag.keyring().get(epoch, &key_id).filter(|_| entitled)?;
            wrap_key(&self.keypair, &requester, &context, key).ok()
        });
        if wrap.is_some() {
            self.metrics.key_requests_served += 1;
        } else {
            self.metrics.key_requests_refused += 1;
        }
        SyncResponse::encode_v2(SyncResponseV2::Key { context, epoch, key_id, wrap })
    }

    /// Takes the answer to our key request: learns the key if the wrap opens to the one asked
    /// for, and retries what waited on it.
    pub(super) fn on_key_answer(
        &mut self,
        app: &mut dyn Applier,
        peer: PeerId,
        wanted: KeyWanted,
        answer: SyncResponseV2,
    ) {
        let SyncResponseV2::Key { context, epoch, key_id, wrap } = answer;
        let sender = AuthorKey::from_bytes(*peer.as_bytes());
        let key = wrap
            .filter(|_| (context, epoch, key_id) == (wanted.context, wanted.epoch, wanted.key_id))
            .and_then(|wrap| unwrap_key(&self.keypair, &sender, &context, &wrap).ok())
            .filter(|key| key.epoch() == epoch && key.id() == key_id);
        let Some(key) = key else {
            self.metrics.key_answers_useless += 1;
            return;
        };
        if self.insert_key(&context, key) {
            self.retry_after_new_key(app, &context);
        }
    }
}
