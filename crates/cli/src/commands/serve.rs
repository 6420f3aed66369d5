use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use moodwire_server::{router, serve, AppState};

use crate::wiring::PipelineArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "MOODWIRE_ADDR", default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Longest a request may take before it is answered 503, in seconds.
    #[arg(long, env = "MOODWIRE_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    request_timeout_secs: u64,
    /// On SIGTERM / Ctrl-C, how long in-flight requests may still take, in seconds.
    #[arg(long, env = "MOODWIRE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    shutdown_grace_secs: u64,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // Secrets are not part of `args` (see RedditArgs), so the whole configuration can print.
    tracing::info!(config = ?args, source = ?args.pipeline.source(), "starting moodwire serve");
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let service = Arc::new(args.pipeline.build_service().await?);
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let local = listener.local_addr()?;
        tracing::info!(
            model = service.model_version(),
            "listening on http://{local}"
        );
        let state = AppState::new(service, Duration::from_secs(args.request_timeout_secs));
        serve(
            listener,
            router(state),
            shutdown_signal(),
            Duration::from_secs(args.shutdown_grace_secs),
        )
        .await
        .context("the server failed")
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
