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
    drop_environment_rustflags(&mut command);
    // Never through `cargo xtask test`'s linting wrapper: clippy-driver compiles other bytes
    // (other symbol hashes), so CI's modules, and so its trace hashes, would differ from those of
    // `cargo xtask sim` on the same commit. The apps are linted in their own step.
    command.env_remove("RUSTC_WORKSPACE_WRAPPER").env_remove("CLIPPY_ARGS");
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
        check_machine_independent(&from, &root)?;
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
        .args(remap_path_args(&root))
        .args(["--", "-D", "warnings"]);
    drop_environment_rustflags(&mut command);
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
/// another trace hash on a machine whose cargo home or checkout lies elsewhere. The cargo home
/// comes last: rustc applies the last matching remap, so a cargo home inside the checkout is
/// still `/cargo`.
fn machine_paths(root: &Path) -> Vec<(PathBuf, &'static str)> {
    let mut paths = vec![(root.to_path_buf(), "/rhizome")];
    if let Some(cargo_home) = cargo_home() {
        paths.push((cargo_home, "/cargo"));
    }
    paths
}

fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| home().map(|home| home.join(".cargo")))
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
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

/// An environment `RUSTFLAGS` (or `CARGO_ENCODED_RUSTFLAGS`) replaces every
/// `target.<triple>.rustflags`, which would drop both the guest's link flags and the path
/// remapping: the guests are built without them, and say so.
fn drop_environment_rustflags(command: &mut Command) {
    for variable in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"] {
        if std::env::var_os(variable).is_some() {
            eprintln!("note: {variable} is set; the WASM apps are built without it (it would replace their own flags)");
            command.env_remove(variable);
        }
    }
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Fails if the module still names a directory of this machine: the checkout, the cargo home
/// or the home directory (a dependency the remapping missed). A path counts only as a whole
/// directory (followed by `/`), and a directory that is already its remapped name is skipped.
fn check_machine_independent(module: &Path, root: &Path) -> Result<()> {
    let bytes = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    let remapped: Vec<(PathBuf, Option<&str>)> =
        machine_paths(root).into_iter().map(|(from, to)| (from, Some(to))).collect();
    let directories = remapped.into_iter().chain(home().map(|home| (home, None)));
    for (directory, remapped_to) in directories {
        let name = directory.to_string_lossy().trim_end_matches('/').to_owned();
        if name.is_empty() || remapped_to == Some(name.as_str()) {
            continue;
        }
        if names_directory(&bytes, &name) {
            bail!(
                "{} names the machine directory {name}: its bytes, its app id and every simulator \
                 trace hash would differ on another machine (remap it in `machine_paths`)",
                module.display()
            );
        }
    }
    Ok(())
}

/// True if `bytes` hold `directory` followed by `/` and not preceded by a path-name character,
/// so that `/src` is not found inside `/cargo/registry/src/`.
fn names_directory(bytes: &[u8], directory: &str) -> bool {
    let needle = format!("{directory}/");
    let part_of_a_name = |byte: u8| byte.is_ascii_alphanumeric() || b"._-".contains(&byte);
    bytes
        .windows(needle.len())
        .enumerate()
        .any(|(at, window)| window == needle.as_bytes() && (at == 0 || !part_of_a_name(bytes[at - 1])))
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

#[cfg(test)]
mod tests {
    use super::names_directory;

    #[test]
    fn a_directory_is_found_only_as_a_whole_path() {
        assert!(names_directory(b"\x00/root/.cargo/registry/src/lib.rs", "/root"));
        assert!(names_directory(b"/home/me/rhizome/apps/kv/src/lib.rs", "/home/me/rhizome"));
        assert!(!names_directory(b"/cargo/registry/src/borsh/src/lib.rs", "/src"));
        assert!(!names_directory(b"/home/me/rhizome-old/x.rs", "/home/me/rhizome"));
        assert!(!names_directory(b"/rootless/x.rs", "/root"));
    }
}
