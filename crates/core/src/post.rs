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
}
