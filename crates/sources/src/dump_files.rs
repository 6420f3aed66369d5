//! The files of a Pushshift / Arctic-Shift dump (`.ndjson`, `.jsonl`, `.zst`, or a
//! folder of them) and the one streaming scan over them, in bounded memory. Both the
//! dump source and the dump index read dumps through this module.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use moodwire_core::{Post, Question};

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

/// The files of a dump, checked readable at start.
#[derive(Debug, Clone)]
pub struct DumpFiles {
    /// What the user named: a file or a folder.
    root: PathBuf,
    files: Vec<PathBuf>,
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

    /// Streams every file once, keeping the newest `question.limit` posts in its
    /// subreddits that mention its keyword, then drops those older than its window,
    /// which ends at the dump's newest post (a dump is a snapshot). Those are the newest
    /// matches in the window: the window only ever drops the oldest. Stops with
    /// [`DumpError::Cancelled`] soon after `cancelled` is set.
    pub fn scan(
        &self,
        question: &Question,
        cancelled: &AtomicBool,
    ) -> Result<ScanReport, DumpError> {
        let needle = question.keyword.normalized();
        let subreddits = &question.scope.subreddits;
        let mut newest = Newest::new(question.limit.get());
        let mut dump_newest = i64::MIN;
        let mut report = self.for_each_post(cancelled, |post| {
            dump_newest = dump_newest.max(post.created_utc);
            if subreddits.admits(&post.subreddit)
                && SearchText::new(&post.title, &post.selftext).contains_word(&needle)
            {
                newest.offer(post);
            }
        })?;
        let window = question.scope.window;
        report.posts = newest.into_sorted();
        report
            .posts
            .retain(|p| window.admits(p.created_utc, dump_newest));
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
