//! The core demo: a 5-node cluster on a virtual clock, driven by one seed.
//!
//! Writes everywhere over lossy links, a partition and its heal, a fresh node catching up by
//! snapshot, and a silent divergence caught by heartbeats. Prints what it measured and ends
//! with `trace_hash=<hex>`: the same seed gives the same hash on any machine.
//!
//! Run it with `cargo xtask demo [--seed N]`.

#![allow(clippy::print_stdout)]

use rhizome_core::link::{LatencyDistribution, LinkProfile, Probability};
use rhizome_core::testing::{Cluster, ClusterConfig, KvOp};
use std::process::ExitCode;
use std::time::Duration;

const NODES: usize = 5;
const WRITES_PER_SECOND: u64 = 20;

struct Demo {
    cluster: Cluster,
    writes: u64,
    max_pending: usize,
    failures: Vec<String>,
}

impl Demo {
    /// Advances virtual time by `millis`, writing at the configured rate on rotating nodes.
    fn run_with_writes(&mut self, millis: u64, writers: &[usize]) {
        let step_ms = 1_000 / WRITES_PER_SECOND;
        for _ in 0..millis / step_ms {
            let node = writers[(self.writes as usize) % writers.len()];
            let payload = KvOp::encode(&[
                KvOp::Set {
                    key: format!("key-{}", self.writes % 64).into_bytes(),
                    value: format!("{node}:{}", self.writes).into_bytes(),
                },
                KvOp::Add { counter: b"writes".to_vec(), amount: 1 },
            ]);
            if let Err(error) = self.cluster.write(node, payload) {
                self.failures.push(format!("write on node {node} failed: {error}"));
            }
            self.writes += 1;
            self.cluster.run_for_millis(step_ms);
            self.sample();
        }
    }

    /// Runs until converged (or `bound_ms`), recording a failure if it does not.
    fn converge(&mut self, what: &str, bound_ms: u64) -> Option<u64> {
        let mut waited = 0;
        while waited < bound_ms {
            if self.cluster.converged() {
                return Some(waited);
            }
            self.cluster.run_for_millis(100);
            waited += 100;
            self.sample();
        }
        if self.cluster.converged() {
            return Some(waited);
        }
        self.failures.push(format!("{what}: not converged within {bound_ms} ms"));
        None
    }

    fn sample(&mut self) {
        let context = self.cluster.context();
        for index in 0..self.cluster.len() {
            let pending = self.cluster.node(index).dag(&context).map_or(0, |dag| dag.pending_len());
            self.max_pending = self.max_pending.max(pending);
        }
    }
}

fn parse_seed() -> Result<u64, String> {
    let mut args = std::env::args().skip(1);
    let mut seed = 7;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seed" => {
                let value = args.next().ok_or("--seed needs a value")?;
                seed = value.parse().map_err(|_| format!("--seed: not a number: {value}"))?;
            }
            other => return Err(format!("unknown argument {other}; usage: cluster_demo [--seed N]")),
        }
    }
    Ok(seed)
}

fn show(label: &str, millis: Option<u64>) {
    match millis {
        Some(ms) => println!("  {label:<44} {ms:>7} ms (virtual)"),
        None => println!("  {label:<44} {:>7}", "FAILED"),
    }
}

fn main() -> ExitCode {
    let seed = match parse_seed() {
        Ok(seed) => seed,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    // The demo reports how fast virtual time ran; the harness itself never reads this clock.
    #[allow(clippy::disallowed_methods, clippy::disallowed_types)]
    let wall = std::time::Instant::now();
    let wan = LinkProfile {
        latency: LatencyDistribution::Uniform { min: Duration::from_millis(10), max: Duration::from_millis(50) },
        loss: Probability::new(0.02).expect("a probability"),
        duplicate: Probability::new(0.01).expect("a probability"),
        ..LinkProfile::default()
    };
    let cluster =
        Cluster::new(ClusterConfig { nodes: NODES, max_nodes: NODES + 1, seed, link: wan, ..Default::default() });
    let mut demo = Demo { cluster, writes: 0, max_pending: 0, failures: Vec::new() };
    let context = demo.cluster.context();
    println!("rhizome core demo: {NODES} nodes, seed {seed}, links 10-50 ms with 2% loss and 1% duplication");

    println!("[1/5] writes on every node for 10 s");
    demo.run_with_writes(10_000, &[0, 1, 2, 3, 4]);
    let steady = demo.converge("steady state", 60_000);

    println!("[2/5] partition {{0,1}} | {{2,3,4}} for 30 s, both sides writing");
    demo.cluster.partition(&[&[0, 1], &[2, 3, 4]]);
    demo.run_with_writes(30_000, &[0, 1, 2, 3, 4]);
    println!("[3/5] heal");
    demo.cluster.heal();
    let healed = demo.converge("after heal", 120_000);

    println!("[4/5] a fresh node joins ({} deltas of history)", demo.writes);
    let fresh = demo.cluster.add_node();
    let joined = demo.converge("fresh node", 120_000);
    if demo.cluster.node(fresh).metrics().snapshots_adopted == 0 && joined.is_some() {
        println!("  (the fresh node caught up without a snapshot)");
    }

    println!("[5/5] silent corruption on node 2");
    demo.cluster.node_mut(2).applier_mut().corrupt(&context, b"key-1", b"bit rot");
    let repaired = demo.converge("divergence repair", 120_000);

    for index in 0..demo.cluster.len() {
        if demo.cluster.node(index).applier().get(&context, b"key-1") == Some(&b"bit rot"[..]) {
            demo.failures
                .push(format!("node {index} holds the corrupted value: divergence spread instead of repaired"));
        }
    }
    let expected = i64::try_from(demo.writes).unwrap_or(i64::MAX);
    for index in 0..demo.cluster.len() {
        let counted = demo.cluster.node(index).applier().counter(&context, b"writes");
        if counted != expected {
            demo.failures.push(format!("node {index} counts {counted} writes, expected {expected}: a write was lost"));
        }
    }

    let virtual_ms = demo.cluster.now().as_millis() - rhizome_core::Timestamp::from_secs(1_000_000).as_millis();
    let wall_ms = wall.elapsed().as_millis().max(1);
    let stats = demo.cluster.stats();
    let metrics: Vec<_> = (0..demo.cluster.len()).map(|index| demo.cluster.node(index).metrics()).collect();
    let sum = |field: fn(&rhizome_core::NodeMetrics) -> u64| metrics.iter().map(field).sum::<u64>();

    println!();
    println!("convergence");
    show("steady state after 10 s of writes", steady);
    show("after healing a 30 s partition", healed);
    show("fresh node catch-up", joined);
    show("silent divergence detected and repaired", repaired);
    println!("traffic");
    println!("  {:<44} {:>7}", "deltas written", demo.writes);
    println!("  {:<44} {:>7}", "messages delivered", stats.delivered);
    println!("  {:<44} {:>7}", "messages lost (loss / partition)", stats.dropped + stats.partitioned);
    println!("  {:<44} {:>7}", "bytes delivered", stats.bytes_delivered);
    println!("  {:<44} {:>7.1}", "messages per delta", stats.delivered as f64 / demo.writes.max(1) as f64);
    println!("  {:<44} {:>7.0}", "bytes per delta", stats.bytes_delivered as f64 / demo.writes.max(1) as f64);
    println!("protocol");
    println!("  {:<44} {:>7}", "max pending deltas on any node", demo.max_pending);
    println!(
        "  {:<44} {:>7}",
        "sync sessions (ok / failed)",
        format!("{}/{}", sum(|m| m.syncs_succeeded), sum(|m| m.syncs_failed))
    );
    println!("  {:<44} {:>7}", "missing-parent fetches", sum(|m| m.parent_fetches));
    println!("  {:<44} {:>7}", "snapshots adopted", sum(|m| m.snapshots_adopted));
    println!("  {:<44} {:>7}", "divergences detected", sum(|m| m.divergences_detected));
    println!("  {:<44} {:>7}", "deltas rejected", sum(|m| m.rejected_total()));
    println!("time");
    println!("  {:<44} {:>7} ms", "virtual", virtual_ms);
    println!("  {:<44} {:>7} ms", "wall", wall_ms);
    println!("  {:<44} {:>7.0}x", "virtual / wall", virtual_ms as f64 / wall_ms as f64);
    println!();
    let status = if demo.failures.is_empty() {
        println!("all checks passed: converged every time, no write lost");
        ExitCode::SUCCESS
    } else {
        for failure in &demo.failures {
            println!("CHECK FAILED: {failure}");
        }
        ExitCode::FAILURE
    };
    println!("trace_hash={}", demo.cluster.trace_hash());
    status
}
