//! The `moodwire` command. See `moodwire --help` and DESIGN.md for the contract.

mod background;
mod commands;
mod config;
mod model_args;
mod telemetry;
mod wiring;

use std::io::IsTerminal;

use anyhow::Context;
use clap::{Parser, Subcommand};

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

/// Runs one command on the process's one async runtime.
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

fn main() -> std::process::ExitCode {
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
