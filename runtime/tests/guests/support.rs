//! A replica for tests: a core `Node` whose applier is the WASM runtime, driven the way the
//! node layer drives it (call, then local delta; deliver, then run handlers).

#![allow(dead_code, unreachable_pub)]

use borsh::{BorshDeserialize, BorshSerialize};
use rhizome_core::testing::TestNode;
use rhizome_core::{AuthorKey, Config, ContextId, DeltaId, Input, Keypair, Output, Timestamp};
use rhizome_runtime::{CallError, CallOutcome, EngineOptions, HandlerStep, Runtime, RuntimeLimits, RuntimeOptions};

pub const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

/// The bytes of a built app; `cargo xtask apps` (run by `cargo xtask test`) builds them.
pub fn module(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm").join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}. Build the apps first: `cargo xtask apps` (cargo xtask test does it)",
            path.display()
        )
    })
}

/// The test context's genesis: key 1 its admin, keys 2..=4 members.
pub fn genesis() -> rhizome_core::DeltaRef {
    rhizome_core::testing::genesis_of(&key(1), (2..=4).map(|k| key(k).author_key()), 0)
}

/// `delta` with its payload opened under the test genesis's key: what the DAG store hands the
/// runtime, for tests that feed the runtime a gossiped (sealed) delta directly.
pub fn opened(delta: &rhizome_core::CausalDelta) -> rhizome_core::CausalDelta {
    let mut ring = rhizome_core::seal::Keyring::default();
    ring.insert(rhizome_core::testing::test_context_key(), 1);
    let header = rhizome_core::seal::SealHeader {
        context: &delta.context,
        author: &delta.author,
        parents: &delta.parents,
        hlc: &delta.hlc,
    };
    let payload = ring.open(&header, &delta.payload).expect("sealed under the test key");
    rhizome_core::CausalDelta { payload, ..delta.clone() }
}

pub fn context() -> ContextId {
    genesis().context
}

pub fn key(n: u8) -> Keypair {
    Keypair::from_secret_bytes([n; 32])
}

pub fn runtime_for(author: AuthorKey, limits: RuntimeLimits) -> Runtime {
    Runtime::new(RuntimeOptions { engine: EngineOptions::default(), limits, local_author: author })
        .expect("engine builds")
}

pub struct Replica {
    pub node: TestNode<Runtime>,
    pub now: Timestamp,
    pub outbox: Vec<Vec<u8>>,
    pub deltas: Vec<DeltaId>,
    /// [`Replica::call_joined`] has a delta open.
    open_delta: bool,
}

impl Replica {
    pub fn new(n: u8, app: &[u8]) -> Self {
        Self::with_limits(n, app, RuntimeLimits::default())
    }

    pub fn with_limits(n: u8, app: &[u8], limits: RuntimeLimits) -> Self {
        let keypair = key(n);
        let mut runtime = runtime_for(keypair.author_key(), limits);
        let app = runtime.install_app(app).expect("app compiles");
        runtime.create_context(context(), app).expect("context binds");
        let mut node = TestNode::new(Config::default(), keypair, u64::from(n), runtime, T0);
        node.join_context(&genesis()).unwrap();
        Self { node, now: T0, outbox: Vec::new(), deltas: Vec::new(), open_delta: false }
    }

    /// Runs a method; if it wrote, makes and publishes a delta. Returns the outcome.
    pub fn call_raw(&mut self, method: &str, input: Vec<u8>) -> Result<CallOutcome, CallError> {
        self.now = self.now.add_millis(1);
        let hlc = self.node.next_local_hlc(self.now);
        let outcome = self.node.applier_mut().call(context(), method, input, hlc)?;
        if outcome.needs_delta() {
            let id = self.node.local_delta(self.now, context(), outcome.payload.encode()).expect("local delta applies");
            self.deltas.push(id);
        }
        self.drain();
        Ok(outcome)
    }

    /// Runs calls into as few deltas as the bounds allow, the way the node batches calls that
    /// arrive together: the first opens a delta, the rest join it, a call that does not fit
    /// seals it and opens the next. Returns each call's outcome.
    pub fn call_joined(&mut self, calls: &[(&str, Vec<u8>)]) -> Vec<Result<CallOutcome, CallError>> {
        self.now = self.now.add_millis(1);
        let mut outcomes = Vec::new();
        for (method, input) in calls {
            let joined = if self.open_delta {
                Some(self.node.applier_mut().call_joining(context(), method, input.clone()))
            } else {
                None
            };
            let outcome = match joined {
                Some(Err(CallError::NotJoinable(_))) => {
                    self.seal();
                    self.now = self.now.add_millis(1);
                    self.call_opening(method, input.clone())
                }
                Some(outcome) => outcome,
                None => self.call_opening(method, input.clone()),
            };
            outcomes.push(outcome);
        }
        self.seal();
        outcomes
    }

    fn call_opening(&mut self, method: &str, input: Vec<u8>) -> Result<CallOutcome, CallError> {
        let hlc = self.node.next_local_hlc(self.now);
        let outcome = self.node.applier_mut().call(context(), method, input, hlc);
        self.open_delta = outcome.as_ref().is_ok_and(CallOutcome::needs_delta);
        outcome
    }

    /// Makes the open delta, if any.
    fn seal(&mut self) {
        if !std::mem::take(&mut self.open_delta) {
            return;
        }
        let sealed = self.node.applier_mut().seal_open_delta().expect("a delta is open");
        let id = self.node.local_delta(self.now, context(), sealed.payload.encode()).expect("local delta applies");
        self.deltas.push(id);
        self.drain();
    }

    pub fn call<I: BorshSerialize, O: BorshDeserialize>(&mut self, method: &str, input: &I) -> Result<O, CallError> {
        let outcome = self.call_raw(method, borsh::to_vec(input).unwrap())?;
        Ok(borsh::from_slice(&outcome.return_value).expect("return value decodes"))
    }

    /// Delivers gossip, then runs every handler job it created, committing each write.
    pub fn deliver(&mut self, from: &Replica, bytes: Vec<u8>) {
        self.receive(from, bytes);
        self.run_handlers();
    }

    /// Delivers gossip without running handlers yet.
    pub fn receive(&mut self, from: &Replica, bytes: Vec<u8>) {
        self.now = self.now.add_millis(1);
        self.node.handle_input(self.now, Input::Gossip { from: from.node.peer_id(), bytes });
        self.drain();
    }

    pub fn run_handlers(&mut self) {
        loop {
            self.now = self.now.add_millis(1);
            let hlc = self.node.next_local_hlc(self.now);
            match self.node.applier_mut().run_next_handler(context(), hlc) {
                Ok(HandlerStep::Idle) => return,
                Ok(HandlerStep::JobDone) => {}
                Ok(HandlerStep::NeedsDelta(payload)) => {
                    let id =
                        self.node.local_delta(self.now, context(), payload.encode()).expect("handler delta applies");
                    self.deltas.push(id);
                    self.drain();
                }
                Err(error) => panic!("handler failed: {error}"),
            }
        }
    }

    fn drain(&mut self) {
        while let Some(output) = self.node.poll_output() {
            if let Output::Broadcast { bytes, .. } = output {
                self.outbox.push(bytes);
            }
        }
    }

    pub fn root(&self) -> rhizome_core::RootHash {
        self.node.root_hash(&context())
    }
}

/// Delivers everything each replica published to the other, until both are quiet.
pub fn exchange(a: &mut Replica, b: &mut Replica) {
    for _ in 0..16 {
        let from_a = std::mem::take(&mut a.outbox);
        let from_b = std::mem::take(&mut b.outbox);
        if from_a.is_empty() && from_b.is_empty() {
            return;
        }
        for bytes in from_a {
            b.deliver(a, bytes);
        }
        for bytes in from_b {
            a.deliver(b, bytes);
        }
    }
    panic!("replicas kept talking");
}
