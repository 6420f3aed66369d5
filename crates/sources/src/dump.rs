//! Pushshift / Arctic-Shift dumps as a [`PostSource`]: `.ndjson`, `.jsonl` and `.zst`
//! files (or folders of them), submissions and comments. A query uses the dump's
//! full-text index when `moodwire index` built a fresh one, else streams the files once.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use moodwire_core::ports::{PostSource, SourceError, WorkSlot};
use moodwire_core::{Keyword, Limit, Post, PostsSource};

use crate::dump_index::DumpIndex;
use crate::{parse_post_line, SearchText};

/// Lines longer than this are not posts; they are skipped (and counted) without
/// being held in memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Pushshift dumps are compressed with a 2 GiB window (`zstd --long=31`).
const ZSTD_WINDOW_LOG_MAX: u32 = 31;

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("cannot read the dump at {path}: {cause}")]
    Unreadable { path: PathBuf, cause: io::Error },
    #[error("{0} holds no dump files (.ndjson, .jsonl or .zst)")]
    NoFiles(PathBuf),
    #[error("the dump index {path}: {cause}")]
    Index { path: PathBuf, cause: sqlx::Error },
    /// The request that asked for the scan went away.
    #[error("the dump scan was cancelled")]
    Cancelled,
}

/// Lines read between two looks at the cancellation flag: a few milliseconds of work.
const LINES_PER_CANCEL_CHECK: u64 = 4096;

/// Tells a blocking scan to stop when the future that waits for it is dropped (the
/// request timed out or its client went away).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The files of a dump, checked readable at start.
#[derive(Debug, Clone)]
pub struct DumpFiles {
    /// What the user named: a file or a folder.
    root: PathBuf,
    files: Vec<PathBuf>,
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
    async fn scan(
        &self,
        keyword: &Keyword,
        limit: Limit,
        slot: &WorkSlot,
    ) -> Result<Vec<Post>, SourceError> {
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancelled));
        let (files, keyword, slot) = (self.files.clone(), keyword.clone(), slot.clone());
        let report = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            files.scan(&keyword, limit, &cancelled)
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

/// What one scan found.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// The newest matching posts, newest first, at most the limit.
    pub posts: Vec<Post>,
    pub lines: u64,
    /// Lines that were not a readable post (bad JSON, no id or timestamp, not UTF-8, too long).
    pub bad_lines: u64,
    /// Files whose compressed stream broke off; the lines before the break were used.
    pub broken_files: u64,
}

impl DumpFiles {
    /// A dump file, or a folder whose dump files (not recursive) are used in name order.
    pub fn open(path: &Path) -> Result<Self, DumpError> {
        let unreadable = |source| DumpError::Unreadable {
            path: path.to_path_buf(),
            cause: source,
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        let mut files = if meta.is_dir() {
            std::fs::read_dir(path)
                .map_err(unreadable)?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_dump_file(p))
                .collect()
        } else {
            vec![path.to_path_buf()]
        };
        files.sort();
        if files.is_empty() {
            return Err(DumpError::NoFiles(path.to_path_buf()));
        }
        for file in &files {
            File::open(file).map_err(|source| DumpError::Unreadable {
                path: file.clone(),
                cause: source,
            })?;
        }
        Ok(DumpFiles {
            root: path.to_path_buf(),
            files,
        })
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.files
    }

    /// Where `moodwire index` keeps this dump's index: beside the file, or in the folder.
    pub fn index_path(&self) -> PathBuf {
        if self.root.is_dir() {
            self.root.join(".moodwire-index.sqlite")
        } else {
            let mut name = self.root.as_os_str().to_owned();
            name.push(".moodwire-index.sqlite");
            PathBuf::from(name)
        }
    }

    /// Streams every file once, keeping the newest `limit` posts that mention `keyword`;
    /// stops with [`DumpError::Cancelled`] soon after `cancelled` is set.
    pub fn scan(
        &self,
        keyword: &Keyword,
        limit: Limit,
        cancelled: &AtomicBool,
    ) -> Result<ScanReport, DumpError> {
        let needle = keyword.normalized();
        let mut newest = Newest::new(limit.get());
        let mut report = self.for_each_post(cancelled, |post| {
            if SearchText::new(&post.title, &post.selftext).contains_word(&needle) {
                newest.offer(post);
            }
        })?;
        report.posts = newest.into_sorted();
        Ok(report)
    }

    /// Streams every readable post of every file to `each`; unreadable lines are
    /// counted in the report (whose `posts` stay empty). Stops with
    /// [`DumpError::Cancelled`] soon after `cancelled` is set.
    pub fn for_each_post(
        &self,
        cancelled: &AtomicBool,
        mut each: impl FnMut(Post),
    ) -> Result<ScanReport, DumpError> {
        let mut report = ScanReport::default();
        for path in &self.files {
            let mut lines = open_lines(path)?;
            loop {
                if report.lines % LINES_PER_CANCEL_CHECK == 0 && cancelled.load(Ordering::Relaxed) {
                    return Err(DumpError::Cancelled);
                }
                match lines.next_line() {
                    Ok(Some(Line::Text(line))) => {
                        report.lines += 1;
                        if line.trim().is_empty() {
                            continue;
                        }
                        match parse_post_line(line) {
                            Ok(post) => each(post),
                            Err(_) => report.bad_lines += 1,
                        }
                    }
                    Ok(Some(Line::Unusable)) => {
                        report.lines += 1;
                        report.bad_lines += 1;
                    }
                    Ok(None) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(DumpError::Unreadable {
                            path: path.clone(),
                            cause: e,
                        })
                    }
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "dump stream broke off; using the lines before the break");
                        report.broken_files += 1;
                        break;
                    }
                }
            }
        }
        Ok(report)
    }
}

fn is_dump_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "ndjson" | "jsonl" | "zst"))
}

fn open_lines(path: &Path) -> Result<LineReader, DumpError> {
    let unreadable = |source| DumpError::Unreadable {
        path: path.to_path_buf(),
        cause: source,
    };
    let file = File::open(path).map_err(unreadable)?;
    let reader: Box<dyn Read + Send> = if path.extension().is_some_and(|e| e == "zst") {
        let mut decoder = zstd::stream::read::Decoder::new(file).map_err(unreadable)?;
        decoder
            .window_log_max(ZSTD_WINDOW_LOG_MAX)
            .map_err(unreadable)?;
        Box::new(decoder)
    } else {
        Box::new(file)
    };
    Ok(LineReader {
        inner: BufReader::with_capacity(1 << 16, reader),
        buf: Vec::new(),
    })
}

enum Line<'a> {
    Text(&'a str),
    /// Not UTF-8, or longer than [`MAX_LINE_BYTES`].
    Unusable,
}

/// Lines of at most [`MAX_LINE_BYTES`], so memory stays bounded whatever the file holds.
struct LineReader {
    inner: BufReader<Box<dyn Read + Send>>,
    buf: Vec<u8>,
}

impl LineReader {
    fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let read = (&mut self.inner)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut self.buf)?;
        if read == 0 {
            return Ok(None);
        }
        if self.buf.len() > MAX_LINE_BYTES && self.buf.last() != Some(&b'\n') {
            self.skip_rest_of_line()?;
            return Ok(Some(Line::Unusable));
        }
        Ok(Some(match std::str::from_utf8(&self.buf) {
            Ok(text) => Line::Text(text),
            Err(_) => Line::Unusable,
        }))
    }

    fn skip_rest_of_line(&mut self) -> io::Result<()> {
        loop {
            let available = self.inner.fill_buf()?;
            if available.is_empty() {
                return Ok(());
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    self.inner.consume(at + 1);
                    return Ok(());
                }
                None => {
                    let n = available.len();
                    self.inner.consume(n);
                }
            }
        }
    }
}

/// The newest `limit` posts seen so far, in bounded memory.
struct Newest {
    limit: usize,
    posts: Vec<Post>,
}

impl Newest {
    fn new(limit: usize) -> Self {
        Newest {
            limit,
            posts: Vec::with_capacity(limit.min(1024) * 2),
        }
    }

    fn offer(&mut self, post: Post) {
        self.posts.push(post);
        // Trim in amortized batches rather than keeping a heap: simpler, same bound (2x).
        if self.posts.len() >= self.limit * 2 {
            self.sort_and_trim();
        }
    }

    fn sort_and_trim(&mut self) {
        self.posts.sort_by(|a, b| {
            b.created_utc
                .cmp(&a.created_utc)
                .then_with(|| a.id.cmp(&b.id))
        });
        self.posts.dedup_by(|a, b| a.id == b.id);
        self.posts.truncate(self.limit);
    }

    fn into_sorted(mut self) -> Vec<Post> {
        self.sort_and_trim();
        self.posts
    }
}

#[async_trait]
impl PostSource for DumpSource {
    fn kind(&self) -> PostsSource {
        PostsSource::Dump
    }

    async fn search(
        &self,
        keyword: &Keyword,
        limit: Limit,
        slot: &WorkSlot,
    ) -> Result<Vec<Post>, SourceError> {
        let started = std::time::Instant::now();
        let (method, posts) = match &self.index {
            Some(index) => match index.search(keyword, limit).await {
                Some(found) => ("index", found?),
                // Keywords without letters or digits have no full-text form.
                None => ("scan", self.scan(keyword, limit, slot).await?),
            },
            None => ("scan", self.scan(keyword, limit, slot).await?),
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

    use super::*;

    fn line(id: &str, t: i64, title: &str) -> String {
        format!(
            r#"{{"id":"{id}","created_utc":{t},"title":"{title}","selftext":"","subreddit":"s","author":"a"}}"#
        )
    }

    fn ids(report: &ScanReport) -> Vec<&str> {
        report.posts.iter().map(|p| p.id.as_str()).collect()
    }

    fn scan(source: &DumpFiles, keyword: &str, limit: i64) -> ScanReport {
        source
            .scan(
                &Keyword::parse(keyword).unwrap(),
                Limit::parse(limit).unwrap(),
                &AtomicBool::new(false),
            )
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
        let k = Keyword::parse("election").unwrap();
        let result = files.scan(&k, Limit::parse(10).unwrap(), &AtomicBool::new(true));
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
        let k = Keyword::parse("election").unwrap();
        let search = source.search(&k, Limit::parse(10).unwrap(), &slot);
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
