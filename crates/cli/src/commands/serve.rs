use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use moodwire_server::access::{AccessPolicy, ApiKey, RateLimit};
use moodwire_server::{router, serve_with, AppState, ConnectionLimits};

use crate::background::Background;
use crate::config::{PipelineArgs, WorkerArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "MOODWIRE_ADDR", default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// Longest a request may take before it is answered 503, in seconds.
    #[arg(long, env = "MOODWIRE_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    request_timeout_secs: u64,
    /// How long a client may take to send a request's headers, in seconds; a slower
    /// one (slow-loris) is disconnected.
    #[arg(long, env = "MOODWIRE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    header_read_timeout_secs: u64,
    /// Most open client connections; new ones past it are closed at once.
    #[arg(long, env = "MOODWIRE_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
    /// A client connection with no request in flight for this long (seconds) is closed.
    #[arg(long, env = "MOODWIRE_IDLE_TIMEOUT_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    idle_timeout_secs: u64,
    /// On SIGTERM / Ctrl-C, how long in-flight requests may still take, in seconds.
    #[arg(long, env = "MOODWIRE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    shutdown_grace_secs: u64,
    /// Requests a minute each client may make on average (per API key, else per IP
    /// address); 0: no limit.
    #[arg(long, env = "MOODWIRE_RATE_LIMIT_PER_MINUTE", default_value_t = 0)]
    rate_limit_per_minute: u32,
    /// Requests a client may make at once before the average applies.
    #[arg(long, env = "MOODWIRE_RATE_LIMIT_BURST", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit_burst: u32,
    /// Serve only: leave the background jobs (idle sync, recovery, warmer) to
    /// `moodwire worker` processes. Forwarding events to Kafka still runs here, and the
    /// dashboard still reads the store.
    #[arg(long, env = "MOODWIRE_NO_WORKER")]
    no_worker: bool,
    #[command(flatten)]
    pipeline: PipelineArgs,
    #[command(flatten)]
    worker: WorkerArgs,
}

pub fn run(args: Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    // Secrets are not part of `args` (see RedditArgs), so the whole configuration can print.
    tracing::info!(config = ?args, source = ?args.pipeline.source(), "starting moodwire serve");
    crate::telemetry::install_metrics();
    let analyses = analysis_runtime(args.pipeline.analysis_nice)?;
    let analyses_handle = analyses.handle().clone();
    let result = runtime.block_on(async move {
        let mut pipeline = args.pipeline.build().await?;
        let service = Arc::clone(&pipeline.service);
        let background = Background::start(
            &mut pipeline,
            &args.worker,
            &args.pipeline.events,
            &args.pipeline.cache,
            !args.no_worker,
        )?;
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let local = listener.local_addr()?;
        tracing::info!(
            model = service.model_version(),
            "listening on http://{local}"
        );
        let access = access_policy(&args);
        if !access.requires_keys() && !local.ip().is_loopback() {
            tracing::warn!(
                address = %local,
                "serving without API keys on an address other machines can reach: anyone \
                 there can run analyses and read the history; set MOODWIRE_API_KEYS"
            );
        }
        let state = AppState::new(service, Duration::from_secs(args.request_timeout_secs))
            .with_access(access)
            .with_store(background.store.clone())
            .with_backlog(background.backlog.clone())
            .with_analysis_runtime(analyses_handle);
        let grace = Duration::from_secs(args.shutdown_grace_secs);
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
            max_connections: args.max_connections as usize,
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
            ..ConnectionLimits::default()
        };
        let served = serve_with(listener, router(state), shutdown_signal(), grace, limits)
            .await
            .context("the server failed");
        background.stop(grace).await;
        served
    });
    // The server has stopped, so nothing waits on what is left there.
    analyses.shutdown_background();
    result
}

/// The runtime new analyses are computed on (see `moodwire_server::compute`): as many
/// threads as cores, each `nice` steps below the HTTP runtime's.
fn analysis_runtime(nice: u8) -> anyhow::Result<tokio::runtime::Runtime> {
    let warned = std::sync::Once::new();
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("moodwire-analysis")
        .on_thread_start(move || {
            if let Err(e) = moodwire_model::priority::lower_this_thread(nice) {
                warned.call_once(|| {
                    tracing::warn!(error = %e, nice, "new analyses keep the process's CPU priority")
                });
            }
        })
        .enable_all()
        .build()
        .context("cannot start the analysis runtime")
}

/// API keys come from `MOODWIRE_API_KEYS` only (a flag would show in `ps`) and are
/// never printed; only how many there are.
fn access_policy(args: &Args) -> AccessPolicy {
    let keys = std::env::var("MOODWIRE_API_KEYS")
        .map(|list| ApiKey::parse_list(&list))
        .unwrap_or_default();
    let limit = RateLimit {
        per_minute: args.rate_limit_per_minute,
        burst: args.rate_limit_burst,
    };
    tracing::info!(
        api_keys = keys.len(),
        rate_limit_per_minute = limit.per_minute,
        rate_limit_burst = limit.burst,
        "access: every route but /healthz {} an API key",
        if keys.is_empty() {
            "is open, without"
        } else {
            "requires"
        }
    );
    AccessPolicy::new(keys, Some(limit))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
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
