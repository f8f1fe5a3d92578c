//! `cargo xtask apps`: builds every guest app in `apps/` for wasm32-unknown-unknown, in release
//! mode, into `target/wasm/<name>.wasm`, installing the wasm32 target with rustup if needed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cmd;

const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The apps, as their cargo package names produce them (hyphens become underscores).
const APPS: &[&str] = &["kv_store", "counter", "todo", "hostile"];

/// Where the built modules go: `target/wasm/` under the workspace root.
pub(crate) fn wasm_dir() -> PathBuf {
    cmd::workspace_root().join("target").join("wasm")
}

pub(crate) fn build() -> Result<()> {
    ensure_wasm_target()?;
    let root = cmd::workspace_root();
    let target_dir = root.join("target").join("apps");
    let mut command = cmd::cargo();
    // Run from apps/ so cargo picks up apps/.cargo/config.toml (the guest's link flags).
    command
        .current_dir(root.join("apps"))
        .args(["build", "--release", "--locked", "--target", WASM_TARGET, "--target-dir"])
        .arg(&target_dir)
        .args(remap_path_args(&root));
    let shown = cmd::display(&command);
    eprintln!("$ {shown}");
    let status = cmd::status(&mut command)?;
    if !status.success() {
        bail!("`{shown}` failed with {}", cmd::describe(status));
    }
    let built = target_dir.join(WASM_TARGET).join("release");
    let out = wasm_dir();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for app in APPS {
        let from = built.join(format!("{app}.wasm"));
        let to = out.join(format!("{app}.wasm"));
        std::fs::copy(&from, &to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        check_machine_independent(&to, &root)?;
        let bytes = std::fs::metadata(&to).map(|meta| meta.len()).unwrap_or(0);
        eprintln!("  {:<12} {:>8} bytes  {}", app, bytes, to.display());
    }
    Ok(())
}

/// `cargo clippy -D warnings` over the guest workspace, for wasm32, from `apps/`.
pub(crate) fn clippy() -> Result<()> {
    let root = cmd::workspace_root();
    let mut command = cmd::cargo();
    command
        .current_dir(root.join("apps"))
        .args(["clippy", "--locked", "--target", WASM_TARGET, "--target-dir"])
        .arg(root.join("target").join("apps"))
        .args(remap_path_args(&root))
        .args(["--", "-D", "warnings"]);
    let shown = cmd::display(&command);
    eprintln!("$ {shown}");
    let status = cmd::status(&mut command)?;
    if !status.success() {
        bail!("`{shown}` failed with {}", cmd::describe(status));
    }
    Ok(())
}

/// The machine's paths that reach a module's bytes (the panic locations of registry crates and
/// of path dependencies), each with the fixed name it is rewritten to. A module's bytes are its
/// app id, and the app id is in every simulator trace: without this, the same seed would give
/// another trace hash on a machine whose cargo home or checkout lies elsewhere.
fn machine_paths(root: &Path) -> Vec<(PathBuf, &'static str)> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let mut paths = vec![(root.to_path_buf(), "/rhizome")];
    if let Some(cargo_home) = cargo_home {
        paths.push((cargo_home, "/cargo"));
    }
    paths
}

/// `--config` arguments adding `--remap-path-prefix` for every [`machine_paths`] entry to the
/// guest's rustflags (cargo joins them to those of `apps/.cargo/config.toml`).
fn remap_path_args(root: &Path) -> Vec<String> {
    let flags: Vec<String> = machine_paths(root)
        .iter()
        .map(|(from, to)| toml_string(&format!("--remap-path-prefix={}={to}", from.display())))
        .collect();
    vec!["--config".to_owned(), format!("target.{WASM_TARGET}.rustflags=[{}]", flags.join(", "))]
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Fails if the module still names a path of this machine (a dependency the remapping missed).
fn check_machine_independent(module: &Path, root: &Path) -> Result<()> {
    let bytes = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    for (path, _) in machine_paths(root) {
        let needle = path.to_string_lossy().into_owned();
        if !needle.is_empty() && bytes.windows(needle.len()).any(|window| window == needle.as_bytes()) {
            bail!(
                "{} names the machine path {needle}: its bytes, its app id and every simulator trace hash \
                 would differ on another machine (remap the path in `remap_path_args`)",
                module.display()
            );
        }
    }
    Ok(())
}

/// Installs the wasm32 target through rustup unless the toolchain already has it.
fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(output) if output.status.success() => {
            if String::from_utf8_lossy(&output.stdout).lines().any(|line| line.trim() == WASM_TARGET) {
                return Ok(());
            }
        }
        Ok(_) | Err(_) => {
            // No rustup (or it failed): the build below fails clearly if the target is missing.
            eprintln!("note: could not ask rustup which targets are installed; trying the build anyway");
            return Ok(());
        }
    }
    eprintln!("installing the {WASM_TARGET} target: rustup target add {WASM_TARGET}");
    let status = Command::new("rustup").args(["target", "add", WASM_TARGET]).status().context("running rustup")?;
    if !status.success() {
        bail!(
            "`rustup target add {WASM_TARGET}` failed with {}.\nhelp: the apps need the {WASM_TARGET} \
             standard library; install it for this toolchain (with rustup: `rustup target add {WASM_TARGET}`)",
            cmd::describe(status)
        );
    }
    Ok(())
}
