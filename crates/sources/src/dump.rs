//! Pushshift / Arctic-Shift dumps as a [`PostSource`]: `.ndjson`, `.jsonl` and `.zst`
//! files (or folders of them), submissions and comments. A query uses the dump's
//! full-text index when `moodwire index` built a fresh one, else streams the files once.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use moodwire_core::ports::{PostSource, SourceError, WorkSlot};
use moodwire_core::{Post, PostsSource, Question};

use crate::dump_files::{DumpError, DumpFiles};
use crate::dump_index::DumpIndex;

/// Tells a blocking scan to stop when the future that waits for it is dropped (the
/// request timed out or its client went away).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A dump as a post source: its files, and their index when a fresh one exists.
pub struct DumpSource {
    files: DumpFiles,
    index: Option<DumpIndex>,
}

impl DumpSource {
    /// Opens the dump at `path` and its index, when `moodwire index` built one that
    /// still matches the files (a stale index is ignored, with a warning).
    pub async fn open(path: &Path) -> Result<Self, DumpError> {
        let files = DumpFiles::open(path)?;
        let index = DumpIndex::open_if_fresh(&files).await?;
        Ok(DumpSource { files, index })
    }

    pub fn files(&self) -> &DumpFiles {
        &self.files
    }

    /// How a query is answered: `"index"` or `"scan"`.
    pub fn method(&self) -> &'static str {
        if self.index.is_some() {
            "index"
        } else {
            "scan"
        }
    }

    /// Scans on the blocking pool. The scan holds a clone of `slot` until it has
    /// stopped, and stops soon after this future is dropped.
    async fn scan(&self, question: &Question, slot: &WorkSlot) -> Result<Vec<Post>, SourceError> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancelled));
        let (files, question, slot) = (self.files.clone(), question.clone(), slot.clone());
        let report = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            files.scan(&question, &cancelled)
        })
        .await
        .map_err(|e| SourceError::Unavailable(format!("the dump scan stopped: {e}")))?
        .map_err(|e| SourceError::Unavailable(e.to_string()))?;
        if report.bad_lines > 0 || report.broken_files > 0 {
            tracing::warn!(
                bad_lines = report.bad_lines,
                broken_files = report.broken_files,
                lines = report.lines,
                "skipped unreadable dump lines"
            );
        }
        metrics::counter!("moodwire_dump_lines_scanned_total").increment(report.lines);
        metrics::counter!("moodwire_dump_bad_lines_total").increment(report.bad_lines);
        Ok(report.posts)
    }
}

#[async_trait]
impl PostSource for DumpSource {
    fn kind(&self) -> PostsSource {
        PostsSource::Dump
    }

    async fn search(&self, question: &Question, slot: &WorkSlot) -> Result<Vec<Post>, SourceError> {
        let started = std::time::Instant::now();
        let (method, posts) = match &self.index {
            Some(index) => match index.search(question).await {
                Some(found) => ("index", found?),
                // Keywords without letters or digits have no full-text form.
                None => ("scan", self.scan(question, slot).await?),
            },
            None => ("scan", self.scan(question, slot).await?),
        };
        tracing::info!(
            method,
            matched = posts.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "dump searched"
        );
        Ok(posts)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use moodwire_core::{Keyword, Limit};

    use super::*;
    use crate::dump_files::{ScanReport, MAX_LINE_BYTES};

    fn line(id: &str, t: i64, title: &str) -> String {
        format!(
            r#"{{"id":"{id}","created_utc":{t},"title":"{title}","selftext":"","subreddit":"s","author":"a"}}"#
        )
    }

    fn ids(report: &ScanReport) -> Vec<&str> {
        report.posts.iter().map(|p| p.id.as_str()).collect()
    }

    fn question(keyword: &str, limit: i64) -> Question {
        Question::new(
            Keyword::parse(keyword).unwrap(),
            Limit::parse(limit).unwrap(),
        )
    }

    fn scan(source: &DumpFiles, keyword: &str, limit: i64) -> ScanReport {
        source
            .scan(&question(keyword, limit), &AtomicBool::new(false))
            .unwrap()
    }

    fn many_lines(n: usize) -> String {
        (0..n)
            .map(|i| line(&format!("p{i}"), i as i64, "election night") + "\n")
            .collect()
    }

    #[test]
    fn a_cancelled_scan_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("RS.ndjson");
        std::fs::write(&path, many_lines(10_000)).unwrap();
        let files = DumpFiles::open(&path).unwrap();
        let result = files.scan(&question("election", 10), &AtomicBool::new(true));
        assert!(matches!(result, Err(DumpError::Cancelled)), "{result:?}");
    }

    /// A request dropped mid-scan (its timeout) stops the blocking scan, and the
    /// request's work slot comes back only once the scan has stopped.
    #[tokio::test]
    async fn a_dropped_search_stops_its_scan_and_holds_its_slot_until_then() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..8 {
            std::fs::write(
                dir.path().join(format!("RS_{i}.ndjson")),
                many_lines(50_000),
            )
            .unwrap();
        }
        let source = DumpSource::open(dir.path()).await.unwrap();
        let slots = Arc::new(tokio::sync::Semaphore::new(1));
        let slot = WorkSlot::new(Arc::clone(&slots).try_acquire_owned().unwrap());
        let question = question("election", 10);
        let search = source.search(&question, &slot);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), search)
                .await
                .is_err(),
            "the scan of 400,000 lines outlasts 20 ms"
        );
        drop(slot);
        assert_eq!(
            slots.available_permits(),
            0,
            "the scan still holds the slot"
        );
        let _permit = tokio::time::timeout(std::time::Duration::from_secs(5), slots.acquire())
            .await
            .expect("the cancelled scan gives the slot back");
    }

    #[test]
    fn scans_ndjson_newest_first_and_counts_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("RS_2024-01.ndjson");
        let mut text = String::new();
        for (i, t) in [5, 1, 9, 3, 7].iter().enumerate() {
            text += &line(&format!("p{i}"), *t, "Bitcoin is up");
            text += "\n";
        }
        text += "{not json\n\n";
        text += &line("other", 100, "nothing here");
        text += "\n";
        text += r#"{"id":"c1","created_utc":8,"body":"bitcoin again, comment"}"#;
        text += "\n";
        std::fs::write(&path, text).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"\xff\xfe broken utf8\n");
        std::fs::write(&path, bytes).unwrap();

        let source = DumpFiles::open(&path).unwrap();
        let report = scan(&source, "BITCOIN", 3);
        assert_eq!(ids(&report), ["p2", "c1", "p4"]);
        assert_eq!(report.bad_lines, 2);
        assert_eq!(report.lines, 10);
    }

    #[test]
    fn reads_zstd_with_a_long_window_and_folders_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let plain = line("a", 1, "climate news") + "\n";
        std::fs::write(dir.path().join("a.jsonl"), plain).unwrap();
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        // A window larger than the decoder's default maximum (2^27), as Pushshift uses.
        encoder.window_log(28).unwrap();
        encoder.long_distance_matching(true).unwrap();
        encoder
            .write_all((line("b", 2, "Climate change worries me") + "\n").as_bytes())
            .unwrap();
        std::fs::write(dir.path().join("RS_2024-02.zst"), encoder.finish().unwrap()).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();

        let source = DumpFiles::open(dir.path()).unwrap();
        assert_eq!(source.paths().len(), 2);
        let report = scan(&source, "climate", 10);
        assert_eq!(ids(&report), ["b", "a"]);
        assert_eq!(report.bad_lines, 0);
    }

    #[test]
    fn a_truncated_zstd_file_keeps_the_lines_before_the_break() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        // Enough for many zstd blocks (128 KiB each), so half the file decodes some.
        for i in 0..20_000 {
            text += &line(&format!("p{i}"), i, "election night");
            text += "\n";
        }
        let compressed = zstd::stream::encode_all(text.as_bytes(), 3).unwrap();
        let path = dir.path().join("cut.zst");
        std::fs::write(&path, &compressed[..compressed.len() / 2]).unwrap();
        let report = scan(&DumpFiles::open(&path).unwrap(), "election", 1000);
        assert_eq!(report.broken_files, 1);
        assert!(
            report.lines > 0 && report.lines < 20_000,
            "{}",
            report.lines
        );
    }

    #[test]
    fn overlong_lines_are_skipped_without_losing_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.ndjson");
        let huge = format!(
            r#"{{"id":"h","created_utc":1,"title":"ai {}"}}"#,
            "x".repeat(MAX_LINE_BYTES + 10)
        );
        std::fs::write(&path, format!("{huge}\n{}\n", line("ok", 2, "AI"))).unwrap();
        let report = scan(&DumpFiles::open(&path).unwrap(), "ai", 10);
        assert_eq!(ids(&report), ["ok"]);
        assert_eq!(report.bad_lines, 1);
    }

    #[test]
    fn unreadable_paths_fail_at_open() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            DumpFiles::open(&dir.path().join("missing.zst")),
            Err(DumpError::Unreadable { .. })
        ));
        assert!(matches!(
            DumpFiles::open(dir.path()),
            Err(DumpError::NoFiles(_))
        ));
    }
}
