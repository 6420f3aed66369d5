//! The background jobs of `serve` and `worker`: forwarding the journal to Kafka and
//! the idle sync, stopped together on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use moodwire_core::ports::Backlog;
use moodwire_server::{StoreHandle, StoreState};
use moodwire_worker::{IdleSync, Recovery, Warmer};

use crate::config::{CacheArgs, EventLogArgs, WorkerArgs};
use crate::wiring::Pipeline;

pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    /// The store's state, as the connecting task publishes it.
    pub store: StoreHandle,
    /// The event log's backlog, as the sync (when it runs here) publishes it.
    pub backlog: watch::Receiver<Option<Backlog>>,
}

impl Background {
    /// Starts the Kafka forwarder (when Kafka is configured) and a task that connects
    /// to the store (retrying: a store down at start only delays the history), and with
    /// `run_jobs` the idle sync with recovery and the warmer.
    pub fn start(
        pipeline: &mut Pipeline,
        worker: &WorkerArgs,
        events: &EventLogArgs,
        cache_args: &CacheArgs,
        run_jobs: bool,
    ) -> anyhow::Result<Self> {
        let (stop, _) = watch::channel(false);
        let mut tasks = Vec::new();
        if let Some(forwarder) = pipeline.events.forwarder.take() {
            tasks.push((
                "kafka forwarder",
                tokio::spawn(forwarder.run(stopped(&stop))),
            ));
        }
        let (connected, store) = watch::channel(StoreState::Connecting(None));
        let (progress, backlog) = watch::channel(None);
        let (args, log_args) = (worker.clone(), events.clone());
        let stop_connect = stopped(&stop);
        tasks.push((
            "store connection",
            tokio::spawn(async move {
                tokio::select! {
                    () = stop_connect => {}
                    () = connect_with_retry(&args, &log_args, &connected) => {}
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
                    let mut feed = feed;
                    // Until the store answers, the backlog still shows (readiness, /metrics).
                    let store = loop {
                        tokio::select! {
                            () = &mut stop_sync => return,
                            store = connected_store(&mut connected) => match store {
                                Some(store) => break store,
                                // The connection task ended without a store, on shutdown.
                                None => return,
                            },
                            () = tokio::time::sleep(Duration::from_secs(1)) => {
                                if let Ok(events) = feed.backlog().await {
                                    progress.send_replace(Some(Backlog { events, oldest_age: None }));
                                }
                            }
                        }
                    };
                    let recovery = Recovery::new(cache, Arc::clone(&store));
                    let warmer = Warmer::new(
                        service,
                        Arc::clone(&store),
                        Arc::clone(&cpu),
                        seeds,
                        warm_config,
                    );
                    let sync = IdleSync::new(feed, store, cpu, sync_config)
                        .with_recovery(recovery)
                        .with_progress(progress);
                    tokio::join!(sync.run(stop_sync), warmer.run(stop_warm));
                }),
            ));
        }
        Ok(Background {
            stop,
            tasks,
            store,
            backlog,
        })
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

/// The store once connected; `None` when the connecting task ended without one.
async fn connected_store(
    state: &mut watch::Receiver<StoreState>,
) -> Option<Arc<dyn moodwire_core::ports::Store>> {
    let state = state
        .wait_for(|s| matches!(s, StoreState::Connected(_)))
        .await
        .ok()?;
    match &*state {
        StoreState::Connected(store) => Some(Arc::clone(store)),
        StoreState::Connecting(_) => None,
    }
}

/// Connects to the store, retrying with backoff, publishing each failure and then the
/// store itself on `state`.
async fn connect_with_retry(
    worker: &WorkerArgs,
    events: &EventLogArgs,
    state: &watch::Sender<StoreState>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        match worker.store(events).await {
            Ok(store) => {
                state.send_replace(StoreState::Connected(store));
                return;
            }
            Err(e) => {
                let error = format!("{e:#}");
                tracing::warn!(%error, retry_in = ?backoff, "cannot open the store; events wait in the log");
                state.send_replace(StoreState::Connecting(Some(error)));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}
