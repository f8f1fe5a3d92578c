//! Helpers for the integration tests in `tests/` and the node benchmarks (`node-bench`): real
//! `rhizomed` processes on loopback, each with its own data directory, talked to through the
//! same client the CLI uses.
//!
//! The binary is `target/<profile>/rhizomed`, beside the running executable (or its `deps/`)
//! (`cargo test --workspace` builds it, because `rhizomed` has integration tests of its own), or
//! the path in `RHIZOMED_BIN`.

pub mod http_load;

use anyhow::{bail, Context as _};
use rhizomed::client::ApiClient;
use rhizomed::daemon::RuntimeInfo;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The passphrase the test nodes seal their identity with.
const TEST_PASSPHRASE: &str = "integration test passphrase";

/// The rhizomed executable to test.
pub fn rhizomed_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("RHIZOMED_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let mut profile_dir = exe.parent().context("the executable has no directory")?;
    if profile_dir.file_name().is_some_and(|name| name == "deps") {
        profile_dir = profile_dir.parent().context("deps/ has no parent")?;
    }
    let binary = profile_dir.join(format!("rhizomed{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        bail!("{} does not exist: build it with `cargo build -p rhizomed` (or set RHIZOMED_BIN)", binary.display());
    }
    Ok(binary)
}

/// The kv-store app module, built by `cargo xtask apps`.
pub fn kv_store_module() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?;
    let path = root.join("target/wasm/kv_store.wasm");
    if !path.exists() {
        bail!("{} is missing: run `cargo xtask apps` first", path.display());
    }
    Ok(path)
}

/// A scratch directory for one test, removed when dropped.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory under the system temp dir.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("rhizome-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One running rhizomed process. Killed (SIGKILL) when dropped, so a failing test leaves no
/// process behind.
#[derive(Debug)]
pub struct NodeProcess {
    child: Option<Child>,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Where it listens.
    pub info: RuntimeInfo,
    /// Its API.
    pub api: ApiClient,
    /// Extra environment it was started with (kept for restarts).
    env: Vec<(String, String)>,
    bootstrap: Vec<String>,
}

impl NodeProcess {
    /// Starts a node with its data in `data_dir`, dialing `bootstrap`, with extra environment
    /// (`RHIZOME_*` settings). The API and the peer-to-peer listener take free loopback ports.
    pub fn start(data_dir: &Path, bootstrap: &[String], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Self::spawn(data_dir.to_owned(), bootstrap.to_vec(), env)
    }

    fn spawn(data_dir: PathBuf, bootstrap: Vec<String>, env: Vec<(String, String)>) -> anyhow::Result<Self> {
        let _ = std::fs::remove_file(data_dir.join(rhizomed::daemon::RUNTIME_FILE));
        let mut command = Command::new(rhizomed_binary()?);
        command
            .arg("run")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--api-listen", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .env("RHIZOME_PASSPHRASE", TEST_PASSPHRASE)
            .env("RHIZOME_LOG", std::env::var("RHIZOME_TEST_LOG").unwrap_or_else(|_| "warn".to_owned()))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for address in &bootstrap {
            command.args(["--bootstrap", address]);
        }
        for (key, value) in &env {
            command.env(key, value);
        }
        let child = command.spawn().context("starting rhizomed")?;
        let mut node = Self {
            child: Some(child),
            data_dir: data_dir.clone(),
            info: RuntimeInfo {
                pid: 0,
                peer_id: String::new(),
                libp2p_id: String::new(),
                api: String::new(),
                p2p: Vec::new(),
            },
            api: ApiClient::new("http://127.0.0.1:1", None),
            env,
            bootstrap,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = node.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!("rhizomed in {} exited during start-up: {status}", data_dir.display());
                }
            }
            if let Ok(info) = rhizomed::daemon::read_runtime_info(&data_dir) {
                node.api = ApiClient::for_data_dir(&data_dir, Some(info.api.clone()), None);
                node.info = info;
                break;
            }
            if Instant::now() > deadline {
                bail!("rhizomed in {} did not start within {START_TIMEOUT:?}", data_dir.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(node)
    }

    /// Its peer-to-peer address to bootstrap others from.
    pub fn p2p_address(&self) -> String {
        self.info.p2p.first().cloned().unwrap_or_default()
    }

    /// Kills it with SIGKILL (no chance to flush anything) and waits for it to die.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for a graceful exit; returns how long it took.
    pub fn terminate(&mut self) -> anyhow::Result<Duration> {
        let Some(mut child) = self.child.take() else { bail!("not running") };
        let started = Instant::now();
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let exit = child.wait()?;
        anyhow::ensure!(exit.success(), "rhizomed exited with {exit} after SIGTERM");
        Ok(started.elapsed())
    }

    /// Starts it again on the same data directory, on new ports, dialing `bootstrap` (its old
    /// bootstrap peers if empty).
    pub fn restart(&mut self, bootstrap: &[String]) -> anyhow::Result<()> {
        self.kill9();
        let bootstrap = if bootstrap.is_empty() { self.bootstrap.clone() } else { bootstrap.to_vec() };
        let fresh = Self::spawn(self.data_dir.clone(), bootstrap, self.env.clone())?;
        *self = fresh;
        Ok(())
    }

    /// Installs the kv-store app; returns its id.
    pub fn install_kv_store(&self) -> anyhow::Result<String> {
        let bytes = std::fs::read(kv_store_module()?)?;
        let answer = self.api.post_bytes("/admin/apps", &bytes, "application/wasm")?;
        string_field(&answer, "app")
    }

    /// `kv-store.set(key, value)`; returns the delta id.
    pub fn set(&self, context: &str, key: &str, value: &str) -> anyhow::Result<String> {
        let answer = self.api.rpc("call", json!({"context": context, "method": "set", "args": [key, value]}))?;
        string_field(&answer, "delta")
    }

    /// `kv-store.get(key)`.
    pub fn get(&self, context: &str, key: &str) -> anyhow::Result<Option<String>> {
        let answer = self
            .api
            .rpc("query", json!({"context": context, "method": "get", "args": [key], "returns": "option_string"}))?;
        Ok(answer.get("output").and_then(Value::as_str).map(str::to_owned))
    }

    /// One context's status as `GET /admin/contexts/{id}` gives it.
    pub fn context_status(&self, context: &str) -> anyhow::Result<Value> {
        Ok(self.api.get(&format!("/admin/contexts/{context}"))?)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A string field of an API answer.
pub fn string_field(value: &Value, field: &str) -> anyhow::Result<String> {
    value.get(field).and_then(Value::as_str).map(str::to_owned).with_context(|| format!("no `{field}` in {value}"))
}

/// Starts `count` nodes under `scratch`: the first alone, the rest bootstrapping from it.
pub fn start_cluster(scratch: &Scratch, count: usize, env: &[(&str, &str)]) -> anyhow::Result<Vec<NodeProcess>> {
    let first = NodeProcess::start(&scratch.path().join("node0"), &[], env)?;
    let bootstrap = vec![first.p2p_address()];
    let mut nodes = vec![first];
    for index in 1..count {
        nodes.push(NodeProcess::start(&scratch.path().join(format!("node{index}")), &bootstrap, env)?);
    }
    Ok(nodes)
}

/// Invites `invitee` to `context` on `inviter` and has it join with the token. Returns the
/// join's answer.
pub fn invite_and_join(inviter: &NodeProcess, invitee: &NodeProcess, context: &str) -> anyhow::Result<Value> {
    let invited =
        inviter.api.post_json(&format!("/admin/contexts/{context}/invite"), &json!({"key": invitee.info.peer_id}))?;
    let token = string_field(&invited, "invitation")?;
    Ok(invitee.api.post_json("/admin/contexts/join", &json!({ "invitation": token }))?)
}

/// Installs kv-store everywhere, creates a context on the first node, invites the others (a
/// token each) and has them join. Returns the context id.
pub fn shared_context(nodes: &[NodeProcess]) -> anyhow::Result<String> {
    let app = nodes[0].install_kv_store()?;
    for node in &nodes[1..] {
        anyhow::ensure!(node.install_kv_store()? == app, "same module, same app id");
    }
    let created = nodes[0].api.post_json("/admin/contexts", &json!({"app": app}))?;
    let context = string_field(&created, "context")?;
    for node in &nodes[1..] {
        invite_and_join(&nodes[0], node, &context)?;
    }
    Ok(context)
}

/// Waits until every node reports the same root and heads for `context`.
pub fn wait_converged(nodes: &[&NodeProcess], context: &str, timeout: Duration) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let statuses: Vec<Value> = nodes.iter().map(|node| node.context_status(context)).collect::<Result<_, _>>()?;
        let same =
            statuses.windows(2).all(|pair| pair[0]["root"] == pair[1]["root"] && pair[0]["heads"] == pair[1]["heads"]);
        if same {
            return Ok(statuses[0].clone());
        }
        if Instant::now() > deadline {
            bail!("no convergence within {timeout:?}: {statuses:#?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
