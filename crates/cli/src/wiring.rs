//! Builds the analysis service from configuration: picks an adapter for each port.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use moodwire_core::ports::{Classifier, PostSource, ResultCache, SourceError};
use moodwire_core::service::AnalysisService;
use moodwire_model::{Infer, InferOptions};
use moodwire_sources::reddit::Secret;
use moodwire_sources::{DumpSource, RedditConfig, RedditSource, SampleCorpus};
use moodwire_storage::{MemoryCache, RedisCache, RedisCacheConfig};

use crate::model_args::{resolve, ModelArgs};

/// Where posts come from (`MOODWIRE_SOURCE`).
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    Sample,
    Reddit,
    Dump(PathBuf),
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sample" => Ok(SourceSpec::Sample),
            "reddit" => Ok(SourceSpec::Reddit),
            _ => match s.strip_prefix("dump:") {
                Some(path) if !path.is_empty() => Ok(SourceSpec::Dump(PathBuf::from(path))),
                _ => Err(format!(
                    "unknown source {s:?}: expected `sample`, `reddit` or `dump:PATH`"
                )),
            },
        }
    }
}

/// Everything the analysis path needs, shared by `serve` and `analyze`.
#[derive(clap::Args, Debug, Clone)]
pub struct PipelineArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where posts come from: `sample` (the bundled corpus), `reddit` or `dump:PATH`
    /// (a .ndjson/.jsonl/.zst file or a folder of them). Default: `reddit` when
    /// REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET are set, else `sample`.
    #[arg(long, env = "MOODWIRE_SOURCE")]
    pub source: Option<SourceSpec>,
    /// Folder of the bundled sample corpus (*.ndjson, Pushshift format).
    #[arg(long, env = "MOODWIRE_SAMPLE_DIR", default_value = "data/sample")]
    pub sample_dir: PathBuf,
    /// How long a computed analysis is served from the cache, in seconds.
    #[arg(long, env = "MOODWIRE_CACHE_TTL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub cache_ttl_secs: u64,
    /// Most texts waiting for inference; more load is answered 503 at once.
    #[arg(long, env = "MOODWIRE_MAX_QUEUED_TEXTS", default_value_t = 8000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_queued_texts: u64,
    /// Shared result cache, e.g. `redis://127.0.0.1:6379`; unset: in-process cache.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<RedactedUrl>,
    /// Prefix of moodwire's Redis keys, so deployments (or tests) can share a Redis.
    #[arg(long, env = "MOODWIRE_REDIS_PREFIX", default_value = "moodwire:")]
    pub redis_prefix: String,
    #[command(flatten)]
    pub reddit: RedditArgs,
}

/// A URL that may carry a password: usable, printed without it.
#[derive(Clone)]
pub struct RedactedUrl(String);

impl FromStr for RedactedUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(RedactedUrl(s.to_string()))
    }
}

impl std::fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0.split_once("://"), self.0.rfind('@')) {
            (Some((scheme, _)), Some(at)) => write!(f, "{scheme}://[redacted]{}", &self.0[at..]),
            _ => f.write_str(&self.0),
        }
    }
}

/// The Reddit app. The secret is read from `REDDIT_CLIENT_SECRET` only (never a flag,
/// which would show in `ps`) and never printed.
#[derive(clap::Args, Debug, Clone)]
pub struct RedditArgs {
    /// Reddit app id (https://www.reddit.com/prefs/apps, a "script" or "web" app).
    #[arg(long = "reddit-client-id", env = "REDDIT_CLIENT_ID")]
    pub client_id: Option<String>,
    /// `<platform>:<app id>:<version> (by /u/<username>)`, as Reddit requires.
    #[arg(long = "reddit-user-agent", env = "REDDIT_USER_AGENT")]
    pub user_agent: Option<String>,
    /// The OAuth token endpoint.
    #[arg(long = "reddit-auth-url", env = "REDDIT_AUTH_URL", default_value = RedditConfig::DEFAULT_AUTH_URL)]
    pub auth_url: String,
    /// The base of the API (search is `{REDDIT_API_URL}/search`).
    #[arg(long = "reddit-api-url", env = "REDDIT_API_URL", default_value = RedditConfig::DEFAULT_API_URL)]
    pub api_url: String,
    /// Longest one Reddit search (all pages and retries) may take, in seconds.
    #[arg(long = "reddit-timeout-secs", env = "MOODWIRE_REDDIT_TIMEOUT_SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub fetch_timeout_secs: u64,
}

impl RedditArgs {
    fn secret() -> Option<Secret> {
        std::env::var("REDDIT_CLIENT_SECRET").ok().map(Secret::new)
    }

    fn has_credentials(&self) -> bool {
        self.client_id.is_some() && Self::secret().is_some()
    }

    fn config(&self) -> anyhow::Result<RedditConfig> {
        let mut config = RedditConfig::new(
            self.client_id.as_deref(),
            Self::secret(),
            self.user_agent.as_deref(),
            &self.auth_url,
            &self.api_url,
        )?;
        config.fetch_timeout = Duration::from_secs(self.fetch_timeout_secs);
        Ok(config)
    }
}

impl PipelineArgs {
    /// The source actually used: the one asked for, else Reddit when it is configured.
    pub fn source(&self) -> SourceSpec {
        match &self.source {
            Some(spec) => spec.clone(),
            None if self.reddit.has_credentials() => SourceSpec::Reddit,
            None => SourceSpec::Sample,
        }
    }

    /// Async because a Reddit source checks its credentials before anything is served.
    pub async fn build_service(&self) -> anyhow::Result<AnalysisService> {
        let source = self.post_source().await?;
        let engine = self.model.load_engine_async().await?;
        let classifier: Arc<dyn Classifier> = Arc::new(
            Infer::start(
                engine,
                InferOptions {
                    max_queued_texts: self.max_queued_texts as usize,
                },
            )
            .context("cannot start the inference thread")?,
        );
        Ok(AnalysisService::new(
            source,
            classifier,
            self.cache().await?,
        ))
    }

    async fn cache(&self) -> anyhow::Result<Arc<dyn ResultCache>> {
        let ttl = Duration::from_secs(self.cache_ttl_secs);
        Ok(match &self.redis_url {
            Some(RedactedUrl(url)) => Arc::new(
                RedisCache::new(url, RedisCacheConfig::new(&self.redis_prefix, ttl)).await?,
            ),
            None => Arc::new(MemoryCache::new(ttl, MemoryCache::DEFAULT_MAX_ENTRIES)),
        })
    }

    async fn post_source(&self) -> anyhow::Result<Arc<dyn PostSource>> {
        match self.source() {
            SourceSpec::Sample => {
                let dir = resolve(&self.sample_dir);
                let corpus = SampleCorpus::load(&dir)?;
                tracing::info!(posts = corpus.len(), dir = %dir.display(), "sample corpus loaded");
                Ok(Arc::new(corpus))
            }
            SourceSpec::Dump(path) => {
                let dump = DumpSource::open(&path).await?;
                tracing::info!(files = dump.files().paths().len(), path = %path.display(), method = dump.method(), "dump source opened");
                Ok(Arc::new(dump))
            }
            SourceSpec::Reddit => {
                let reddit = RedditSource::new(self.reddit.config()?)?;
                match reddit.check_credentials().await {
                    Ok(()) => tracing::info!("Reddit credentials accepted"),
                    Err(e @ SourceError::AuthFailed(_)) => return Err(e.into()),
                    // Reddit may be back by the first request; each request reports its own failure.
                    Err(e) => tracing::warn!(error = %e, "cannot check the Reddit credentials now"),
                }
                Ok(Arc::new(reddit))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_specs_parse() {
        assert_eq!("sample".parse(), Ok(SourceSpec::Sample));
        assert_eq!("reddit".parse(), Ok(SourceSpec::Reddit));
        assert_eq!(
            "dump:/x.ndjson".parse(),
            Ok(SourceSpec::Dump("/x.ndjson".into()))
        );
        assert!("dump:".parse::<SourceSpec>().is_err());
        assert!("twitter".parse::<SourceSpec>().is_err());
    }

    #[test]
    fn urls_print_without_their_password() {
        let url: RedactedUrl = "redis://user:hunter2@cache:6379/0".parse().unwrap();
        assert_eq!(format!("{url:?}"), "redis://[redacted]@cache:6379/0");
        let plain: RedactedUrl = "redis://127.0.0.1:6379".parse().unwrap();
        assert_eq!(format!("{plain:?}"), "redis://127.0.0.1:6379");
    }
}
