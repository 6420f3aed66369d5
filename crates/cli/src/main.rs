//! The `moodwire` command. See `moodwire --help` and DESIGN.md for the contract.

use std::io::IsTerminal;

use anyhow::Context;
use clap::{Parser, Subcommand};
use moodwire::commands;

#[derive(Parser)]
#[command(
    name = "moodwire",
    version,
    about = "Real-time emotion analytics for social media posts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and run the background jobs (`--no-worker`: the API only).
    Serve(commands::serve::Args),
    /// Run the background jobs only (idle sync, recovery, warmer), until SIGTERM / Ctrl-C.
    Worker(commands::worker::Args),
    /// One sync and recovery pass now (event log -> store), whatever the CPU; prints a JSON report.
    Sync(commands::sync::Args),
    /// One warmer cycle now (refresh hot keywords if the CPU is quiet); prints a JSON report.
    Warm(commands::warm::Args),
    /// One analysis of a keyword, printed as the API's JSON body.
    Analyze(commands::analyze::Args),
    /// Classify texts, one per line (stdin when no FILE), into JSON lines.
    Classify(commands::classify::Args),
    /// Evaluate the model on `text;label` lines: accuracy, F1, confusion matrix.
    Eval(commands::eval::Args),
    /// Measure classifier throughput and latency on a fixed corpus.
    Bench(commands::bench::Args),
    /// Build the full-text index of a Pushshift / Arctic-Shift dump (for `--source dump:PATH`).
    Index(commands::index::Args),
    /// Model versions in S3-compatible storage.
    #[command(subcommand)]
    Model(commands::model::Command),
}

/// Runs one command on the process's async runtime (`serve` adds a second, at a lower
/// CPU priority, for new analyses: see `moodwire_server::compute`).
fn run(command: Command, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => commands::serve::run(args, runtime),
        Command::Worker(args) => commands::worker::run(args, runtime),
        Command::Sync(args) => commands::sync::run(args, runtime),
        Command::Warm(args) => commands::warm::run(args, runtime),
        Command::Analyze(args) => commands::analyze::run(args, runtime),
        Command::Classify(args) => commands::classify::run(args, runtime),
        Command::Eval(args) => commands::eval::run(args, runtime),
        Command::Bench(args) => commands::bench::run(args, runtime),
        Command::Index(args) => commands::index::run(args, runtime),
        Command::Model(command) => commands::model::run(command, runtime),
    }
}

/// glibc gives each thread that contends for the allocator an arena of its own, up to
/// 8 per core, and a freed block returns only to its own arena: with a burst of
/// blocking threads (tokenizing, librdkafka, SQLite) the process kept ~150 MB it no
/// longer used (the soak in BENCHMARKS.md). Two arenas bound that; `MALLOC_ARENA_MAX`
/// set in the environment still wins.
fn bound_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists, with a
        // parameter glibc documents for mallopt; it takes integers and no pointers.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn main() -> std::process::ExitCode {
    bound_allocator_arenas();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "moodwire=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let result = tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")
        .and_then(|runtime| run(cli.command, &runtime));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
