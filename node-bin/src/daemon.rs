//! `rhizomed run`: opens the data directory, starts the node loop over libp2p, serves the API,
//! and shuts down gracefully on SIGTERM or Ctrl-C: stop accepting requests, let in-flight ones
//! finish, commit what the node holds, close connections.

use crate::apply_timer::ApplyTimer;
use crate::committer::ThreadCommitter;
use crate::config::Config;
use crate::http::{self, ApiState, PeerDirectory, PeerView};
use crate::identity::{self, Identity, Protection};
use crate::metrics::Metrics;
use anyhow::Context as _;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use futures::future::BoxFuture;
use rhizome_core::Timestamp;
use rhizome_node::{Clock, NodeParts};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// The database file in the data directory.
pub const DATABASE_FILE: &str = "rhizome.redb";
/// Written once the node is up: where its API and peer-to-peer listeners are. Removed on a
/// clean shutdown. `cargo xtask cluster`, the tests and operators read it.
pub const RUNTIME_FILE: &str = "rhizomed.json";
/// How long in-flight HTTP requests get to finish at shutdown.
const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`RUNTIME_FILE`] holds.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RuntimeInfo {
    /// The process.
    pub pid: u32,
    /// The node's peer id (its public key), hex.
    pub peer_id: String,
    /// The libp2p peer id.
    pub libp2p_id: String,
    /// The API's base URL.
    pub api: String,
    /// Peer-to-peer listen addresses, each ending in `/p2p/<id>`.
    pub p2p: Vec<String>,
}

/// The system's clocks: the one place the node's time comes from a real clock. Monotonic time
/// is `Instant` since start, on the wall clock's epoch at start (so it reads like Unix time in
/// logs); a later wall-clock step moves only [`Clock::wall_ms`], never a timer.
#[derive(Debug)]
struct SystemClock {
    started: Instant,
    started_unix_nanos: u64,
}

impl SystemClock {
    fn new() -> Self {
        Self { started: Instant::now(), started_unix_nanos: unix_nanos() }
    }
}

fn unix_nanos() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let elapsed = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Timestamp::from_nanos(self.started_unix_nanos.saturating_add(elapsed))
    }

    fn wall_ms(&self) -> u64 {
        unix_nanos() / 1_000_000
    }
}

/// The API's view of peers, from the libp2p transport.
struct NetPeers(rhizome_net::NetHandle);

impl PeerDirectory for NetPeers {
    fn peers(&self) -> BoxFuture<'_, Vec<PeerView>> {
        Box::pin(async move {
            self.0
                .peers()
                .await
                .into_iter()
                .map(|peer| PeerView {
                    peer_id: hex::encode(peer.peer.as_bytes()),
                    libp2p_id: peer.libp2p_id.to_string(),
                    addrs: peer.addrs.iter().map(ToString::to_string).collect(),
                    connected: peer.connected,
                    healthy: peer.healthy,
                    last_seen_ms_ago: peer.last_seen_ms_ago,
                    success_rate: peer.success_rate,
                })
                .collect()
        })
    }

    fn listen_addrs(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move { self.0.listen_addrs().await.iter().map(ToString::to_string).collect() })
    }

    fn dial<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let address = address.parse().map_err(|error| format!("not a multiaddr: {error}"))?;
            self.0.dial(address).await.map_err(|error| error.to_string())
        })
    }
}

/// Creates the data directory, the identity and the API token, or opens what is there.
pub fn prepare_data_dir(config: &Config, passphrase: Option<Zeroizing<String>>) -> anyhow::Result<(Identity, String)> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
    let identity = if identity::exists(dir) {
        identity::open(dir, passphrase.as_deref().map(String::as_str), config.dev)?
    } else {
        let protection = if config.dev {
            Protection::Dev
        } else {
            Protection::Passphrase(passphrase.ok_or_else(|| {
                anyhow::anyhow!(
                    "no identity in {} and no passphrase to seal a new one: set RHIZOME_PASSPHRASE, pass \
                     --passphrase-file, run from a terminal to be asked, or pass --dev for a plaintext key",
                    dir.display()
                )
            })?)
        };
        let identity = identity::create(dir, &protection)?;
        tracing::info!(peer_id = %hex::encode(identity.keypair().author_key().as_bytes()), dir = %dir.display(), "created a new identity");
        identity
    };
    if config.dev {
        warn_dev_mode(dir);
    }
    let token = identity::ensure_token(dir).with_context(|| format!("reading the API token in {}", dir.display()))?;
    Ok((identity, token))
}

fn warn_dev_mode(dir: &Path) {
    let banner = format!(
        "DEV MODE: the identity key in {} is stored in PLAINTEXT. Anyone who can read that file can \
         write as this node. Never use --dev for a node that holds real data.",
        dir.join(identity::IDENTITY_FILE).display()
    );
    tracing::warn!("{banner}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("\n!!! {banner}\n");
    }
}

/// Runs a node until SIGTERM or Ctrl-C (or until it fails).
pub async fn run(config: Config, passphrase: Option<Zeroizing<String>>) -> anyhow::Result<()> {
    let started = Instant::now();
    let (identity, token) = prepare_data_dir(&config, passphrase)?;
    let database_path = config.data_dir.join(DATABASE_FILE);
    let db = redb::Database::builder()
        .set_cache_size(config.node.db_cache_mib.saturating_mul(1 << 20))
        .create(&database_path)
        .map_err(|error| match error {
            redb::DatabaseError::DatabaseAlreadyOpen => anyhow::anyhow!(
                "{} is in use by another process: is another rhizomed running on this data directory?",
                database_path.display()
            ),
            other => anyhow::anyhow!("opening {}: {other}", database_path.display()),
        })?;

    let net_config = config.net.to_net_config()?;
    let (transport, net) =
        rhizome_net::spawn(identity.secret(), net_config).context("starting the libp2p transport")?;

    let metrics = Arc::new(Metrics::new());
    let mut rng_seed = [0u8; 8];
    OsRng.fill_bytes(&mut rng_seed);
    let parts = NodeParts {
        config: config.node.to_node_config(),
        keypair: identity.keypair().clone(),
        rng_seed: u64::from_le_bytes(rng_seed),
        transport,
        clock: Arc::new(SystemClock::new()),
        db,
        wasm: None,
        observer: Some(Box::new(ApplyTimer::new(metrics.clone()))),
        committer: Some(Box::new(ThreadCommitter::spawn().context("starting the commit thread")?)),
    };
    let (node, task) = rhizome_node::start(parts).context("restoring the node from its database")?;
    let mut node_task = tokio::spawn(task.run());

    let listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .with_context(|| format!("binding the API to {} (is the port in use?)", config.api.listen))?;
    let api_addr = listener.local_addr()?;
    let state = ApiState {
        node: node.clone(),
        peers: Arc::new(NetPeers(net.clone())),
        admin_token: token,
        metrics,
        config: config.api.clone(),
    };
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut http_task = tokio::spawn(http::serve(listener, state, async move {
        let _ = http_stopped.await;
    }));

    let info = RuntimeInfo {
        pid: std::process::id(),
        peer_id: hex::encode(node.peer_id().as_bytes()),
        libp2p_id: net.libp2p_peer_id().to_string(),
        api: format!("http://{api_addr}"),
        p2p: net.listen_addrs().await.iter().map(ToString::to_string).collect(),
    };
    let runtime_file = config.data_dir.join(RUNTIME_FILE);
    std::fs::write(&runtime_file, serde_json::to_vec_pretty(&info)?)
        .with_context(|| format!("writing {}", runtime_file.display()))?;
    let contexts = node.status().await.map(|status| status.contexts.len()).unwrap_or(0);
    tracing::info!(
        peer_id = %info.peer_id,
        api = %info.api,
        p2p = ?info.p2p,
        contexts,
        startup_ms = started.elapsed().as_secs_f64() * 1e3,
        "rhizomed is running"
    );

    let reason = tokio::select! {
        signal = shutdown_signal() => format!("{signal} received"),
        result = &mut node_task => format!("the node loop stopped: {}", describe_node_end(result)),
        result = &mut http_task => format!("the API server stopped: {result:?}"),
    };
    let stopping = Instant::now();
    tracing::info!(%reason, "shutting down");
    let _ = stop_http.send(());
    // A finished task (the select above may have taken it) must not be polled again.
    if !http_task.is_finished() && tokio::time::timeout(HTTP_DRAIN_TIMEOUT, &mut http_task).await.is_err() {
        tracing::warn!("in-flight API requests did not finish in {HTTP_DRAIN_TIMEOUT:?}; closing them");
        http_task.abort();
    }
    if !node_task.is_finished() {
        if let Err(error) = node.shutdown().await {
            tracing::warn!(%error, "the node loop did not confirm its shutdown");
        }
        match node_task.await {
            Ok(Ok(())) => {}
            Ok(Err(failure)) => tracing::error!(%failure, "the node loop failed while stopping"),
            Err(join) => tracing::error!(%join, "the node loop task ended abnormally"),
        }
    }
    net.shutdown().await;
    let _ = std::fs::remove_file(&runtime_file);
    tracing::info!(shutdown_ms = stopping.elapsed().as_secs_f64() * 1e3, "stopped");
    Ok(())
}

fn describe_node_end(result: Result<Result<(), rhizome_node::NodeFailure>, tokio::task::JoinError>) -> String {
    match result {
        Ok(Ok(())) => "shut down".to_owned(),
        Ok(Err(failure)) => failure.to_string(),
        Err(join) => join.to_string(),
    }
}

/// Resolves on Ctrl-C, or SIGTERM on Unix; names which.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C still works");
                let _ = tokio::signal::ctrl_c().await;
                return "Ctrl-C";
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
            _ = terminate.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// Reads the runtime file of a node's data directory.
pub fn read_runtime_info(data_dir: &Path) -> anyhow::Result<RuntimeInfo> {
    let path: PathBuf = data_dir.join(RUNTIME_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {} (is the node running?)", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}
