//! The HTTP face of supportd, served by axum inside `supportd serve`: staff
//! pages (server-rendered HTML that works without JavaScript), a JSON API for
//! programs, and the operator endpoints (`/healthz`, `/readyz`, `/metrics`).
//!
//! # Overview
//!
//! - [`WebSettings`] is the validated `[web]` section: where to listen, whether
//!   cookies are `Secure` (behind TLS), how long a session lives.
//! - [`router`] builds the axum `Router` from one route table ([`route_table`]):
//!   every route is declared with its [`Access`], and the table puts it behind
//!   the matching middleware (`require_session` for pages, `require_token` for
//!   the API and metrics), so a new route cannot forget its authentication. A
//!   test walks the table and checks every protected route refuses a stranger.
//! - [`run`] serves a bound listener until its shutdown future resolves
//!   (graceful: requests in flight finish). A client gets
//!   [`WebSettings::read_timeout`] for a request's headers (hyper closes the
//!   connection after that) and again for its body (`body`: 408), and at most
//!   [`WebSettings::max_body_bytes`] of body (413), so slow or oversized
//!   requests cannot hold connections or memory.
//! - `auth`: argon2 password hashes, random session ids and API tokens stored
//!   as SHA-256 hashes, the CSRF token of a session, the failed-login limiter.
//! - `pages` renders the embedded minijinja templates (`templates/`); `api`
//!   answers JSON; `ops` holds health, readiness and metrics; [`ApiError`] is
//!   the one error type every handler returns.
//!
//! # Invariants
//!
//! - Nothing but `/healthz`, `/readyz`, `/login` and `/static/*` answers
//!   without a session or a token.
//! - No POST from a session is handled without its CSRF token.
//! - No message HTML reaches a page without going through ammonia; plain text
//!   is always escaped (templates auto-escape).
//! - No secret is stored: the database holds hashes of passwords, session ids
//!   and tokens only.
//! - No login keeps a session id it did not issue: each login makes a new one
//!   and ends the one the browser carried; the redirect after it is always `/`.
//! - No body past [`WebSettings::max_body_bytes`] is read, and no client gets
//!   more than [`WebSettings::read_timeout`] for headers or for a body.

mod api;
mod auth;
mod body;
mod desk;
mod error;
mod intake;
mod metrics;
mod pages;
mod templates;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::routing::{MethodRouter, get, post};
use supportd_core::QueueName;
use supportd_core::health::SourceBoard;
use supportd_store::Store;

pub use auth::{hash_password, new_api_token};
pub use error::ApiError;
pub use intake::{Channel, IntakeFuture, PortalTicket, TicketIntake};
pub use metrics::{Metrics, install_metrics};

/// The validated `[web]` section.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Where to listen; port 0 picks a free port (tests), logged once bound.
    pub address: SocketAddr,
    /// Mark cookies `Secure`: set when a TLS proxy fronts supportd.
    pub secure_cookies: bool,
    /// How long a login lasts.
    pub session_ttl: Duration,
    /// How often `serve` runs the SLA sweep.
    pub sla_sweep_interval: Duration,
    /// Largest request body accepted (`web.max_body_bytes`); larger ones get
    /// 413 before any handler runs.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers, and then again
    /// its body (`web.read_timeout_seconds`): past it the connection is closed
    /// (a body gets 408 first), so slow clients cannot pile up connections.
    pub read_timeout: Duration,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, readiness, the login page, static assets.
    Public,
    /// A staff session cookie; strangers are redirected to `/login`.
    Session,
    /// A bearer token (`supportd token create`); strangers get 401.
    Token,
}

/// One entry of the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: &'static str,
    /// axum path syntax: `/queues/{name}`.
    pub path: &'static str,
    pub access: Access,
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    store: Store,
    settings: Arc<WebSettings>,
    metrics: Metrics,
    limiter: Arc<auth::LoginLimiter>,
    templates: Arc<minijinja::Environment<'static>>,
    /// What the mail sources report, for `/readyz` and `/metrics`.
    sources: SourceBoard,
    /// The queues of the routing configuration: where staff may move tickets.
    queues: Arc<Vec<QueueName>>,
    /// Creates tickets for `POST /api/tickets`; `None` answers 503.
    intake: Option<Arc<dyn TicketIntake>>,
}

impl AppState {
    pub fn new(store: Store, settings: WebSettings, metrics: Metrics) -> anyhow::Result<AppState> {
        Ok(AppState {
            store,
            settings: Arc::new(settings),
            metrics,
            limiter: Arc::new(auth::LoginLimiter::new()),
            templates: Arc::new(templates::environment()?),
            sources: SourceBoard::new(),
            queues: Arc::new(Vec::new()),
            intake: None,
        })
    }

    /// This state, reading mailbox health from `sources` (the board the
    /// mailbox tasks report to).
    pub fn with_sources(mut self, sources: SourceBoard) -> AppState {
        self.sources = sources;
        self
    }

    /// The queues staff may move tickets to (the routing configuration's).
    pub fn with_queues(self, queues: Vec<QueueName>) -> AppState {
        AppState {
            queues: Arc::new(queues),
            ..self
        }
    }

    /// What creates tickets for `POST /api/tickets`.
    pub fn with_intake(self, intake: Arc<dyn TicketIntake>) -> AppState {
        AppState {
            intake: Some(intake),
            ..self
        }
    }
}

struct Route {
    info: RouteInfo,
    handler: MethodRouter<AppState>,
}

fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> Route {
    Route {
        info: RouteInfo {
            method,
            path,
            access,
        },
        handler,
    }
}

/// The one route table: the router is built from it, and tests walk it.
fn routes() -> Vec<Route> {
    use Access::{Public, Session, Token};
    vec![
        route("GET", "/healthz", Public, get(metrics::healthz)),
        route("GET", "/readyz", Public, get(metrics::readyz)),
        route("GET", "/static/style.css", Public, get(pages::stylesheet)),
        route("GET", "/login", Public, get(pages::login_page)),
        route("POST", "/login", Public, post(pages::login)),
        route("POST", "/logout", Session, post(pages::logout)),
        route("GET", "/", Session, get(pages::queues)),
        route("GET", "/search", Session, get(pages::search)),
        route("GET", "/queues/{name}", Session, get(pages::queue)),
        route("GET", "/tickets/{reference}", Session, get(pages::ticket)),
        route(
            "GET",
            "/tickets/{reference}/attachments/{message}/{position}",
            Session,
            get(desk::page_attachment),
        ),
        route(
            "POST",
            "/tickets/{reference}/assign",
            Session,
            post(desk::page_assign),
        ),
        route(
            "POST",
            "/tickets/{reference}/status",
            Session,
            post(desk::page_status),
        ),
        route(
            "POST",
            "/tickets/{reference}/move",
            Session,
            post(desk::page_move),
        ),
        route(
            "POST",
            "/tickets/{reference}/reply",
            Session,
            post(desk::page_reply),
        ),
        route(
            "POST",
            "/tickets/{reference}/note",
            Session,
            post(desk::page_note),
        ),
        route("GET", "/metrics", Token, get(metrics::metrics)),
        route("GET", "/api/openapi.json", Token, get(api::openapi)),
        route("GET", "/api/queues", Token, get(api::queues)),
        route(
            "GET",
            "/api/queues/{name}/tickets",
            Token,
            get(api::queue_tickets),
        ),
        route("GET", "/api/search", Token, get(api::search)),
        route("POST", "/api/tickets", Token, post(intake::create_ticket)),
        route("GET", "/api/tickets/{reference}", Token, get(api::ticket)),
        route(
            "GET",
            "/api/tickets/{reference}/attachments/{message}/{position}",
            Token,
            get(desk::api_attachment),
        ),
        route(
            "POST",
            "/api/tickets/{reference}/assign",
            Token,
            post(desk::api_assign),
        ),
        route(
            "POST",
            "/api/tickets/{reference}/status",
            Token,
            post(desk::api_status),
        ),
        route(
            "POST",
            "/api/tickets/{reference}/move",
            Token,
            post(desk::api_move),
        ),
        route(
            "POST",
            "/api/tickets/{reference}/replies",
            Token,
            post(desk::api_reply),
        ),
        route(
            "POST",
            "/api/tickets/{reference}/notes",
            Token,
            post(desk::api_note),
        ),
    ]
}

/// Every route with its method and access, in declaration order.
pub fn route_table() -> Vec<RouteInfo> {
    routes().into_iter().map(|route| route.info).collect()
}

/// The application: the route table behind its access middleware, with the
/// request counter and error logging around everything.
pub fn router(state: AppState) -> Router {
    let mut public = Router::new();
    let mut session = Router::new();
    let mut token = Router::new();
    for Route { info, handler } in routes() {
        match info.access {
            Access::Public => public = public.route(info.path, handler),
            Access::Session => session = session.route(info.path, handler),
            Access::Token => token = token.route(info.path, handler),
        }
    }
    let session = session.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_session,
    ));
    let token = token.route_layer(middleware::from_fn_with_state(
        state.clone(),
        auth::require_token,
    ));
    Router::new()
        .merge(public)
        .merge(session)
        .merge(token)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            body::read_body,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track_requests,
        ))
        .with_state(state)
}

/// Binds the configured address. Separate from [`run`] so `serve` fails at
/// startup on a taken port, and logs the address actually bound.
pub async fn bind(settings: &WebSettings) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context;
    tokio::net::TcpListener::bind(settings.address)
        .await
        .with_context(|| format!("cannot listen on {} (web.address)", settings.address))
}

/// Serves `listener` until `shutdown` resolves; requests in flight finish.
///
/// One hyper HTTP/1 connection per client, with a timer so that
/// `header_read_timeout` applies: a client that has not sent a request's
/// headers within [`WebSettings::read_timeout`] (one byte a second, or
/// nothing at all on an idle keep-alive connection) is disconnected.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let read_timeout = state.settings.read_timeout;
    let app = TowerToHyperService::new(router(state));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_connection_error(&error) {
                        // Out of file descriptors, most likely: let some close.
                        tracing::warn!(error = %error, "Cannot accept a connection.");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        // What `ConnectInfo<SocketAddr>` reads (the login limiter keys on it).
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(client));
                hyper::service::Service::call(&app, request)
            },
        );
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(client = %client, error = %error, "Connection ended with an error.");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors of one connection that `accept` reports; the listener is fine.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_health_login_and_assets_are_public() {
        for info in route_table() {
            if info.access == Access::Public {
                assert!(
                    ["/healthz", "/readyz", "/login", "/static/style.css"].contains(&info.path),
                    "{} {} must not be public",
                    info.method,
                    info.path
                );
            }
            if info.path.starts_with("/api/") {
                assert_eq!(info.access, Access::Token, "{}", info.path);
            }
        }
    }
}
