//! `cargo xtask cluster --nodes N [--release]`: a local cluster of N rhizomed processes on
//! loopback, all joined to one demo context running kv-store, for trying the real node by hand.
//!
//! Node i keeps its data in `target/cluster/node<i>` (wiped at start), serves its API on
//! 127.0.0.1:(2528 + i) and listens for peers on TCP and QUIC at 127.0.0.1, port 4101 + i (`--listen`
//! replaces the default list, so both are passed). Node 0 starts
//! first; the others bootstrap from it. The cluster is set up with the rhizomed CLI itself
//! (`app install`, `context create`, `context invite`, `context join`), then runs in the
//! foreground until Ctrl-C, which every node takes as its graceful-shutdown signal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::cmd;

const FIRST_API_PORT: u16 = 2528;
const FIRST_P2P_PORT: u16 = 4101;
const MAX_NODES: usize = 64;
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The demo cluster's identity passphrase (the identities are sealed as in production).
const PASSPHRASE: &str = "rhizome-local-cluster";

/// Kills every node if setup fails half-way.
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn run(rest: &[std::ffi::OsString]) -> Result<std::process::ExitCode> {
    let mut nodes = 3usize;
    let mut release = false;
    let mut args = rest.iter().map(|arg| arg.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--nodes" => {
                let value = args.next().ok_or_else(|| crate::usage_error("`--nodes` needs a value"))?;
                nodes = value
                    .parse()
                    .map_err(|_| crate::usage_error(format!("`--nodes` must be a number (got `{value}`)")))?;
            }
            "--release" => release = true,
            other => return Err(crate::usage_error(format!("`cluster`: unexpected argument `{other}`"))),
        }
    }
    if nodes == 0 || nodes > MAX_NODES {
        return Err(crate::usage_error(format!("`--nodes` must be between 1 and {MAX_NODES}")));
    }

    crate::apps::build()?;
    let mut build = cmd::cargo();
    build.args(["build", "--locked", "-p", "rhizomed"]);
    if release {
        build.arg("--release");
    }
    println!("$ {}", cmd::display(&build));
    let status = cmd::status(&mut build)?;
    if !status.success() {
        bail!("building rhizomed failed with {}", cmd::describe(status));
    }
    let root = cmd::workspace_root();
    let binary = root.join("target").join(if release { "release" } else { "debug" }).join("rhizomed");
    let cluster_dir = root.join("target").join("cluster");
    let _ = std::fs::remove_dir_all(&cluster_dir);

    let mut children = Nodes(Vec::new());
    let mut bootstrap: Option<String> = None;
    let mut data_dirs = Vec::new();
    for index in 0..nodes {
        let data_dir = cluster_dir.join(format!("node{index}"));
        let offset = u16::try_from(index).unwrap_or(0);
        let mut command = Command::new(&binary);
        command
            .arg("run")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--api-listen", &format!("127.0.0.1:{}", FIRST_API_PORT + offset)])
            .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", FIRST_P2P_PORT + offset)])
            .args(["--listen", &format!("/ip4/127.0.0.1/udp/{}/quic-v1", FIRST_P2P_PORT + offset)])
            .env("RHIZOME_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::null());
        if let Some(address) = bootstrap.as_deref() {
            command.args(["--bootstrap", address]);
        }
        children.0.push(command.spawn().with_context(|| format!("starting {}", binary.display()))?);
        let info = wait_for_runtime_file(&data_dir, children.0.last_mut())?;
        if bootstrap.is_none() {
            bootstrap = info["p2p"].get(0).and_then(Value::as_str).map(str::to_owned);
        }
        data_dirs.push((data_dir, info));
    }

    let cli = |data_dir: &Path, args: &[&str]| -> Result<Value> {
        let output = Command::new(&binary).args(args).arg("--data-dir").arg(data_dir).output()?;
        if !output.status.success() {
            bail!("rhizomed {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(serde_json::from_slice(&output.stdout)?)
    };
    let module = crate::apps::wasm_dir().join("kv_store.wasm");
    let module = module.to_string_lossy().into_owned();
    let mut app = String::new();
    for (data_dir, _) in &data_dirs {
        app = text(&cli(data_dir, &["app", "install", &module])?, "app")?;
    }
    let first = &data_dirs[0].0;
    let context = text(&cli(first, &["context", "create", "--app", &app])?, "context")?;
    // A signed token per node, addressed to its key, joined with as a user would.
    for (data_dir, info) in &data_dirs[1..] {
        let key = text(info, "peer_id")?;
        let invited = cli(first, &["context", "invite", &context, "--key", &key, "--expires-in", "1h"])?;
        let token = text(&invited, "invitation")?;
        cli(data_dir, &["context", "join", &token])?;
    }

    let shown_binary = binary.strip_prefix(&root).unwrap_or(&binary).display().to_string();
    println!("\n{nodes} rhizomed nodes are running; demo context {context} (kv-store) on all of them.\n");
    for (index, (data_dir, info)) in data_dirs.iter().enumerate() {
        let dir = data_dir.strip_prefix(&root).unwrap_or(data_dir).display().to_string();
        println!("  node{index}: API {}  data {dir}  peer {}", text(info, "api")?, text(info, "peer_id")?);
    }
    let last = data_dirs.len() - 1;
    println!(
        "\nTry (each client command finds the node's API and token through --data-dir):\n\
         \x20 {shown_binary} call {context} set '[\"hello\", \"world\"]' --data-dir target/cluster/node0\n\
         \x20 {shown_binary} query {context} get '[\"hello\"]' --returns option_string --data-dir target/cluster/node{last}\n\
         \x20 {shown_binary} watch {context} --data-dir target/cluster/node{last}\n\
         \x20 {shown_binary} status --data-dir target/cluster/node0\n\
         \x20 curl -s http://127.0.0.1:{FIRST_API_PORT}/metrics | grep rhizome_\n\
         \nPress Ctrl-C to stop every node (graceful shutdown).\n"
    );
    for child in &mut children.0 {
        let _ = child.wait();
    }
    children.0.clear();
    Ok(std::process::ExitCode::SUCCESS)
}

fn text(value: &Value, field: &str) -> Result<String> {
    value.get(field).and_then(Value::as_str).map(str::to_owned).with_context(|| format!("no `{field}` in {value}"))
}

fn wait_for_runtime_file(data_dir: &Path, child: Option<&mut Child>) -> Result<Value> {
    let path: PathBuf = data_dir.join("rhizomed.json");
    let deadline = Instant::now() + START_TIMEOUT;
    let mut child = child;
    loop {
        if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(value) = serde_json::from_slice(&bytes) {
                return Ok(value);
            }
        }
        if let Some(child) = child.as_deref_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("the node in {} exited during start-up ({status}); see its log above", data_dir.display());
            }
        }
        if Instant::now() > deadline {
            bail!("the node in {} did not start within {START_TIMEOUT:?}", data_dir.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
