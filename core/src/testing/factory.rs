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
    /// Payloads are sealed under this key, as a guarded store expects: deltas made on a
    /// genesis are sealed under [`super::test_context_key`].
    sealing: Option<crate::seal::ContextKey>,
}

impl DeltaFactory {
    /// A factory whose deltas are properly signed (about 20 µs each).
    pub fn signed(context: ContextId, secret: [u8; 32]) -> Self {
        Self { keypair: Keypair::from_secret_bytes(secret), context, counter: 0, sign: true, root: None, sealing: None }
    }

    /// A signing factory for the context `genesis` creates: deltas asked for without parents
    /// get the genesis as their parent, so they descend from it as every valid delta must.
    pub fn signed_on(genesis: &DeltaRef, secret: [u8; 32]) -> Self {
        Self {
            root: Some(genesis.id),
            sealing: Some(super::test_context_key()),
            ..Self::signed(genesis.context, secret)
        }
    }

    /// A factory whose deltas have correct ids but zero signatures: for DAG-level tests and
    /// benches, which trust their input (verification happens before the DAG).
    pub fn unsigned(context: ContextId) -> Self {
        let keypair = Keypair::from_secret_bytes([0x5a; 32]);
        Self { keypair, context, counter: 0, sign: false, root: None, sealing: None }
    }

    /// An unsigned factory for the context `genesis` creates (made by
    /// [`Self::unsigned_author`]): parentless deltas get the genesis as parent, so a guarded
    /// store judges them as members' deltas (it never checks signatures; ingest does).
    pub fn unsigned_on(genesis: &DeltaRef) -> Self {
        Self { root: Some(genesis.id), sealing: Some(super::test_context_key()), ..Self::unsigned(genesis.context) }
    }

    /// The key of [`Self::unsigned`] factories, to make a genesis that names it.
    pub fn unsigned_author() -> Keypair {
        Keypair::from_secret_bytes([0x5a; 32])
    }

    /// Seals payloads under `key` from now on (`None`: plaintext, for unguarded stores).
    pub fn seal_with(&mut self, key: Option<crate::seal::ContextKey>) {
        self.sealing = key;
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
        let mut parents = parents.to_vec();
        parents.sort_unstable();
        parents.dedup();
        let payload = match &self.sealing {
            Some(key) => {
                let author = self.keypair.author_key();
                let header =
                    crate::seal::SealHeader { context: &self.context, author: &author, parents: &parents, hlc: &hlc };
                crate::seal::seal_payload_encoded(key, &header, &[0; 32], &payload)
            }
            None => payload,
        };
        let delta = if self.sign {
            CausalDelta::new_signed(&self.keypair, self.context, parents, hlc, payload)
        } else {
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
