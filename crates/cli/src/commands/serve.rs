use crate::app::{analysis_runtime, App};
use crate::config::ServeArgs;

pub type Args = ServeArgs;

pub fn run(args: Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let args = args.api_keys_from_env();
    // Secrets are not part of `args` (see RedditArgs; the API keys' Debug is redacted),
    // so the whole configuration can print.
    tracing::info!(config = ?args, source = ?args.pipeline.source(), "starting moodwire serve");
    let analyses = analysis_runtime(args.pipeline.analysis_nice)?;
    let result = runtime.block_on(async {
        App::build(&args, analyses.handle().clone())
            .await?
            .run_until(shutdown_signal())
            .await
    });
    // The server has stopped, so nothing waits on what is left there.
    analyses.shutdown_background();
    result
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
