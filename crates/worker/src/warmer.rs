//! The hot-keyword warmer: while the CPU is quiet, refreshes the cache entries of the
//! keywords analysts are most likely to ask about next, before they expire.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use moodwire_core::ports::Store;
use moodwire_core::service::AnalysisService;
use moodwire_core::trending::{trending_terms, TrendingConfig};
use moodwire_core::{Keyword, Limit, Question};
use serde::Serialize;

use crate::cpu::CpuGauge;

#[derive(Debug, Clone)]
pub struct WarmConfig {
    /// A cycle starts only below this CPU percentage.
    pub start_below: f32,
    /// A cycle stops as soon as the CPU is above this.
    pub abort_above: f32,
    /// Most refreshes per cycle.
    pub max_refreshes: usize,
    /// Pause between two refreshes, so live requests and the Reddit budget come first.
    pub pace: Duration,
    /// Entries that expire within this are refreshed; fresher ones are left alone.
    pub refresh_within: Duration,
    /// The cache's TTL (an entry expires `ttl` after it was analysed).
    pub ttl: Duration,
    /// The question warmed for each keyword.
    pub limit: Limit,
    /// How many of the most-queried keywords are hot.
    pub top_queried: usize,
    pub trending: TrendingConfig,
    /// Trending compares posts of the last `recent_window` with the `background_window` before it.
    pub recent_window: Duration,
    pub background_window: Duration,
    /// Most post texts read from the store for each window (a sample is enough to see
    /// a word rise; all of a week's posts could be millions).
    pub recent_posts: usize,
    pub background_posts: usize,
    /// Time between cycles in the background loop.
    pub every: Duration,
}

impl Default for WarmConfig {
    fn default() -> Self {
        WarmConfig {
            start_below: 35.0,
            abort_above: 45.0,
            max_refreshes: 10,
            pace: Duration::from_secs(6),
            refresh_within: Duration::from_secs(10 * 60),
            ttl: Duration::from_secs(3600),
            limit: Limit::DEFAULT,
            top_queried: 10,
            trending: TrendingConfig::default(),
            recent_window: Duration::from_secs(6 * 3600),
            background_window: Duration::from_secs(7 * 24 * 3600),
            recent_posts: 5_000,
            background_posts: 20_000,
            every: Duration::from_secs(60),
        }
    }
}

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WarmReport {
    /// The CPU was busy at the start: nothing was done.
    pub skipped_busy: bool,
    /// Hot keywords in the order they were considered.
    pub candidates: Vec<String>,
    pub trending: Vec<String>,
    pub refreshed: Vec<String>,
    /// Candidates whose cache entry was fresh enough.
    pub fresh: usize,
    pub failed: usize,
    /// The cycle stopped early because the CPU rose above the abort threshold.
    pub aborted_by_load: bool,
}

pub struct Warmer {
    service: Arc<AnalysisService>,
    store: Arc<dyn Store>,
    cpu: Arc<dyn CpuGauge>,
    seeds: Vec<Keyword>,
    config: WarmConfig,
}

impl Warmer {
    pub fn new(
        service: Arc<AnalysisService>,
        store: Arc<dyn Store>,
        cpu: Arc<dyn CpuGauge>,
        seeds: Vec<Keyword>,
        config: WarmConfig,
    ) -> Self {
        Warmer {
            service,
            store,
            cpu,
            seeds,
            config,
        }
    }

    /// Most-asked first (questions counted by the cache, hits included), then the most
    /// analysed in the store, then trending terms, then the seeds; each keyword once.
    async fn hot_keywords(&self, report: &mut WarmReport) -> Vec<Keyword> {
        let asked = self.service.top_queried(self.config.top_queried).await;
        let analysed = match self.store.top_keywords(self.config.top_queried).await {
            Ok(keywords) => keywords,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the most-queried keywords; warming the rest");
                Vec::new()
            }
        };
        report.trending = self.trending().await;
        let mut seen = HashSet::new();
        asked
            .iter()
            .chain(&analysed)
            .chain(&report.trending)
            .filter_map(|k| Keyword::parse(k).ok())
            .chain(self.seeds.iter().cloned())
            .filter(|k| seen.insert(k.normalized()))
            .collect()
    }

    async fn trending(&self) -> Vec<String> {
        let now = Utc::now().timestamp();
        let recent_from = now - self.config.recent_window.as_secs() as i64;
        let background_from = recent_from - self.config.background_window.as_secs() as i64;
        let texts = async {
            let recent = self
                .store
                .post_texts(recent_from, now + 1, self.config.recent_posts)
                .await?;
            let background = self
                .store
                .post_texts(background_from, recent_from, self.config.background_posts)
                .await?;
            Ok::<_, moodwire_core::ports::StoreError>((recent, background))
        };
        match texts.await {
            Ok((recent, background)) => trending_terms(&recent, &background, self.config.trending)
                .into_iter()
                .map(|t| t.term)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read recent posts for trending terms");
                Vec::new()
            }
        }
    }

    fn needs_refresh(&self, analyzed_at: chrono::DateTime<Utc>) -> bool {
        let age = (Utc::now() - analyzed_at).to_std().unwrap_or_default();
        age + self.config.refresh_within >= self.config.ttl
    }

    /// One cycle: refresh the hot keywords whose entry is missing or about to expire,
    /// paced, stopping when the CPU gets busy.
    #[tracing::instrument(name = "warm_cycle", skip(self))]
    pub async fn cycle(&self) -> WarmReport {
        let mut report = WarmReport::default();
        if self.cpu.percent() >= self.config.start_below {
            report.skipped_busy = true;
            return report;
        }
        let hot = self.hot_keywords(&mut report).await;
        report.candidates = hot.iter().map(|k| k.as_str().to_string()).collect();
        for keyword in hot {
            if report.refreshed.len() >= self.config.max_refreshes {
                break;
            }
            // The warmer keeps the unrestricted question warm: scoped ones are too
            // many to guess and are counted under their keyword.
            let question = Question::new(keyword, self.config.limit);
            let cached = self.service.cached_analysis(&question).await;
            if cached.is_some_and(|a| !self.needs_refresh(a.analyzed_at)) {
                report.fresh += 1;
                continue;
            }
            if !report.refreshed.is_empty() {
                tokio::time::sleep(self.config.pace).await;
            }
            if self.cpu.percent() > self.config.abort_above {
                report.aborted_by_load = true;
                break;
            }
            let keyword = &question.keyword;
            match self.service.refresh(&question).await {
                Ok(_) => report.refreshed.push(keyword.as_str().to_string()),
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(%keyword, error = %e, "cannot refresh a hot keyword");
                }
            }
        }
        metrics::counter!("moodwire_warm_refreshes_total").increment(report.refreshed.len() as u64);
        if report.aborted_by_load {
            metrics::counter!("moodwire_warm_aborted_total").increment(1);
        }
        tracing::info!(
            refreshed = report.refreshed.len(),
            fresh = report.fresh,
            aborted = report.aborted_by_load,
            "warm cycle done"
        );
        report
    }

    /// A cycle every `config.every` until `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.config.every) => {}
            }
            tokio::select! {
                () = &mut stop => return,
                _ = self.cycle() => {}
            }
        }
    }
}

/// Seed keywords: one per line; blank lines and `#` comments are skipped, and so
/// (with a warning) are lines that are not valid keywords.
pub fn parse_seeds(text: &str) -> Vec<Keyword> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| match Keyword::parse(l) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!(line = l, error = %e, "skipping a seed keyword");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use moodwire_core::ports::{Classifier, ClassifyError, PostSource, SourceError, WorkSlot};
    use moodwire_core::{Keyword, Post, PostsSource, Prediction};
    use moodwire_testkit::{post, MapCache, MemoryLog, MemoryStore};

    use super::*;

    /// One post per keyword, titled with it.
    struct OnePost;

    #[async_trait]
    impl PostSource for OnePost {
        fn kind(&self) -> PostsSource {
            PostsSource::Sample
        }
        async fn search(&self, q: &Question, _: &WorkSlot) -> Result<Vec<Post>, SourceError> {
            Ok(vec![post(&q.keyword.normalized(), q.keyword.as_str())])
        }
    }

    struct Joy;

    #[async_trait]
    impl Classifier for Joy {
        fn model_version(&self) -> &str {
            "m"
        }
        async fn classify(&self, texts: Vec<String>) -> Result<Vec<Prediction>, ClassifyError> {
            Ok(texts
                .iter()
                .map(|_| moodwire_testkit::prediction(1))
                .collect())
        }
    }

    /// Reads the given percentages in turn, then the last one forever.
    struct Scripted(Vec<f32>, AtomicUsize);

    impl CpuGauge for Scripted {
        fn percent(&self) -> f32 {
            let i = self.1.fetch_add(1, Ordering::SeqCst);
            self.0[i.min(self.0.len() - 1)]
        }
    }

    fn warmer(cpu: Vec<f32>, seeds: &[&str]) -> (Warmer, Arc<AnalysisService>) {
        let service = Arc::new(AnalysisService::new(
            Arc::new(OnePost),
            Arc::new(Joy),
            // "rain" was asked most.
            Arc::new(MapCache::default().with_top_queried(&[("rain", 7)])),
            Arc::new(MemoryLog::default()),
        ));
        let store = Arc::new(
            MemoryStore::default()
                .with_top_keywords(&["bitcoin"])
                .with_recent_texts(&["the eclipse tonight"; 5]),
        );
        let seeds = seeds.iter().map(|s| Keyword::parse(s).unwrap()).collect();
        let config = WarmConfig {
            pace: Duration::ZERO,
            ..WarmConfig::default()
        };
        let warmer = Warmer::new(
            Arc::clone(&service),
            store,
            Arc::new(Scripted(cpu, AtomicUsize::new(0))),
            seeds,
            config,
        );
        (warmer, service)
    }

    #[tokio::test]
    async fn refreshes_queried_trending_and_seed_keywords_once_each() {
        let (warmer, service) = warmer(vec![10.0], &["AI", "Bitcoin"]);
        let report = warmer.cycle().await;
        assert_eq!(report.trending, ["eclipse", "tonight"]);
        assert_eq!(
            report.candidates,
            ["rain", "bitcoin", "eclipse", "tonight", "AI"]
        );
        assert_eq!(report.refreshed, report.candidates);
        let ai = Keyword::parse("ai").unwrap();
        assert!(service
            .cached_analysis(&Question::new(ai.clone(), Limit::DEFAULT))
            .await
            .is_some());

        // Fresh entries are left alone.
        let again = warmer.cycle().await;
        assert!(again.refreshed.is_empty());
        assert_eq!(again.fresh, 5);
    }

    #[tokio::test]
    async fn a_busy_cpu_skips_the_cycle_and_rising_load_stops_it() {
        let (busy, _) = warmer(vec![50.0], &["AI"]);
        let report = busy.cycle().await;
        assert!(report.skipped_busy);
        assert!(report.refreshed.is_empty());

        // Quiet at the start and for the first refresh, then above 45 %.
        let (rising, _) = warmer(vec![10.0, 10.0, 60.0], &["AI"]);
        let report = rising.cycle().await;
        assert_eq!(report.refreshed, ["rain"]);
        assert!(report.aborted_by_load);
    }

    #[test]
    fn seeds_skip_comments_blanks_and_invalid_lines() {
        let long = "x".repeat(200);
        let seeds = parse_seeds(&format!("# comment\nAI\n\n  climate change \n{long}\n"));
        let seeds: Vec<_> = seeds.iter().map(Keyword::as_str).collect();
        assert_eq!(seeds, ["AI", "climate change"]);
    }
}
