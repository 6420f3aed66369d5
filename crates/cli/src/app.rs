//! The composition root of `moodwire serve`: from its configuration to a bound server
//! with the analysis pipeline (`wiring.rs`) and the background jobs (`background.rs`)
//! behind it. `moodwire serve` and the HTTP contract tests (`tests/api.rs`) build it
//! the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use moodwire_core::ports::Classifier;
use moodwire_server::access::{AccessPolicy, RateLimit};
use moodwire_server::{router, serve_with, AppState, ConnectionLimits};
use moodwire_storage::Journal;
use tokio::net::TcpListener;

use crate::background::Background;
use crate::config::ServeArgs;

/// A server ready to accept: listening, its model loaded, its background jobs started.
pub struct App {
    listener: TcpListener,
    address: SocketAddr,
    state: AppState,
    background: Background,
    journal: Journal,
    grace: Duration,
    limits: ConnectionLimits,
}

impl App {
    /// Wires the adapters `args` names into the service, the HTTP state and the
    /// background jobs; new analyses are computed on `analyses` (see
    /// [`analysis_runtime`]).
    pub async fn build(args: &ServeArgs, analyses: tokio::runtime::Handle) -> anyhow::Result<Self> {
        Self::build_observing(args, analyses, |classifier| classifier).await
    }

    /// As [`App::build`], with the classifier passed through `observe` before the
    /// service takes it: the one seam tests use to see the model's work.
    pub async fn build_observing(
        args: &ServeArgs,
        analyses: tokio::runtime::Handle,
        observe: impl FnOnce(Arc<dyn Classifier>) -> Arc<dyn Classifier>,
    ) -> anyhow::Result<Self> {
        crate::telemetry::install_metrics();
        let mut pipeline = args.pipeline.build_observing(observe).await?;
        let service = Arc::clone(&pipeline.service);
        let journal = pipeline.events.journal.clone();
        let background = Background::start(
            &mut pipeline,
            &args.worker,
            &args.pipeline.events,
            &args.pipeline.cache,
            !args.no_worker,
        )?;
        let listener = TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let address = listener.local_addr()?;
        tracing::info!(
            model = service.model_version(),
            "listening on http://{address}"
        );
        let state = AppState::new(service, Duration::from_secs(args.request_timeout_secs))
            .with_access(access_policy(args, address))
            .with_store(background.store.clone())
            .with_backlog(background.backlog.clone())
            .with_analysis_runtime(analyses);
        Ok(App {
            listener,
            address,
            state,
            background,
            journal,
            grace: Duration::from_secs(args.shutdown_grace_secs),
            limits: ConnectionLimits {
                header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
                max_header_bytes: args.max_header_bytes as usize,
                max_connections: args.max_connections as usize,
                idle_timeout: Duration::from_secs(args.idle_timeout_secs),
            },
        })
    }

    /// Where it listens (port 0 in the configuration picks a free one).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The event log that computed analyses are appended to.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Serves until `shutdown` resolves, lets requests in flight finish within the
    /// grace, then stops the background jobs.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let served = serve_with(
            self.listener,
            router(self.state),
            shutdown,
            self.grace,
            self.limits,
        )
        .await
        .context("the server failed");
        self.background.stop(self.grace).await;
        served
    }
}

/// The runtime new analyses are computed on (see `moodwire_server::compute`): as many
/// threads as cores, named `moodwire-analysis`, each `nice` steps below the HTTP
/// runtime's. Built outside any runtime, since one cannot be dropped inside another.
pub fn analysis_runtime(nice: u8) -> anyhow::Result<tokio::runtime::Runtime> {
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

/// The configured keys and rate limit; only how many keys there are is logged. Open
/// access on an address other machines can reach gets a warning.
fn access_policy(args: &ServeArgs, local: SocketAddr) -> AccessPolicy {
    let keys = args.api_keys.clone();
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
    if keys.is_empty() && !local.ip().is_loopback() {
        tracing::warn!(
            address = %local,
            "serving without API keys on an address other machines can reach: anyone \
             there can run analyses and read the history; set MOODWIRE_API_KEYS"
        );
    }
    AccessPolicy::new(keys, Some(limit))
}
