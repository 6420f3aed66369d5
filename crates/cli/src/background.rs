//! The background jobs of `serve` and `worker`: forwarding the journal to Kafka and
//! the idle sync, stopped together on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use moodwire_server::StoreHandle;
use moodwire_worker::{IdleSync, Recovery, Warmer};

use crate::wiring::{CacheArgs, EventLogArgs, Pipeline, WorkerArgs};

pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Background {
    /// Starts the Kafka forwarder (when Kafka is configured) and a task that connects
    /// to the store (retrying: a store down at start only delays the history), and with
    /// `run_jobs` the idle sync with recovery and the warmer. The handle holds the store
    /// once connected.
    pub fn start(
        pipeline: &mut Pipeline,
        worker: &WorkerArgs,
        events: &EventLogArgs,
        cache_args: &CacheArgs,
        run_jobs: bool,
    ) -> anyhow::Result<(Self, StoreHandle)> {
        let (stop, _) = watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(forwarder) = pipeline.events.forwarder.take() {
            tasks.push((
                "kafka forwarder",
                tokio::spawn(forwarder.run(stopped(&stop))),
            ));
        }
        let (connected, store) = watch::channel(None);
        let (args, log_args) = (worker.clone(), events.clone());
        let stop_connect = stopped(&stop);
        tasks.push((
            "store connection",
            tokio::spawn(async move {
                tokio::select! {
                    () = stop_connect => {}
                    store = connect_with_retry(&args, &log_args) => {
                        let _ = connected.send(Some(store));
                    }
                }
            }),
        ));
        if run_jobs {
            let warm_config = worker.warm_config(cache_args);
            let seeds = worker.seeds();
            let service = Arc::clone(&pipeline.service);
            let stop_warm = stopped(&stop);
            let feed = pipeline.events.feed()?;
            let cache = Arc::clone(&pipeline.cache);
            let cpu = worker.cpu()?;
            let sync_config = worker.sync_config();
            let mut connected = store.clone();
            let stop_sync = stopped(&stop);
            tasks.push((
                "idle sync and warmer",
                tokio::spawn(async move {
                    tokio::pin!(stop_sync);
                    let store = tokio::select! {
                        () = &mut stop_sync => return,
                        store = connected.wait_for(Option::is_some) => store.ok().and_then(|s| s.clone()),
                    };
                    // None: the connection task ended without a store, on shutdown.
                    let Some(store) = store else { return };
                    let recovery = Recovery::new(cache, Arc::clone(&store));
                    let warmer = Warmer::new(
                        service,
                        Arc::clone(&store),
                        Arc::clone(&cpu),
                        seeds,
                        warm_config,
                    );
                    let sync = IdleSync::new(feed, store, cpu, sync_config).with_recovery(recovery);
                    tokio::join!(sync.run(stop_sync), warmer.run(stop_warm));
                }),
            ));
        }
        Ok((Background { stop, tasks }, store))
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
