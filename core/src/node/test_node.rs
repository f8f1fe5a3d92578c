//! [`TestNode`]: a [`Node`] with the applier a driver would hand it at every input, and
//! shorthands for the local commands. For tests and the in-process harnesses: shipped drivers
//! own their applier beside the node and feed every input themselves, through their observer,
//! so that a trace sees every command. Compiled only with the `testing` feature.

use super::{Handled, Input, Node, NodeError, RestoreError};
use crate::applier::Applier;
use crate::config::Config;
use crate::delta::CausalDelta;
use crate::identity::Keypair;
use crate::ids::{AuthorKey, ContextId, DeltaId, RootHash};
use crate::time::Clocks;
use std::sync::Arc;

/// A node and its application state, owned together, so a test cannot hand the node another
/// state than the one its DAG describes. Derefs (read-only) to the [`Node`] for its accessors;
/// [`TestNode::handle_input`] lends the applier to the node for the input.
#[derive(Debug)]
pub struct TestNode<A: Applier> {
    node: Node,
    applier: A,
}

impl<A: Applier> TestNode<A> {
    /// A node with no contexts (see [`Node::new`]) and its applier.
    pub fn new(config: Config, keypair: Keypair, rng_seed: u64, applier: A, now: impl Into<Clocks>) -> Self {
        Self { node: Node::new(config, keypair, rng_seed, now), applier }
    }

    /// [`Node::handle_input`] with this node's applier.
    pub fn handle_input(&mut self, now: impl Into<Clocks>, input: Input) -> Handled {
        self.node.handle_input(now, input, &mut self.applier)
    }

    /// [`Node::restore_context`] with this node's applier.
    pub fn restore_context(
        &mut self,
        context: ContextId,
        members: impl IntoIterator<Item = AuthorKey>,
        applied: Vec<crate::dag::RestoredEntry>,
        pending: Vec<Arc<CausalDelta>>,
    ) -> Result<(), RestoreError> {
        self.node.restore_context(&mut self.applier, context, members, applied, pending)
    }

    /// The application state.
    pub fn applier(&self) -> &A {
        &self.applier
    }

    /// The application state, mutable (to run app code, or to corrupt it in a test).
    pub fn applier_mut(&mut self) -> &mut A {
        &mut self.applier
    }

    /// A context's state root, as the applier reports it.
    pub fn root_hash(&self, context: &ContextId) -> RootHash {
        self.applier.root_hash(context)
    }

    /// [`Node::poll_output`].
    pub fn poll_output(&mut self) -> Option<super::Output> {
        self.node.poll_output()
    }

    /// The node's latest clocks: a command given "now" happens at the last input's time.
    fn latest_clocks(&self) -> Clocks {
        Clocks::new(self.node.now, self.node.wall_ms)
    }

    /// Starts replicating the context `genesis` creates ([`Input::Join`] with the genesis and
    /// no bootstrap keys). Uses the node's latest time.
    pub fn join_context(&mut self, genesis: &crate::delta::DeltaRef) -> Result<(), NodeError> {
        let input = Input::Join {
            context: genesis.context,
            genesis: Some(genesis.clone()),
            bootstrap: Vec::new(),
            keys: Vec::new(),
        };
        match self.handle_input(self.latest_clocks(), input) {
            Handled::Refused(error) => Err(error),
            _ => Ok(()),
        }
    }

    /// Changes the member list ([`Input::ChangeMembers`]). Uses the node's latest time.
    pub fn change_members(
        &mut self,
        context: ContextId,
        ops: Vec<crate::membership::MemberOp>,
    ) -> Result<DeltaId, NodeError> {
        self.handle_input(self.latest_clocks(), Input::ChangeMembers { context, ops }).authored()
    }

    /// Stops replicating `context` ([`Input::Leave`]). Returns false if it was unknown.
    pub fn leave_context(&mut self, context: &ContextId) -> bool {
        self.handle_input(self.latest_clocks(), Input::Leave { context: *context }) == Handled::Left
    }

    /// Authors a delta with `payload` on top of the current heads ([`Input::LocalWrite`] with
    /// no basis).
    pub fn local_delta(
        &mut self,
        now: impl Into<Clocks>,
        context: ContextId,
        payload: Vec<u8>,
    ) -> Result<DeltaId, NodeError> {
        self.handle_input(now, Input::LocalWrite { context, payload, basis: None }).authored()
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

impl<A: Applier> std::ops::Deref for TestNode<A> {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.node
    }
}

// Test support on a core type: only harnesses turn answers into results this way (the node
// loop maps each answer to its own API error instead).
impl Handled {
    /// A local write's answer as a result: the delta made, or why not. Panics on the answer to
    /// any other input (a harness bug).
    pub fn authored(self) -> Result<DeltaId, NodeError> {
        match self {
            Handled::Authored(id) => Ok(id),
            Handled::Refused(error) => Err(error),
            other => unreachable!("a local write is authored or refused: {other:?}"),
        }
    }
}
