//! The command line.

// Printing reports is this binary's whole job.
#![allow(clippy::print_stdout)]

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rhizome_sim::report;
use rhizome_sim::runner::{passed, run_one, shrink, sweep};
use rhizome_sim::scenario::Scenario;
use rhizome_sim::swarm::swarm;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "rhizome-sim", about = "Deterministic simulation of rhizome clusters", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario once; exits non-zero if a check fails.
    Run {
        /// The scenario file.
        file: PathBuf,
        /// The seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write an HTML page with a plot here.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Draw the fault schedule from the seed.
        #[arg(long)]
        swarm: bool,
        /// Run twice and compare the trace hashes.
        #[arg(long)]
        check_determinism: bool,
    },
    /// Run a range of seeds (A..B, B exclusive) and list the failing ones.
    Sweep {
        /// The scenario file.
        file: PathBuf,
        /// Seeds, as A..B.
        #[arg(long)]
        seeds: String,
        /// Parallel runs.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Draw each seed's fault schedule from the seed.
        #[arg(long)]
        swarm: bool,
        /// Run every seed twice and compare the trace hashes.
        #[arg(long)]
        check_determinism: bool,
    },
    /// Run one seed again, optionally printing a readable trace of everything that happened.
    Replay {
        /// The scenario file.
        file: PathBuf,
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// Print every core input and output, fault and call.
        #[arg(long)]
        trace: bool,
        /// The seed's swarm schedule.
        #[arg(long)]
        swarm: bool,
    },
    /// Print a table of trace hashes (scenario, seed, hash, pass), for before/after comparisons
    /// of a change that must not alter behaviour: `diff` two tables.
    Hashes {
        /// Scenario files (default: every `*.toml` in `scenarios/`).
        files: Vec<PathBuf>,
        /// Seeds, as A..B.
        #[arg(long, default_value = "1..3")]
        seeds: String,
        /// Parallel runs.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
    },
    /// Minimise a failing seed's scenario and write the smallest failing file found.
    Shrink {
        /// The scenario file.
        file: PathBuf,
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// Where to write it (default: next to the input, `*.shrunk.toml`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Shrink the seed's swarm schedule.
        #[arg(long)]
        swarm: bool,
    },
}

fn load(file: &std::path::Path, seed: u64, use_swarm: bool) -> Result<Scenario, ExitCode> {
    match Scenario::load(file) {
        Ok(scenario) if use_swarm => Ok(swarm(&scenario, seed)),
        Ok(scenario) => Ok(scenario),
        Err(error) => {
            eprintln!("error: {error}");
            Err(ExitCode::from(2))
        }
    }
}

fn parse_seeds(text: &str) -> Option<std::ops::Range<u64>> {
    let (start, end) = text.split_once("..")?;
    let (start, end) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    (start < end).then_some(start..end)
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { file, seed, json, html, swarm: use_swarm, check_determinism } => {
            let scenario = match load(&file, seed, use_swarm) {
                Ok(scenario) => scenario,
                Err(code) => return code,
            };
            let outcome = run_one(&scenario, seed, false);
            print!("{}", report::text(&scenario.name, seed, &outcome));
            let mut ok = passed(&outcome);
            if check_determinism {
                let again = run_one(&scenario, seed, false);
                let same = again.trace_hash == outcome.trace_hash;
                println!(
                    "determinism: {} (second run trace_hash={})",
                    if same { "same trace" } else { "DIFFERENT TRACE" },
                    again.trace_hash
                );
                ok &= same;
            }
            if let Some(path) = json {
                if let Err(error) = std::fs::write(&path, report::json(&scenario.name, seed, &outcome)) {
                    eprintln!("error: writing {}: {error}", path.display());
                    ok = false;
                }
            }
            if let Some(path) = html {
                if let Err(error) = std::fs::write(&path, report::html(&scenario.name, seed, &outcome)) {
                    eprintln!("error: writing {}: {error}", path.display());
                    ok = false;
                }
            }
            println!("trace_hash={}", outcome.trace_hash);
            exit_code(ok)
        }
        Command::Sweep { file, seeds, jobs, swarm: use_swarm, check_determinism } => {
            let Some(range) = parse_seeds(&seeds) else {
                eprintln!("error: --seeds takes A..B with A < B, got {seeds:?}");
                return ExitCode::from(2);
            };
            let base = match load(&file, 0, false) {
                Ok(scenario) => scenario,
                Err(code) => return code,
            };
            // A file's regression seeds ride along (a swarm draws its own scenario per seed, so
            // they would not reproduce anything there).
            let mut seeds: Vec<u64> = range.collect();
            if !use_swarm {
                let extra: Vec<u64> =
                    base.regression_seeds.iter().copied().filter(|seed| !seeds.contains(seed)).collect();
                seeds.extend(extra);
            }
            let total = seeds.len();
            let name = base.name.clone();
            let make = move |seed| if use_swarm { swarm(&base, seed) } else { base.clone() };
            // indicatif draws on a terminal and stays quiet when stderr is a file or a pipe.
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("[{bar:30}] {pos}/{len} seeds, {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("#>."),
            );
            bar.set_message("0 failing");
            let shown = bar.clone();
            let results = sweep(make, seeds, jobs, check_determinism, move |done, failing| {
                shown.set_position(done as u64);
                shown.set_message(format!("{failing} failing"));
            });
            bar.finish_and_clear();
            let failing: Vec<_> = results.iter().filter(|result| !result.passed).collect();
            for result in &failing {
                let reason = if result.nondeterministic {
                    "trace differs between two runs".to_owned()
                } else {
                    result.failure.clone().unwrap_or_default()
                };
                println!("seed {} FAILED: {reason}", result.seed);
            }
            let seeds: Vec<String> = failing.iter().map(|result| result.seed.to_string()).collect();
            println!(
                "{name}: {} of {total} seeds passed; failing seeds: [{}]",
                total - failing.len(),
                seeds.join(", ")
            );
            exit_code(failing.is_empty())
        }
        Command::Hashes { files, seeds, jobs } => {
            let Some(range) = parse_seeds(&seeds) else {
                eprintln!("error: --seeds takes A..B with A < B, got {seeds:?}");
                return ExitCode::from(2);
            };
            hashes(files, range, jobs)
        }
        Command::Replay { file, seed, trace, swarm: use_swarm } => {
            let scenario = match load(&file, seed, use_swarm) {
                Ok(scenario) => scenario,
                Err(code) => return code,
            };
            let outcome = run_one(&scenario, seed, trace);
            for line in &outcome.trace_lines {
                println!("{line}");
            }
            print!("{}", report::text(&scenario.name, seed, &outcome));
            println!("trace_hash={}", outcome.trace_hash);
            exit_code(passed(&outcome))
        }
        Command::Shrink { file, seed, out, swarm: use_swarm } => {
            let scenario = match load(&file, seed, use_swarm) {
                Ok(scenario) => scenario,
                Err(code) => return code,
            };
            let result = shrink(&scenario, seed, |what, still_fails| {
                eprintln!("  {what}: {}", if still_fails { "still fails, kept" } else { "passes, undone" });
            });
            let Some(smallest) = result else {
                println!("seed {seed} passes {}: nothing to shrink", scenario.name);
                return ExitCode::from(2);
            };
            let path = out.unwrap_or_else(|| file.with_extension("shrunk.toml"));
            if let Err(error) = std::fs::write(&path, smallest.to_toml()) {
                eprintln!("error: writing {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
            println!(
                "smallest failing scenario: {} faults (from {}), {} nodes, {} s, {}/s writes per node -> {}",
                smallest.faults.len(),
                scenario.faults.len(),
                smallest.nodes,
                smallest.duration_s,
                smallest.workload.calls_per_node_per_s,
                path.display()
            );
            ExitCode::SUCCESS
        }
    }
}

/// `hashes`: one markdown row per scenario and seed. Exits non-zero only if a file cannot be
/// read; a failing seed is shown in the table, since the table is for comparing runs.
fn hashes(mut files: Vec<PathBuf>, seeds: std::ops::Range<u64>, jobs: usize) -> ExitCode {
    if files.is_empty() {
        match scenario_files(std::path::Path::new("scenarios")) {
            Ok(found) => files = found,
            Err(error) => {
                eprintln!("error: listing scenarios/: {error}");
                return ExitCode::from(2);
            }
        }
    }
    println!("| scenario | seed | trace_hash | checks |");
    println!("|---|---|---|---|");
    for file in files {
        let scenario = match load(&file, 0, false) {
            Ok(scenario) => scenario,
            Err(code) => return code,
        };
        let name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
        let base = scenario.clone();
        let results = sweep(move |_| base.clone(), seeds.clone(), jobs, false, |_, _| {});
        for result in results {
            let verdict = if result.passed { "pass" } else { "FAIL" };
            println!("| {name} | {} | {} | {verdict} |", result.seed, result.trace_hash);
        }
    }
    ExitCode::SUCCESS
}

/// The `*.toml` files directly in `dir`, sorted.
fn scenario_files(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Success when every check passed (and every seed, for a sweep).
fn exit_code(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
