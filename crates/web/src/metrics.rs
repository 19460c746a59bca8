//! Operator endpoints and instrumentation: `/healthz`, `/readyz`, `/metrics`,
//! and the middleware that counts every request and logs failed ones once.
//!
//! Metric names (Prometheus text, `supportd_<name>_<unit>_total` for counters):
//!
//! | name | type | labels | registered by |
//! | --- | --- | --- | --- |
//! | `supportd_http_requests_total` | counter | `route` (matched path), `status` | this crate |
//! | `supportd_queue_open_tickets` | gauge | `queue` | this crate, at each scrape |
//! | `supportd_queue_overdue_tickets` | gauge | `queue` | this crate, at each scrape |
//! | `supportd_login_failures_total` | counter | | this crate |
//! | `supportd_mailbox_healthy` | gauge | `mailbox` | this crate, at each scrape, from the source board |
//! | `supportd_mailbox_credentials_refused` | gauge | `mailbox` | same |
//! | `supportd_mailbox_last_sync_age_seconds` | gauge | `mailbox` | same |
//! | `supportd_oauth2_token_expires_in_seconds` | gauge | `mailbox` | same, when an OAuth2 token's expiry is known |
//!
//! Other tasks register theirs on the same global recorder with the `metrics`
//! macros (reserved names: `supportd_messages_fetched_total`,
//! `supportd_messages_ingested_total`, `supportd_messages_threaded_total`,
//! `supportd_messages_duplicated_total`, `supportd_messages_quarantined_total`,
//! `supportd_classification_confidence` (histogram),
//! `supportd_arrival_to_routed_seconds` (histogram),
//! `supportd_outbox_sent_total`, `supportd_outbox_retried_total`,
//! `supportd_outbox_dead_total`, `supportd_imap_reconnects_total`).

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

use crate::AppState;
use crate::error::{ApiError, LoggedCause};

/// The process's metrics recorder, rendered by `/metrics`.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

/// Installs the Prometheus recorder as the process-wide `metrics` recorder.
/// Call once per process (`serve` does, before spawning tasks).
pub fn install_metrics() -> anyhow::Result<Metrics> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("supportd_arrival_to_routed_seconds".to_owned()),
            &[
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ],
        )
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full("supportd_classification_confidence".to_owned()),
                &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0],
            )
        })
        .map_err(|error| anyhow::anyhow!("cannot configure the metrics buckets: {error}"))?
        .install_recorder()
        .map_err(|error| anyhow::anyhow!("cannot install the metrics recorder: {error}"))?;
    metrics::describe_counter!(
        "supportd_http_requests_total",
        "HTTP requests answered, by matched route and status."
    );
    metrics::describe_gauge!(
        "supportd_queue_open_tickets",
        "Open tickets per queue, read from the store at each scrape."
    );
    metrics::describe_gauge!(
        "supportd_queue_overdue_tickets",
        "Open tickets past their first-response due time, per queue."
    );
    metrics::describe_counter!(
        "supportd_login_failures_total",
        "Failed staff logins (wrong password, unknown user, rate limited)."
    );
    Ok(Metrics { handle })
}

impl Metrics {
    /// A recorder of its own, not installed globally: for tests.
    #[cfg(test)]
    pub(crate) fn detached() -> Metrics {
        Metrics {
            handle: PrometheusBuilder::new().build_recorder().handle(),
        }
    }
}

/// Counts every request by matched route and status, and logs once the cause
/// of a failed one (see [`crate::ApiError`]).
pub(crate) async fn track_requests(
    State(_state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().clone();
    let span = tracing::info_span!("http", matched_path = %route, method = %method);
    let mut response = next.run(request).instrument(span).await;
    add_security_headers(response.headers_mut());
    let status = response.status();
    metrics::counter!(
        "supportd_http_requests_total",
        "route" => route.clone(),
        "status" => status.as_u16().to_string()
    )
    .increment(1);
    if let Some(LoggedCause(cause)) = response.extensions().get::<LoggedCause>() {
        tracing::warn!(
            matched_path = %route,
            method = %method,
            status = status.as_u16(),
            error = %cause,
            "Request failed."
        );
    }
    response
}

/// Pages run no script at all (they work without JavaScript), so the policy
/// forbids every script: even markup that slipped past the sanitiser could not
/// run. Also no framing, no MIME sniffing, no referrer to mail links.
fn add_security_headers(headers: &mut axum::http::HeaderMap) {
    use axum::http::HeaderValue;
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// The process is up.
pub(crate) async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// How long `/readyz` waits for the database to answer.
const READY_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Ready when the database answers a query (within [`READY_PING_TIMEOUT`]) and every mailbox is healthy: its
/// credentials not refused, and its last completed sync within its
/// `stale_after` (connected, or backing off but not for too long). 503 with
/// what is wrong otherwise, per check.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    // The pool keeps retrying a refused connect for its whole acquire timeout
    // (10 s on PostgreSQL); a probe wants its answer sooner.
    let database = match tokio::time::timeout(READY_PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("{:#}", anyhow::Error::new(error))),
        Err(_elapsed) => Err(format!(
            "the database did not answer within {} s",
            READY_PING_TIMEOUT.as_secs()
        )),
    };
    let now = unix_now();
    let mut ready = database.is_ok();
    let mut mailboxes = serde_json::Map::new();
    for (name, health) in state.sources.snapshot() {
        let healthy = health.is_healthy(now);
        ready &= healthy;
        let status = if health.credentials_refused {
            "credentials_refused"
        } else if !healthy {
            "stale"
        } else {
            health.state.slug()
        };
        mailboxes.insert(
            name,
            serde_json::json!({
                "status": status,
                "state": health.state.slug(),
                "last_sync_age_s": health.last_sync_at.map(|at| now - at),
                "token_expires_in_s": health.token_expires_at.map(|at| at - now),
                "last_error": health.last_error,
            }),
        );
    }
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {
            "database": if database.is_ok() { "ok" } else { "unreachable" },
            "mailboxes": mailboxes,
        },
    });
    if ready {
        return Json(body).into_response();
    }
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    if let Err(cause) = database {
        response
            .extensions_mut()
            .insert(LoggedCause(std::sync::Arc::new(cause)));
    }
    response
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Prometheus text: the queue gauges refreshed from the store, then everything.
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    for summary in state.store.queue_summaries().await? {
        let queue = summary.queue.as_str().to_owned();
        metrics::gauge!("supportd_queue_open_tickets", "queue" => queue.clone())
            .set(summary.open as f64);
        metrics::gauge!("supportd_queue_overdue_tickets", "queue" => queue)
            .set(summary.overdue as f64);
    }
    let now = unix_now();
    for (name, health) in state.sources.snapshot() {
        metrics::gauge!("supportd_mailbox_healthy", "mailbox" => name.clone())
            .set(if health.is_healthy(now) { 1.0 } else { 0.0 });
        metrics::gauge!("supportd_mailbox_credentials_refused", "mailbox" => name.clone())
            .set(if health.credentials_refused { 1.0 } else { 0.0 });
        if let Some(at) = health.last_sync_at {
            metrics::gauge!("supportd_mailbox_last_sync_age_seconds", "mailbox" => name.clone())
                .set((now - at) as f64);
        }
        if let Some(at) = health.token_expires_at {
            metrics::gauge!("supportd_oauth2_token_expires_in_seconds", "mailbox" => name)
                .set((at - now) as f64);
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.handle.render(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::to_bytes;
    use supportd_store::Store;

    use super::*;
    use crate::WebSettings;

    async fn state(store: Store) -> AppState {
        let settings = WebSettings {
            address: "127.0.0.1:0".parse().unwrap(),
            secure_cookies: false,
            session_ttl: Duration::from_secs(60),
            sla_sweep_interval: Duration::from_secs(60),
            max_body_bytes: 1024 * 1024,
            read_timeout: Duration::from_secs(10),
        };
        AppState::new(store, settings, Metrics::detached()).unwrap()
    }

    #[tokio::test]
    async fn readyz_says_what_is_wrong_when_the_database_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ready.db").display());
        let store = Store::open(&url).await.unwrap();
        store.migrate().await.unwrap();
        let ready = readyz(State(state(store.clone()).await)).await;
        assert_eq!(ready.status(), StatusCode::OK);

        store.close().await;
        let not_ready = readyz(State(state(store).await)).await;
        assert_eq!(not_ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            not_ready.extensions().get::<LoggedCause>().is_some(),
            "the cause is logged"
        );
        let body = to_bytes(not_ready.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["status"], "not_ready");
        assert_eq!(body["checks"]["database"], "unreachable");
        assert!(
            !body.to_string().contains("ready.db"),
            "no internals: {body}"
        );
    }
}
