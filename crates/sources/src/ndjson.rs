//! One Reddit item in the Pushshift / Arctic-Shift dump shape (NDJSON lines), which is
//! also the shape of a `t3` child in a Reddit API listing.

use serde::Deserialize;

use moodwire_core::{is_removed, Post};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LineError(String);

/// A submission (`title` + `selftext`) or a comment (`body`), fields as the dumps
/// and the API write them.
#[derive(Deserialize)]
struct RawItem {
    id: String,
    #[serde(default)]
    subreddit: Option<String>,
    #[serde(default)]
    author: Option<String>,
    created_utc: serde_json::Value,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    selftext: Option<String>,
    /// Comments carry their text here.
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    score: Option<serde_json::Value>,
    #[serde(default)]
    permalink: Option<String>,
}

/// Parses one dump line. Real dumps write `created_utc` and `score` as numbers
/// or strings, and leave out fields; both are accepted.
pub fn parse_post_line(line: &str) -> Result<Post, LineError> {
    let raw: RawItem = serde_json::from_str(line).map_err(|e| LineError(e.to_string()))?;
    raw.into_post()
}

/// The same as [`parse_post_line`] for an item already parsed as JSON.
pub fn parse_post_value(value: serde_json::Value) -> Result<Post, LineError> {
    let raw: RawItem = serde_json::from_value(value).map_err(|e| LineError(e.to_string()))?;
    raw.into_post()
}

impl RawItem {
    /// The post, with control characters taken out of its texts where it enters the
    /// system (see [`Post::sanitized`]), before its emptiness is judged.
    fn into_post(self) -> Result<Post, LineError> {
        let created_utc = as_integer(&self.created_utc)
            .ok_or_else(|| LineError("created_utc is not a timestamp".into()))?;
        // A removed body says nothing about the author's mood; the title still does.
        let body = self
            .selftext
            .or(self.body)
            .filter(|b| !is_removed(b))
            .unwrap_or_default();
        let post = Post {
            id: self.id,
            subreddit: self.subreddit.unwrap_or_default(),
            author: self.author.unwrap_or_else(|| "[deleted]".into()),
            created_utc,
            title: self.title.unwrap_or_default(),
            selftext: body,
            score: self.score.as_ref().and_then(as_integer).unwrap_or(0),
            permalink: self.permalink.unwrap_or_default(),
        }
        .sanitized();
        if post.id.trim().is_empty() {
            return Err(LineError("id is empty".into()));
        }
        if post.title.trim().is_empty() && post.selftext.trim().is_empty() {
            return Err(LineError(
                "no text: title and body are empty or removed".into(),
            ));
        }
        Ok(post)
    }
}

fn as_integer(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers_or_strings_and_missing_fields() {
        let p =
            parse_post_line(r#"{"id":"a1","created_utc":"1700000000","title":"Hi","score":"5"}"#)
                .unwrap();
        assert_eq!(p.created_utc, 1_700_000_000);
        assert_eq!(p.score, 5);
        assert_eq!(p.author, "[deleted]");
        let p = parse_post_line(
            r#"{"id":"a2","created_utc":1700000000.0,"title":"Hi","selftext":"body"}"#,
        )
        .unwrap();
        assert_eq!(p.selftext, "body");
    }

    #[test]
    fn comments_carry_their_text_in_body() {
        let p = parse_post_line(
            r#"{"id":"c1","created_utc":1700000000,"body":"so happy for them","link_id":"t3_x"}"#,
        )
        .unwrap();
        assert_eq!(p.text(), "so happy for them");
    }

    #[test]
    fn removed_bodies_are_dropped_but_the_title_is_kept() {
        let p = parse_post_line(
            r#"{"id":"r1","created_utc":1,"title":"Still here","selftext":"[removed]"}"#,
        )
        .unwrap();
        assert_eq!((p.title.as_str(), p.selftext.as_str()), ("Still here", ""));
        assert!(parse_post_line(r#"{"id":"c2","created_utc":1,"body":"[deleted]"}"#).is_err());
    }

    #[test]
    fn rejects_broken_lines() {
        for bad in [
            "",
            "{",
            "[]",
            r#"{"id":"x"}"#,
            r#"{"id":"","created_utc":1,"title":"t"}"#,
            r#"{"id":"x","created_utc":"soon","title":"t"}"#,
            r#"{"id":"x","created_utc":1}"#,
        ] {
            assert!(parse_post_line(bad).is_err(), "accepted {bad:?}");
        }
    }
}
