use anyhow::Context;

use crate::background::Background;
use crate::commands::serve::shutdown_signal;
use crate::wiring::{PipelineArgs, WorkerArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// On SIGTERM / Ctrl-C, how long a job may take to finish, in seconds.
    #[arg(long, env = "MOODWIRE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    shutdown_grace_secs: u64,
    #[command(flatten)]
    pipeline: PipelineArgs,
    #[command(flatten)]
    worker: WorkerArgs,
}

/// The background jobs without the API, until SIGTERM / Ctrl-C. Workers in one
/// consumer group share the topic's partitions.
pub fn run(args: Args) -> anyhow::Result<()> {
    tracing::info!(config = ?args, "starting moodwire worker");
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut pipeline = args.pipeline.build().await?;
        let (background, _) = Background::start(
            &mut pipeline,
            &args.worker,
            &args.pipeline.events,
            &args.pipeline.cache,
            true,
        )?;
        shutdown_signal().await;
        tracing::info!("stopping the background jobs");
        background
            .stop(std::time::Duration::from_secs(args.shutdown_grace_secs))
            .await;
        Ok(())
    })
}
