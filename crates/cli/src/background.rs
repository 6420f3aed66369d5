//! The background jobs of `serve` and `worker`: forwarding the journal to Kafka and
//! the idle sync, stopped together on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use moodwire_worker::{IdleSync, Recovery, Warmer};

use crate::wiring::{CacheArgs, EventLogArgs, Pipeline, WorkerArgs};

pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Background {
    /// Starts the Kafka forwarder (when Kafka is configured) and, with `worker`, the
    /// idle sync with recovery and the warmer.
    pub fn start(
        pipeline: &mut Pipeline,
        worker: Option<(&WorkerArgs, &EventLogArgs, &CacheArgs)>,
    ) -> anyhow::Result<Self> {
        let (stop, _) = watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(forwarder) = pipeline.events.forwarder.take() {
            tasks.push((
                "kafka forwarder",
                tokio::spawn(forwarder.run(stopped(&stop))),
            ));
        }
        if let Some((worker, worker_events, cache_args)) = worker {
            let warm_config = worker.warm_config(cache_args);
            let seeds = worker.seeds();
            let service = Arc::clone(&pipeline.service);
            let stop_warm = stopped(&stop);
            let feed = pipeline.events.feed()?;
            let cache = Arc::clone(&pipeline.cache);
            let cpu = worker.cpu()?;
            let (worker, events) = (worker.clone(), worker_events.clone());
            let stop_sync = stopped(&stop);
            tasks.push((
                "idle sync and warmer",
                tokio::spawn(async move {
                    tokio::pin!(stop_sync);
                    // A store that is down at start only delays the sync.
                    let store = tokio::select! {
                        () = &mut stop_sync => return,
                        store = connect_with_retry(&worker, &events) => store,
                    };
                    let recovery = Recovery::new(cache, Arc::clone(&store));
                    let warmer = Warmer::new(
                        service,
                        Arc::clone(&store),
                        Arc::clone(&cpu),
                        seeds,
                        warm_config,
                    );
                    let sync = IdleSync::new(feed, store, cpu, worker.sync_config())
                        .with_recovery(recovery);
                    tokio::join!(sync.run(stop_sync), warmer.run(stop_warm));
                }),
            ));
        }
        Ok(Background { stop, tasks })
    }

    /// Stops every job, waiting for each up to `grace` (a store transaction in flight
    /// finishes or rolls back; the log keeps what was not committed).
    pub async fn stop(self, grace: Duration) {
        let _ = self.stop.send(true);
        for (name, task) in self.tasks {
            match tokio::time::timeout(grace, task).await {
                Ok(Ok(())) => tracing::info!(job = name, "background job stopped"),
                Ok(Err(e)) => tracing::error!(job = name, error = %e, "background job failed"),
                Err(_) => tracing::warn!(job = name, "background job did not stop in time"),
            }
        }
    }
}

/// Resolves once `stop` says so.
fn stopped(stop: &watch::Sender<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut rx = stop.subscribe();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

async fn connect_with_retry(
    worker: &WorkerArgs,
    events: &EventLogArgs,
) -> Arc<dyn moodwire_core::ports::Store> {
    let mut backoff = Duration::from_secs(1);
    loop {
        match worker.store(events).await {
            Ok(store) => return store,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), retry_in = ?backoff, "cannot open the store; events wait in the log");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}
