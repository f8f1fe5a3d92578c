//! `cargo xtask test`: the checks CI runs, as an ordered list of named steps.
//!
//! Steps run in order and the run stops at the first failure. To add a step (building the wasm
//! apps, running simulator scenarios, ...), append it to [`steps`].

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cmd;

/// One named step of `cargo xtask test`.
struct Step {
    /// Shown in the step header and the summary.
    name: &'static str,
    action: Action,
}

enum Action {
    /// Run cargo with these arguments; the step fails if it exits non-zero.
    Cargo(&'static [&'static str]),
    /// Arbitrary code.
    Run(fn() -> Result<()>),
}

fn steps() -> Vec<Step> {
    vec![
        Step { name: "toolchain: rustfmt, clippy and clippy-driver", action: Action::Run(check_toolchain) },
        Step { name: "build WASM apps", action: Action::Run(crate::apps::build) },
        Step { name: "cargo fmt --check", action: Action::Cargo(&["fmt", "--all", "--", "--check"]) },
        Step {
            name: "cargo fmt --check (apps)",
            action: Action::Cargo(&["fmt", "--all", "--manifest-path", "apps/Cargo.toml", "--", "--check"]),
        },
        Step { name: "cargo clippy -D warnings (apps)", action: Action::Run(crate::apps::clippy) },
        Step {
            name: "build and lint every target (clippy -D warnings while compiling)",
            action: Action::Cargo(&["test", "--workspace", "--all-targets", "--locked", "--no-run"]),
        },
        Step {
            name: "cargo test (workspace, with real rhizomed processes on loopback)",
            action: Action::Run(run_workspace_tests),
        },
        Step { name: "simulator build and lint (--cfg madsim, release)", action: Action::Run(crate::sim::build) },
        Step { name: "simulator tests (with and without the injected bug)", action: Action::Run(sim_tests) },
        Step {
            name: "every scenario, seeds 1..3 and its regression seeds, determinism checked",
            action: Action::Run(all_scenarios),
        },
        // The README's main job, so the quick start cannot silently break.
        Step { name: "main job: cargo xtask sim run scenarios/smoke-3.toml", action: Action::Run(main_job) },
    ]
}

enum Outcome {
    Passed(Duration),
    Failed(Duration),
    NotRun,
}

pub(crate) fn run() -> Result<ExitCode> {
    let steps = steps();
    let total = steps.len();
    let mut outcomes: Vec<Outcome> = steps.iter().map(|_| Outcome::NotRun).collect();
    let mut failure = None;

    for (index, step) in steps.iter().enumerate() {
        let label = format!("[{}/{total}] {}", index + 1, step.name);
        println!("==> {label}");
        let started = Instant::now();
        let result = run_action(&step.action);
        let elapsed = started.elapsed();
        match result {
            Ok(()) => outcomes[index] = Outcome::Passed(elapsed),
            Err(err) => {
                outcomes[index] = Outcome::Failed(elapsed);
                failure = Some(err.context(format!("step {label} failed")));
                break;
            }
        }
    }

    print_summary(&steps, &outcomes);
    let tally = Some(*TEST_TALLY.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    match failure {
        Some(err) => {
            if let Some(tally) = tally {
                println!("tests: {} passed, {} failed, {} skipped", tally.passed, tally.failed, tally.ignored);
            }
            Err(err)
        }
        None => {
            println!("all {total} steps passed");
            if let Some(tally) = tally {
                println!("tests: {} passed, {} failed, {} skipped", tally.passed, tally.failed, tally.ignored);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Test counts summed over every `test result:` line cargo printed.
#[derive(Debug, Default, Clone, Copy)]
struct TestTally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl TestTally {
    /// Adds the counts of a line like `test result: ok. 83 passed; 0 failed; 1 ignored; ...`.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else { return };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else { continue };
            let Ok(count) = count.parse::<u64>() else { continue };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

static TEST_TALLY: Mutex<TestTally> = Mutex::new(TestTally { passed: 0, failed: 0, ignored: 0 });

fn sim_tests() -> Result<()> {
    let mut plain = crate::sim::cargo();
    plain.args(["test", "--release", "--locked", "-p", "rhizome-sim"]);
    run_tallied(plain)?;
    let mut buggy = crate::sim::cargo();
    buggy.args(["test", "--release", "--locked", "-p", "rhizome-sim", "--features", "inject-drop-sync-response"]);
    buggy.args(["--test", "injected_bug"]);
    run_tallied(buggy)
}

/// The injected-bug test rebuilds the simulator binary with the bug compiled in (same target
/// directory, so features unify); build the plain one again before anything runs it.
fn all_scenarios() -> Result<()> {
    crate::sim::build()?;
    for file in crate::sim::scenarios()? {
        let mut command = Command::new(crate::sim::binary());
        command.current_dir(cmd::workspace_root()).arg("sweep").arg(&file);
        command.args(["--seeds", "1..3", "--jobs", "2", "--check-determinism"]);
        run_checked(&mut command)?;
    }
    Ok(())
}

fn main_job() -> Result<()> {
    crate::sim::build()?;
    let mut command = Command::new(crate::sim::binary());
    command.current_dir(cmd::workspace_root()).args(["run", "scenarios/smoke-3.toml", "--seed", "1"]);
    run_checked(&mut command)
}

/// `cargo test --workspace`, echoing its output live while counting the tests it ran.
///
/// The integration tests in tests/ run the rhizomed binary as real processes. The step before
/// built it (target/debug/rhizomed, as node-bin's own integration tests need it), with the same
/// features as everything else: a separate `cargo build -p rhizomed` resolves dependency
/// features for that one package and so compiles a few hundred crates a second time.
fn run_workspace_tests() -> Result<()> {
    let mut command = cmd::cargo();
    command.args(["test", "--workspace", "--locked"]);
    run_tallied(command)
}

/// Runs a `cargo test` command, echoing its output live and adding its counts to the tally.
fn run_tallied(mut command: Command) -> Result<()> {
    command.stdout(Stdio::piped());
    let shown = cmd::display(&command);
    println!("$ {shown}");
    let mut child = command.spawn().with_context(|| format!("could not start `{shown}`"))?;
    let stdout = child.stdout.take().context("cargo test's stdout was not captured")?;
    let mut tally = TestTally::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        tally.add_line(&line);
    }
    let status = child.wait().context("waiting for cargo test")?;
    {
        let mut total = TEST_TALLY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        total.passed += tally.passed;
        total.failed += tally.failed;
        total.ignored += tally.ignored;
    }
    if !status.success() {
        bail!("`{shown}` failed with {}", cmd::describe(status));
    }
    if tally.passed == 0 {
        bail!("`{shown}` ran no test");
    }
    Ok(())
}

fn run_action(action: &Action) -> Result<()> {
    match action {
        Action::Cargo(args) => {
            let mut command = cmd::cargo();
            command.args(*args);
            run_checked(&mut command)
        }
        Action::Run(f) => f(),
    }
}

/// Echoes and runs `command`, failing if it exits non-zero.
fn run_checked(command: &mut Command) -> Result<()> {
    let shown = cmd::display(command);
    println!("$ {shown}");
    let status = cmd::status(command)?;
    if !status.success() {
        bail!("`{shown}` failed with {}", cmd::describe(status));
    }
    Ok(())
}

fn print_summary(steps: &[Step], outcomes: &[Outcome]) {
    let total = steps.len();
    let width = steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
    println!();
    println!("==> summary");
    for (index, (step, outcome)) in steps.iter().zip(outcomes).enumerate() {
        let (result, secs) = match outcome {
            Outcome::Passed(t) => ("ok", format!("{:>7.1}s", t.as_secs_f64())),
            Outcome::Failed(t) => ("FAILED", format!("{:>7.1}s", t.as_secs_f64())),
            Outcome::NotRun => ("not run", String::new()),
        };
        let line = format!("  [{}/{total}] {:<width$}  {result:<7} {secs}", index + 1, step.name);
        println!("{}", line.trim_end());
    }
}

/// Step 1: `cargo fmt` and `cargo clippy` must exist (try `rustup component add` if not); then
/// every later build compiles our crates with clippy-driver (see [`cmd::lint_while_building`]).
fn check_toolchain() -> Result<()> {
    install_fmt_and_clippy()?;
    cmd::lint_while_building()
}

fn install_fmt_and_clippy() -> Result<()> {
    if let Ok(version) = cargo_version(&["--version"]) {
        println!("{version}");
    }
    let missing = missing_tools();
    if missing.is_empty() {
        return Ok(());
    }

    for (tool, reason) in &missing {
        println!("`cargo {tool}` is not usable: {reason}");
    }
    println!("trying `rustup component add rustfmt clippy`");
    let added = Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]).status();
    let hint = "\nhelp: install the rustfmt and clippy components: with rustup, run \
                `rustup component add rustfmt clippy`; without rustup, install your Rust \
                distribution's rustfmt and clippy packages for the same toolchain as cargo";
    match added {
        Ok(status) if status.success() => {}
        Ok(status) => bail!("`rustup component add rustfmt clippy` failed with {}{hint}", cmd::describe(status)),
        Err(err) => bail!("could not run `rustup` ({err}){hint}"),
    }

    let still_missing = missing_tools();
    if let Some((tool, reason)) = still_missing.first() {
        bail!("`cargo {tool}` is still not usable after rustup ({reason}){hint}");
    }
    Ok(())
}

/// The tools among `fmt` and `clippy` whose `--version` fails, with the reason; prints the
/// versions of those that work.
fn missing_tools() -> Vec<(&'static str, String)> {
    let mut missing = Vec::new();
    for tool in ["fmt", "clippy"] {
        match cargo_version(&[tool, "--version"]) {
            Ok(version) => println!("{version}"),
            Err(reason) => missing.push((tool, reason)),
        }
    }
    missing
}

/// Runs `cargo <args>` with output captured: the version line it prints, or why it failed.
fn cargo_version(args: &[&str]) -> std::result::Result<String, String> {
    let mut command = cmd::cargo();
    command.args(args);
    let output = command.output().map_err(|err| format!("could not start `{}`: {err}", cmd::display(&command)))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first_line = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        Err(format!("{} ({})", cmd::describe(output.status), first_line.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::TestTally;

    #[test]
    fn tally_sums_cargo_test_result_lines_and_ignores_the_rest() {
        let mut tally = TestTally::default();
        tally
            .add_line("test result: ok. 83 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.69s");
        tally.add_line("test result: FAILED. 1 passed; 3 failed; 0 ignored; 0 measured; 0 filtered out");
        tally.add_line("running 83 tests");
        tally.add_line("test dag::tests::x ... ok");
        assert_eq!((tally.passed, tally.failed, tally.ignored), (84, 3, 2));
    }
}
