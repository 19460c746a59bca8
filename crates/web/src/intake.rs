//! `POST /api/tickets`: tickets from the MSP Portal and from phone agents.
//!
//! The web crate only validates the request and keeps the `Idempotency-Key`;
//! turning a [`PortalTicket`] into a stored, classified and routed ticket is
//! the job of a [`TicketIntake`] that `supportd serve` provides (it runs the
//! same normalise, classify and route path as mail), so this crate never
//! depends on the classifier.
//!
//! Idempotency: the key is stored with a hash of the validated request. The
//! same key with the same request answers the same ticket; with another
//! request, 422. The Message-ID of the ticket's first message is derived from
//! the key, so even a crash between creating the ticket and recording it
//! under the key creates no second ticket (the store sees a duplicate).

use std::future::Future;
use std::pin::Pin;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use supportd_store::{IdempotencyClaim, IngestOutcome, Principal};

use crate::AppState;
use crate::desk::json_body;
use crate::error::ApiError;

/// Where a ticket that did not come by mail came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Portal,
    Phone,
}

impl Channel {
    pub fn slug(self) -> &'static str {
        match self {
            Channel::Portal => "portal",
            Channel::Phone => "phone",
        }
    }
}

/// A validated request for a new ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortalTicket {
    pub channel: Channel,
    pub requester_email: String,
    pub requester_name: Option<String>,
    pub subject: String,
    pub body: String,
    pub subscription_id: Option<String>,
    pub tenant_id: Option<String>,
    /// The Message-ID its message gets (without angle brackets).
    pub message_id: String,
}

/// A boxed future, so the trait can be used as `dyn`.
pub type IntakeFuture<'a> =
    Pin<Box<dyn Future<Output = anyhow::Result<IngestOutcome>> + Send + 'a>>;

/// Creates a ticket the way mail does (normalise, classify, route, store).
pub trait TicketIntake: Send + Sync + 'static {
    fn create(&self, ticket: PortalTicket) -> IntakeFuture<'_>;
}

/// The JSON body of `POST /api/tickets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTicketBody {
    channel: Channel,
    requester_email: String,
    #[serde(default)]
    requester_name: Option<String>,
    subject: String,
    body: String,
    #[serde(default)]
    subscription_id: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
}

const MAX_SUBJECT_CHARS: usize = 500;
const MAX_BODY_CHARS: usize = 100_000;
const MAX_KEY_CHARS: usize = 255;

fn one_line(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "`{field}` must be one line without control characters"
        )));
    }
    if value.chars().count() > max {
        return Err(ApiError::BadRequest(format!(
            "`{field}` is longer than {max} characters"
        )));
    }
    Ok(value.to_owned())
}

fn guid(field: &str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => match supportd_store::SearchQuery::parse(value) {
            Some(supportd_store::SearchQuery::Identifier(id)) => Ok(Some(id)),
            _ => Err(ApiError::BadRequest(format!(
                "`{field}` must be a GUID such as 0f8fad5b-d9cb-469f-a165-70867728950e"
            ))),
        },
    }
}

impl NewTicketBody {
    fn validate(self, message_id: String) -> Result<PortalTicket, ApiError> {
        let requester_email = one_line("requester_email", &self.requester_email, 254)?;
        let valid_email = requester_email
            .split_once('@')
            .is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !requester_email
                        .contains(|c: char| c.is_whitespace() || "<>,;\"".contains(c))
            });
        if !valid_email {
            return Err(ApiError::BadRequest(
                "`requester_email` must be an address such as ana@example.com".to_owned(),
            ));
        }
        let requester_name = self
            .requester_name
            .as_deref()
            .map(|name| one_line("requester_name", name, 200))
            .transpose()?
            .filter(|name| !name.is_empty());
        let subject = one_line("subject", &self.subject, MAX_SUBJECT_CHARS)?;
        if subject.is_empty() {
            return Err(ApiError::BadRequest(
                "`subject` must not be empty".to_owned(),
            ));
        }
        let body = self.body.trim().to_owned();
        if body.is_empty() {
            return Err(ApiError::BadRequest("`body` must not be empty".to_owned()));
        }
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(ApiError::BadRequest(format!(
                "`body` is longer than {MAX_BODY_CHARS} characters"
            )));
        }
        Ok(PortalTicket {
            channel: self.channel,
            requester_email,
            requester_name,
            subject,
            body,
            subscription_id: guid("subscription_id", self.subscription_id.as_deref())?,
            tenant_id: guid("tenant_id", self.tenant_id.as_deref())?,
            message_id,
        })
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `POST /api/tickets`.
pub(crate) async fn create_ticket(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Json<NewTicketBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    if !principal.role.may_act() {
        return Err(ApiError::Forbidden("this account may only read"));
    }
    let Some(intake) = state.intake.clone() else {
        return Err(ApiError::NotAvailable(
            "ticket creation is not available on this server",
        ));
    };
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|key| !key.is_empty() && key.len() <= MAX_KEY_CHARS)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "`Idempotency-Key` must be 1 to {MAX_KEY_CHARS} visible ASCII characters"
                    ))
                })?;
            Some(key.to_owned())
        }
    };
    let message_id = match &key {
        // Scoped by the caller, so two integrations cannot collide on a key.
        Some(key) => format!(
            "api-{}@supportd.invalid",
            &sha256_hex(format!("{}\n{key}", principal.name).as_bytes())[..40]
        ),
        None => format!(
            "api-{}@supportd.invalid",
            crate::auth::random_hex(20).map_err(ApiError::Internal)?
        ),
    };
    let ticket = json_body(body)?.validate(message_id)?;
    let scoped_key = key.map(|key| format!("{}\n{key}", principal.name));
    if let Some(key) = &scoped_key {
        let request_hash = sha256_hex(
            serde_json::to_string(&ticket)
                .map_err(|error| ApiError::Internal(error.into()))?
                .as_bytes(),
        );
        match state
            .store
            .claim_idempotency_key(key, &request_hash, crate::pages::now())
            .await?
        {
            IdempotencyClaim::New => {}
            IdempotencyClaim::Done(ticket_ref) => {
                return Ok(created(StatusCode::OK, ticket_ref, "duplicate"));
            }
            IdempotencyClaim::InProgress => {
                return Err(ApiError::Conflict(
                    "a request with this Idempotency-Key is still being handled; retry later",
                ));
            }
            IdempotencyClaim::Conflict => {
                return Err(ApiError::Unprocessable(
                    "this Idempotency-Key was used with another request",
                ));
            }
        }
    }
    let channel = ticket.channel;
    let outcome = match intake.create(ticket).await {
        Ok(outcome) => outcome,
        Err(error) => {
            if let Some(key) = &scoped_key {
                // Best effort: a retry with the key must be able to try again.
                let _ = state.store.release_idempotency_key(key).await;
            }
            return Err(ApiError::Internal(error));
        }
    };
    if let Some(key) = &scoped_key {
        state
            .store
            .complete_idempotency_key(key, outcome.ticket_ref())
            .await?;
    }
    tracing::info!(
        ticket_ref = %outcome.ticket_ref(),
        channel = channel.slug(),
        caller = %principal.name,
        outcome = ?outcome,
        "Ticket created through the API."
    );
    let (status, what) = match outcome {
        IngestOutcome::Created(_) => (StatusCode::CREATED, "created"),
        IngestOutcome::Quarantined(_) => (StatusCode::CREATED, "quarantined"),
        IngestOutcome::Threaded(_) => (StatusCode::OK, "threaded"),
        IngestOutcome::Duplicate(_) => (StatusCode::OK, "duplicate"),
    };
    Ok(created(status, outcome.ticket_ref(), what))
}

fn created(status: StatusCode, ticket_ref: supportd_core::TicketRef, outcome: &str) -> Response {
    (
        status,
        [(
            axum::http::header::LOCATION,
            format!("/api/tickets/{ticket_ref}"),
        )],
        Json(serde_json::json!({ "ticket": ticket_ref.to_string(), "outcome": outcome })),
    )
        .into_response()
}
