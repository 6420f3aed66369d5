use std::net::SocketAddr;

use anyhow::Context;
use tokio::sync::oneshot;

use crate::background::Background;
use crate::commands::serve::shutdown_signal;
use crate::config::{PipelineArgs, WorkerArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// On SIGTERM / Ctrl-C, how long a job may take to finish, in seconds.
    #[arg(long, env = "MOODWIRE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    shutdown_grace_secs: u64,
    /// Serve `/metrics` (sync backlog, last sync, warmer) and `/healthz` at this
    /// address, e.g. `0.0.0.0:9464`; none when unset. Port 0 picks a free port (logged).
    #[arg(long, env = "MOODWIRE_WORKER_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pipeline: PipelineArgs,
    #[command(flatten)]
    worker: WorkerArgs,
}

/// The background jobs without the API, until SIGTERM / Ctrl-C. Workers in one
/// consumer group share the topic's partitions.
pub fn run(args: Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    tracing::info!(config = ?args, "starting moodwire worker");
    runtime.block_on(async move {
        let grace = std::time::Duration::from_secs(args.shutdown_grace_secs);
        // First, so a bad address fails before the model loads and the recorder is
        // installed before any job records a figure.
        let metrics = match args.metrics_addr {
            Some(addr) => Some(serve_metrics(addr, grace).await?),
            None => None,
        };
        let mut pipeline = args.pipeline.build().await?;
        let background = Background::start(
            &mut pipeline,
            &args.worker,
            &args.pipeline.events,
            &args.pipeline.cache,
            true,
        )?;
        shutdown_signal().await;
        tracing::info!("stopping the background jobs");
        background.stop(grace).await;
        if let Some((stop, server)) = metrics {
            let _ = stop.send(());
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "the metrics endpoint failed"),
                Err(e) => tracing::warn!(error = %e, "the metrics endpoint panicked"),
            }
        }
        Ok(())
    })
}

type MetricsServer = (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
);

/// Starts the worker's `/metrics` and `/healthz`; stops when the sender is used.
async fn serve_metrics(
    addr: SocketAddr,
    grace: std::time::Duration,
) -> anyhow::Result<MetricsServer> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the worker's metrics"))?;
    tracing::info!(
        "worker metrics on http://{}/metrics",
        listener
            .local_addr()
            .context("the metrics listener has no address")?
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let app = moodwire_server::ops_router(crate::telemetry::install_metrics());
    let server = tokio::spawn(moodwire_server::serve(
        listener,
        app,
        async {
            let _ = stopped.await;
        },
        grace,
    ));
    Ok((stop, server))
}
