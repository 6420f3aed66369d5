//! Builds the analysis service from configuration (`config.rs`): picks an adapter
//! for each port.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use moodwire_core::ports::{
    Classifier, EventFeed, PostSource, PredictionCache, ResultCache, SourceError, Store,
};
use moodwire_core::service::AnalysisService;
use moodwire_core::Keyword;
use moodwire_model::{Engine, Infer, InferOptions};
use moodwire_sources::reddit::Secret;
use moodwire_sources::{DumpSource, RedditConfig, RedditSource, SampleCorpus};
use moodwire_storage::{
    open_store, Journal, KafkaConfig, KafkaFeed, KafkaForwarder, MemoryCache, MemoryPredictions,
    RedisBudget, RedisCache, RedisCacheConfig,
};
use moodwire_worker::{parse_seeds, CpuGauge, FileCpu, SyncConfig, SystemCpu, WarmConfig};

use crate::config::{
    CacheArgs, EventLogArgs, PipelineArgs, RedactedUrl, RedditArgs, SourceSpec, WorkerArgs,
};
use crate::model_args::resolve;

/// The two caches: of analyses (answers), and of each post's prediction; and Redis
/// itself when they live there (the replicas also share the Reddit budget in it).
pub struct Caches {
    pub results: Arc<dyn ResultCache>,
    pub predictions: Arc<dyn PredictionCache>,
    pub redis: Option<Arc<RedisCache>>,
}

impl CacheArgs {
    /// Redis for both when `REDIS_URL` is set (shared by the replicas), else in-process.
    pub async fn open(&self) -> anyhow::Result<Caches> {
        let ttl = self.ttl();
        Ok(match &self.redis_url {
            Some(RedactedUrl(url)) => {
                let mut config = RedisCacheConfig::new(&self.redis_prefix, ttl);
                config.prediction_ttl = Duration::from_secs(self.prediction_ttl_secs);
                let redis = Arc::new(RedisCache::new(url, config).await?);
                Caches {
                    results: redis.clone(),
                    predictions: redis.clone(),
                    redis: Some(redis),
                }
            }
            None => Caches {
                results: Arc::new(MemoryCache::new(ttl, MemoryCache::DEFAULT_MAX_ENTRIES)),
                predictions: Arc::new(MemoryPredictions::new(self.prediction_cache_mb << 20)),
                redis: None,
            },
        })
    }

    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_secs)
    }
}

impl EventLogArgs {
    fn kafka(&self) -> Option<KafkaConfig> {
        self.kafka_brokers.as_ref().map(|brokers| KafkaConfig {
            brokers: brokers.clone(),
            topic: self.kafka_topic.clone(),
            group: self.kafka_group.clone(),
            partitions: self.kafka_partitions,
        })
    }
}

impl WorkerArgs {
    pub async fn store(&self, events: &EventLogArgs) -> anyhow::Result<Arc<dyn Store>> {
        let url = match &self.database_url {
            Some(RedactedUrl(url)) => url.clone(),
            None => events
                .data_dir
                .join("moodwire.sqlite")
                .display()
                .to_string(),
        };
        Ok(open_store(&url).await?)
    }

    pub fn cpu(&self) -> anyhow::Result<Arc<dyn CpuGauge>> {
        Ok(match &self.cpu_reading_file {
            Some(path) => Arc::new(FileCpu::new(path.clone())),
            None => Arc::new(SystemCpu::start().context("cannot start the CPU monitor")?),
        })
    }

    /// The gauge for a command that decides at once (`moodwire warm`): a first real
    /// reading is taken (a second) before it answers.
    pub fn cpu_measured(&self) -> anyhow::Result<Arc<dyn CpuGauge>> {
        Ok(match &self.cpu_reading_file {
            Some(path) => Arc::new(FileCpu::new(path.clone())),
            None => Arc::new(SystemCpu::start_measured().context("cannot read the CPU use")?),
        })
    }

    pub fn warm_config(&self, cache: &CacheArgs) -> WarmConfig {
        WarmConfig {
            start_below: self.warm_cpu_pct,
            abort_above: self.warm_cpu_pct.max(self.warm_stop_cpu_pct),
            max_refreshes: self.warm_max as usize,
            pace: Duration::from_secs(self.warm_pace_secs),
            ttl: cache.ttl(),
            every: Duration::from_secs(self.warm_every_secs),
            recent_posts: self.warm_recent_posts as usize,
            background_posts: self.warm_background_posts as usize,
            ..WarmConfig::default()
        }
    }

    /// The seed keywords; a missing file only means no seeds.
    pub fn seeds(&self) -> Vec<Keyword> {
        let path = resolve(&self.warm_seeds);
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_seeds(&text),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no seed keywords for the warmer");
                Vec::new()
            }
        }
    }

    pub fn sync_config(&self) -> SyncConfig {
        SyncConfig {
            cpu_threshold: self.sync_cpu_pct,
            batch_size: self.sync_batch as usize,
            max_delay: Duration::from_secs(self.sync_max_delay_secs),
            ..SyncConfig::default()
        }
    }
}

/// What carries computed analyses onwards: the journal, and Kafka behind it when configured.
pub struct Events {
    pub journal: Journal,
    /// Ships the journal to Kafka; taken by whoever runs it.
    pub forwarder: Option<KafkaForwarder>,
    pub kafka: Option<KafkaConfig>,
}

impl EventLogArgs {
    /// Opens the journal and, with Kafka, makes sure the topic exists (a broker that
    /// is away now is not an error: the journal holds the events meanwhile).
    pub async fn open(&self) -> anyhow::Result<Events> {
        let journal = Journal::open_bounded(&self.data_dir, self.journal_max_mb << 20).await?;
        let kafka = self.kafka();
        let forwarder = match &kafka {
            Some(config) => {
                if let Err(e) = config.ensure_topic().await {
                    tracing::warn!(error = %e, "cannot make sure the Kafka topic exists now");
                }
                Some(KafkaForwarder::new(journal.clone(), config)?)
            }
            None => None,
        };
        Ok(Events {
            journal,
            forwarder,
            kafka,
        })
    }
}

impl Events {
    /// The reader the sync drains: the Kafka topic, or the journal itself.
    pub fn feed(&self) -> anyhow::Result<Box<dyn EventFeed>> {
        Ok(match &self.kafka {
            Some(kafka) => Box::new(KafkaFeed::subscribe(kafka)?),
            None => Box::new(self.journal.feed()),
        })
    }
}

/// The analysis service, its cache and its events.
pub struct Pipeline {
    pub service: Arc<AnalysisService>,
    pub cache: Arc<dyn ResultCache>,
    pub events: Events,
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
        config.calls_per_minute = self.calls_per_minute;
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

    /// The service, appending to the event log.
    pub async fn build(&self) -> anyhow::Result<Pipeline> {
        self.build_observing(|classifier| classifier).await
    }

    /// The service with its classifier passed through `observe` first (see
    /// `App::build_observing`).
    pub async fn build_observing(
        &self,
        observe: impl FnOnce(Arc<dyn Classifier>) -> Arc<dyn Classifier>,
    ) -> anyhow::Result<Pipeline> {
        self.compose(self.cache.open().await?, observe).await
    }

    /// The service on the given caches (benchmarks that must start them empty).
    pub async fn build_with(&self, caches: Caches) -> anyhow::Result<Pipeline> {
        self.compose(caches, |classifier| classifier).await
    }

    async fn compose(
        &self,
        caches: Caches,
        observe: impl FnOnce(Arc<dyn Classifier>) -> Arc<dyn Classifier>,
    ) -> anyhow::Result<Pipeline> {
        let events = self.events.open().await?;
        let cache = Arc::clone(&caches.results);
        let service = self
            .build_service(caches, Arc::new(events.journal.clone()), observe)
            .await?;
        Ok(Pipeline {
            service: Arc::new(service),
            cache,
            events,
        })
    }

    /// Async because a Reddit source checks its credentials before anything is served.
    async fn build_service(
        &self,
        caches: Caches,
        events: Arc<dyn moodwire_core::ports::EventLog>,
        observe: impl FnOnce(Arc<dyn Classifier>) -> Arc<dyn Classifier>,
    ) -> anyhow::Result<AnalysisService> {
        let source = self.post_source(caches.redis.clone()).await?;
        let dir = self.model.open_async().await?;
        let engine_options = self.model.engine_options();
        let options = InferOptions {
            max_queued_tokens: self.max_queued_tokens as usize,
            max_queue_wait: Duration::from_secs(self.max_queue_wait_secs),
            nice: self.analysis_nice,
        };
        // Loaded on the inference thread, so that ONNX Runtime's threads share its priority.
        let infer = tokio::task::spawn_blocking(move || {
            Infer::load_and_start(move || Engine::load(&dir, engine_options), options)
        })
        .await
        .context("the model loader panicked")??;
        let classifier = observe(Arc::new(infer));
        Ok(
            AnalysisService::new(source, classifier, caches.results, events)
                .with_prediction_cache(caches.predictions)
                .with_full_refresh(Duration::from_secs(self.full_refresh_secs))
                .with_max_computing(self.max_concurrent_analyses as usize),
        )
    }

    /// The source; on Reddit with `redis`, its call budget shared by the replicas.
    async fn post_source(
        &self,
        redis: Option<Arc<RedisCache>>,
    ) -> anyhow::Result<Arc<dyn PostSource>> {
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
                let config = self.reddit.config()?;
                let budget = redis.map(|redis| {
                    let name = format!("reddit:{}", config.client_id);
                    RedisBudget::new(
                        redis,
                        &name,
                        config.calls_per_minute,
                        Duration::from_secs(60),
                    )
                });
                let mut reddit = RedditSource::new(config)?;
                if let Some(budget) = budget {
                    reddit = reddit.with_shared_budget(Arc::new(budget));
                }
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
