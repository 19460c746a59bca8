//! Request bodies from clients that may be hostile: every body is read here,
//! before any handler or access check, at most `web.max_body_bytes` of it
//! (413 past that, at once when the `Content-Length` says so) and within
//! `web.read_timeout_seconds` (408 and the connection closed past that, so a
//! client that never finishes its body cannot hold a connection). Handlers
//! then see the buffered body. Slow headers are hyper's part: see
//! [`crate::run`].

use std::future::poll_fn;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::{ApiError, PageError};

/// Why a body was not read.
enum Refused {
    TooLarge,
    TooSlow,
    Unreadable,
}

/// Reads the whole body within the limits, then hands the request on.
pub(crate) async fn read_body(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.settings.max_body_bytes;
    let read_timeout = state.settings.read_timeout;
    let json = wants_json(request.uri().path());
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return refuse(Refused::TooLarge, &state, json);
    }
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(read_timeout, read_limited(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(refused)) => return refuse(refused, &state, json),
        Err(_elapsed) => return refuse(Refused::TooSlow, &state, json),
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The body's bytes, or [`Refused::TooLarge`] as soon as they pass `limit`.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, Refused> {
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::new();
    while let Some(frame) = poll_fn(|context| body.as_mut().poll_frame(context)).await {
        let frame = frame.map_err(|_| Refused::Unreadable)?;
        if let Ok(data) = frame.into_data() {
            if bytes.len().saturating_add(data.len()) > limit {
                return Err(Refused::TooLarge);
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

/// The API and metrics answer JSON; pages answer HTML.
fn wants_json(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

fn refuse(refused: Refused, state: &AppState, json: bool) -> Response {
    let error = match refused {
        Refused::TooLarge => ApiError::PayloadTooLarge(state.settings.max_body_bytes),
        Refused::TooSlow => ApiError::RequestTimeout(state.settings.read_timeout.as_secs()),
        Refused::Unreadable => ApiError::BadRequest("the request body is unreadable".to_owned()),
    };
    let mut response = if json {
        error.into_response()
    } else {
        PageError(error).into_response()
    };
    // The rest of the body is never read: the connection cannot be reused.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
