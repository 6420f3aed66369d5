//! Builds the analysis service from configuration: picks an adapter for each port.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use moodwire_core::ports::{Classifier, PostSource, ResultCache};
use moodwire_core::service::AnalysisService;
use moodwire_model::{Infer, InferOptions};
use moodwire_sources::SampleCorpus;
use moodwire_storage::MemoryCache;

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
    /// Where posts come from: `sample` (the bundled corpus), `reddit` or `dump:PATH`.
    #[arg(long, env = "MOODWIRE_SOURCE", default_value = "sample")]
    pub source: SourceSpec,
    /// Folder of the bundled sample corpus (*.ndjson, Pushshift format).
    #[arg(long, env = "MOODWIRE_SAMPLE_DIR", default_value = "data/sample")]
    pub sample_dir: PathBuf,
    /// How long a computed analysis is served from the cache, in seconds.
    #[arg(long, env = "MOODWIRE_CACHE_TTL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub cache_ttl_secs: u64,
    /// Most texts waiting for inference; more load is answered 503 at once.
    #[arg(long, env = "MOODWIRE_MAX_QUEUED_TEXTS", default_value_t = 8000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_queued_texts: u64,
}

impl PipelineArgs {
    pub fn build_service(&self) -> anyhow::Result<AnalysisService> {
        let source = self.post_source()?;
        let engine = self.model.load_engine()?;
        let classifier: Arc<dyn Classifier> = Arc::new(
            Infer::start(
                engine,
                InferOptions {
                    max_queued_texts: self.max_queued_texts as usize,
                },
            )
            .context("cannot start the inference thread")?,
        );
        let cache: Arc<dyn ResultCache> = Arc::new(MemoryCache::new(
            Duration::from_secs(self.cache_ttl_secs),
            MemoryCache::DEFAULT_MAX_ENTRIES,
        ));
        Ok(AnalysisService::new(source, classifier, cache))
    }

    fn post_source(&self) -> anyhow::Result<Arc<dyn PostSource>> {
        match &self.source {
            SourceSpec::Sample => {
                let dir = resolve(&self.sample_dir);
                let corpus = SampleCorpus::load(&dir)?;
                tracing::info!(posts = corpus.len(), dir = %dir.display(), "sample corpus loaded");
                Ok(Arc::new(corpus))
            }
            other => anyhow::bail!(
                "MOODWIRE_SOURCE={other:?} is not available in this build yet; use `sample` (the bundled corpus)"
            ),
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
}
