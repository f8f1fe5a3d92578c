//! Shorthands for the local commands, for tests and the in-process harnesses: each one feeds its
//! [`Input`] through [`Node::handle_input`] and turns the [`Handled`] answer into a `Result`.
//! Shipped drivers feed the inputs themselves, through their observer, so that a trace sees
//! every command; these are compiled only with the `testing` feature.

use super::{Handled, Input, Node, NodeError};
use crate::applier::Applier;
use crate::ids::{AuthorKey, ContextId, DeltaId};
use crate::time::Clocks;

impl<A: Applier> Node<A> {
    /// Starts replicating `context` ([`Input::Join`]), or replaces its member list if it is
    /// joined already ([`Input::SetMembers`]). Uses the node's latest time.
    pub fn join_context(
        &mut self,
        context: ContextId,
        members: impl IntoIterator<Item = AuthorKey>,
    ) -> Result<(), NodeError> {
        let members = members.into_iter().collect();
        let input = if self.replicas.contains_key(&context) {
            Input::SetMembers { context, members }
        } else {
            Input::Join { context, members }
        };
        let now = Clocks::new(self.now, self.wall_ms);
        match self.handle_input(now, input) {
            Handled::Refused(error) => Err(error),
            _ => Ok(()),
        }
    }

    /// Stops replicating `context` ([`Input::Leave`]). Returns false if it was unknown.
    pub fn leave_context(&mut self, context: &ContextId) -> bool {
        let now = Clocks::new(self.now, self.wall_ms);
        self.handle_input(now, Input::Leave { context: *context }) == Handled::Left
    }

    /// Authors a delta with `payload` on top of the current heads ([`Input::LocalWrite`] with
    /// no basis).
    pub fn local_delta(
        &mut self,
        now: impl Into<Clocks>,
        context: ContextId,
        payload: Vec<u8>,
    ) -> Result<DeltaId, NodeError> {
        match self.handle_input(now, Input::LocalWrite { context, payload, basis: None }) {
            Handled::Authored(id) => Ok(id),
            Handled::Refused(error) => Err(error),
            other => unreachable!("a local write is authored or refused: {other:?}"),
        }
    }

    /// Tries the context's quarantined deltas again ([`Input::RetryQuarantined`]).
    pub fn retry_quarantined(
        &mut self,
        now: impl Into<Clocks>,
        context: &ContextId,
    ) -> Result<Vec<DeltaId>, NodeError> {
        match self.handle_input(now, Input::RetryQuarantined { context: *context }) {
            Handled::Retried(applied) => Ok(applied),
            Handled::Refused(error) => Err(error),
            other => unreachable!("a retry retries or is refused: {other:?}"),
        }
    }
}
