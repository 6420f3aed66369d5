use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use moodwire_worker::{IdleSync, Recovery};
use serde_json::json;

use crate::wiring::{CacheArgs, EventLogArgs, WorkerArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    events: EventLogArgs,
    /// The cache recovery scans (Redis; an in-process cache is empty in a new process).
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    worker: WorkerArgs,
}

/// One sync and recovery pass now, whatever the CPU (an operator or cron asked for it):
/// forwards this machine's journal to Kafka when configured, drains the event log into
/// the store, backfills analyses the cache has and the store lacks, prints what it did
/// as JSON and exits.
pub fn run(args: Args) -> anyhow::Result<()> {
    tracing::info!(config = ?args, "starting moodwire sync");
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let events = args.events.open().await?;
        let forwarded = match &events.forwarder {
            Some(forwarder) => forwarder
                .forward_all()
                .await
                .context("cannot forward the local journal to Kafka")?,
            None => 0,
        };
        let store = args.worker.store(&args.events).await?;
        let mut sync = IdleSync::new(
            events.feed()?,
            Arc::clone(&store),
            args.worker.cpu()?,
            args.worker.sync_config(),
        );
        let pass = sync.pass(false).await?;
        let recovered = Recovery::new(args.cache.open().await?, store)
            .pass()
            .await?;
        anyhow::Ok(json!({
            "forwarded_to_kafka": forwarded,
            "batches": pass.batches,
            "inserted": pass.inserted,
            "already_stored": pass.already_stored,
            "rejected": pass.rejected,
            "recovery": {"scanned": recovered.scanned, "backfilled": recovered.backfilled},
        }))
    })?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &report)?;
    writeln!(out)?;
    Ok(())
}
