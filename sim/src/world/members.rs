//! Membership events: the admin (node 0, the genesis author) adds or removes a member at the
//! scenario's times, whatever partition it is in. The change is authored locally and spreads
//! when the network lets it.

use super::adversary::Adversaries;
use super::cluster::Cluster;
use crate::record::SharedRecorder;
use crate::roles::{MemberEvent, MemberEventKind};
use rhizome_core::{MemberOp, Role};

/// Authors `event` on node 0 and records the delta (a removal also for the forgers).
pub(super) async fn apply(
    event: &MemberEvent,
    cluster: &Cluster,
    adversaries: &Adversaries,
    recorder: &SharedRecorder,
) {
    let key = cluster.keypair(event.node).author_key();
    let op = match event.kind {
        MemberEventKind::AddMember => MemberOp::Add(key, Role::Member),
        MemberEventKind::RemoveMember => MemberOp::Remove(key),
    };
    let result = match cluster.slots[0].answering() {
        Some(admin) => admin.change_members(cluster.shared.context, vec![op]).await.map_err(|error| error.to_string()),
        None => Err("the admin (n0) is down or paused".to_owned()),
    };
    let now = cluster.shared.start.elapsed();
    match &result {
        Ok(id) => {
            recorder.note(now, format!("membership: {} as {id}", event.label()));
            if event.kind == MemberEventKind::RemoveMember {
                adversaries.removals.lock().unwrap_or_else(|p| p.into_inner()).insert(event.node, *id);
            }
        }
        Err(error) => recorder.note(now, format!("membership: {} failed: {error}", event.label())),
    }
    adversaries.events.lock().unwrap_or_else(|p| p.into_inner()).push((event.label(), result));
}
