//! [`ApiError`]: the one error type of every handler. Its response says what
//! the client can do about it and never shows internals; the cause is logged
//! once, by the request middleware (`metrics::track_requests`), which finds it
//! in the response's extensions.

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use supportd_store::StoreError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid session or token.
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated, but the role or the CSRF token does not allow it.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// No such queue, ticket or page.
    #[error("not found")]
    NotFound,
    /// A parameter the client sent is wrong; the text names it.
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with one still being handled; retry later.
    #[error("{0}")]
    Conflict(&'static str),
    /// Well-formed, but cannot be done as asked (an idempotency key reused
    /// with another request).
    #[error("{0}")]
    Unprocessable(&'static str),
    /// This server was started without what the route needs.
    #[error("{0}")]
    NotAvailable(&'static str),
    /// The request body is larger than `web.max_body_bytes` (the limit).
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The request body did not arrive within `web.read_timeout_seconds`.
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    /// Too many failed logins from this address or for this user.
    #[error("too many failed logins; try again later")]
    TooManyAttempts,
    /// The database cannot be reached right now; retry later.
    #[error("the database is unavailable")]
    Unavailable(#[source] StoreError),
    /// A bug or a broken invariant; details only in the log.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The cause chain of a failed request, for the middleware to log once.
#[derive(Debug, Clone)]
pub(crate) struct LoggedCause(pub Arc<String>);

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        if error.is_retryable() {
            ApiError::Unavailable(error)
        } else {
            ApiError::Internal(anyhow::Error::new(error))
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotAvailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An [`ApiError`] on a staff page: the same status and logging, as a small
/// HTML page instead of JSON.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> PageError {
        PageError(error)
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> PageError {
        PageError(ApiError::from(error))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let message = self.0.to_string();
        let mut response = self.0.into_response();
        let status = response.status();
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} · supportd</title>\
             <link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><main><h1>{code} {reason}</h1>\
             <p>{message}</p><p><a href=\"/\">Back to the queues</a></p></main></body></html>",
            code = status.as_u16(),
            reason = status.canonical_reason().unwrap_or(""),
            message = minijinja::HtmlEscape(&message),
        );
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("text/html; charset=utf-8"),
        );
        *response.body_mut() = axum::body::Body::from(html);
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Display of the variant only: the sources stay out of the body.
        let body = Json(serde_json::json!({ "error": self.to_string() }));
        let cause = match &self {
            ApiError::Unavailable(_) | ApiError::Internal(_) => {
                Some(format!("{:#}", anyhow::Error::new(self)))
            }
            _ => None,
        };
        let mut response = (status, body).into_response();
        if let Some(cause) = cause {
            response
                .extensions_mut()
                .insert(LoggedCause(Arc::new(cause)));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"supportd\""),
            );
        }
        response
    }
}
