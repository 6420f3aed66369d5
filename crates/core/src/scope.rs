//! Which posts a question reads beyond its keyword: some subreddits only, and only
//! posts of the last hour, day, ... (`POST /analyze`'s `subreddits` and `window`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{InputError, Post};

/// The subreddits a question is limited to: at most [`Subreddits::MAX`] distinct names
/// of 2..=21 characters from `[A-Za-z0-9_]` (Reddit's own rule), lowercase and sorted,
/// so that `Stocks,wallstreetbets` and `WallStreetBets,stocks` are one question (Reddit
/// names are case-insensitive). Empty: all of Reddit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Subreddits(Vec<String>);

/// Read back (from the cache or the event log) through [`Subreddits::parse`], so a
/// tampered entry cannot hold what a request could not.
impl TryFrom<Vec<String>> for Subreddits {
    type Error = InputError;

    fn try_from(names: Vec<String>) -> Result<Self, Self::Error> {
        Subreddits::parse(&names)
    }
}

impl From<Subreddits> for Vec<String> {
    fn from(subreddits: Subreddits) -> Self {
        subreddits.0
    }
}

impl Subreddits {
    pub const MAX: usize = 10;
    pub const NAME_MIN_CHARS: usize = 2;
    pub const NAME_MAX_CHARS: usize = 21;
    /// The pattern of one name, for the API description.
    pub const NAME_PATTERN: &'static str = "^[A-Za-z0-9_]{2,21}$";

    /// All of Reddit.
    pub fn all() -> Self {
        Subreddits::default()
    }

    /// Names as Reddit writes them after `r/`, in any case; a name given twice counts
    /// once.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, InputError> {
        let mut parsed = Vec::with_capacity(names.len());
        for (position, name) in names.iter().enumerate() {
            parsed.push(parse_name(name.as_ref(), position)?);
        }
        parsed.sort();
        parsed.dedup();
        if parsed.len() > Self::MAX {
            return Err(InputError::TooManySubreddits {
                max: Self::MAX,
                got: parsed.len(),
            });
        }
        Ok(Subreddits(parsed))
    }

    pub fn is_all(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, lowercase and sorted.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// Whether a post of `subreddit` is in scope (any case, as Reddit compares them).
    pub fn admits(&self, subreddit: &str) -> bool {
        self.is_all() || self.0.iter().any(|s| s.eq_ignore_ascii_case(subreddit))
    }

    /// The names joined by `separator` (`+` makes Reddit's multireddit path).
    pub fn joined(&self, separator: &str) -> String {
        self.0.join(separator)
    }
}

fn parse_name(name: &str, position: usize) -> Result<String, InputError> {
    let valid_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let len = name.chars().count();
    if !valid_chars || !(Subreddits::NAME_MIN_CHARS..=Subreddits::NAME_MAX_CHARS).contains(&len) {
        return Err(InputError::InvalidSubreddit {
            // Echoed back in the message: bounded, and without control characters.
            name: crate::strip_controls(name.chars().take(40).collect()),
            position: position + 1,
        });
    }
    Ok(name.to_ascii_lowercase())
}

/// How far back a question reads: posts created within the last hour, day, week,
/// month (30 days), year (365 days), or all of them.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Hour,
    Day,
    Week,
    Month,
    Year,
    #[default]
    All,
}

impl Window {
    pub const NAMES: [&'static str; 6] = ["hour", "day", "week", "month", "year", "all"];
    const VARIANTS: [Window; 6] = [
        Window::Hour,
        Window::Day,
        Window::Week,
        Window::Month,
        Window::Year,
        Window::All,
    ];

    pub fn parse(raw: &str) -> Result<Self, InputError> {
        Self::NAMES
            .iter()
            .position(|name| *name == raw)
            .map(|i| Self::VARIANTS[i])
            .ok_or_else(|| InputError::UnknownWindow {
                got: crate::strip_controls(raw.chars().take(20).collect()),
            })
    }

    /// The name Reddit's `t` parameter and the API use.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Its length in seconds; `None` for all time.
    pub fn seconds(self) -> Option<i64> {
        const HOUR: i64 = 3600;
        match self {
            Window::Hour => Some(HOUR),
            Window::Day => Some(24 * HOUR),
            Window::Week => Some(7 * 24 * HOUR),
            Window::Month => Some(30 * 24 * HOUR),
            Window::Year => Some(365 * 24 * HOUR),
            Window::All => None,
        }
    }

    /// The oldest creation time (Unix seconds) in the window that ends at `now`.
    pub fn start(self, now: i64) -> Option<i64> {
        self.seconds().map(|span| now.saturating_sub(span))
    }

    /// The oldest creation time in the window that ends now (a live source's window).
    pub fn start_from_now(self) -> Option<i64> {
        self.start(chrono::Utc::now().timestamp())
    }

    /// Whether a post created at `created_utc` is in the window that ends at `now`.
    pub fn admits(self, created_utc: i64, now: i64) -> bool {
        self.start(now).is_none_or(|start| created_utc >= start)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which posts a question reads beyond its keyword. An analysis of one scope is a
/// different question from any other's: its own cache entry and its own history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    #[serde(default)]
    pub subreddits: Subreddits,
    #[serde(default)]
    pub window: Window,
}

impl Scope {
    /// All of Reddit, all time.
    pub fn unrestricted() -> Self {
        Scope::default()
    }

    pub fn is_unrestricted(&self) -> bool {
        *self == Scope::default()
    }

    /// Whether `post` is in scope, with the window ending at `now` (Unix seconds).
    pub fn admits(&self, post: &Post, now: i64) -> bool {
        self.subreddits.admits(&post.subreddit) && self.window.admits(post.created_utc, now)
    }

    /// The scope's part of a cache key: empty when unrestricted, so the keys of
    /// questions without a scope are what they were before scopes existed. It starts
    /// with `/`, where an unrestricted key has `:` before its keyword, so no keyword
    /// can make an unrestricted key equal to a scoped one.
    pub fn key(&self) -> String {
        if self.is_unrestricted() {
            return String::new();
        }
        format!("/r={}/t={}", self.subreddits.joined("+"), self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subreddits_are_lowercase_sorted_and_distinct() {
        let parsed = Subreddits::parse(&["WallStreetBets", "stocks", "wallstreetbets"]).unwrap();
        assert_eq!(parsed.names(), ["stocks", "wallstreetbets"]);
        assert!(parsed.admits("Stocks"));
        assert!(!parsed.admits("investing"));
        assert!(Subreddits::all().admits("anything"));
        assert_eq!(parsed.joined("+"), "stocks+wallstreetbets");
    }

    #[test]
    fn bad_subreddit_names_are_refused_with_their_place() {
        for (names, position) in [
            (vec!["stocks".to_string(), "a".to_string()], 2),
            (vec!["x".repeat(22)], 1),
            (vec!["wall street".to_string()], 1),
            (vec!["ok_name".to_string(), "bad-name".to_string()], 2),
            (vec!["".to_string()], 1),
            (vec!["r/stocks".to_string()], 1),
            (vec![" stocks".to_string()], 1),
            (vec!["naïve".to_string()], 1),
        ] {
            let err = Subreddits::parse(&names).unwrap_err();
            assert!(
                matches!(err, InputError::InvalidSubreddit { position: p, .. } if p == position),
                "{names:?}: {err:?}"
            );
            assert_eq!(
                (err.field(), err.code()),
                ("subreddits", "invalid_subreddits")
            );
        }
    }

    #[test]
    fn at_most_ten_distinct_subreddits() {
        let names: Vec<String> = (0..11).map(|i| format!("sub{i}")).collect();
        let err = Subreddits::parse(&names).unwrap_err();
        assert_eq!(err, InputError::TooManySubreddits { max: 10, got: 11 });
        assert!(Subreddits::parse(&names[..10]).is_ok());
        let repeated = vec!["stocks"; 20];
        assert_eq!(Subreddits::parse(&repeated).unwrap().names(), ["stocks"]);
    }

    #[test]
    fn windows_parse_and_bound_creation_times() {
        for name in Window::NAMES {
            assert_eq!(Window::parse(name).unwrap().as_str(), name);
        }
        for bad in ["fortnight", "Week", " week", ""] {
            let err = Window::parse(bad).unwrap_err();
            assert_eq!((err.field(), err.code()), ("window", "invalid_window"));
        }
        let now = 1_000_000;
        assert!(Window::Hour.admits(now - 3600, now));
        assert!(!Window::Hour.admits(now - 3601, now));
        assert!(Window::All.admits(i64::MIN, now));
        assert_eq!(Window::default(), Window::All);
    }

    #[test]
    fn an_unrestricted_scope_adds_nothing_to_a_key() {
        assert_eq!(Scope::unrestricted().key(), "");
        let scope = Scope {
            subreddits: Subreddits::parse(&["b_sub", "a_sub"]).unwrap(),
            window: Window::Week,
        };
        assert_eq!(scope.key(), "/r=a_sub+b_sub/t=week");
        let window_only = Scope {
            subreddits: Subreddits::all(),
            window: Window::Day,
        };
        assert_eq!(window_only.key(), "/r=/t=day");
    }
}
