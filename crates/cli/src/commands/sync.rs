use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use moodwire_core::ports::{DeadLetter, Store, StoredDeadLetter};
use moodwire_core::AnalysisRecorded;
use moodwire_worker::{save_isolating, IdleSync, Recovery};
use serde_json::{json, Value};

use crate::config::{CacheArgs, EventLogArgs, WorkerArgs};
use crate::wiring::Events;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// List the dead letters (events the store refused, or that could not be read or
    /// sent), instead of syncing.
    #[arg(long, conflicts_with = "retry_dead_letters")]
    dead_letters: bool,
    /// Replay the dead letters (after a fix), instead of syncing: the ones the store
    /// now takes are stored and forgotten; the others stay, their attempts counted.
    #[arg(long)]
    retry_dead_letters: bool,
    #[command(flatten)]
    events: EventLogArgs,
    /// The cache recovery scans (Redis; an in-process cache is empty in a new process).
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    worker: WorkerArgs,
}

/// Most dead letters listed or replayed at once.
const MAX_DEAD_LETTERS: usize = 10_000;

/// One sync and recovery pass now, whatever the CPU (an operator or cron asked for it):
/// forwards this machine's journal to Kafka when configured, drains the event log into
/// the store, backfills analyses the cache has and the store lacks, prints what it did
/// as JSON and exits. Or lists / replays the dead letters.
pub fn run(args: Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    tracing::info!(config = ?args, "starting moodwire sync");
    let report = runtime.block_on(async {
        let events = args.events.open().await?;
        let store = args.worker.store(&args.events).await?;
        if args.dead_letters {
            list_dead_letters(store.as_ref(), &events).await
        } else if args.retry_dead_letters {
            retry_dead_letters(store.as_ref(), &events).await
        } else {
            sync_now(&args, store, &events).await
        }
    })?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &report)?;
    writeln!(out)?;
    Ok(())
}

async fn sync_now(args: &Args, store: Arc<dyn Store>, events: &Events) -> anyhow::Result<Value> {
    let forwarded = match &events.forwarder {
        Some(forwarder) => forwarder
            .forward_all()
            .await
            .context("cannot forward the local journal to Kafka")?,
        None => 0,
    };
    let mut sync = IdleSync::new(
        events.feed()?,
        Arc::clone(&store),
        args.worker.cpu()?,
        args.worker.sync_config(),
    );
    let pass = sync.pass(false).await?;
    let recovered = Recovery::new(args.cache.open().await?.results, store)
        .pass()
        .await?;
    Ok(json!({
        "forwarded_to_kafka": forwarded,
        "batches": pass.batches,
        "inserted": pass.inserted,
        "already_stored": pass.already_stored,
        "dead_lettered": pass.dead_lettered,
        "recovery": {"scanned": recovered.scanned, "backfilled": recovered.backfilled},
    }))
}

/// The store's dead letters and this machine's journal entries no broker took.
async fn list_dead_letters(store: &dyn Store, events: &Events) -> anyhow::Result<Value> {
    let stored = store.dead_letters(MAX_DEAD_LETTERS).await?;
    let unsendable = events.journal.unsendable().await?;
    Ok(json!({
        "store": stored.iter().map(stored_json).collect::<Vec<_>>(),
        "journal": unsendable.iter().map(letter_json).collect::<Vec<_>>(),
    }))
}

fn letter_json(letter: &DeadLetter) -> Value {
    json!({
        "analysis_id": letter.analysis_id,
        "error": letter.error,
        "origin": letter.origin,
        "bytes": letter.payload.len(),
    })
}

fn stored_json(stored: &StoredDeadLetter) -> Value {
    let mut value = letter_json(&stored.letter);
    value["id"] = json!(stored.id);
    value["dead_at"] = json!(stored.dead_at);
    value["attempts"] = json!(stored.attempts);
    value
}

/// Replays every dead letter once: stored and forgotten when the store takes it now,
/// kept (with the new error and one more attempt) when not. Journal entries no broker
/// took go back into the journal, to be sent again.
async fn retry_dead_letters(store: &dyn Store, events: &Events) -> anyhow::Result<Value> {
    let letters = store.dead_letters(MAX_DEAD_LETTERS).await?;
    let (mut replayed, mut still_dead) = (Vec::new(), Vec::new());
    for stored in letters {
        match AnalysisRecorded::from_json(&stored.letter.payload) {
            Ok(event) => {
                let saved = save_isolating(store, std::slice::from_ref(&event), "replay").await?;
                match saved.refused.into_iter().next() {
                    None => replayed.push(stored.id),
                    Some(refused) => still_dead.push(DeadLetter {
                        payload: stored.letter.payload,
                        ..refused
                    }),
                }
            }
            Err(e) => still_dead.push(DeadLetter {
                error: e.to_string(),
                origin: "replay".into(),
                ..stored.letter
            }),
        }
    }
    store.forget_dead_letters(&replayed).await?;
    store.dead_letter(&still_dead).await?;
    let requeued = events.journal.resend_unsendable().await?;
    Ok(json!({
        "replayed": replayed.len(),
        "still_dead": still_dead.len(),
        "journal_requeued": requeued,
    }))
}
