use std::io::Write;

use moodwire_worker::Warmer;

use crate::commands::analyze::forward_before_exit;
use crate::config::{PipelineArgs, WorkerArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pipeline: PipelineArgs,
    #[command(flatten)]
    worker: WorkerArgs,
}

/// One warmer cycle now (for cron): refreshes the hot keywords whose cache entry is
/// missing or about to expire, if the CPU is quiet, and prints what it did as JSON.
pub fn run(args: Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    tracing::info!(config = ?args, "starting moodwire warm");
    let report = runtime.block_on(async {
        let pipeline = args.pipeline.build().await?;
        let store = args.worker.store(&args.pipeline.events).await?;
        let warmer = Warmer::new(
            pipeline.service,
            store,
            args.worker.cpu_measured()?,
            args.worker.seeds(),
            args.worker.warm_config(&args.pipeline.cache),
        );
        let report = warmer.cycle().await;
        if let Some(forwarder) = &pipeline.events.forwarder {
            forward_before_exit(forwarder).await;
        }
        anyhow::Ok(report)
    })?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &report)?;
    writeln!(out)?;
    Ok(())
}
