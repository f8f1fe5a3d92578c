//! Benchmarks of the real node, as real `rhizomed` processes on loopback (issue 5's figures):
//!
//! ```text
//! cargo build --release -p rhizomed -p rhizome-integration
//! target/release/node-bench e2e --nodes 3        # call on node A until the WebSocket event on B
//! target/release/node-bench calls                # JSON-RPC calls/s on one node, durable commits
//!                                                # (1,024 connections: the node's peak; with
//!                                                # fewer, connections / commit latency bounds it)
//! target/release/node-bench health               # GET /health req/s
//! target/release/node-bench startup              # start-up with 100 contexts, then graceful shutdown
//! target/release/node-bench memory               # resident memory per context holding 1,000 deltas
//! ```
//!
//! `cargo xtask bench-node` builds both and runs them all. Each prints one result line; the
//! figures go to docs/PERFORMANCE.md by hand, with the machine and the date.

#![allow(clippy::print_stdout)]

use anyhow::{bail, Context as _};
use rhizome_integration::http_load::{self, percentile, BodyCheck, RequestMaker};
use rhizome_integration::{shared_context, start_cluster, string_field, NodeProcess, Scratch};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The limiter would cap a benchmark client at 50 req/s; the benches measure the node.
const NO_RATE_LIMIT: (&str, &str) = ("RHIZOME_API__RATE_LIMIT__ENABLED", "false");

/// Connections of the calls benchmark by default: enough to keep both cores busy, so it
/// measures the node's peak rate. Each connection has one call outstanding, so with few of them
/// the rate is connections divided by a call's latency (mostly the durable commit it waits for).
const CALLS_CONNECTIONS: u64 = 1024;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: u64| -> anyhow::Result<u64> {
        match args.iter().position(|arg| arg == name) {
            Some(index) => {
                args.get(index + 1).context("flag needs a value")?.parse().context("flag value must be a number")
            }
            None => Ok(default),
        }
    };
    match args.first().map(String::as_str) {
        Some("e2e") => e2e(flag("--nodes", 3)? as usize, flag("--samples", 500)? as usize),
        Some("calls") => calls(flag("--seconds", 10)?, flag("--connections", CALLS_CONNECTIONS)? as usize),
        Some("health") => health(flag("--seconds", 10)?, flag("--connections", 64)? as usize),
        Some("startup") => startup(flag("--contexts", 100)? as usize, flag("--runs", 5)? as usize),
        Some("memory") => memory(flag("--contexts", 20)? as usize, flag("--deltas", 1000)? as usize),
        Some("all") => {
            e2e(3, 500)?;
            e2e(10, 300)?;
            calls(10, 64)?;
            health(10, 64)?;
            startup(100, 5)?;
            memory(20, 1000)
        }
        _ => bail!("usage: node-bench e2e [--nodes N] [--samples S] | calls [--seconds D] [--connections C] | health [--seconds D] [--connections C] | startup [--contexts N] [--runs R] | memory [--contexts K] [--deltas D] | all"),
    }
}

fn api_address(node: &NodeProcess) -> anyhow::Result<SocketAddr> {
    node.info.api.trim_start_matches("http://").parse().context("API address")
}

fn token(node: &NodeProcess) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(node.data_dir.join("api-token"))?.trim().to_owned())
}

fn millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// A call on the first node until the WebSocket event of its delta arrives on the last.
fn e2e(nodes: usize, samples: usize) -> anyhow::Result<()> {
    let scratch = Scratch::new(&format!("bench-e2e-{nodes}"))?;
    let cluster = start_cluster(&scratch, nodes, &[NO_RATE_LIMIT])?;
    let context = shared_context(&cluster)?;
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watcher = {
        let (api, context, arrivals) = (cluster[nodes - 1].api.clone(), context.clone(), arrivals.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let _ = runtime.block_on(api.watch(&context, |event: Value| {
                if let Some(delta) = event["delta"].as_str() {
                    arrivals.lock().expect("lock").insert(delta.to_owned(), Instant::now());
                }
                true
            }));
        })
    };
    // Warm up: until the subscriber sees a write from the first node.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delta = cluster[0].set(&context, "warm-up", "x")?;
        std::thread::sleep(Duration::from_millis(200));
        if arrivals.lock().expect("lock").contains_key(&delta) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the subscriber on the last node never saw a write");
    }
    let mut latencies = Vec::with_capacity(samples);
    for sample in 0..samples {
        let sent = Instant::now();
        let delta = cluster[0].set(&context, &format!("k{sample}"), "v")?;
        let deadline = sent + Duration::from_secs(10);
        let arrived = loop {
            if let Some(at) = arrivals.lock().expect("lock").get(&delta) {
                break *at;
            }
            anyhow::ensure!(Instant::now() < deadline, "sample {sample}: the event never arrived");
            std::thread::sleep(Duration::from_micros(100));
        };
        latencies.push(arrived.saturating_duration_since(sent).as_micros() as u64);
        std::thread::sleep(Duration::from_millis(5));
    }
    latencies.sort_unstable();
    println!(
        "e2e nodes={nodes} samples={samples}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (call on node0 -> WebSocket event on node{})",
        millis(percentile(&latencies, 0.5)),
        millis(percentile(&latencies, 0.99)),
        millis(*latencies.last().unwrap_or(&0)),
        nodes - 1
    );
    drop(cluster);
    let _ = watcher.join();
    Ok(())
}

/// JSON-RPC `set` calls per second on one node; every answered call is a durable commit.
fn calls(seconds: u64, connections: usize) -> anyhow::Result<()> {
    check_open_file_limit(connections)?;
    let scratch = Scratch::new("bench-calls")?;
    let node = NodeProcess::start(&scratch.path().join("node"), &[], &[NO_RATE_LIMIT])?;
    let app = node.install_kv_store()?;
    let context = string_field(&node.api.post_json("/admin/contexts", &json!({"app": app}))?, "context")?;
    let token = token(&node)?;
    let address = api_address(&node)?;
    let request: RequestMaker = Arc::new(move |conn, seq| {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{seq},"method":"call","params":{{"context":"{context}","method":"set","args":["c{conn}-{seq}","value"]}}}}"#
        );
        http_load::post_json_request("/jsonrpc", Some(&token), &body)
    });
    let accept: BodyCheck = Arc::new(|body| {
        body.windows(8).any(|window| window == b"\"delta\":") && !body.windows(8).any(|window| window == b"\"error\":")
    });
    let report = load(address, connections, seconds, request, accept)?;
    let status = node.api.get("/admin/status")?;
    println!(
        "calls connections={connections} seconds={seconds}: {} calls/s; node commits {}",
        summary(&report),
        status.pointer("/counters/commits").cloned().unwrap_or(Value::Null),
    );
    Ok(())
}

/// Runs the load generator on one worker thread (the other core is the node's).
fn load(
    address: SocketAddr,
    connections: usize,
    seconds: u64,
    request: RequestMaker,
    accept: BodyCheck,
) -> anyhow::Result<http_load::LoadReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    Ok(runtime.block_on(http_load::run(address, connections, Duration::from_secs(seconds), request, accept)))
}

/// File descriptors a process needs besides its sockets (the node's database, libp2p's
/// listeners, the runtime's own).
const SPARE_FILE_DESCRIPTORS: u64 = 256;

/// Fails with a clear message if this process (and so the node it started, which inherits the
/// limit) cannot open `connections` sockets: the run would otherwise measure `EMFILE` errors.
fn check_open_file_limit(connections: usize) -> anyhow::Result<()> {
    let Some(limit) = open_file_limit() else { return Ok(()) };
    let needed = connections as u64 + SPARE_FILE_DESCRIPTORS;
    if limit < needed {
        bail!(
            "{connections} connections need about {needed} open files per process, and the limit is {limit}: \
             raise it (`ulimit -n {needed}`) or pass fewer --connections"
        );
    }
    Ok(())
}

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None` where unknown.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

/// A load report's rate, counts and latencies, for one result line.
fn summary(report: &http_load::LoadReport) -> String {
    format!(
        "{:.0} ({} ok, {} failed, {} io errors), latency p50 {:.3} ms p99 {:.3} ms",
        report.per_second(),
        report.ok,
        report.failed,
        report.io_errors,
        millis(report.percentile_us(0.5)),
        millis(report.percentile_us(0.99))
    )
}

/// GET /health requests per second.
fn health(seconds: u64, connections: usize) -> anyhow::Result<()> {
    check_open_file_limit(connections)?;
    let scratch = Scratch::new("bench-health")?;
    let node = NodeProcess::start(&scratch.path().join("node"), &[], &[NO_RATE_LIMIT])?;
    let address = api_address(&node)?;
    let request: RequestMaker = Arc::new(|_, _| http_load::get_request("/health", None));
    let accept: BodyCheck = Arc::new(|body| body.starts_with(b"{\"status\":\"ok\""));
    let report = load(address, connections, seconds, request, accept)?;
    println!("health connections={connections} seconds={seconds}: {} req/s", summary(&report));
    Ok(())
}

/// Start-up of a node holding `contexts` contexts (each with a few deltas), from exec until
/// `/health` answers, then graceful shutdown from SIGTERM until the process exits.
fn startup(contexts: usize, runs: usize) -> anyhow::Result<()> {
    let scratch = Scratch::new("bench-startup")?;
    let dir = scratch.path().join("node");
    let mut node = NodeProcess::start(&dir, &[], &[NO_RATE_LIMIT])?;
    let app = node.install_kv_store()?;
    for index in 0..contexts {
        let context = string_field(&node.api.post_json("/admin/contexts", &json!({"app": app}))?, "context")?;
        for write in 0..10 {
            node.set(&context, &format!("k{write}"), &format!("context {index}"))?;
        }
    }
    node.terminate()?;
    let mut starts = Vec::new();
    let mut stops = Vec::new();
    for _ in 0..runs {
        let began = Instant::now();
        let restarted = NodeProcess::start(&dir, &[], &[NO_RATE_LIMIT])?;
        let listed = loop {
            if let Ok(answer) = restarted.api.get("/admin/contexts") {
                break answer;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        starts.push(began.elapsed().as_micros() as u64);
        let restored = listed["contexts"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(restored == contexts, "restored {restored} of {contexts} contexts");
        node = restarted;
        stops.push(node.terminate()?.as_micros() as u64);
    }
    starts.sort_unstable();
    stops.sort_unstable();
    println!(
        "startup contexts={contexts} runs={runs}: median {:.1} ms from exec until the API lists every context (min {:.1}, max {:.1}); graceful shutdown median {:.1} ms (max {:.1})",
        millis(percentile(&starts, 0.5)),
        millis(starts[0]),
        millis(*starts.last().unwrap_or(&0)),
        millis(percentile(&stops, 0.5)),
        millis(*stops.last().unwrap_or(&0)),
    );
    Ok(())
}

fn resident_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

/// Resident memory added per context holding `deltas` deltas.
fn memory(contexts: usize, deltas: usize) -> anyhow::Result<()> {
    let scratch = Scratch::new("bench-memory")?;
    let node = NodeProcess::start(&scratch.path().join("node"), &[], &[NO_RATE_LIMIT])?;
    let app = node.install_kv_store()?;
    let warm = string_field(&node.api.post_json("/admin/contexts", &json!({"app": app}))?, "context")?;
    node.set(&warm, "warm", "up")?;
    let before = resident_kib(node.info.pid)?;
    // RSS after every fifth of the contexts: fixed-size costs (redb's page cache, allocator
    // arenas) fill during the first ones, so the slope over the later ones is what each further
    // context costs.
    let checkpoint_every = (contexts / 5).max(1);
    let mut checkpoints = Vec::new();
    for done in 1..=contexts {
        let context = string_field(&node.api.post_json("/admin/contexts", &json!({"app": app}))?, "context")?;
        std::thread::scope(|scope| -> anyhow::Result<()> {
            let workers: Vec<_> = (0..4)
                .map(|worker| {
                    let (node, context) = (&node, &context);
                    scope.spawn(move || -> anyhow::Result<()> {
                        for index in (worker..deltas).step_by(4) {
                            node.set(context, &format!("key-{index}"), "a value of about thirty bytes..")?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for worker in workers {
                worker.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
            }
            Ok(())
        })?;
        if done % checkpoint_every == 0 || done == contexts {
            checkpoints.push((done, resident_kib(node.info.pid)?));
        }
    }
    let after = checkpoints.last().map_or(before, |&(_, rss)| rss);
    let per_context = after.saturating_sub(before) as f64 / contexts as f64;
    let shown: Vec<String> = checkpoints.iter().map(|(done, rss)| format!("{done}:{rss}")).collect();
    println!("memory RSS KiB after N contexts: 0:{before} {}", shown.join(" "));
    println!(
        "memory contexts={contexts} deltas={deltas}: RSS {before} KiB -> {after} KiB, {per_context:.0} KiB per context ({:.2} MB) on average",
        per_context * 1024.0 / 1e6
    );
    if let (Some(&(first_done, first_rss)), Some(&(last_done, last_rss))) = (checkpoints.first(), checkpoints.last()) {
        if last_done > first_done {
            let slope = last_rss.saturating_sub(first_rss) as f64 / (last_done - first_done) as f64;
            println!(
                "memory marginal (contexts {first_done}..{last_done}): {slope:.0} KiB per further context ({:.2} MB)",
                slope * 1024.0 / 1e6
            );
        }
    }
    Ok(())
}
