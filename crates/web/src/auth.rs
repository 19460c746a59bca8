//! Authentication: staff passwords (argon2id), browser sessions, CSRF tokens,
//! API bearer tokens, and the failed-login limiter.
//!
//! A session id is 32 random bytes (hex) in an HttpOnly, SameSite=Lax cookie
//! (Secure when configured); the store keeps only its SHA-256, with an expiry.
//! The CSRF token of a session is derived from the session id (SHA-256 with
//! another prefix), so it needs no storage, differs per session, and cannot
//! be computed from the database. Every non-GET request behind a session must
//! carry it as the `csrf_token` form field; the login form, which has no
//! session yet, uses a double-submit cookie instead.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use supportd_store::Principal;

use crate::AppState;
use crate::error::{ApiError, PageError};

pub(crate) const SESSION_COOKIE: &str = "supportd_session";
pub(crate) const LOGIN_CSRF_COOKIE: &str = "supportd_login";

/// `bytes` random bytes from the operating system, as lower-case hex.
pub(crate) fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::getrandom(&mut buffer)
        .map_err(|error| anyhow::anyhow!("cannot read random bytes: {error}"))?;
    Ok(hex::encode(buffer))
}

pub(crate) fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// An argon2id PHC string of `password` with a random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt)
        .map_err(|error| anyhow::anyhow!("cannot read random bytes: {error}"))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|error| anyhow::anyhow!("cannot encode a salt: {error}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| anyhow::anyhow!("cannot hash the password: {error}"))
}

/// True when `password` matches the stored PHC string.
pub(crate) fn verify_password(stored_hash: &str, password: &str) -> bool {
    PasswordHash::new(stored_hash)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Spends the time of a password check for an unknown user, so response
/// times do not tell which logins exist.
pub(crate) fn verify_nothing(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    if let Some(hash) = DUMMY.get_or_init(|| hash_password("not a password").ok()) {
        let _ = verify_password(hash, password);
    }
}

/// A new API token and the hash to store. The token is shown once.
pub fn new_api_token() -> anyhow::Result<(String, String)> {
    let token = format!("sdt_{}", random_hex(32)?);
    let hash = sha256_hex(&token);
    Ok((token, hash))
}

/// The CSRF token of the session whose cookie value is `session_id`.
pub(crate) fn csrf_token(session_id: &str) -> String {
    sha256_hex(&format!("supportd-csrf:{session_id}"))
}

/// Equal strings, compared without an early exit.
pub(crate) fn same_secret(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// The value of cookie `name`, if the request carries it.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path `/`, Secure when asked.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The staff member behind a page request, with the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub(crate) struct CurrentStaff {
    pub principal: Principal,
    pub csrf_token: String,
    /// SHA-256 of the session id, to end the session at logout.
    pub session_hash: String,
}

/// Pages: a live session, else a redirect to the login page; for any method
/// but GET and HEAD, also the session's CSRF token in the form.
pub(crate) async fn require_session(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, PageError> {
    let Some(session_id) = cookie(request.headers(), SESSION_COOKIE).map(str::to_owned) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let session_hash = sha256_hex(&session_id);
    let Some(principal) = state
        .store
        .session(&session_hash, crate::pages::now())
        .await?
    else {
        return Ok(Redirect::to("/login").into_response());
    };
    let current = CurrentStaff {
        principal,
        csrf_token: csrf_token(&session_id),
        session_hash,
    };
    let mut request = if matches!(*request.method(), Method::GET | Method::HEAD) {
        request
    } else {
        check_form_csrf(request, &current.csrf_token, state.settings.max_body_bytes).await?
    };
    request.extensions_mut().insert(current);
    Ok(next.run(request).await)
}

/// Reads the form body (already buffered within `max_bytes` by
/// `body::read_body`), refuses it without the right `csrf_token`, and hands
/// the request on with its body intact.
pub(crate) async fn check_form_csrf(
    request: Request,
    expected: &str,
    max_bytes: usize,
) -> Result<Request, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, max_bytes)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(max_bytes))?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let sent = fields
        .iter()
        .find(|(key, _)| key == "csrf_token")
        .map(|(_, value)| value.as_str());
    match sent {
        Some(sent) if same_secret(sent, expected) => {
            Ok(Request::from_parts(parts, Body::from(bytes)))
        }
        _ => Err(ApiError::Forbidden("missing or wrong CSRF token")),
    }
}

/// API and metrics: `Authorization: Bearer <token>` of a stored token, else 401.
pub(crate) async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    let principal = state
        .store
        .api_token(&sha256_hex(token))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// Failed logins per client address and per user name in a sliding window:
/// past [`LoginLimiter::MAX_FAILURES`], further attempts are refused without
/// checking the password until the window has passed. Process memory only: a
/// restart forgets, which is acceptable for slowing guessing down.
pub(crate) struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    pub const MAX_FAILURES: u32 = 5;
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    /// Entries kept before old ones are swept.
    const SWEEP_AT: usize = 10_000;

    pub fn new() -> LoginLimiter {
        LoginLimiter {
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(address: IpAddr, user: &str) -> [String; 2] {
        [format!("address:{address}"), format!("user:{user}")]
    }

    /// True when this address or this user has failed too often lately.
    pub fn blocked(&self, address: IpAddr, user: &str) -> bool {
        let Ok(failures) = self.failures.lock() else {
            return false;
        };
        Self::keys(address, user).iter().any(|key| {
            failures.get(key).is_some_and(|(count, since)| {
                *count >= Self::MAX_FAILURES && since.elapsed() < Self::WINDOW
            })
        })
    }

    pub fn record_failure(&self, address: IpAddr, user: &str) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() > Self::SWEEP_AT {
            failures.retain(|_, (_, since)| since.elapsed() < Self::WINDOW);
        }
        for key in Self::keys(address, user) {
            let entry = failures.entry(key).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= Self::WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 = entry.0.saturating_add(1);
        }
    }

    /// A successful login clears the user's count (not the address's).
    pub fn record_success(&self, user: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&format!("user:{user}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_tokens_differ() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "wrong"));
        assert!(!verify_password("junk", "correct horse"));
        let (token, token_hash) = new_api_token().unwrap();
        assert_eq!(sha256_hex(&token), token_hash);
        assert_ne!(new_api_token().unwrap().0, token);
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_ne!(csrf_token("a"), sha256_hex("a"));
    }

    #[test]
    fn limiter_blocks_after_repeated_failures() {
        let limiter = LoginLimiter::new();
        let address: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..LoginLimiter::MAX_FAILURES {
            assert!(!limiter.blocked(address, "ana"));
            limiter.record_failure(address, "ana");
        }
        assert!(limiter.blocked(address, "ana"));
        assert!(limiter.blocked(address, "bob"), "same address");
        assert!(
            limiter.blocked("10.0.0.1".parse().unwrap(), "ana"),
            "same user"
        );
        assert!(!limiter.blocked("10.0.0.1".parse().unwrap(), "bob"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; supportd_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        assert!(set_cookie("x", "y", Duration::from_secs(5), true).ends_with("; Secure"));
    }
}
