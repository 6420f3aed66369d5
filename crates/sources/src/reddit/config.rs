//! What the Reddit source needs to know, parsed once at start.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

/// A credential: usable, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

/// Why the Reddit source cannot be configured; each names the variable to fix.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{0} is not set; the Reddit source needs REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET and REDDIT_USER_AGENT")]
    Missing(&'static str),
    #[error("REDDIT_USER_AGENT {got:?} does not follow Reddit's format `<platform>:<app id>:<version> (by /u/<username>)`, e.g. `linux:moodwire:0.1.0 (by /u/yourname)`")]
    BadUserAgent { got: String },
    #[error("{var} is not a valid http(s) URL: {got:?}")]
    BadUrl { var: &'static str, got: String },
}

/// Reddit's required User-Agent: `<platform>:<app id>:<version> (by /u/<username>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent(String);

impl UserAgent {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::BadUserAgent {
            got: raw.to_string(),
        };
        let raw = raw.trim();
        let (app, by) = raw.split_once(" (by /u/").ok_or_else(bad)?;
        let username = by.strip_suffix(')').ok_or_else(bad)?;
        let username_ok = !username.is_empty()
            && username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let parts: Vec<&str> = app.split(':').collect();
        let app_ok = parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.trim().is_empty() && !p.contains(char::is_whitespace));
        if username_ok && app_ok {
            Ok(UserAgent(raw.to_string()))
        } else {
            Err(bad())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn parse_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| ConfigError::BadUrl {
            var,
            got: raw.to_string(),
        })
}

#[derive(Debug, Clone)]
pub struct RedditConfig {
    pub client_id: String,
    pub client_secret: Secret,
    pub user_agent: UserAgent,
    /// `REDDIT_AUTH_URL`: the token endpoint.
    pub auth_url: Url,
    /// `REDDIT_API_URL`: the base of the search endpoint.
    pub api_url: Url,
    /// Longest one HTTP request may take, connecting included.
    pub request_timeout: Duration,
    /// Longest one whole search (all its pages and retries) may take.
    pub fetch_timeout: Duration,
    /// Retries of a page after a 5xx or a timeout, with jittered exponential backoff.
    pub max_retries: u32,
    /// The first backoff; each retry doubles it.
    pub retry_base_delay: Duration,
    /// Calls a minute the app may make (Reddit's 100, unless Reddit says otherwise).
    pub calls_per_minute: u32,
}

impl RedditConfig {
    pub const DEFAULT_AUTH_URL: &'static str = "https://www.reddit.com/api/v1/access_token";
    pub const DEFAULT_API_URL: &'static str = "https://oauth.reddit.com";

    /// The configuration from the raw settings, each checked and named when wrong.
    pub fn new(
        client_id: Option<&str>,
        client_secret: Option<Secret>,
        user_agent: Option<&str>,
        auth_url: &str,
        api_url: &str,
    ) -> Result<Self, ConfigError> {
        let client_id = client_id
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(ConfigError::Missing("REDDIT_CLIENT_ID"))?;
        let client_secret = client_secret
            .filter(|s| !s.expose().trim().is_empty())
            .ok_or(ConfigError::Missing("REDDIT_CLIENT_SECRET"))?;
        let user_agent = user_agent
            .filter(|s| !s.trim().is_empty())
            .ok_or(ConfigError::Missing("REDDIT_USER_AGENT"))?;
        Ok(RedditConfig {
            client_id: client_id.to_string(),
            client_secret,
            user_agent: UserAgent::parse(user_agent)?,
            auth_url: parse_url("REDDIT_AUTH_URL", auth_url)?,
            api_url: parse_url("REDDIT_API_URL", api_url)?,
            request_timeout: Duration::from_secs(10),
            fetch_timeout: Duration::from_secs(45),
            max_retries: 3,
            retry_base_delay: Duration::from_millis(250),
            calls_per_minute: super::rate_limit::REQUESTS_PER_WINDOW,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_follow_reddits_format() {
        assert!(UserAgent::parse("linux:moodwire:0.1.0 (by /u/someone)").is_ok());
        assert!(UserAgent::parse("web:com.example.app:v2.3-beta (by /u/A_b-9)").is_ok());
        for bad in [
            "",
            "moodwire",
            "Mozilla/5.0",
            "linux:moodwire (by /u/x)",
            "linux:moodwire:0.1 (by /u/)",
            "linux:moodwire:0.1 (by someone)",
            "linux:mood wire:0.1 (by /u/x)",
            "linux::0.1 (by /u/x)",
        ] {
            assert!(UserAgent::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn missing_settings_name_their_variable() {
        let ua = Some("linux:moodwire:0.1 (by /u/x)");
        let secret = || Some(Secret::new("s"));
        let new = |id, secret, ua| {
            RedditConfig::new(
                id,
                secret,
                ua,
                RedditConfig::DEFAULT_AUTH_URL,
                RedditConfig::DEFAULT_API_URL,
            )
        };
        assert_eq!(
            new(None, secret(), ua).unwrap_err(),
            ConfigError::Missing("REDDIT_CLIENT_ID")
        );
        assert_eq!(
            new(Some("id"), Some(Secret::new(" ")), ua).unwrap_err(),
            ConfigError::Missing("REDDIT_CLIENT_SECRET")
        );
        assert_eq!(
            new(Some("id"), secret(), None).unwrap_err(),
            ConfigError::Missing("REDDIT_USER_AGENT")
        );
        assert!(new(Some("id"), secret(), ua).is_ok());
        let bad_url = RedditConfig::new(Some("id"), secret(), ua, "ftp://x", "https://x");
        assert!(matches!(
            bad_url,
            Err(ConfigError::BadUrl {
                var: "REDDIT_AUTH_URL",
                ..
            })
        ));
    }

    #[test]
    fn secrets_never_print() {
        let config = RedditConfig::new(
            Some("id"),
            Some(Secret::new("hunter2")),
            Some("linux:moodwire:0.1 (by /u/x)"),
            RedditConfig::DEFAULT_AUTH_URL,
            RedditConfig::DEFAULT_API_URL,
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
