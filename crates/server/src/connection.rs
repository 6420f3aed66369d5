//! The accept loop: serves the router on a listener within bounds on what one client
//! connection may cost (header-read and idle timeouts, head size, connection count),
//! with graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// What one client connection may cost the server. Bodies are bounded per route
/// (`MAX_BODY_BYTES`) and handlers by the request timeout; these bound the rest.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A client must send a request's whole header within this, or the connection is
    /// closed: a slow-loris client cannot hold a connection open by trickling bytes.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers); a larger one is answered 431
    /// with the JSON error `headers_too_large`. The HTTP parser buffers at most twice
    /// this and answers a head past that (or one of over 100 headers) with a bare 431.
    pub max_header_bytes: usize,
    /// Most open connections; a new one past it is closed at once.
    pub max_connections: usize,
    /// A connection with no request in flight for this long is closed (a client that
    /// connects and says nothing gets only `header_read_timeout`).
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What a connection is doing, for its idle timeout: requests in flight, and when the
/// last one ended. Counting requests rather than bytes means HTTP/2 pings (which
/// keep a dead peer from holding a connection) do not keep an idle one open.
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    opened: Instant,
    /// Milliseconds after `opened` when the last request ended (0: none yet).
    last_ended_ms: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            in_flight: 0.into(),
            opened: Instant::now(),
            last_ended_ms: 0.into(),
        }
    }

    fn begin(&self) {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn end(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.last_ended_ms
            .store(now.max(1), std::sync::atomic::Ordering::SeqCst);
        self.in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the connection has been idle past its limit: `first` before any request,
    /// `between` after one.
    fn expired(&self, first: Duration, between: Duration) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        if self.in_flight.load(SeqCst) > 0 {
            return false;
        }
        match self.last_ended_ms.load(SeqCst) {
            0 => self.opened.elapsed() >= first,
            ended => {
                self.opened
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ended))
                    >= between
            }
        }
    }
}

/// Ends a request's activity when its response future finishes or is dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// Serves until `shutdown` resolves, then stops accepting connections and gives
/// in-flight requests up to `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    serve_with(listener, app, shutdown, grace, ConnectionLimits::default()).await
}

/// [`serve`] with explicit connection limits.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let mut builder = ConnectionBuilder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.saturating_mul(2).max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        // Pings find a peer that went away without closing (its streams are freed).
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_header_list_size(
            u32::try_from(limits.max_header_bytes.saturating_mul(2)).unwrap_or(u32::MAX),
        );
    let head_limit = HeadLimit(limits.max_header_bytes);
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before accept:
                    // pause briefly rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&connections).try_acquire_owned() else {
            metrics::counter!("moodwire_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let app = app.clone();
        let activity = Arc::new(Activity::new());
        let tracked = Arc::clone(&activity);
        // The peer address is what per-IP rate limits key on.
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            request.extensions_mut().insert(head_limit);
            tracked.begin();
            let in_flight = InFlight(Arc::clone(&tracked));
            let response = app.clone().oneshot(request.map(Body::new));
            async move {
                let response = response.await;
                drop(in_flight);
                response
            }
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // The idle watchdog also covers what hyper's own timeouts do not: the bytes
            // before HTTP/1-vs-2 detection, and an HTTP/2 connection left open.
            let check = limits.header_read_timeout.min(limits.idle_timeout) / 4;
            tokio::pin!(connection);
            loop {
                tokio::select! {
                    ended = &mut connection => {
                        if let Err(e) = ended {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        }
                        break;
                    }
                    () = tokio::time::sleep(check) => {
                        if activity.expired(limits.header_read_timeout, limits.idle_timeout) {
                            metrics::counter!("moodwire_connections_idle_closed_total").increment(1);
                            break;
                        }
                    }
                }
            }
            drop(slot);
        });
    }
    tracing::info!(
        grace_secs = grace.as_secs_f64(),
        "shutting down: finishing in-flight requests"
    );
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "in-flight requests did not finish within the grace period; stopping anyway"
        );
    }
    Ok(())
}

/// The request-head bound of the connection a request came on (set by [`serve_with`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimit(pub(crate) usize);
