//! The staff pages: login and logout, the queues overview, a queue, a ticket,
//! and the ticket's status change. Handlers gather view data (times and ages
//! formatted here) and render an embedded template.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use supportd_core::{Category, Priority, QueueName, TicketRef, TicketStatus, Tier};
use supportd_store::{
    DeskQuery, DeskTicket, NewSession, QueueQuery, SearchQuery, SourceKind, SourcePosition,
    StoredMessage, TicketOrder, TicketSummary,
};

use crate::AppState;
use crate::auth::{self, CurrentStaff};
use crate::error::{ApiError, PageError};
use crate::templates::STYLESHEET;

/// The current time, Unix seconds.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `2026-11-27 09:14 UTC`.
fn format_time(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .map(|time| time.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| unix_seconds.to_string())
}

/// `3d 4h`, `2h 5m`, `7m`.
fn format_age(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (days, hours, minutes) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else {
        format!("{minutes}m")
    }
}

fn render(state: &AppState, name: &str, context: serde_json::Value) -> Result<Response, PageError> {
    let template = state
        .templates
        .get_template(name)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("template {name}: {error:#}")))?;
    let html = template
        .render(context)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("rendering {name}: {error:#}")))?;
    Ok(Html(html).into_response())
}

/// Context every logged-in page shares: who, and the CSRF token of its forms.
fn page_context(staff: &CurrentStaff) -> serde_json::Value {
    json!({ "staff": staff.principal, "csrf_token": staff.csrf_token })
}

fn merge(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
}

/// The login form, with a fresh double-submit CSRF cookie.
pub(crate) async fn login_page(State(state): State<AppState>) -> Result<Response, PageError> {
    login_form(&state, StatusCode::OK, None)
}

fn login_form(
    state: &AppState,
    status: StatusCode,
    message: Option<&str>,
) -> Result<Response, PageError> {
    let login_csrf = auth::random_hex(16).map_err(ApiError::Internal)?;
    let mut response = render(
        state,
        "login.html",
        json!({ "login_csrf": login_csrf, "message": message }),
    )?;
    *response.status_mut() = status;
    set_cookie_header(
        &mut response,
        &auth::set_cookie(
            auth::LOGIN_CSRF_COOKIE,
            &login_csrf,
            std::time::Duration::from_secs(3600),
            state.settings.secure_cookies,
        ),
    )?;
    Ok(response)
}

fn set_cookie_header(response: &mut Response, value: &str) -> Result<(), ApiError> {
    let value = value
        .parse()
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("a cookie value is not a header value")))?;
    response.headers_mut().append(header::SET_COOKIE, value);
    Ok(())
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    name: String,
    password: String,
    #[serde(default)]
    csrf_token: String,
}

/// Checks the password; on success a new session and its cookie, then the
/// queues. The redirect is always `/`: no `next` parameter is read, so a
/// login link cannot send anyone off-site.
pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let expected = auth::cookie(&headers, auth::LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !auth::same_secret(&form.csrf_token, expected) {
        return Err(ApiError::Forbidden("missing or wrong CSRF token").into());
    }
    let address = client.ip();
    let name = form.name.trim();
    if state.limiter.blocked(address, name) {
        metrics::counter!("supportd_login_failures_total").increment(1);
        tracing::warn!(user = %name, address = %address, reason = "rate_limited", "Login refused.");
        return login_form(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed logins. Try again later."),
        );
    }
    let account = state.store.staff_account(name).await?;
    let verified = match &account {
        Some(account) => auth::verify_password(&account.password_hash, &form.password),
        None => {
            auth::verify_nothing(&form.password);
            false
        }
    };
    let Some(account) = account.filter(|_| verified) else {
        state.limiter.record_failure(address, name);
        metrics::counter!("supportd_login_failures_total").increment(1);
        tracing::warn!(user = %name, address = %address, reason = "bad_credentials", "Login failed.");
        return login_form(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("Wrong name or password."),
        );
    };
    state.limiter.record_success(name);
    // Whatever session id the browser carried (its own earlier login, or one
    // planted by someone else) ends here: a login always gets a fresh id.
    if let Some(previous) = auth::cookie(&headers, auth::SESSION_COOKIE) {
        state
            .store
            .delete_session(&auth::sha256_hex(previous))
            .await?;
    }
    let session_id = auth::random_hex(32).map_err(ApiError::Internal)?;
    let created_at = now();
    let ttl = state.settings.session_ttl;
    state
        .store
        .create_session(&NewSession {
            id_hash: auth::sha256_hex(&session_id),
            staff_id: account.id,
            created_at,
            expires_at: created_at.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        })
        .await?;
    tracing::info!(user = %account.name, address = %address, "Staff logged in.");
    let mut response = Redirect::to("/").into_response();
    let secure = state.settings.secure_cookies;
    set_cookie_header(
        &mut response,
        &auth::set_cookie(auth::SESSION_COOKIE, &session_id, ttl, secure),
    )?;
    set_cookie_header(
        &mut response,
        &auth::set_cookie(
            auth::LOGIN_CSRF_COOKIE,
            "",
            std::time::Duration::ZERO,
            secure,
        ),
    )?;
    Ok(response)
}

/// Ends the session (the CSRF check ran in the middleware).
pub(crate) async fn logout(
    State(state): State<AppState>,
    Extension(staff): Extension<CurrentStaff>,
) -> Result<Response, PageError> {
    state.store.delete_session(&staff.session_hash).await?;
    let mut response = Redirect::to("/login").into_response();
    set_cookie_header(
        &mut response,
        &auth::set_cookie(
            auth::SESSION_COOKIE,
            "",
            std::time::Duration::ZERO,
            state.settings.secure_cookies,
        ),
    )?;
    Ok(response)
}

#[derive(Serialize)]
struct QueueRow {
    name: String,
    open: u64,
    pending_customer: u64,
    oldest_open_age: Option<String>,
    overdue: u64,
    /// Most urgent first, matching `priorities`.
    by_priority: Vec<u64>,
}

/// Every queue: open count, oldest open age, past SLA, by priority.
pub(crate) async fn queues(
    State(state): State<AppState>,
    Extension(staff): Extension<CurrentStaff>,
) -> Result<Response, PageError> {
    let now = now();
    let summaries = state.store.queue_summaries_at(now).await?;
    let priorities: Vec<Priority> = Priority::ALL.iter().rev().copied().collect();
    let rows: Vec<QueueRow> = summaries
        .into_iter()
        .map(|summary| QueueRow {
            name: summary.queue.as_str().to_owned(),
            open: summary.open,
            pending_customer: summary.pending_customer,
            oldest_open_age: summary
                .oldest_open_created_at
                .map(|created_at| format_age(now - created_at)),
            overdue: summary.overdue,
            by_priority: priorities
                .iter()
                .map(|priority| {
                    summary
                        .open_by_priority
                        .iter()
                        .find(|(candidate, _)| candidate == priority)
                        .map_or(0, |(_, count)| *count)
                })
                .collect(),
        })
        .collect();
    render(
        &state,
        "queues.html",
        merge(
            page_context(&staff),
            json!({ "queues": rows, "priorities": priorities }),
        ),
    )
}

/// Query parameters of a queue listing (page and API).
#[derive(Debug, Deserialize)]
pub(crate) struct QueueParams {
    status: Option<String>,
    /// Only this tier (`unmanaged`, `platform`, `managed_os`); empty for all.
    tier: Option<String>,
    /// Only this category (`billing`, ...); empty for all.
    category: Option<String>,
    /// `newest` (default) or `oldest`.
    order: Option<String>,
    /// Keyset paging: the last reference of the previous page.
    after: Option<String>,
    limit: Option<u32>,
}

/// `None` for an absent or empty parameter, else its parsed value or a 400
/// naming it.
fn optional_param<T: std::str::FromStr>(
    name: &str,
    value: Option<&str>,
) -> Result<Option<T>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => value
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("unknown {name} `{value}`"))),
    }
}

impl QueueParams {
    pub(crate) fn query(&self, name: &str) -> Result<DeskQuery, ApiError> {
        let queue = QueueName::parse(name).map_err(|_| ApiError::NotFound)?;
        let status = optional_param::<TicketStatus>("status", self.status.as_deref())?
            .unwrap_or(TicketStatus::Open);
        let order = match self.order.as_deref() {
            None | Some("") | Some("newest") => TicketOrder::NewestFirst,
            Some("oldest") => TicketOrder::OldestFirst,
            Some(order) => {
                return Err(ApiError::BadRequest(format!(
                    "unknown order `{order}` (newest or oldest)"
                )));
            }
        };
        let after = match self.after.as_deref() {
            None | Some("") => None,
            Some(after) => Some(after.parse::<TicketRef>().map_err(|_| {
                ApiError::BadRequest(format!("`after` must be a ticket reference, not `{after}`"))
            })?),
        };
        Ok(DeskQuery {
            queue,
            status,
            tier: optional_param::<Tier>("tier", self.tier.as_deref())?,
            category: optional_param::<Category>("category", self.category.as_deref())?,
            order,
            after,
            limit: self
                .limit
                .unwrap_or(QueueQuery::DEFAULT_LIMIT)
                .clamp(1, QueueQuery::MAX_LIMIT),
        })
    }
}

/// The reference to continue after, when the page was full.
pub(crate) fn next_after(query: &DeskQuery, tickets: &[DeskTicket]) -> Option<String> {
    (tickets.len() as u64 >= u64::from(query.limit))
        .then(|| {
            tickets
                .last()
                .map(|ticket| ticket.summary.ticket_ref.to_string())
        })
        .flatten()
}

fn customer(ticket: &TicketSummary) -> String {
    ticket
        .requester
        .as_ref()
        .map(|address| match &address.name {
            Some(name) => format!("{name} <{}>", address.email),
            None => address.email.clone(),
        })
        .unwrap_or_else(|| "–".to_owned())
}

/// One row of a ticket list (queue page, search results).
pub(crate) fn ticket_row(ticket: &DeskTicket, now: i64) -> serde_json::Value {
    let summary = &ticket.summary;
    json!({
        "reference": summary.ticket_ref.to_string(),
        "queue": summary.queue.as_str(),
        "subject": summary.subject,
        "customer": customer(summary),
        "tier": summary.labels.map_or("–".to_owned(), |labels| labels.tier.to_string()),
        "category": summary.labels.map_or("–".to_owned(), |labels| labels.category.to_string()),
        "priority": summary.priority.slug(),
        "age": format_age(now - summary.created_at),
        "status": summary.status.slug(),
        "assignee": ticket.assignee,
        "breached": ticket.sla_breached,
        "overdue": summary.status == TicketStatus::Open && summary.first_response_due < now,
    })
}

/// One queue's tickets, breached first, filtered, keyset-paged.
pub(crate) async fn queue(
    State(state): State<AppState>,
    Extension(staff): Extension<CurrentStaff>,
    Path(name): Path<String>,
    Query(params): Query<QueueParams>,
) -> Result<Response, PageError> {
    let query = params.query(&name)?;
    let tickets = state.store.desk_queue(&query).await?;
    let now = now();
    let rows: Vec<serde_json::Value> = tickets
        .iter()
        .map(|ticket| ticket_row(ticket, now))
        .collect();
    let filter = |name: &str, value: Option<String>| value.map(|value| format!("&{name}={value}"));
    let filters = [
        filter("tier", query.tier.map(|tier| tier.slug().to_owned())),
        filter(
            "category",
            query.category.map(|category| category.slug().to_owned()),
        ),
    ]
    .into_iter()
    .flatten()
    .collect::<String>();
    render(
        &state,
        "queue.html",
        merge(
            page_context(&staff),
            json!({
                "queue": query.queue.as_str(),
                "tickets": rows,
                "statuses": TicketStatus::ALL.iter().map(|status| status.slug()).collect::<Vec<_>>(),
                "tiers": Tier::ALL.iter().map(|tier| tier.slug()).collect::<Vec<_>>(),
                "categories": Category::ALL.iter().map(|category| category.slug()).collect::<Vec<_>>(),
                "current_status": query.status.slug(),
                "current_tier": query.tier.map(|tier| tier.slug()),
                "current_category": query.category.map(|category| category.slug()),
                "filters": filters,
                "order": match query.order { TicketOrder::NewestFirst => "newest", TicketOrder::OldestFirst => "oldest" },
                "after": query.after.map(|after| after.to_string()),
                "next_after": next_after(&query, &tickets),
            }),
        ),
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct SearchParams {
    #[serde(default)]
    pub q: String,
    pub limit: Option<u32>,
}

/// Search by reference, sender, subscription or tenant ID, or subject words.
pub(crate) async fn search(
    State(state): State<AppState>,
    Extension(staff): Extension<CurrentStaff>,
    Query(params): Query<SearchParams>,
) -> Result<Response, PageError> {
    let now = now();
    let rows: Vec<serde_json::Value> = match SearchQuery::parse(&params.q) {
        Some(query) => state
            .store
            .search(&query, params.limit.unwrap_or(QueueQuery::DEFAULT_LIMIT))
            .await?
            .iter()
            .map(|ticket| ticket_row(ticket, now))
            .collect(),
        None => Vec::new(),
    };
    render(
        &state,
        "search.html",
        merge(
            page_context(&staff),
            json!({ "q": params.q.trim(), "tickets": rows }),
        ),
    )
}

/// Message HTML made safe to show: no scripts, no event handlers, no
/// `javascript:` or other active URLs, links opened without a referrer.
pub(crate) fn sanitise_html(html: &str) -> String {
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(html)
        .to_string()
}

fn message_view(message: &StoredMessage, ticket_ref: TicketRef) -> serde_json::Value {
    let from = message
        .from
        .as_ref()
        .map(|address| match &address.name {
            Some(name) => format!("{name} <{}>", address.email),
            None => address.email.clone(),
        })
        .unwrap_or_else(|| "(unknown sender)".to_owned());
    let classification = message.classification.as_ref().map(|classification| {
        json!({
            "tier": classification.tier.to_string(),
            "category": classification.category.to_string(),
            "confidence": format!("{:.2}", classification.confidence),
            "in_scope": classification.in_scope,
            "microsoft": classification.microsoft,
            "reasons": classification.reasons,
            "account": classification.account.as_ref().map(|account| json!({
                "customer": account.customer,
                "tenant_id": account.tenant_id,
                "subscription_id": account.subscription_id,
                "relationship": account.relationship.slug(),
                "managed_os": account.managed_os,
            })),
            "subscription_ids": classification.entities.subscription_ids,
        })
    });
    json!({
        "kind": "message",
        "at": message.received_at,
        "from": from,
        "subject": message.subject,
        "received": format_time(message.received_at),
        "via": via(&message.source),
        "html": message.body_html.as_deref().map(sanitise_html),
        "text": message.body_text,
        "quarantine_reason": message.quarantine_reason,
        "attachments": message.attachments.iter().enumerate().map(|(position, attachment)| json!({
            "name": attachment.filename,
            "size": format_size(attachment.size),
            "href": format!("/tickets/{ticket_ref}/attachments/{}/{position}", message.id),
        })).collect::<Vec<_>>(),
        "classification": classification,
    })
}

/// How a message reached the desk, as staff say it: `portal`, `phone`, `mail`.
fn via(source: &SourcePosition) -> String {
    match source.kind {
        SourceKind::Api => source.mailbox.clone(),
        SourceKind::Imap | SourceKind::Maildir => "mail".to_owned(),
        SourceKind::File | SourceKind::Mbox | SourceKind::Stdin => "mail import".to_owned(),
    }
}

/// `12 KB`, `3.4 MB`.
fn format_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{} KB", bytes.div_ceil(1024)),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
    }
}

/// A ticket: its thread (mail, staff replies, internal notes), classification,
/// routing, audit trail and the action forms.
pub(crate) async fn ticket(
    State(state): State<AppState>,
    Extension(staff): Extension<CurrentStaff>,
    Path(reference): Path<String>,
) -> Result<Response, PageError> {
    let ticket_ref: TicketRef = reference.parse().map_err(|_| ApiError::NotFound)?;
    let (detail, desk) = tokio::try_join!(
        state.store.ticket(ticket_ref),
        state.store.desk_detail(ticket_ref)
    )?;
    let (Some(detail), Some(desk)) = (detail, desk) else {
        return Err(ApiError::NotFound.into());
    };
    let now = now();
    let summary = &detail.ticket;
    let mut thread: Vec<serde_json::Value> = detail
        .messages
        .iter()
        .map(|message| message_view(message, ticket_ref))
        .collect();
    thread.extend(desk.replies.iter().map(|reply| {
        json!({
            "kind": "reply",
            "at": reply.created_at,
            "from": reply.author,
            "to": reply.recipient,
            "received": format_time(reply.created_at),
            "text": reply.body,
            "delivery": reply.status.slug(),
        })
    }));
    thread.extend(desk.notes.iter().map(|note| {
        json!({
            "kind": "note",
            "at": note.created_at,
            "from": note.author,
            "received": format_time(note.created_at),
            "text": note.body,
        })
    }));
    // Stable: at equal times, mail before replies before notes.
    thread.sort_by_key(|entry| entry["at"].as_i64().unwrap_or_default());
    let mut queues: Vec<String> = state
        .queues
        .iter()
        .map(|queue| queue.as_str().to_owned())
        .collect();
    if !queues.iter().any(|queue| queue == summary.queue.as_str()) {
        queues.push(summary.queue.as_str().to_owned());
    }
    render(
        &state,
        "ticket.html",
        merge(
            page_context(&staff),
            json!({
                "ticket": {
                    "reference": summary.ticket_ref.to_string(),
                    "queue": summary.queue.as_str(),
                    "subject": summary.subject,
                    "status": summary.status.slug(),
                    "priority": summary.priority.slug(),
                    "customer": customer(summary),
                    "tier": summary.labels.map(|labels| labels.tier.to_string()),
                    "category": summary.labels.map(|labels| labels.category.to_string()),
                    "created": format_time(summary.created_at),
                    "age": format_age(now - summary.created_at),
                    "due": format_time(summary.first_response_due),
                    "overdue": summary.status == TicketStatus::Open && summary.first_response_due < now && desk.first_responded_at.is_none(),
                    "breached": desk.sla_breached,
                    "responded": desk.first_responded_at.map(format_time),
                    "assignee": desk.assignee,
                },
                "may_act": staff.principal.role.may_act(),
                "assigned_to_me": desk.assignee.as_deref() == Some(staff.principal.name.as_str()),
                "statuses": TicketStatus::ALL.iter().map(|status| status.slug()).collect::<Vec<_>>(),
                "queues": queues,
                "thread": thread,
                "routes": detail.routes.iter().map(|route| json!({
                    "decided": format_time(route.decided_at),
                    "queue": route.route.queue.as_str(),
                    "rule": route.route.rule,
                    "priority": route.route.priority.slug(),
                    "reasons": route.route.reasons,
                })).collect::<Vec<_>>(),
                "audit": detail.audit_events.iter().map(|event| json!({
                    "at": format_time(event.at),
                    "kind": event.kind.slug(),
                    "actor": event.actor,
                    "detail": audit_detail(&event.detail),
                })).collect::<Vec<_>>(),
            }),
        ),
    )
}

/// An audit event's detail as `key: value` pairs, for reading rather than parsing.
fn audit_detail(detail: &serde_json::Value) -> String {
    match detail {
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(key, value)| match value {
                serde_json::Value::String(text) => format!("{key}: {text}"),
                serde_json::Value::Null => format!("{key}: –"),
                other => format!("{key}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(" · "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitising_removes_active_content() {
        let clean = sanitise_html(
            r#"<p onclick="x()">Hi <script>alert(1)</script><img src="x" onerror="alert(2)"><a href="javascript:alert(3)">link</a></p>"#,
        );
        assert!(!clean.contains("<script"), "{clean}");
        assert!(!clean.contains("onerror"), "{clean}");
        assert!(!clean.contains("onclick"), "{clean}");
        assert!(!clean.contains("javascript:"), "{clean}");
        assert!(clean.contains("Hi"));
    }

    #[test]
    fn ages_read_plainly() {
        assert_eq!(format_age(59), "0m");
        assert_eq!(format_age(3 * 3600 + 5 * 60), "3h 5m");
        assert_eq!(format_age(2 * 86_400 + 7200), "2d 2h");
        assert_eq!(format_age(-5), "0m");
    }
}
