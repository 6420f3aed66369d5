use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use moodwire_sources::{DumpFiles, DumpIndex};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A dump file (.ndjson, .jsonl, .zst) or a folder of them. The index is written
    /// beside the file (`FILE.moodwire-index.sqlite`) or into the folder
    /// (`.moodwire-index.sqlite`), where `--source dump:PATH` finds it.
    path: PathBuf,
}

/// Builds the full-text index of a dump so `dump:PATH` queries read only matching posts.
pub fn run(args: Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let files = DumpFiles::open(&args.path)?;
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {pos} posts read, {per_sec}, {elapsed}")
                .context("progress template")?,
        )
    } else {
        ProgressBar::hidden()
    };
    let bar = progress.clone();
    let report = runtime.block_on(DumpIndex::build(&files, move |read| bar.set_position(read)))?;
    progress.finish_and_clear();
    println!(
        "indexed {} posts from {} lines in {:.1} s ({} unreadable lines skipped, {} broken files) -> {}",
        report.posts,
        report.lines,
        report.seconds,
        report.bad_lines,
        report.broken_files,
        report.path.display()
    );
    Ok(())
}
