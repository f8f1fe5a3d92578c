//! rhizomed's settings: embedded defaults, overridden by a TOML file, overridden by `RHIZOME_*`
//! environment variables, overridden by command-line flags. Each layer is a TOML table merged
//! over the one below, so every key can be set at every layer with the same name.
//!
//! Environment names: `RHIZOME_` then the key path in upper case, sections joined by `__`:
//! `RHIZOME_DATA_DIR`, `RHIZOME_API__LISTEN`, `RHIZOME_NET__MIN_PEERS`,
//! `RHIZOME_API__RATE_LIMIT__ENABLED`. A value is read as TOML when it parses as one (numbers,
//! booleans, `["a", "b"]` arrays) and as a string otherwise. A few variables are not settings and
//! are skipped: `RHIZOME_CONFIG`, `RHIZOME_PASSPHRASE`, `RHIZOME_PASSPHRASE_FILE`, `RHIZOME_TOKEN`,
//! `RHIZOME_API_URL`, `RHIZOME_LOG`.

use crate::http::HttpConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Environment variables with the `RHIZOME_` prefix that are not settings.
const NON_SETTING_VARS: &[&str] = &[
    "RHIZOME_CONFIG",
    "RHIZOME_PASSPHRASE",
    "RHIZOME_PASSPHRASE_FILE",
    "RHIZOME_TOKEN",
    "RHIZOME_API_URL",
    "RHIZOME_LOG",
];

/// Everything a node reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database, the identity and the API token live.
    pub data_dir: PathBuf,
    /// Keep the identity key in plaintext (development only; warned about loudly).
    pub dev: bool,
    /// Logging.
    pub log: LogConfig,
    /// Peer-to-peer networking.
    pub net: NetSettings,
    /// The HTTP API.
    pub api: HttpConfig,
    /// The node loop.
    pub node: NodeSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("rhizome-data"),
            dev: false,
            log: LogConfig::default(),
            net: NetSettings::default(),
            api: HttpConfig::default(),
            node: NodeSettings::default(),
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json` (one JSON object per line).
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `rhizomed=debug,libp2p_gossipsub=warn`; `RHIZOME_LOG` wins.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, filter: "info,libp2p_kad=error".to_owned() }
    }
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Peer-to-peer settings; see `rhizome_net::NetConfig` for what each does.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetSettings {
    /// Multiaddrs to listen on.
    pub listen: Vec<String>,
    /// Multiaddrs (ending in `/p2p/<id>`) to dial at start and whenever peers run low.
    pub bootstrap: Vec<String>,
    /// Discover peers on the LAN with mDNS.
    pub mdns: bool,
    /// Below this many connected peers, bootstrap again.
    pub min_peers: usize,
    /// How often to bootstrap again while below `min_peers`, in seconds.
    pub bootstrap_interval_s: u64,
    /// How often peer health is checked, in seconds.
    pub health_check_interval_s: u64,
    /// How often peers are exchanged (a Kademlia walk), in seconds.
    pub peer_exchange_interval_s: u64,
    /// A peer not seen for this long is unhealthy, in seconds.
    pub healthy_if_seen_within_s: u64,
    /// Connections in all.
    pub max_connections: u32,
    /// Connections to one peer.
    pub max_connections_per_peer: u32,
    /// Requests one peer may have waiting on us.
    pub max_inbound_requests_per_peer: usize,
}

impl Default for NetSettings {
    fn default() -> Self {
        let net = rhizome_net::NetConfig::default();
        Self {
            listen: net.listen.iter().map(ToString::to_string).collect(),
            bootstrap: Vec::new(),
            mdns: net.enable_mdns,
            min_peers: net.min_peers,
            bootstrap_interval_s: net.bootstrap_interval_ms / 1000,
            health_check_interval_s: net.health_check_interval_ms / 1000,
            peer_exchange_interval_s: net.peer_exchange_interval_ms / 1000,
            healthy_if_seen_within_s: net.healthy_if_seen_within_ms / 1000,
            max_connections: net.max_connections,
            max_connections_per_peer: net.max_connections_per_peer,
            max_inbound_requests_per_peer: net.max_inbound_requests_per_peer,
        }
    }
}

impl NetSettings {
    /// The transport's configuration, or which address did not parse.
    pub fn to_net_config(&self) -> Result<rhizome_net::NetConfig, ConfigError> {
        let parse = |list: &[String]| {
            list.iter()
                .map(|text| text.parse().map_err(|_| ConfigError::BadMultiaddr(text.clone())))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(rhizome_net::NetConfig {
            listen: parse(&self.listen)?,
            bootstrap: parse(&self.bootstrap)?,
            enable_mdns: self.mdns,
            min_peers: self.min_peers,
            bootstrap_interval_ms: self.bootstrap_interval_s.saturating_mul(1000),
            health_check_interval_ms: self.health_check_interval_s.saturating_mul(1000),
            peer_exchange_interval_ms: self.peer_exchange_interval_s.saturating_mul(1000),
            healthy_if_seen_within_ms: self.healthy_if_seen_within_s.saturating_mul(1000),
            max_connections: self.max_connections,
            max_connections_per_peer: self.max_connections_per_peer,
            max_inbound_requests_per_peer: self.max_inbound_requests_per_peer,
            ..rhizome_net::NetConfig::default()
        })
    }
}

/// Node-loop settings worth changing in production.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSettings {
    /// How long a sync session's request waits for its answer, in milliseconds.
    pub sync_request_timeout_ms: u64,
    /// How long a fetch of missing parents waits for its answer, in milliseconds.
    pub parent_fetch_timeout_ms: u64,
    /// Longest received data may stay staged before a commit, in milliseconds.
    pub max_non_durable_ms: u64,
    /// Events queued per subscriber before it is dropped as too slow.
    pub subscriber_queue_events: usize,
    /// Use the WASM pooling allocator (fast calls; reserves address space up front).
    pub wasm_pooling_allocator: bool,
    /// Most API calls of one context made into one delta (1: a delta per call).
    pub max_calls_per_delta: usize,
    /// redb's page cache, in MiB. redb's own default (1 GiB) lets a busy node's resident memory
    /// grow with everything it ever wrote; pages past the cache are read from the file.
    pub db_cache_mib: usize,
    /// How often each context's root and heads are broadcast, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// Invitation ids remembered as used (the replay store). At the bound, ids of expired
    /// tokens are forgotten; if none has expired, joining by invitation is refused.
    pub max_used_invitations: usize,
}

/// The default page cache: enough for the hot pages of many contexts, small next to the DAGs.
pub const DEFAULT_DB_CACHE_MIB: usize = 16;

impl Default for NodeSettings {
    fn default() -> Self {
        let node = rhizome_node::NodeConfig::default();
        Self {
            sync_request_timeout_ms: node.core.sync_request_timeout_ms,
            parent_fetch_timeout_ms: node.core.parent_fetch_timeout_ms,
            max_non_durable_ms: node.max_non_durable_ms,
            subscriber_queue_events: node.subscriber_queue_events,
            wasm_pooling_allocator: true,
            max_calls_per_delta: node.max_calls_per_delta,
            db_cache_mib: DEFAULT_DB_CACHE_MIB,
            heartbeat_interval_ms: node.core.heartbeat_interval_ms,
            max_used_invitations: node.max_used_invitations,
        }
    }
}

impl NodeSettings {
    /// The node loop's configuration.
    pub fn to_node_config(&self) -> rhizome_node::NodeConfig {
        let mut config = rhizome_node::NodeConfig {
            max_non_durable_ms: self.max_non_durable_ms,
            subscriber_queue_events: self.subscriber_queue_events,
            max_calls_per_delta: self.max_calls_per_delta.max(1),
            max_used_invitations: self.max_used_invitations.max(1),
            ..rhizome_node::NodeConfig::default()
        };
        config.core.heartbeat_interval_ms = self.heartbeat_interval_ms.max(1);
        config.core.sync_request_timeout_ms = self.sync_request_timeout_ms.max(1);
        config.core.parent_fetch_timeout_ms = self.parent_fetch_timeout_ms.max(1);
        config.engine.pooling_allocator = self.wasm_pooling_allocator;
        config.engine.parallel_compilation = true;
        config
    }
}

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A layer is not valid TOML or names an unknown key.
    #[error("{layer}: {message}")]
    Invalid {
        /// Which layer: the file, the environment or the flags.
        layer: String,
        /// The parser's message.
        message: String,
    },
    /// An address is not a multiaddr.
    #[error("not a multiaddr: {0}")]
    BadMultiaddr(String),
    /// A key that was renamed: the message names the new one.
    #[error("`{old}` was renamed: set {new} instead")]
    Renamed {
        /// The old key, dotted.
        old: &'static str,
        /// What to set now.
        new: &'static str,
    },
}

/// Keys that were renamed, with what replaces them. A user who still writes an old key (in the
/// file, as `RHIZOME_*` or as a flag) is told the new name instead of getting "unknown field".
const RENAMED_KEYS: &[(&[&str], &str, &str)] = &[(
    &["node", "request_timeout_ms"],
    "node.request_timeout_ms",
    "`node.sync_request_timeout_ms` (sync sessions) and `node.parent_fetch_timeout_ms` (parent fetches)",
)];

/// Refuses a merged table that still sets a renamed key.
fn check_renamed(merged: &toml::Table) -> Result<(), ConfigError> {
    for (path, old, new) in RENAMED_KEYS {
        let mut table = Some(merged);
        for (depth, key) in path.iter().enumerate() {
            let Some(value) = table.and_then(|current| current.get(*key)) else { break };
            if depth + 1 == path.len() {
                return Err(ConfigError::Renamed { old, new });
            }
            table = value.as_table();
        }
    }
    Ok(())
}

/// Builds the settings from the layers: `file` (if any), then `env` (`RHIZOME_*` pairs), then
/// `flags` (a TOML table built from command-line flags).
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: toml::Table,
) -> Result<Config, ConfigError> {
    let mut merged = toml::Table::new();
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let table: toml::Table = toml::from_str(&text).map_err(|error| ConfigError::Invalid {
            layer: format!("config file {}", path.display()),
            message: error.to_string(),
        })?;
        merge(&mut merged, table);
    }
    merge(&mut merged, env_table(env));
    merge(&mut merged, flags);
    check_renamed(&merged)?;
    let layer_names = "settings (file, RHIZOME_* environment and flags merged)";
    toml::Value::Table(merged).try_into().map_err(|error: toml::de::Error| ConfigError::Invalid {
        layer: layer_names.to_owned(),
        message: error.to_string(),
    })
}

/// The `RHIZOME_*` environment variables as a TOML table.
fn env_table(env: impl IntoIterator<Item = (String, String)>) -> toml::Table {
    let mut table = toml::Table::new();
    for (name, value) in env {
        let Some(path) = name.strip_prefix("RHIZOME_") else { continue };
        if NON_SETTING_VARS.contains(&name.as_str()) || path.is_empty() {
            continue;
        }
        let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        set_path(&mut table, &keys, parse_env_value(&value));
    }
    table
}

/// A value as TOML when it is one (`5`, `true`, `["a"]`), else as a string.
fn parse_env_value(text: &str) -> toml::Value {
    let probe = format!("value = {text}");
    match toml::from_str::<toml::Table>(&probe) {
        Ok(mut table) => table.remove("value").unwrap_or_else(|| toml::Value::String(text.to_owned())),
        Err(_) => toml::Value::String(text.to_owned()),
    }
}

/// Sets `value` at a dotted path, creating tables on the way.
pub fn set_path(table: &mut toml::Table, keys: &[String], value: toml::Value) {
    let Some((last, parents)) = keys.split_last() else { return };
    let mut current = table;
    for key in parents {
        let entry = current.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else { return };
        current = next;
    }
    current.insert(last.clone(), value);
}

/// Merges `over` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(incoming)) => merge(existing, incoming),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    #[test]
    fn a_renamed_key_is_refused_with_its_new_name() {
        let error = load(None, env(&[("RHIZOME_NODE__REQUEST_TIMEOUT_MS", "5000")]), toml::Table::new()).unwrap_err();
        assert!(matches!(error, ConfigError::Renamed { old: "node.request_timeout_ms", .. }), "{error}");
        assert!(error.to_string().contains("node.sync_request_timeout_ms"), "{error}");
        let renamed = load(None, env(&[("RHIZOME_NODE__SYNC_REQUEST_TIMEOUT_MS", "5000")]), toml::Table::new());
        assert_eq!(renamed.unwrap().node.to_node_config().core.sync_request_timeout_ms, 5_000);
    }

    #[test]
    fn defaults_put_the_node_on_loopback_with_data_in_rhizome_data() {
        let config = load(None, Vec::new(), toml::Table::new()).expect("defaults load");
        assert_eq!(config.data_dir, PathBuf::from("rhizome-data"));
        assert!(config.api.listen.ip().is_loopback());
        assert!(config.net.listen.iter().all(|addr| addr.starts_with("/ip4/127.0.0.1/")));
        assert!(!config.dev);
    }

    #[test]
    fn the_settings_shown_in_node_md_are_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/NODE.md");
        let doc = std::fs::read_to_string(&path).expect("docs/NODE.md");
        let block = doc.split("```toml\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a TOML block");
        let documented: Config = toml::from_str(block).expect("the documented settings parse");
        let defaults = load(None, env(&[]), toml::Table::new()).expect("defaults load");
        assert_eq!(format!("{documented:?}"), format!("{defaults:?}"), "docs/NODE.md shows other values");
    }

    #[test]
    fn file_then_environment_then_flags_each_win_over_the_layer_below() {
        let dir = std::env::temp_dir().join(format!("rhizome-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("rhizomed.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\n[net]\nmin_peers = 7\nmdns = true\n[api]\nlisten = \"127.0.0.1:4000\"\n",
        )
        .expect("write config");
        let vars = env(&[
            ("RHIZOME_NET__MIN_PEERS", "9"),
            ("RHIZOME_API__LISTEN", "127.0.0.1:5000"),
            ("RHIZOME_PASSPHRASE", "not a setting"),
            ("HOME", "/ignored"),
        ]);
        let mut flags = toml::Table::new();
        set_path(&mut flags, &["api".into(), "listen".into()], toml::Value::String("127.0.0.1:6000".into()));
        let config = load(Some(&file), vars, flags).expect("layers load");
        assert_eq!(config.data_dir, PathBuf::from("/from/file"), "file beats the default");
        assert!(config.net.mdns, "file value kept where nothing overrides it");
        assert_eq!(config.net.min_peers, 9, "environment beats the file");
        assert_eq!(config.api.listen.port(), 6000, "flags beat the environment");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn environment_values_parse_as_toml_or_fall_back_to_strings() {
        let vars = env(&[
            ("RHIZOME_NET__BOOTSTRAP", "[\"/ip4/10.0.0.1/tcp/1\"]"),
            ("RHIZOME_DATA_DIR", "/var/lib/rhizome"),
            ("RHIZOME_API__RATE_LIMIT__ENABLED", "false"),
        ]);
        let config = load(None, vars, toml::Table::new()).expect("env loads");
        assert_eq!(config.net.bootstrap, vec!["/ip4/10.0.0.1/tcp/1".to_owned()]);
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/rhizome"));
        assert!(!config.api.rate_limit.enabled);
    }

    #[test]
    fn an_unknown_key_is_an_error_that_names_it() {
        let error = load(None, env(&[("RHIZOME_NET__MIN_PEER", "3")]), toml::Table::new()).expect_err("typo rejected");
        assert!(error.to_string().contains("min_peer"), "{error}");
    }

    #[test]
    fn a_bad_multiaddr_is_named() {
        let settings = NetSettings { bootstrap: vec!["not-an-addr".into()], ..NetSettings::default() };
        let error = settings.to_net_config().expect_err("bad addr rejected");
        assert!(matches!(error, ConfigError::BadMultiaddr(text) if text == "not-an-addr"));
    }
}
