//! Who may call the API and how often: optional API keys (Bearer tokens, compared as
//! SHA-256 digests in constant time), a bound on failed attempts per IP address, and a
//! token bucket per client (per key, else per IP address).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ApiError;

/// An API key, kept as its SHA-256 digest: compared without telling its length or
/// how much of a guess was right, and never printed.
#[derive(Clone)]
pub struct ApiKey([u8; 32]);

impl ApiKey {
    pub fn new(key: impl AsRef<str>) -> Self {
        ApiKey(digest(key.as_ref()))
    }

    /// Keys from a comma-separated list (blank entries ignored).
    pub fn parse_list(list: &str) -> Vec<ApiKey> {
        list.split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(ApiKey::new)
            .collect()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `per_minute` requests a minute on average, in bursts of up to `burst`.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Per-client state kept for recently seen clients, bounded in number.
fn clients<K, V>(idle: Duration) -> moka::sync::Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    moka::sync::Cache::builder()
        .max_capacity(AccessPolicy::MAX_CLIENTS)
        .time_to_idle(idle)
        .build()
}

/// Failed authentications of one IP address in the current window.
#[derive(Debug)]
struct Failures {
    count: u32,
    since: Instant,
}

/// The access rules of one server. The default lets everyone in, unlimited.
#[derive(Clone, Default)]
pub struct AccessPolicy {
    keys: Arc<Vec<ApiKey>>,
    limit: Option<RateLimit>,
    /// Buckets of recently seen clients; idle ones are forgotten (a full bucket again).
    buckets: Option<moka::sync::Cache<String, Arc<Mutex<Bucket>>>>,
    /// Failed authentications per IP address, so keys cannot be guessed at speed.
    failures: Option<moka::sync::Cache<IpAddr, Arc<Mutex<Failures>>>>,
}

impl AccessPolicy {
    /// Clients whose buckets are kept at once; beyond, the least recent are forgotten.
    const MAX_CLIENTS: u64 = 100_000;
    /// Failed authentications an IP address may make per window; past it, its
    /// requests are refused (429) until the window ends, without looking at the key.
    pub const MAX_FAILED_AUTH: u32 = 10;
    pub const FAILED_AUTH_WINDOW: Duration = Duration::from_secs(60);

    pub fn new(keys: Vec<ApiKey>, limit: Option<RateLimit>) -> Self {
        let limit = limit.filter(|l| l.per_minute > 0);
        AccessPolicy {
            failures: (!keys.is_empty()).then(|| clients(Self::FAILED_AUTH_WINDOW)),
            keys: Arc::new(keys),
            limit,
            buckets: limit.map(|_| clients(Duration::from_secs(600))),
        }
    }

    /// Whether API keys are required.
    pub fn requires_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The key the request presents, if it is one of ours. Digests of equal length
    /// are compared in full, every key, so the time taken tells nothing of the keys.
    fn authenticate(&self, request: &Request<Body>) -> Result<Option<usize>, ApiError> {
        if self.keys.is_empty() {
            return Ok(None);
        }
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let presented = digest(presented.trim());
        let mut found = None;
        for (i, key) in self.keys.iter().enumerate() {
            if bool::from(key.0.ct_eq(&presented)) {
                found = Some(i);
            }
        }
        found.map(Some).ok_or(ApiError::Unauthorized)
    }

    /// Refuses an address that failed to authenticate too often in this window.
    fn check_failures(&self, ip: IpAddr) -> Result<(), ApiError> {
        let Some(entry) = self.failures.as_ref().and_then(|f| f.get(&ip)) else {
            return Ok(());
        };
        let failures = entry.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = failures.since.elapsed();
        if failures.count >= Self::MAX_FAILED_AUTH && elapsed < Self::FAILED_AUTH_WINDOW {
            let wait = Self::FAILED_AUTH_WINDOW - elapsed;
            return Err(ApiError::RateLimited {
                retry_after: Duration::from_secs(wait.as_secs().max(1)),
            });
        }
        Ok(())
    }

    fn record_failure(&self, ip: IpAddr) {
        let Some(failures) = &self.failures else {
            return;
        };
        let entry = failures.get_with(ip, || {
            Arc::new(Mutex::new(Failures {
                count: 0,
                since: Instant::now(),
            }))
        });
        let mut entry = entry.lock().unwrap_or_else(|p| p.into_inner());
        if entry.since.elapsed() >= Self::FAILED_AUTH_WINDOW {
            *entry = Failures {
                count: 0,
                since: Instant::now(),
            };
        }
        entry.count += 1;
    }

    /// Takes a token from the client's bucket, or says how long until one is there.
    fn admit(&self, client: String) -> Result<(), ApiError> {
        let (Some(limit), Some(buckets)) = (self.limit, &self.buckets) else {
            return Ok(());
        };
        let burst = f64::from(limit.burst.max(1));
        let per_second = f64::from(limit.per_minute) / 60.0;
        let bucket = buckets.get_with(client, || {
            Arc::new(Mutex::new(Bucket {
                tokens: burst,
                refilled: Instant::now(),
            }))
        });
        // A panic cannot leave two plain numbers torn: poisoning is ignored.
        let mut bucket = bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(bucket.refilled).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / per_second;
            Err(ApiError::RateLimited {
                retry_after: Duration::from_secs_f64(wait.ceil().max(1.0)),
            })
        }
    }
}

/// The middleware: everything but `/healthz` and the dashboard's static shell passes
/// the policy first. The shell holds no data (the page asks for a key and sends it
/// with its API calls), and a browser cannot attach a bearer token to a page load.
pub async fn enforce(
    State(policy): State<AccessPolicy>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path == "/healthz" || crate::dashboard::is_static(path) {
        return next.run(request).await;
    }
    let ip = client_ip(&request);
    if let Err(e) = policy.check_failures(ip) {
        metrics::counter!("moodwire_access_denied_total", "reason" => "auth_failures").increment(1);
        return e.into_response();
    }
    let client = match policy.authenticate(&request) {
        Ok(Some(key)) => format!("key:{key}"),
        Ok(None) => format!("ip:{ip}"),
        Err(e) => {
            policy.record_failure(ip);
            metrics::counter!("moodwire_access_denied_total", "reason" => "unauthorized")
                .increment(1);
            return e.into_response();
        }
    };
    if let Err(e) = policy.admit(client) {
        metrics::counter!("moodwire_access_denied_total", "reason" => "rate_limited").increment(1);
        return e.into_response();
    }
    next.run(request).await
}

/// The peer's address (the proxy's, behind one: put the limits there then).
fn client_ip(request: &Request<Body>) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(auth: Option<&str>) -> Request<Body> {
        let mut builder = Request::builder().uri("/analyze");
        if let Some(auth) = auth {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn keys_are_checked_and_never_printed() {
        let policy = AccessPolicy::new(ApiKey::parse_list(" alpha, ,beta "), None);
        assert_eq!(
            policy.authenticate(&request(Some("Bearer beta"))).unwrap(),
            Some(1)
        );
        for bad in [
            None,
            Some("Bearer gamma"),
            Some("beta"),
            Some("Bearer alph"),
            Some("Basic alpha"),
        ] {
            assert!(
                matches!(
                    policy.authenticate(&request(bad)),
                    Err(ApiError::Unauthorized)
                ),
                "{bad:?}"
            );
        }
        assert_eq!(format!("{:?}", ApiKey::new("alpha")), "[redacted]");
        let open = AccessPolicy::default();
        assert_eq!(open.authenticate(&request(None)).unwrap(), None);
    }

    #[test]
    fn an_address_that_keeps_failing_is_refused_for_the_window_even_with_a_good_key() {
        let policy = AccessPolicy::new(ApiKey::parse_list("alpha"), None);
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..AccessPolicy::MAX_FAILED_AUTH {
            policy.check_failures(ip).unwrap();
            policy.record_failure(ip);
        }
        match policy.check_failures(ip) {
            Err(ApiError::RateLimited { retry_after }) => {
                assert!(retry_after <= AccessPolicy::FAILED_AUTH_WINDOW)
            }
            other => panic!("{other:?}"),
        }
        // Another address is not affected.
        policy.check_failures(IpAddr::from([10, 0, 0, 2])).unwrap();
        // Without keys there is nothing to guess.
        let open = AccessPolicy::default();
        open.record_failure(ip);
        open.check_failures(ip).unwrap();
    }

    #[test]
    fn a_bucket_allows_its_burst_then_says_when_to_retry() {
        let policy = AccessPolicy::new(
            Vec::new(),
            Some(RateLimit {
                per_minute: 60,
                burst: 3,
            }),
        );
        for _ in 0..3 {
            policy.admit("ip:1".into()).unwrap();
        }
        match policy.admit("ip:1".into()) {
            Err(ApiError::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(1))
            }
            other => panic!("{other:?}"),
        }
        // Another client has a bucket of its own.
        policy.admit("ip:2".into()).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        policy.admit("ip:1".into()).unwrap();
    }
}
