//! The `moodwire` command. See `moodwire --help` and DESIGN.md for the contract.

mod background;
mod commands;
mod model_args;
mod wiring;

use std::io::IsTerminal;

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
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::Worker(args) => commands::worker::run(args),
        Command::Sync(args) => commands::sync::run(args),
        Command::Warm(args) => commands::warm::run(args),
        Command::Analyze(args) => commands::analyze::run(args),
        Command::Classify(args) => commands::classify::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Index(args) => commands::index::run(args),
        Command::Model(command) => commands::model::run(command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
