//! One context's replica: everything a node keeps for one context. The [`super::Node`] holds
//! what spans contexts (identity, clock, connections, the request and timer tables, shared
//! budgets); leaving a context drops its replica and the timers and requests that name it.

use crate::dag::{DagLimits, DagStore};
use crate::gossip_buffer::GossipBuffer;
use crate::ids::{AuthorKey, ContextId, DeltaId, PeerId, RootHash};
use crate::limits::Limits;
use crate::sync::snapshot::ServedSnapshots;
use crate::sync::{SingleVoucherAdoption, SyncSession, SyncTrack, Vouches};
use crate::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

/// The last thing a peer told us about a context.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerView {
    pub(crate) last_seen_at: Timestamp,
    pub(crate) heads: Vec<DeltaId>,
    pub(crate) root: Option<RootHash>,
    /// The highest heartbeat sequence taken from this peer: an older or equal one is a replay
    /// (gossipsub's seen cache forgets ids after a while) and must not roll its view back.
    pub(crate) heartbeat_sequence: u64,
}

/// One context as this node replicates it.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) dag: DagStore,
    /// This node's key.
    own_key: AuthorKey,
    /// Keys trusted as sync peers until the DAG names this node a member: whoever invited it.
    pub(crate) bootstrap: BTreeSet<AuthorKey>,
    pub(crate) peers: BTreeMap<PeerId, PeerView>,
    /// Gossip held while a snapshot session runs.
    pub(crate) buffer: GossipBuffer,
    /// When we last announced our heads outside the heartbeat schedule.
    pub(crate) last_announced_at: Option<Timestamp>,
    /// The running sync session, if any (one per context).
    pub(crate) session: Option<SyncSession>,
    /// Follow-up sessions chained so far (see [`crate::Config::max_sync_follow_ups`]).
    pub(crate) follow_ups: u32,
    /// A peer is ahead and we could not sync with it yet: when we may.
    pub(crate) evidence_due: Option<Timestamp>,
    /// When this context may sync next.
    pub(crate) track: SyncTrack,
    /// Snapshots of this context being served to peers.
    pub(crate) served: ServedSnapshots,
    /// The sequence of this node's last heartbeat in this context (see
    /// [`crate::wire::Heartbeat::sequence`]): one counter per context, as receivers keep one
    /// per context and sender, so many contexts cannot push it past the wall clock.
    pub(crate) heartbeat_sequence: u64,
    /// The latest verified attestation of each member: who vouches for which (heads, root).
    pub(crate) vouches: Vouches,
    /// Set while the state in use was adopted on one member's word (see
    /// [`SingleVoucherAdoption`]).
    pub(crate) single_voucher: Option<SingleVoucherAdoption>,
}

impl Replica {
    pub(crate) fn new(context: ContextId, own_key: AuthorKey, bootstrap: BTreeSet<AuthorKey>, limits: &Limits) -> Self {
        Self {
            dag: DagStore::new(context, DagLimits::from_limits(limits)),
            own_key,
            bootstrap,
            peers: BTreeMap::new(),
            buffer: GossipBuffer::default(),
            last_announced_at: None,
            session: None,
            follow_ups: 0,
            evidence_due: None,
            track: SyncTrack::default(),
            served: ServedSnapshots::default(),
            heartbeat_sequence: 0,
            vouches: Vouches::default(),
            single_voucher: None,
        }
    }

    /// True if a snapshot session runs, so gossip is buffered.
    pub(crate) fn snapshot_running(&self) -> bool {
        self.session.as_ref().is_some_and(|session| session.phase.is_snapshot())
    }

    /// True if `peer`'s key is a member at our heads, or a bootstrap key while the DAG does not
    /// name this node a member yet. A node's peer id is its public key, so the member list
    /// names both who may write and whom we sync with.
    pub(crate) fn is_member_peer(&self, peer: &PeerId) -> bool {
        let key = AuthorKey::from_bytes(*peer.as_bytes());
        let members = self.dag.members();
        members.contains(&key) || (self.bootstrap.contains(&key) && !members.contains(&self.own_key))
    }

    /// How many keys other than ours [`Self::is_member_peer`] accepts: the members at our heads
    /// (and the bootstrap keys while those do not name us). Our own view of who could vouch.
    pub(crate) fn other_member_peers(&self) -> usize {
        let members = self.dag.members();
        let mut count = members.len() - usize::from(members.contains(&self.own_key));
        if !members.contains(&self.own_key) {
            count += self.bootstrap.iter().filter(|key| **key != self.own_key && !members.contains(key)).count();
        }
        count
    }

    /// True if a delta by `author` could be valid here, now or once its parents arrive: a
    /// member of some applied membership delta, or a bootstrap key until the DAG names this
    /// node a member (then the DAG says who writes). Anyone else is refused on
    /// arrival (a genesis excepted: it is checked against the context id).
    pub(crate) fn may_author(&self, author: &AuthorKey) -> bool {
        self.dag.membership().ever_member(author)
            || (self.bootstrap.contains(author) && !self.dag.members().contains(&self.own_key))
    }

    /// Peers in `candidates` whose last reported heads include a delta we neither applied nor
    /// quarantined: syncing with one of them is sure to bring something.
    pub(crate) fn peers_ahead(&self, candidates: impl Fn(&PeerId) -> bool) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(peer, view)| {
                candidates(peer)
                    && view.heads.iter().any(|head| !self.dag.is_applied(head) && self.dag.quarantined(head).is_none())
            })
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// Records that `peer` takes part in this context, forgetting the least recently seen
    /// peer beyond `max_peers`.
    pub(crate) fn note_peer(&mut self, peer: PeerId, now: Timestamp, max_peers: usize) -> &mut PeerView {
        if !self.peers.contains_key(&peer) && self.peers.len() >= max_peers.max(1) {
            if let Some(stalest) =
                self.peers.iter().min_by_key(|(id, view)| (view.last_seen_at, **id)).map(|(id, _)| *id)
            {
                self.peers.remove(&stalest);
            }
        }
        let view = self.peers.entry(peer).or_default();
        view.last_seen_at = now;
        view
    }
}
