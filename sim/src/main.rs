//! `rhizome-sim`: run, sweep, replay and shrink simulation scenarios. Run it through
//! `cargo xtask sim …`, which builds it with `--cfg madsim`.

#[cfg(madsim)]
mod cli;

#[cfg(madsim)]
fn main() -> std::process::ExitCode {
    cli::main()
}

#[cfg(not(madsim))]
fn main() -> std::process::ExitCode {
    eprintln!("rhizome-sim runs only in the simulator build: use `cargo xtask sim run scenarios/smoke-3.toml`");
    std::process::ExitCode::from(2)
}
