//! `cargo xtask apps`: builds every guest app in `apps/` for wasm32-unknown-unknown, in release
//! mode, into `target/wasm/<name>.wasm`, installing the wasm32 target with rustup if needed.

use std::path::PathBuf;
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
        .arg(&target_dir);
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
        .args(["--", "-D", "warnings"]);
    let shown = cmd::display(&command);
    eprintln!("$ {shown}");
    let status = cmd::status(&mut command)?;
    if !status.success() {
        bail!("`{shown}` failed with {}", cmd::describe(status));
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
