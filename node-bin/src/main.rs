//! The `rhizomed` binary: see `rhizomed --help`.

use clap::Parser as _;
use rhizomed::cli::{AppCommand, CallArgs, Cli, ClientFlags, Command, ContextCommand, NodeFlags};
use rhizomed::client::{ApiClient, ClientError};
use rhizomed::config::{self, Config, LogFormat};
use serde_json::{json, Value};
use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// mimalloc: under a load of API calls the node spends a fifth of its time in glibc's malloc
/// and free; with mimalloc it answers about 20 % more calls a second (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `arena_eager_commit` option (its id in the bundled v3).
const MI_OPTION_ARENA_EAGER_COMMIT: i32 = 4;

/// Keeps mimalloc's resident memory down: arenas are committed as they are used rather than
/// up front. Freed memory goes back to the OS after mimalloc's default 10 ms purge delay;
/// purging at once (delay 0) kept idle RSS lower (65 MB against 79-92 MB) but cost about 8 % of
/// calls/s in TLB shootdowns and page faults, and did not lower memory per context
/// (docs/PERFORMANCE.md, session 7). Runs first in `main`, before the node allocates in
/// earnest. mimalloc's own environment variables (`MIMALLOC_ARENA_EAGER_COMMIT`,
/// `MIMALLOC_PURGE_DELAY`, ...) win, so an operator can trade memory for speed without a
/// rebuild.
#[allow(unsafe_code)]
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
        // SAFETY: `mi_option_set` only stores an integer option; the id exists in the mimalloc
        // version libmimalloc-sys builds, and the allocator reads it on later allocations.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Init(flags) => init(&flags),
        Command::Run(flags) => run(&flags),
        command => client_command(command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn load_config(flags: &NodeFlags) -> anyhow::Result<Config> {
    Ok(config::load(flags.config.as_deref(), std::env::vars(), flags.to_table())?)
}

fn init_logging(config: &Config) {
    let filter = std::env::var("RHIZOME_LOG").unwrap_or_else(|_| config.log.filter.clone());
    let filter =
        tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// The identity passphrase: from `--passphrase-file`, `RHIZOME_PASSPHRASE`, or the terminal.
fn passphrase(flags: &NodeFlags, config: &Config, confirm: bool) -> anyhow::Result<Option<Zeroizing<String>>> {
    if config.dev {
        return Ok(None);
    }
    if let Some(path) = &flags.passphrase_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display()))?,
        );
        return Ok(Some(Zeroizing::new(text.lines().next().unwrap_or("").to_owned())));
    }
    if let Ok(text) = std::env::var("RHIZOME_PASSPHRASE") {
        return Ok(Some(Zeroizing::new(text)));
    }
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let first = Zeroizing::new(rpassword::prompt_password("identity passphrase: ")?);
    if confirm {
        let second = Zeroizing::new(rpassword::prompt_password("again: ")?);
        anyhow::ensure!(*first == *second, "the passphrases differ");
    }
    Ok(Some(first))
}

fn init(flags: &NodeFlags) -> anyhow::Result<()> {
    let config = load_config(flags)?;
    init_logging(&config);
    anyhow::ensure!(
        !rhizomed::identity::exists(&config.data_dir),
        "{} already holds an identity",
        config.data_dir.display()
    );
    let passphrase = passphrase(flags, &config, true)?;
    let (identity, _token) = rhizomed::daemon::prepare_data_dir(&config, passphrase)?;
    print_json(&json!({
        "data_dir": config.data_dir.display().to_string(),
        "peer_id": hex::encode(identity.keypair().author_key().as_bytes()),
        "sealed": !config.dev,
    }));
    Ok(())
}

fn run(flags: &NodeFlags) -> anyhow::Result<()> {
    let config = load_config(flags)?;
    init_logging(&config);
    let passphrase = if rhizomed::identity::exists(&config.data_dir) {
        passphrase(flags, &config, false)?
    } else {
        passphrase(flags, &config, true)?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(rhizomed::daemon::run(config, passphrase))
}

fn client(flags: &ClientFlags) -> ApiClient {
    ApiClient::for_data_dir(&flags.data_dir, flags.api.clone(), flags.token.clone())
}

#[allow(clippy::print_stdout)]
fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

fn call_params(args: &CallArgs) -> anyhow::Result<Value> {
    let mut params = json!({"context": args.context, "method": args.method});
    if let Some(text) = &args.args {
        let parsed: Value = serde_json::from_str(text).map_err(|error| anyhow::anyhow!("ARGS is not JSON: {error}"))?;
        anyhow::ensure!(parsed.is_array(), "ARGS must be a JSON array, e.g. '[\"key\", \"value\"]'");
        params["args"] = parsed;
    }
    if let Some(hex) = &args.input_hex {
        params["input_hex"] = Value::String(hex.clone());
    }
    if let Some(returns) = &args.returns {
        params["returns"] = Value::String(returns.clone());
    }
    Ok(params)
}

fn read_invitation(text: &str) -> anyhow::Result<String> {
    let raw = if text == "-" {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input)?;
        input
    } else if let Some(path) = text.strip_prefix('@') {
        std::fs::read_to_string(path).map_err(|error| anyhow::anyhow!("reading {path}: {error}"))?
    } else {
        text.to_owned()
    };
    // The invite command prints JSON with the token in `invitation`; that whole answer works too.
    match serde_json::from_str::<Value>(&raw) {
        Ok(value) => match value.get("invitation").and_then(Value::as_str) {
            Some(token) => Ok(token.to_owned()),
            None => anyhow::bail!("the JSON has no \"invitation\" token"),
        },
        Err(_) => Ok(raw.trim().to_owned()),
    }
}

fn client_command(command: Command) -> anyhow::Result<()> {
    let answer: Result<Value, ClientError> = match command {
        Command::Init(_) | Command::Run(_) => anyhow::bail!("init and run are not client commands"),
        Command::App(AppCommand::Install { file, client: flags }) => {
            let bytes = std::fs::read(&file).map_err(|error| anyhow::anyhow!("reading {}: {error}", file.display()))?;
            client(&flags).post_bytes("/admin/apps", &bytes, "application/wasm")
        }
        Command::App(AppCommand::List(flags)) => client(&flags).get("/admin/apps"),
        Command::Context(ContextCommand::Create { app, members, client: flags }) => {
            client(&flags).post_json("/admin/contexts", &json!({"app": app, "members": members}))
        }
        Command::Context(ContextCommand::List(flags)) => client(&flags).get("/admin/contexts"),
        Command::Context(ContextCommand::Members { context, client: flags }) => {
            client(&flags).get(&format!("/admin/contexts/{context}/members"))
        }
        Command::Context(ContextCommand::Invite { context, key, role, expires_in, client: flags }) => {
            let expires_in_secs = rhizomed::cli::parse_duration_secs(&expires_in)
                .map_err(|error| anyhow::anyhow!("--expires-in: {error}"))?;
            let body = json!({"key": key, "role": role, "expires_in_secs": expires_in_secs});
            client(&flags).post_json(&format!("/admin/contexts/{context}/invite"), &body)
        }
        Command::Context(ContextCommand::Remove { context, keys, client: flags }) => {
            client(&flags).post_json(&format!("/admin/contexts/{context}/remove"), &json!({"keys": keys}))
        }
        Command::Context(ContextCommand::Join { invitation, client: flags }) => {
            let invitation = read_invitation(&invitation)?;
            client(&flags).post_json("/admin/contexts/join", &json!({"invitation": invitation}))
        }
        Command::Call(args) => client(&args.client).rpc("call", call_params(&args)?),
        Command::Query(args) => client(&args.client).rpc("query", call_params(&args)?),
        Command::Status(flags) => client(&flags).get("/admin/status"),
        Command::Peers(flags) => client(&flags).get("/admin/peers"),
        Command::Watch { context, count, client: flags } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let api = client(&flags);
            let mut seen = 0u64;
            let closed = runtime.block_on(api.watch(&context, |event| {
                #[allow(clippy::print_stdout)]
                {
                    println!("{event}");
                }
                seen += 1;
                count.is_none_or(|limit| seen < limit)
            }))?;
            if let Some(reason) = closed {
                anyhow::bail!("the node closed the subscription: {reason}");
            }
            return Ok(());
        }
    };
    print_json(&answer?);
    Ok(())
}
