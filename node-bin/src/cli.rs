//! rhizomed's command line: `init` and `run` for the node, and client commands that talk to a
//! running node's API.

use crate::config::{set_path, LogFormat};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// rhizomed: a peer-to-peer node that replicates application state as a DAG of causal deltas.
#[derive(Debug, Parser)]
#[command(name = "rhizomed", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Creates a data directory: a sealed identity and an API token.
    Init(NodeFlags),
    /// Runs a node until SIGTERM or Ctrl-C.
    Run(NodeFlags),
    /// Installs or lists apps.
    #[command(subcommand)]
    App(AppCommand),
    /// Creates, lists, inspects, invites to and joins contexts.
    #[command(subcommand)]
    Context(ContextCommand),
    /// Calls an app method that writes; prints its output and the delta it made.
    Call(CallArgs),
    /// Calls a read-only app method.
    Query(CallArgs),
    /// Prints a context's events as they happen, one JSON object per line.
    Watch {
        /// The context (hex).
        context: String,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
        /// Where the node is.
        #[command(flatten)]
        client: ClientFlags,
    },
    /// Prints the node's status.
    Status(ClientFlags),
    /// Prints the node's peers.
    Peers(ClientFlags),
}

/// Settings a node takes on the command line (each overrides the file and the environment).
#[derive(Debug, Args, Default)]
pub struct NodeFlags {
    /// A TOML config file [env: RHIZOME_CONFIG].
    #[arg(long, env = "RHIZOME_CONFIG")]
    pub config: Option<PathBuf>,
    /// The data directory (default ./rhizome-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The API's listen address, e.g. 127.0.0.1:2528.
    #[arg(long)]
    pub api_listen: Option<String>,
    /// A peer-to-peer listen multiaddr (repeatable).
    #[arg(long = "listen")]
    pub listen: Vec<String>,
    /// A bootstrap peer multiaddr ending in /p2p/<id> (repeatable).
    #[arg(long = "bootstrap")]
    pub bootstrap: Vec<String>,
    /// Discover LAN peers with mDNS.
    #[arg(long)]
    pub mdns: bool,
    /// Keep the identity key in PLAINTEXT (development only).
    #[arg(long)]
    pub dev: bool,
    /// A file whose first line is the identity passphrase [env: RHIZOME_PASSPHRASE_FILE].
    #[arg(long, env = "RHIZOME_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

impl NodeFlags {
    /// The flags as the top configuration layer.
    pub fn to_table(&self) -> toml::Table {
        let mut table = toml::Table::new();
        let mut set = |path: &[&str], value: toml::Value| {
            let keys: Vec<String> = path.iter().map(|key| (*key).to_owned()).collect();
            set_path(&mut table, &keys, value);
        };
        if let Some(dir) = &self.data_dir {
            set(&["data_dir"], toml::Value::String(dir.display().to_string()));
        }
        if let Some(listen) = &self.api_listen {
            set(&["api", "listen"], toml::Value::String(listen.clone()));
        }
        let strings = |list: &[String]| toml::Value::Array(list.iter().cloned().map(toml::Value::String).collect());
        if !self.listen.is_empty() {
            set(&["net", "listen"], strings(&self.listen));
        }
        if !self.bootstrap.is_empty() {
            set(&["net", "bootstrap"], strings(&self.bootstrap));
        }
        if self.mdns {
            set(&["net", "mdns"], toml::Value::Boolean(true));
        }
        if self.dev {
            set(&["dev"], toml::Value::Boolean(true));
        }
        if let Some(format) = self.log_format {
            let name = match format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            };
            set(&["log", "format"], toml::Value::String(name.to_owned()));
        }
        table
    }
}

/// Where the node's API is and how to authenticate.
#[derive(Debug, Args, Clone)]
pub struct ClientFlags {
    /// The API's base URL; default: the one in <data-dir>/rhizomed.json, else http://127.0.0.1:2528.
    #[arg(long, env = "RHIZOME_API_URL")]
    pub api: Option<String>,
    /// The admin token; default: <data-dir>/api-token.
    #[arg(long, env = "RHIZOME_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The node's data directory, to find its API and token.
    #[arg(long, default_value = "rhizome-data")]
    pub data_dir: PathBuf,
}

/// `rhizomed app ...`
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Installs a WASM module; prints its app id.
    Install {
        /// The .wasm file.
        file: PathBuf,
        /// Where the node is.
        #[command(flatten)]
        client: ClientFlags,
    },
    /// Lists installed apps.
    List(ClientFlags),
}

/// `rhizomed context ...`
#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// Creates a context running an app; prints its id.
    Create {
        /// The app id (hex).
        #[arg(long)]
        app: String,
        /// Another member's key (hex, repeatable); this node is always a member.
        #[arg(long = "member")]
        members: Vec<String>,
        /// Where the node is.
        #[command(flatten)]
        client: ClientFlags,
    },
    /// Lists contexts with their heads, root and pending deltas.
    List(ClientFlags),
    /// Lists a context's members.
    Members {
        /// The context (hex).
        context: String,
        /// Where the node is.
        #[command(flatten)]
        client: ClientFlags,
    },
    /// Adds a member and prints the signed invitation token its node joins with.
    Invite {
        /// The context (hex).
        context: String,
        /// The invitee's key (hex; `rhizomed status` prints a node's `author_key`). Only the
        /// node holding this key can use the token.
        #[arg(long)]
        key: String,
        /// The role the invitee gets: member or admin.
        #[arg(long, default_value = "member")]
        role: String,
        /// How long the token may be accepted: a number with s, m, h or d (e.g. 90m, 24h).
        #[arg(long, default_value = "24h")]
        expires_in: String,
        /// Where the node is.
        #[command(flatten)]
        client: ClientFlags,
    },
    /// Removes members (their later writes are refused; the context key rotates past them).
    Remove {
        /// The context (hex).
        context: String,
        /// A member's key (hex, repeatable).
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        /// Where the node is.
        #[command(flatten)]
        client: ClientFlags,
    },
    /// Joins a context with an invitation token (the text, @file, or - for stdin).
    Join {
        /// The token (`rhz-invite-2:...`).
        invitation: String,
        /// Where the node is.
        #[command(flatten)]
        client: ClientFlags,
    },
}

/// Seconds in a duration written as a number and a unit: `s`, `m`, `h` or `d` (`90m`, `24h`).
pub fn parse_duration_secs(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text:?} does not start with a number"))?;
    let unit_secs = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("unknown unit {other:?} in {text:?}: use s, m, h or d")),
    };
    number.checked_mul(unit_secs).ok_or_else(|| format!("{text:?} is too long"))
}

/// `rhizomed call|query CONTEXT METHOD [ARGS]`
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The context (hex).
    pub context: String,
    /// The method.
    pub method: String,
    /// The arguments as a JSON array, encoded as a borsh tuple (strings, integers, booleans,
    /// nested arrays), e.g. '["key", "value"]'.
    pub args: Option<String>,
    /// Raw input bytes (hex) instead of ARGS.
    #[arg(long, conflicts_with = "args")]
    pub input_hex: Option<String>,
    /// How to decode the output: bytes, string, option_string, u64, bool, string_pairs, unit.
    #[arg(long)]
    pub returns: Option<String>,
    /// Where the node is.
    #[command(flatten)]
    pub client: ClientFlags,
}
