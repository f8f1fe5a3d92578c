//! Project automation: `cargo xtask <command>`.
//!
//! The `xtask` alias lives in `.cargo/config.toml`. This crate depends on `anyhow` only and
//! shells out to `cargo` (the `CARGO` environment variable, falling back to `cargo`) from the
//! workspace root.

// Printing progress and results is this binary's whole job.
#![allow(clippy::print_stdout)]

mod apps;
mod cluster;
mod cmd;
mod sim;
mod test;

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  test                 apps, fmt --check, clippy -D warnings, all tests, the demo (what CI runs)
  apps                 build the WASM apps in apps/ into target/wasm/*.wasm
  sim <args>           build the simulator (--cfg madsim, target/madsim) and run rhizome-sim:
                         sim run scenarios/smoke-3.toml [--seed N] [--json OUT] [--html OUT]
                         sim sweep FILE --seeds A..B [--jobs J] [--swarm] [--check-determinism]
                         sim replay FILE --seed N --trace
                         sim shrink FILE --seed N [--out PATH]
  demo [--seed N]      run the in-process 5-node core cluster demo (default seed 7)
  cluster [--nodes N] [--release]
                       start N rhizomed processes on loopback (default 3), all joined to one
                       kv-store demo context; prints how to talk to them; Ctrl-C stops them
  bench-node [args]    build rhizomed in release and benchmark it as real processes on loopback:
                         bench-node [all | e2e --nodes N | calls | health | startup | memory]
  bench [args...]      run criterion benchmarks (args are passed to `cargo bench`, e.g. `-- <filter>`)
  help                 print this message";

/// Exit code for command-line usage errors.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let command = args.next();
    let rest: Vec<OsString> = args.collect();

    let result = match command.as_ref().and_then(|c| c.to_str()) {
        None | Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some("test") => no_extra_args("test", &rest).and_then(|()| test::run()),
        Some("demo") => demo(&rest),
        Some("sim") => sim::run(&rest),
        Some("apps") => no_extra_args("apps", &rest).and_then(|()| apps::build().map(|()| ExitCode::SUCCESS)),
        Some("bench") => bench(&rest),
        Some("cluster") => cluster::run(&rest),
        Some("bench-node") => bench_node(&rest),
        Some(_) => {
            let shown = command.unwrap_or_default();
            eprintln!("error: unknown command `{}`\n\n{USAGE}", shown.to_string_lossy());
            return ExitCode::from(USAGE_ERROR);
        }
    };

    match result {
        Ok(code) => code,
        Err(err) => {
            if let Some(usage) = err.downcast_ref::<UsageError>() {
                eprintln!("error: {}\n\n{USAGE}", usage.0);
                ExitCode::from(USAGE_ERROR)
            } else {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        }
    }
}

/// A bad command line; reported with the usage text and exit code 2.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage_error(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

fn no_extra_args(command: &str, rest: &[OsString]) -> Result<()> {
    match rest.first() {
        None => Ok(()),
        Some(arg) => Err(usage_error(format!("`{command}` takes no arguments (got `{}`)", arg.to_string_lossy()))),
    }
}

/// `cargo xtask demo [--seed N]`: the project's main job for now.
fn demo(rest: &[OsString]) -> Result<ExitCode> {
    const DEFAULT_SEED: u64 = 7;
    let mut seed = DEFAULT_SEED;
    let mut args = rest.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        let value = if arg == "--seed" {
            args.next().ok_or_else(|| usage_error("`--seed` needs a value"))?
        } else if let Some(value) = arg.strip_prefix("--seed=") {
            value.to_owned()
        } else {
            return Err(usage_error(format!("`demo`: unexpected argument `{arg}`")));
        };
        seed = value
            .parse()
            .map_err(|_| usage_error(format!("`--seed` must be an unsigned 64-bit integer (got `{value}`)")))?;
    }

    let mut command = cmd::cargo();
    command
        .args(["run", "--release", "--quiet", "-p", "rhizome-core"])
        .args(["--features", "testing", "--example", "cluster_demo", "--"])
        .arg("--seed")
        .arg(seed.to_string());
    let status = cmd::status(&mut command)?;
    Ok(cmd::exit_code(status))
}

/// `cargo xtask bench [args...]`: everything after `bench` goes to `cargo bench` verbatim, so
/// `cargo xtask bench -- <filter>` reaches criterion.
fn bench(rest: &[OsString]) -> Result<ExitCode> {
    let mut command = cmd::cargo();
    command.args(["bench", "-p", "rhizome-benches"]).args(rest);
    let status = cmd::status(&mut command).context("running benchmarks")?;
    Ok(cmd::exit_code(status))
}

/// `cargo xtask bench-node [args]`: builds rhizomed and the benchmark driver in release mode,
/// then runs `node-bench` (default: `all`), which starts real rhizomed processes on loopback.
fn bench_node(rest: &[OsString]) -> Result<ExitCode> {
    apps::build()?;
    let mut build = cmd::cargo();
    build.args(["build", "--release", "--locked", "-p", "rhizomed", "-p", "rhizome-integration"]);
    println!("$ {}", cmd::display(&build));
    let status = cmd::status(&mut build)?;
    if !status.success() {
        anyhow::bail!("building the node benchmarks failed with {}", cmd::describe(status));
    }
    let driver = cmd::workspace_root().join("target").join("release").join("node-bench");
    let mut command = std::process::Command::new(driver);
    if rest.is_empty() {
        command.arg("all");
    } else {
        command.args(rest);
    }
    command.env("RHIZOMED_BIN", cmd::workspace_root().join("target").join("release").join("rhizomed"));
    println!("$ {}", cmd::display(&command));
    Ok(cmd::exit_code(cmd::status(&mut command)?))
}
