//! `cargo xtask sim …`: builds the simulator with `--cfg madsim` in its own target directory
//! (`target/madsim`), so nobody types RUSTFLAGS, and runs it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{bail, Result};

use crate::cmd;

/// A cargo command for the simulator build.
pub(crate) fn cargo() -> Command {
    let mut command = cmd::cargo();
    let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if !flags.split_whitespace().any(|flag| flag == "madsim") {
        flags = format!("{flags} --cfg madsim").trim().to_owned();
    }
    command.env("RUSTFLAGS", flags).env("CARGO_TARGET_DIR", target_dir());
    command
}

fn target_dir() -> PathBuf {
    cmd::workspace_root().join("target").join("madsim")
}

/// The simulator binary built by [`build`].
pub(crate) fn binary() -> PathBuf {
    target_dir().join("release").join("rhizome-sim")
}

/// Builds the WASM apps (the simulated nodes run them) and the simulator, in release. Cargo's
/// own progress shows on stderr (the first build takes minutes), so the simulator's output on
/// stdout stays its own.
pub(crate) fn build() -> Result<()> {
    crate::apps::build()?;
    let mut command = cargo();
    command.args(["build", "--release", "--locked", "-p", "rhizome-sim"]);
    let shown = cmd::display(&command);
    eprintln!("$ RUSTFLAGS=\"--cfg madsim\" {shown}");
    let status = cmd::status(&mut command)?;
    if !status.success() {
        bail!("building the simulator failed with {}", cmd::describe(status));
    }
    Ok(())
}

/// `cargo xtask sim <args>`: everything after `sim` goes to `rhizome-sim`.
pub(crate) fn run(rest: &[OsString]) -> Result<ExitCode> {
    build()?;
    let mut command = Command::new(binary());
    command.current_dir(cmd::workspace_root()).args(rest);
    let status = cmd::status(&mut command)?;
    Ok(cmd::exit_code(status))
}

/// The scenario files, sorted.
pub(crate) fn scenarios() -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cmd::workspace_root().join("scenarios"))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    Ok(files)
}
