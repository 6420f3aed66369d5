//! OAuth2 application-only tokens: fetched once, shared, refreshed before they expire
//! (and once more when Reddit answers 401 anyway).

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use moodwire_core::ports::SourceError;

use super::config::{RedditConfig, Secret};

#[derive(Debug)]
pub struct TokenCache {
    /// A tokio mutex: concurrent searches wait for the one refresh in flight.
    current: Mutex<Option<Token>>,
}

#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    expires_in: f64,
}

/// Refresh this long before the token expires, so a request never carries a stale one.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

impl TokenCache {
    pub fn new() -> Self {
        TokenCache {
            current: Mutex::new(None),
        }
    }

    /// A valid token: the cached one, or a new one when it is near expiry or `stale`
    /// (the caller just saw a 401 with it).
    pub async fn get(
        &self,
        http: &reqwest::Client,
        config: &RedditConfig,
        stale: Option<&Secret>,
    ) -> Result<Secret, SourceError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref() {
            let rejected = stale.is_some_and(|s| s == &token.value);
            if !rejected && Instant::now() < token.refresh_at {
                return Ok(token.value.clone());
            }
        }
        let token = fetch_token(http, config).await?;
        let value = token.value.clone();
        *current = Some(token);
        Ok(value)
    }
}

async fn fetch_token(http: &reqwest::Client, config: &RedditConfig) -> Result<Token, SourceError> {
    let response = http
        .post(config.auth_url.clone())
        .basic_auth(&config.client_id, Some(config.client_secret.expose()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map_err(|e| {
            SourceError::Unavailable(format!("cannot reach the Reddit token endpoint: {e}"))
        })?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(SourceError::AuthFailed(format!(
            "the token endpoint answered {status}: check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET"
        )));
    }
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(SourceError::Unavailable(format!(
            "the Reddit token endpoint answered {status}"
        )));
    }
    if !status.is_success() {
        return Err(SourceError::BadResponse(format!(
            "the Reddit token endpoint answered {status}"
        )));
    }
    let body = response.bytes().await.map_err(|e| {
        SourceError::Unavailable(format!("the Reddit token response broke off: {e}"))
    })?;
    // Reddit answers 200 with {"error": "invalid_grant"} for some credential problems.
    let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
        SourceError::AuthFailed(
            "the token endpoint returned no access_token: check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET"
                .into(),
        )
    })?;
    if parsed
        .token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        || parsed.access_token.is_empty()
        || !(parsed.expires_in.is_finite() && parsed.expires_in > 0.0)
    {
        return Err(SourceError::BadResponse(
            "the Reddit token endpoint returned an unusable token".into(),
        ));
    }
    let lifetime = Duration::from_secs_f64(parsed.expires_in.min(86_400.0));
    let margin = REFRESH_MARGIN.min(lifetime / 10);
    tracing::debug!(expires_in = ?lifetime, "fetched a Reddit access token");
    Ok(Token {
        value: Secret::new(parsed.access_token),
        refresh_at: Instant::now() + lifetime - margin,
    })
}
