use std::path::{Path, PathBuf};

use async_trait::async_trait;

use moodwire_core::ports::{PostSource, SourceError, WorkSlot};
use moodwire_core::{Post, PostsSource, Question};

use crate::{parse_post_line, SearchText};

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("cannot read the sample corpus at {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    BadLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("the sample corpus at {0} holds no posts (*.ndjson files)")]
    Empty(PathBuf),
}

/// The embedded default source: posts bundled with moodwire (`data/sample/*.ndjson`),
/// held in memory, searched by whole-word keyword match, newest first. It is a
/// snapshot: a question's window ends at its newest post, not at today.
pub struct SampleCorpus {
    /// Sorted newest first.
    posts: Vec<(Post, SearchText)>,
}

impl SampleCorpus {
    pub fn load(dir: &Path) -> Result<Self, CorpusError> {
        let io = |source| CorpusError::Io {
            path: dir.to_path_buf(),
            cause: source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
            .collect();
        files.sort();
        let mut posts = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).map_err(|source| CorpusError::Io {
                path: file.clone(),
                cause: source,
            })?;
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let post = parse_post_line(line).map_err(|e| CorpusError::BadLine {
                    path: file.clone(),
                    line: i + 1,
                    reason: e.to_string(),
                })?;
                posts.push(post);
            }
        }
        if posts.is_empty() {
            return Err(CorpusError::Empty(dir.to_path_buf()));
        }
        Ok(Self::from_posts(posts))
    }

    pub fn from_posts(mut posts: Vec<Post>) -> Self {
        posts.sort_by(|a, b| {
            b.created_utc
                .cmp(&a.created_utc)
                .then_with(|| a.id.cmp(&b.id))
        });
        SampleCorpus {
            posts: posts
                .into_iter()
                .map(|p| {
                    let text = SearchText::new(&p.title, &p.selftext);
                    (p, text)
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.posts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.posts.is_empty()
    }

    /// Up to `question.limit` posts in its scope mentioning its keyword, newest first.
    pub fn find(&self, question: &Question) -> Vec<Post> {
        let needle = question.keyword.normalized();
        let newest = self.posts.first().map_or(0, |(post, _)| post.created_utc);
        self.posts
            .iter()
            .take_while(|(post, _)| question.scope.window.admits(post.created_utc, newest))
            .filter(|(post, text)| {
                question.scope.subreddits.admits(&post.subreddit) && text.contains_word(&needle)
            })
            .take(question.limit.get())
            .map(|(post, _)| post.clone())
            .collect()
    }
}

#[async_trait]
impl PostSource for SampleCorpus {
    fn kind(&self) -> PostsSource {
        PostsSource::Sample
    }

    async fn search(&self, question: &Question, _: &WorkSlot) -> Result<Vec<Post>, SourceError> {
        Ok(self.find(question))
    }
}

#[cfg(test)]
mod tests {
    use moodwire_core::{Keyword, Limit, Scope, Subreddits, Window};

    use super::*;

    fn post(id: &str, t: i64, title: &str) -> Post {
        in_subreddit(id, t, title, "s")
    }

    fn in_subreddit(id: &str, t: i64, title: &str, subreddit: &str) -> Post {
        Post {
            id: id.into(),
            subreddit: subreddit.into(),
            author: "a".into(),
            created_utc: t,
            title: title.into(),
            selftext: String::new(),
            score: 1,
            permalink: String::new(),
        }
    }

    #[test]
    fn finds_newest_first_up_to_the_limit() {
        let corpus = SampleCorpus::from_posts(vec![
            post("old", 1, "AI news"),
            post("new", 3, "more ai"),
            post("other", 2, "bitcoin"),
            post("mid", 2, "The AI!"),
        ]);
        let k = Keyword::parse("Ai").unwrap();
        let ids: Vec<_> = corpus
            .find(&Question::new(k.clone(), Limit::parse(10).unwrap()))
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, ["new", "mid", "old"]);
        let one = Question::new(k, Limit::parse(1).unwrap());
        assert_eq!(corpus.find(&one)[0].id, "new");
        let nothing = Question::new(Keyword::parse("nothing").unwrap(), Limit::default());
        assert!(corpus.find(&nothing).is_empty());
    }

    #[test]
    fn a_scope_keeps_its_subreddits_and_the_window_before_the_newest_post() {
        const DAY: i64 = 86_400;
        let newest = 100 * DAY;
        let corpus = SampleCorpus::from_posts(vec![
            in_subreddit("latest", newest, "unrelated", "news"),
            in_subreddit("today", newest - 3600, "tesla stock", "Stocks"),
            in_subreddit("elsewhere", newest - 7200, "tesla again", "cars"),
            in_subreddit("last_week", newest - 6 * DAY, "tesla", "wallstreetbets"),
            in_subreddit("last_month", newest - 20 * DAY, "tesla", "stocks"),
        ]);
        let ask = |names: &[&str], window| {
            let question = Question::new(Keyword::parse("tesla").unwrap(), Limit::default());
            let scope = Scope {
                subreddits: Subreddits::parse(names).unwrap(),
                window,
            };
            let found = corpus.find(&question.within(scope));
            found.into_iter().map(|p| p.id).collect::<Vec<_>>()
        };
        let subs = ["stocks", "wallstreetbets"];
        assert_eq!(
            ask(&subs, Window::All),
            ["today", "last_week", "last_month"]
        );
        assert_eq!(ask(&subs, Window::Week), ["today", "last_week"]);
        assert_eq!(ask(&subs, Window::Day), ["today"]);
        assert_eq!(ask(&[], Window::Day), ["today", "elsewhere"]);
        assert!(
            ask(&["cars"], Window::Hour).is_empty(),
            "7200 s before the newest post"
        );
    }

    #[test]
    fn the_bundled_corpus_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample");
        let corpus = SampleCorpus::load(&dir).unwrap();
        assert!(
            (2_000..=5_000).contains(&corpus.len()),
            "{} posts",
            corpus.len()
        );
    }
}
