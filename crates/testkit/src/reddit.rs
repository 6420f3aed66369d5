//! Reddit's API on a wiremock server: what the tests of the Reddit source, of the
//! binary and of the refresh bench all mount.

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN_PATH: &str = "/api/v1/access_token";

/// Where the mock hands out tokens (`REDDIT_AUTH_URL`).
pub fn token_url(server: &MockServer) -> String {
    format!("{}{TOKEN_PATH}", server.uri())
}

/// Grants a day-long token (`tok`) to whatever credentials ask.
pub async fn grant_tokens(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "tok", "token_type": "bearer", "expires_in": 86400, "scope": "*"
        })))
        .mount(server)
        .await;
}

/// Refuses every credential, as Reddit answers a wrong client id or secret.
pub async fn refuse_tokens(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"message": "Unauthorized", "error": 401})),
        )
        .mount(server)
        .await;
}

/// How many searches (`/search` or `/r/…/search`) the mock has answered.
pub async fn search_requests(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("/search"))
        .count()
}
