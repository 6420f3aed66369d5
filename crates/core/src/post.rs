use serde::{Deserialize, Serialize};

/// A social media post, in the fields of a Pushshift submission dump.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    pub id: String,
    pub subreddit: String,
    pub author: String,
    /// Seconds since the Unix epoch.
    pub created_utc: i64,
    pub title: String,
    #[serde(default)]
    pub selftext: String,
    #[serde(default)]
    pub score: i64,
    #[serde(default)]
    pub permalink: String,
}

impl Post {
    /// What the classifier reads: the title, then the body when there is one.
    /// Comments have no title, only a body.
    pub fn text(&self) -> String {
        let title = self.title.trim();
        let body = self.selftext.trim();
        let body = if is_removed(body) { "" } else { body };
        match (title.is_empty(), body.is_empty()) {
            (_, true) => title.to_string(),
            (true, false) => body.to_string(),
            (false, false) => format!("{title}\n{body}"),
        }
    }
}

impl Post {
    /// Longest title an event carries (Reddit's own limit for a title).
    pub const TITLE_MAX_CHARS: usize = 300;
    /// Longest excerpt of the body an event carries (and the store keeps).
    pub const EXCERPT_MAX_CHARS: usize = 280;
    /// Longest subreddit or author name an event carries (Reddit's are 21 and 20).
    pub const NAME_MAX_CHARS: usize = 64;
    /// Longest permalink an event carries.
    pub const PERMALINK_MAX_CHARS: usize = 512;

    /// The post with NUL and the other C0 control characters (but newline and tab)
    /// taken out of every text field. Sources call it where posts enter the system:
    /// PostgreSQL cannot store NUL in text, and no post needs the others.
    pub fn sanitized(self) -> Post {
        Post {
            id: strip_controls(self.id),
            subreddit: strip_controls(self.subreddit),
            author: strip_controls(self.author),
            title: strip_controls(self.title),
            selftext: strip_controls(self.selftext),
            permalink: strip_controls(self.permalink),
            ..self
        }
    }

    /// The post as an event carries it to the store: the body cut to an excerpt and
    /// every other text bounded, so an event's size is bounded by its post count, not
    /// by what authors wrote (self-posts run to 40,000 characters).
    pub fn for_event(&self) -> Post {
        let body = if is_removed(&self.selftext) {
            ""
        } else {
            self.selftext.trim()
        };
        Post {
            id: self.id.clone(),
            subreddit: truncate_chars(&self.subreddit, Self::NAME_MAX_CHARS),
            author: truncate_chars(&self.author, Self::NAME_MAX_CHARS),
            created_utc: self.created_utc,
            title: excerpt(&self.title, Self::TITLE_MAX_CHARS),
            selftext: excerpt(body, Self::EXCERPT_MAX_CHARS),
            score: self.score,
            permalink: truncate_chars(&self.permalink, Self::PERMALINK_MAX_CHARS),
        }
    }
}

/// `text` without C0 control characters other than `\n` and `\t`.
pub fn strip_controls(text: String) -> String {
    let is_stripped = |c: char| c < ' ' && c != '\n' && c != '\t';
    if text.contains(is_stripped) {
        text.replace(is_stripped, "")
    } else {
        text
    }
}

/// At most `max` characters of `text`, whole.
fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_string(),
        None => text.to_string(),
    }
}

/// At most `max` characters of `text`: whole when it fits, else cut at the last word
/// boundary of the allowed length (when there is one near it) and ended with "…".
pub fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    let Some((cut, _)) = text.char_indices().nth(max.saturating_sub(1)) else {
        return text.to_string();
    };
    if text[cut..].chars().nth(1).is_none() {
        return text.to_string();
    }
    let head = &text[..cut];
    // Backing up to a space keeps whole words, unless that loses much of the excerpt.
    let near = head
        .char_indices()
        .rev()
        .take(40)
        .find(|(_, c)| c.is_whitespace());
    let head = near.map_or(head, |(at, _)| &head[..at]).trim_end();
    format!("{head}…")
}

/// Reddit's placeholder for a body that a moderator or its author took away.
pub fn is_removed(body: &str) -> bool {
    matches!(body.trim(), "[removed]" | "[deleted]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(title: &str, body: &str) -> Post {
        Post {
            id: "x".into(),
            subreddit: "s".into(),
            author: "a".into(),
            created_utc: 0,
            title: title.into(),
            selftext: body.into(),
            score: 0,
            permalink: String::new(),
        }
    }

    #[test]
    fn text_joins_title_and_body_but_skips_removed_bodies() {
        assert_eq!(post("Title", "Body").text(), "Title\nBody");
        assert_eq!(post("Title", "  ").text(), "Title");
        assert_eq!(post("Title", "[removed]").text(), "Title");
        assert_eq!(post("Title", "[deleted]").text(), "Title");
        assert_eq!(post("", "a comment").text(), "a comment");
    }

    #[test]
    fn sanitizing_takes_out_control_characters_but_newlines_and_tabs() {
        let dirty = Post {
            author: "a\u{0}b".into(),
            permalink: "/r/x\u{1b}[31m".into(),
            ..post("Ti\u{0}tle\r", "line one\nline\ttwo\u{7}\u{0}")
        };
        let clean = dirty.sanitized();
        assert_eq!(clean.title, "Title");
        assert_eq!(clean.selftext, "line one\nline\ttwo");
        assert_eq!(clean.author, "ab");
        assert_eq!(clean.permalink, "/r/x[31m");
        let already = post("fine", "text");
        assert_eq!(already.clone().sanitized(), already);
    }

    #[test]
    fn an_event_carries_an_excerpt_of_the_body_and_bounded_fields() {
        let long = Post {
            subreddit: "s".repeat(500),
            ..post(&"t".repeat(1000), &"word ".repeat(10_000))
        };
        let carried = long.for_event();
        assert!(carried.title.chars().count() <= Post::TITLE_MAX_CHARS);
        assert!(carried.selftext.chars().count() <= Post::EXCERPT_MAX_CHARS);
        assert!(carried.selftext.ends_with("word…"), "{}", carried.selftext);
        assert_eq!(carried.subreddit.chars().count(), Post::NAME_MAX_CHARS);
        let short = post("Title", "A short body.");
        assert_eq!(short.for_event(), short);
        assert_eq!(post("T", "[removed]").for_event().selftext, "");
    }

    #[test]
    fn excerpts_are_bounded_in_characters_not_bytes() {
        assert_eq!(excerpt("héllo", 5), "héllo");
        assert_eq!(excerpt("héllo!", 5), "héll…");
        assert_eq!(excerpt("🎉".repeat(300).as_str(), 280).chars().count(), 280);
        assert_eq!(excerpt("one two three", 9), "one two…");
    }
}
