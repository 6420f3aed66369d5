use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine as _;
use moodwire_core::{Examples, Keyword, Limit, Question, Scope, Subreddits, Window};
use moodwire_server::{plot, AnalyzeResponse};

use crate::config::PipelineArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to analyse (1 to 100 characters).
    keyword: String,
    /// How many recent posts to analyse (1 to 1000).
    #[arg(long, default_value_t = 250)]
    limit: i64,
    /// Show each emotion's most confident posts, up to this many (0 to 5).
    #[arg(long, default_value_t = 0)]
    examples: i64,
    /// Only posts of this subreddit (the name after r/); repeat for up to 10.
    #[arg(long = "subreddit", value_name = "NAME")]
    subreddits: Vec<String>,
    /// Only posts created within the last hour, day, week, month or year. The sample
    /// corpus and dumps are snapshots: their window ends at their newest post.
    #[arg(long, default_value = "all", value_parser = clap::builder::PossibleValuesParser::new(Window::NAMES))]
    window: String,
    /// Also write the pie chart to this PNG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// One analysis, printed as the same JSON body `POST /analyze` answers with.
pub fn run(args: Args, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let started = Instant::now();
    let keyword = Keyword::parse(&args.keyword).context("invalid keyword")?;
    let limit = Limit::parse(args.limit).context("invalid --limit")?;
    let examples = Examples::parse(args.examples).context("invalid --examples")?;
    let scope = Scope {
        subreddits: Subreddits::parse(&args.subreddits).context("invalid --subreddit")?,
        window: Window::parse(&args.window).context("invalid --window")?,
    };
    let question = Question::new(keyword, limit).within(scope);
    let (analysis, served) = runtime.block_on(async {
        let pipeline = args.pipeline.build().await?;
        let answer = pipeline.service.analyze(&question).await?;
        if let Some(forwarder) = &pipeline.events.forwarder {
            forward_before_exit(forwarder).await;
        }
        anyhow::Ok(answer)
    })?;
    let png = plot::render_png(&analysis)?;
    if let Some(path) = &args.plot {
        std::fs::write(path, &png).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let body = AnalyzeResponse::new(
        &analysis,
        served,
        Some(base64::engine::general_purpose::STANDARD.encode(&png)),
        started.elapsed().as_secs_f64(),
        examples,
    );
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &body)?;
    writeln!(out)?;
    Ok(())
}

/// Hands the new event to Kafka now rather than at the next `serve`, `worker` or `sync`;
/// if the broker is away it stays in the journal, which is not an error of this command.
pub async fn forward_before_exit(forwarder: &moodwire_storage::KafkaForwarder) {
    match tokio::time::timeout(Duration::from_secs(10), forwarder.forward_all()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the event stays in the local journal until the broker is back")
        }
        Err(_) => tracing::warn!("the broker is slow; the event stays in the local journal"),
    }
}
