//! The rhizomed command line, as a user runs it: start-up errors are clear messages and a
//! non-zero exit, never a panic.

use std::path::PathBuf;
use std::process::{Command, Output};

fn rhizomed(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rhizomed"))
        .args(args)
        .current_dir(dir)
        .env_remove("RHIZOME_PASSPHRASE")
        .env_remove("RHIZOME_CONFIG")
        .env_remove("RHIZOME_TOKEN")
        .env_remove("RHIZOME_API_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("rhizomed runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rhizomed-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn init_without_a_passphrase_and_without_a_terminal_says_how_to_give_one() {
    let dir = scratch("no-passphrase");
    let output = rhizomed(&["init"], &dir);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("RHIZOME_PASSPHRASE") && message.contains("--dev"), "{message}");
    assert!(!message.contains("panicked"), "{message}");
    assert!(!dir.join("rhizome-data/identity.key").exists(), "nothing half-created");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn init_seals_the_identity_with_the_passphrase_and_refuses_to_run_twice() {
    let dir = scratch("sealed");
    let output = Command::new(env!("CARGO_BIN_EXE_rhizomed"))
        .args(["init"])
        .current_dir(&dir)
        .env("RHIZOME_PASSPHRASE", "a passphrase")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("rhizomed runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("init prints JSON");
    assert_eq!(printed["sealed"], true);
    assert_eq!(printed["peer_id"].as_str().map(str::len), Some(64));
    let key = std::fs::read_to_string(dir.join("rhizome-data/identity.key")).expect("identity written");
    assert!(key.contains("argon2id") && !key.contains("secret_key"), "{key}");
    assert!(dir.join("rhizome-data/api-token").exists());
    let again = rhizomed(&["init", "--dev"], &dir);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already holds an identity"), "{}", stderr(&again));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dev_mode_says_loudly_that_the_key_is_plaintext() {
    let dir = scratch("dev");
    let output = rhizomed(&["init", "--dev"], &dir);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("PLAINTEXT"), "{}", stderr(&output));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_misspelt_setting_names_itself() {
    let dir = scratch("typo");
    let output = Command::new(env!("CARGO_BIN_EXE_rhizomed"))
        .args(["run", "--dev"])
        .current_dir(&dir)
        .env("RHIZOME_NET__MIN_PEER", "3")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("rhizomed runs");
    assert!(!output.status.success());
    assert!(stderr(&output).contains("min_peer"), "{}", stderr(&output));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_client_command_without_a_node_reports_where_it_looked() {
    let dir = scratch("no-node");
    let output = rhizomed(&["status", "--api", "http://127.0.0.1:9"], &dir);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("cannot reach the node at http://127.0.0.1:9"), "{}", stderr(&output));
    std::fs::remove_dir_all(&dir).ok();
}
