//! The JSON API under `/api`, for programs holding a bearer token: the same
//! reads as the pages. Errors are [`ApiError`] bodies (`{"error": "..."}`).

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::json;
use supportd_core::TicketRef;
use supportd_store::{QueueQuery, QueueSummary, SearchQuery};

use crate::AppState;
use crate::error::ApiError;
use crate::pages::{QueueParams, SearchParams, next_after};

/// The OpenAPI description of this API (`templates/openapi.json`).
const OPENAPI: &str = include_str!("../templates/openapi.json");

/// `GET /api/openapi.json`.
pub(crate) async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// `GET /api/queues`: every queue's counts.
pub(crate) async fn queues(
    State(state): State<AppState>,
) -> Result<Json<Vec<QueueSummary>>, ApiError> {
    Ok(Json(state.store.queue_summaries().await?))
}

/// `GET /api/queues/{name}/tickets?status=&order=newest|oldest&after=&limit=`:
/// one page, and `next_after` to ask for the next one (absent on the last).
pub(crate) async fn queue_tickets(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<QueueParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = params.query(&name)?;
    let tickets = state.store.desk_queue(&query).await?;
    let next_after = next_after(&query, &tickets);
    Ok(Json(
        json!({ "tickets": tickets, "next_after": next_after }),
    ))
}

/// `GET /api/tickets/{reference}`: the ticket with messages, routing and audit
/// trail, plus the desk's part (`desk`: assignee, SLA breach, notes, staff replies).
pub(crate) async fn ticket(
    State(state): State<AppState>,
    Path(reference): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ticket_ref: TicketRef = reference.parse().map_err(|_| ApiError::NotFound)?;
    let (detail, desk) = tokio::try_join!(
        state.store.ticket(ticket_ref),
        state.store.desk_detail(ticket_ref)
    )?;
    let (Some(detail), Some(desk)) = (detail, desk) else {
        return Err(ApiError::NotFound);
    };
    let mut value =
        serde_json::to_value(&detail).map_err(|error| ApiError::Internal(error.into()))?;
    value["desk"] =
        serde_json::to_value(&desk).map_err(|error| ApiError::Internal(error.into()))?;
    Ok(Json(value))
}

/// `GET /api/search?q=&limit=`: by reference, sender, subscription or tenant ID,
/// or words of the subject; newest first.
pub(crate) async fn search(
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = SearchQuery::parse(&params.q).ok_or_else(|| {
        ApiError::BadRequest(if params.q.trim().is_empty() {
            "`q` must not be empty".to_owned()
        } else {
            // Only punctuation or operators (`*`, `-`, `"`, `NEAR(` is a word):
            // nothing to look for, and nothing is passed on as syntax.
            "`q` has nothing to search for: give a reference, a sender address, \
             a subscription or tenant ID, or words"
                .to_owned()
        })
    })?;
    let tickets = state
        .store
        .search(&query, params.limit.unwrap_or(QueueQuery::DEFAULT_LIMIT))
        .await?;
    Ok(Json(json!({ "tickets": tickets })))
}

#[cfg(test)]
mod tests {
    #[test]
    fn openapi_is_json_and_describes_every_api_route() {
        let document: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        for info in crate::route_table() {
            if info.path.starts_with("/api/") && info.path != "/api/openapi.json" {
                assert!(
                    document["paths"][info.path].is_object(),
                    "{} is missing from openapi.json",
                    info.path
                );
            }
        }
    }
}
