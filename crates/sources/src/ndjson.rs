//! One line of a Pushshift / Arctic-Shift submission dump (NDJSON).

use serde::Deserialize;

use moodwire_core::Post;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LineError(String);

#[derive(Deserialize)]
struct RawPost {
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
    #[serde(default)]
    score: Option<serde_json::Value>,
    #[serde(default)]
    permalink: Option<String>,
}

/// Parses one dump line. Real dumps write `created_utc` and `score` as numbers
/// or strings, and leave out fields; both are accepted.
pub fn parse_post_line(line: &str) -> Result<Post, LineError> {
    let raw: RawPost = serde_json::from_str(line).map_err(|e| LineError(e.to_string()))?;
    let created_utc = as_integer(&raw.created_utc)
        .ok_or_else(|| LineError("created_utc is not a timestamp".into()))?;
    let title = raw.title.unwrap_or_default();
    if raw.id.trim().is_empty() {
        return Err(LineError("id is empty".into()));
    }
    Ok(Post {
        id: raw.id,
        subreddit: raw.subreddit.unwrap_or_default(),
        author: raw.author.unwrap_or_else(|| "[deleted]".into()),
        created_utc,
        title,
        selftext: raw.selftext.unwrap_or_default(),
        score: raw.score.as_ref().and_then(as_integer).unwrap_or(0),
        permalink: raw.permalink.unwrap_or_default(),
    })
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
    fn rejects_broken_lines() {
        for bad in [
            "",
            "{",
            "[]",
            r#"{"id":"x"}"#,
            r#"{"id":"","created_utc":1}"#,
            r#"{"id":"x","created_utc":"soon"}"#,
        ] {
            assert!(parse_post_line(bad).is_err(), "accepted {bad:?}");
        }
    }
}
