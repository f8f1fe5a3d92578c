//! Builds deltas for tests and benches.

use crate::delta::{CausalDelta, DeltaRef};
use crate::hlc::Hlc;
use crate::identity::{Keypair, Signature};
use crate::ids::{ContextId, DeltaId};
use std::sync::Arc;

/// Makes deltas for one context and author, with a counter as the HLC.
#[derive(Debug)]
pub struct DeltaFactory {
    keypair: Keypair,
    context: ContextId,
    counter: u64,
    sign: bool,
    /// The parent of the deltas made without parents: the context's genesis, if any.
    root: Option<DeltaId>,
}

impl DeltaFactory {
    /// A factory whose deltas are properly signed (about 20 µs each).
    pub fn signed(context: ContextId, secret: [u8; 32]) -> Self {
        Self { keypair: Keypair::from_secret_bytes(secret), context, counter: 0, sign: true, root: None }
    }

    /// A signing factory for the context `genesis` creates: deltas asked for without parents
    /// get the genesis as their parent, so they descend from it as every valid delta must.
    pub fn signed_on(genesis: &DeltaRef, secret: [u8; 32]) -> Self {
        Self { root: Some(genesis.id), ..Self::signed(genesis.context, secret) }
    }

    /// A factory whose deltas have correct ids but zero signatures: for DAG-level tests and
    /// benches, which trust their input (verification happens before the DAG).
    pub fn unsigned(context: ContextId) -> Self {
        Self { keypair: Keypair::from_secret_bytes([0x5a; 32]), context, counter: 0, sign: false, root: None }
    }

    /// The author key of the deltas made.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// A delta with these parents and payload.
    pub fn make(&mut self, parents: &[DeltaId], payload: Vec<u8>) -> DeltaRef {
        let root: Vec<DeltaId> = self.root.into_iter().collect();
        let parents = if parents.is_empty() { &root[..] } else { parents };
        self.counter += 1;
        let hlc = Hlc { physical_ms: self.counter, logical: 0, node: 1 };
        let delta = if self.sign {
            CausalDelta::new_signed(&self.keypair, self.context, parents.to_vec(), hlc, payload)
        } else {
            let mut parents = parents.to_vec();
            parents.sort_unstable();
            parents.dedup();
            let author = self.keypair.author_key();
            let id = CausalDelta::compute_id(&self.context, &author, &parents, &hlc, &payload);
            let kind = crate::delta::DeltaKind::App;
            CausalDelta {
                id,
                context: self.context,
                author,
                parents,
                hlc,
                kind,
                payload,
                signature: Signature([0; 64]),
            }
        };
        Arc::new(delta)
    }

    /// A chain of `len` deltas, each the child of the previous; the first has no parents.
    pub fn chain(&mut self, len: usize) -> Vec<DeltaRef> {
        let mut chain: Vec<DeltaRef> = Vec::with_capacity(len);
        for index in 0..len {
            let parents: Vec<DeltaId> = chain.last().map(|last| vec![last.id]).unwrap_or_default();
            chain.push(self.make(&parents, (index as u64).to_le_bytes().to_vec()));
        }
        chain
    }
}
