//! Ticket actions, for the pages (forms, POST-redirect-GET) and the API (JSON):
//! assign to me, change status, move to another queue with a reason, reply to
//! the customer (through the outbox), add an internal note. Each is one
//! [`Action`] performed by [`perform`], which checks the role and writes the
//! change with its audit event. Also attachment downloads.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use supportd_core::{QueueName, TicketRef, TicketStatus};
use supportd_store::Principal;

use crate::AppState;
use crate::auth::CurrentStaff;
use crate::error::{ApiError, PageError};
use crate::pages::now;

/// Longest reply or note, in characters.
const MAX_TEXT_CHARS: usize = 100_000;
/// Longest reason for a move, in characters.
const MAX_REASON_CHARS: usize = 1_000;

/// One thing staff do to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    AssignToMe,
    Status(TicketStatus),
    Move { queue: QueueName, reason: String },
    Reply { body: String },
    Note { body: String },
}

/// Trimmed, non-empty, at most `max` characters; else a 400 naming `field`.
fn required_text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::BadRequest(format!("`{field}` must not be empty")));
    }
    if value.chars().count() > max {
        return Err(ApiError::BadRequest(format!(
            "`{field}` is longer than {max} characters"
        )));
    }
    Ok(value.to_owned())
}

fn parse_status(status: &str) -> Result<TicketStatus, ApiError> {
    status
        .trim()
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("unknown status `{status}`")))
}

fn parse_reference(reference: &str) -> Result<TicketRef, ApiError> {
    reference.parse().map_err(|_| ApiError::NotFound)
}

/// A queue staff may move a ticket to: one the routing configuration declares
/// (any well-formed name when the server was started without the list).
fn parse_queue(state: &AppState, queue: &str) -> Result<QueueName, ApiError> {
    let unknown = || ApiError::BadRequest(format!("unknown queue `{queue}`"));
    let queue = QueueName::parse(queue.trim()).map_err(|_| unknown())?;
    if state.queues.is_empty() || state.queues.contains(&queue) {
        Ok(queue)
    } else {
        Err(unknown())
    }
}

/// Performs `action` on the ticket as `principal`; the JSON says what was done.
pub(crate) async fn perform(
    state: &AppState,
    principal: &Principal,
    ticket_ref: TicketRef,
    action: Action,
) -> Result<serde_json::Value, ApiError> {
    if !principal.role.may_act() {
        return Err(ApiError::Forbidden("this account may only read"));
    }
    let actor = principal.name.as_str();
    let at = now();
    let store = &state.store;
    let reference = ticket_ref.to_string();
    let done = match action {
        Action::AssignToMe => {
            let previous = store
                .assign(ticket_ref, Some(actor), actor, at)
                .await?
                .ok_or(ApiError::NotFound)?;
            json!({ "ticket": reference, "assignee": actor, "previous_assignee": previous })
        }
        Action::Status(status) => {
            let previous = store
                .set_status(ticket_ref, status, actor, at)
                .await?
                .ok_or(ApiError::NotFound)?;
            json!({ "ticket": reference, "status": status.slug(), "previous_status": previous.slug() })
        }
        Action::Move { queue, reason } => {
            let previous = store
                .move_ticket(ticket_ref, &queue, &reason, actor, at)
                .await?
                .ok_or(ApiError::NotFound)?;
            json!({ "ticket": reference, "queue": queue.as_str(), "previous_queue": previous.as_str() })
        }
        Action::Reply { body } => {
            let message_id = store
                .queue_staff_reply(ticket_ref, &body, actor, at)
                .await?
                .ok_or(ApiError::NotFound)?;
            json!({ "ticket": reference, "message_id": message_id })
        }
        Action::Note { body } => {
            let note_id = store
                .add_note(ticket_ref, &body, actor, at)
                .await?
                .ok_or(ApiError::NotFound)?;
            json!({ "ticket": reference, "note_id": note_id })
        }
    };
    tracing::info!(ticket_ref = %ticket_ref, user = %actor, done = %done, "Ticket changed.");
    Ok(done)
}

/// After a page action: back to the ticket (POST-redirect-GET).
fn back_to(ticket_ref: TicketRef) -> Response {
    Redirect::to(&format!("/tickets/{ticket_ref}")).into_response()
}

async fn page_action(
    state: &AppState,
    staff: &CurrentStaff,
    reference: &str,
    action: impl FnOnce() -> Result<Action, ApiError>,
) -> Result<Response, PageError> {
    let ticket_ref = parse_reference(reference)?;
    perform(state, &staff.principal, ticket_ref, action()?).await?;
    Ok(back_to(ticket_ref))
}

/// The fields of the action forms (the CSRF token is checked by the middleware).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    queue: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    body: String,
}

pub(crate) async fn page_assign(
    State(state): State<AppState>,
    Extension(staff): Extension<CurrentStaff>,
    Path(reference): Path<String>,
) -> Result<Response, PageError> {
    page_action(&state, &staff, &reference, || Ok(Action::AssignToMe)).await
}

pub(crate) async fn page_status(
    State(state): State<AppState>,
    Extension(staff): Extension<CurrentStaff>,
    Path(reference): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, PageError> {
    page_action(&state, &staff, &reference, || {
        Ok(Action::Status(parse_status(&form.status)?))
    })
    .await
}

pub(crate) async fn page_move(
    State(state): State<AppState>,
    Extension(staff): Extension<CurrentStaff>,
    Path(reference): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, PageError> {
    page_action(&state, &staff, &reference, || {
        Ok(Action::Move {
            queue: parse_queue(&state, &form.queue)?,
            reason: required_text("reason", &form.reason, MAX_REASON_CHARS)?,
        })
    })
    .await
}

pub(crate) async fn page_reply(
    State(state): State<AppState>,
    Extension(staff): Extension<CurrentStaff>,
    Path(reference): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, PageError> {
    page_action(&state, &staff, &reference, || {
        Ok(Action::Reply {
            body: required_text("body", &form.body, MAX_TEXT_CHARS)?,
        })
    })
    .await
}

pub(crate) async fn page_note(
    State(state): State<AppState>,
    Extension(staff): Extension<CurrentStaff>,
    Path(reference): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, PageError> {
    page_action(&state, &staff, &reference, || {
        Ok(Action::Note {
            body: required_text("body", &form.body, MAX_TEXT_CHARS)?,
        })
    })
    .await
}

/// A JSON body, or a 400 that says what is wrong with it.
pub(crate) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value)
        .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusBody {
    status: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MoveBody {
    queue: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TextBody {
    body: String,
}

async fn api_action(
    state: &AppState,
    principal: &Principal,
    reference: &str,
    action: Result<Action, ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ticket_ref = parse_reference(reference)?;
    // Refuse a read-only token before looking at its body.
    if !principal.role.may_act() {
        return Err(ApiError::Forbidden("this account may only read"));
    }
    Ok(Json(perform(state, principal, ticket_ref, action?).await?))
}

/// `POST /api/tickets/{reference}/assign`: to the token's name.
pub(crate) async fn api_assign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(reference): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    api_action(&state, &principal, &reference, Ok(Action::AssignToMe)).await
}

/// `POST /api/tickets/{reference}/status` `{"status": "resolved"}`.
pub(crate) async fn api_status(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(reference): Path<String>,
    body: Result<Json<StatusBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let action = json_body(body).and_then(|body| Ok(Action::Status(parse_status(&body.status)?)));
    api_action(&state, &principal, &reference, action).await
}

/// `POST /api/tickets/{reference}/move` `{"queue": "billing", "reason": "..."}`.
pub(crate) async fn api_move(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(reference): Path<String>,
    body: Result<Json<MoveBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let action = json_body(body).and_then(|body| {
        Ok(Action::Move {
            queue: parse_queue(&state, &body.queue)?,
            reason: required_text("reason", &body.reason, MAX_REASON_CHARS)?,
        })
    });
    api_action(&state, &principal, &reference, action).await
}

/// `POST /api/tickets/{reference}/replies` `{"body": "..."}`: mailed through the outbox.
pub(crate) async fn api_reply(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(reference): Path<String>,
    body: Result<Json<TextBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let action = json_body(body).and_then(|body| {
        Ok(Action::Reply {
            body: required_text("body", &body.body, MAX_TEXT_CHARS)?,
        })
    });
    api_action(&state, &principal, &reference, action).await
}

/// `POST /api/tickets/{reference}/notes` `{"body": "..."}`: internal, never mailed.
pub(crate) async fn api_note(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(reference): Path<String>,
    body: Result<Json<TextBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let action = json_body(body).and_then(|body| {
        Ok(Action::Note {
            body: required_text("body", &body.body, MAX_TEXT_CHARS)?,
        })
    });
    api_action(&state, &principal, &reference, action).await
}

/// The attachment at `position` of message `message_id` of the ticket, as a
/// download: its bytes come from the stored raw message.
pub(crate) async fn attachment(
    state: &AppState,
    reference: &str,
    message_id: i64,
    position: usize,
) -> Result<Response, ApiError> {
    let ticket_ref = parse_reference(reference)?;
    let detail = state
        .store
        .ticket(ticket_ref)
        .await?
        .ok_or(ApiError::NotFound)?;
    // Only a message of this ticket, and only an attachment its metadata lists.
    let message = detail
        .messages
        .iter()
        .find(|message| message.id == message_id)
        .ok_or(ApiError::NotFound)?;
    if position >= message.attachments.len() {
        return Err(ApiError::NotFound);
    }
    let raw = state
        .store
        .raw_message(message_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let content = supportd_mail::attachment_content(&raw, position).ok_or(ApiError::NotFound)?;
    let disposition = content_disposition(&content.filename);
    let mut response = content.bytes.into_response();
    let headers = response.headers_mut();
    // Never rendered by the browser, whatever the mail claimed it was.
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition)
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("content disposition: {error}")))?,
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded>`
/// (RFC 6266 with RFC 8187 encoding): quotes, backslashes, control characters
/// and non-ASCII never reach the quoted form.
pub(crate) fn content_disposition(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let fallback = if fallback.trim().is_empty() {
        "attachment".to_owned()
    } else {
        fallback
    };
    let encoded: String = filename
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

pub(crate) async fn page_attachment(
    State(state): State<AppState>,
    Path((reference, message_id, position)): Path<(String, i64, usize)>,
) -> Result<Response, PageError> {
    Ok(attachment(&state, &reference, message_id, position).await?)
}

pub(crate) async fn api_attachment(
    State(state): State<AppState>,
    Path((reference, message_id, position)): Path<(String, i64, usize)>,
) -> Result<Response, ApiError> {
    attachment(&state, &reference, message_id, position).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_is_safe_for_any_name() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        let tricky = content_disposition("fac\"ture\\ été\r\n.pdf");
        assert!(
            tricky.starts_with("attachment; filename=\"fac_ture_ _t___.pdf\""),
            "{tricky}"
        );
        assert!(
            tricky.ends_with("filename*=UTF-8''fac%22ture%5C%20%C3%A9t%C3%A9%0D%0A.pdf"),
            "{tricky}"
        );
        assert!(HeaderValue::from_str(&tricky).is_ok());
        assert_eq!(
            content_disposition(""),
            "attachment; filename=\"attachment\"; filename*=UTF-8''"
        );
    }

    #[test]
    fn texts_are_required_and_bounded() {
        assert_eq!(required_text("body", "  hi ", 10).unwrap(), "hi");
        assert!(matches!(
            required_text("body", "  ", 10),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            required_text("body", "abc", 2),
            Err(ApiError::BadRequest(_))
        ));
    }
}
