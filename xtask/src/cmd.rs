//! Helpers for running child processes (mostly cargo) from the workspace root.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// clippy-driver, once `cargo xtask test` has turned on [`lint_while_building`].
static LINTING_DRIVER: OnceLock<PathBuf> = OnceLock::new();

/// What `cargo clippy -- -D warnings` hands clippy-driver (its own argument separator).
const CLIPPY_ARGS_DENY_WARNINGS: &str = "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__";

/// From now on, every cargo command compiles the workspace's own crates with clippy-driver
/// (clippy's lints, `-D warnings`) instead of plain rustc; dependencies still use rustc.
///
/// This is how `cargo clippy` works too, but with code generation left on, so one build both
/// lints and produces the binaries the tests run. A separate `cargo clippy` would type-check
/// every dependency (wasmtime, libp2p, ...) a second time: five minutes of CI's two cores.
pub(crate) fn lint_while_building() -> Result<()> {
    let driver = clippy_driver()?;
    println!("linting while building: {}", driver.display());
    let _ = LINTING_DRIVER.set(driver);
    Ok(())
}

/// The toolchain's clippy-driver: `<rustc sysroot>/bin/clippy-driver`.
fn clippy_driver() -> Result<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .with_context(|| format!("could not run `{} --print sysroot`", rustc.to_string_lossy()))?;
    if !output.status.success() {
        bail!("`{} --print sysroot` failed with {}", rustc.to_string_lossy(), describe(output.status));
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let driver = sysroot.join("bin").join(format!("clippy-driver{}", std::env::consts::EXE_SUFFIX));
    if !driver.is_file() {
        bail!(
            "clippy-driver is not at {}: install clippy for this toolchain (`rustup component add clippy`)",
            driver.display()
        );
    }
    Ok(driver)
}

/// The cargo to invoke: `$CARGO` (set by `cargo run`), else `cargo` from `PATH`.
pub(crate) fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

/// The workspace root: the parent of this crate's directory.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// A `cargo` command that runs in the workspace root.
pub(crate) fn cargo() -> Command {
    let mut command = Command::new(cargo_program());
    command.current_dir(workspace_root());
    if let Some(driver) = LINTING_DRIVER.get() {
        command.env("RUSTC_WORKSPACE_WRAPPER", driver).env("CLIPPY_ARGS", CLIPPY_ARGS_DENY_WARNINGS);
    }
    command
}

/// Runs `command` with inherited stdio and returns its exit status.
pub(crate) fn status(command: &mut Command) -> Result<ExitStatus> {
    command.status().with_context(|| format!("could not start `{}`", display(command)))
}

/// A command as a user would type it: the program's file name, then its arguments.
pub(crate) fn display(command: &Command) -> String {
    let program = Path::new(command.get_program());
    let mut shown = program.file_name().unwrap_or(program.as_os_str()).to_string_lossy().into_owned();
    for arg in command.get_args() {
        shown.push(' ');
        shown.push_str(&arg.to_string_lossy());
    }
    shown
}

/// Describes how a child exited, for error messages.
pub(crate) fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => format!("{status}"),
    }
}

/// The exit code to pass a child's status through with (1 if it was killed by a signal).
pub(crate) fn exit_code(status: ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}
