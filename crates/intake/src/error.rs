//! [`IntakeError`]: what can go wrong talking to a mailbox, sorted by what
//! the caller does about it.

use std::time::Duration;

/// Every variant except [`IntakeError::Config`] means "drop the session and
/// reconnect with backoff"; the variant says what an operator should look at.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The configuration cannot work; fix the file. Never retried.
    #[error("mailbox \"{account}\": {reason}")]
    Config { account: String, reason: String },

    /// The password or token could not be read (missing variable or file).
    #[error("cannot read the credential from {source_description}: {reason}")]
    Credential {
        source_description: String,
        reason: String,
    },

    /// TCP could not connect, or the connection broke or timed out on connect.
    #[error("network error with {address}")]
    Network {
        address: String,
        #[source]
        source: std::io::Error,
    },

    /// The TLS handshake failed: most often an untrusted or mismatched
    /// certificate (set `ca_file` for a private CA) or a server that does not
    /// speak TLS on that port.
    #[error("TLS handshake with {host} failed")]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },

    /// The server said NO to the credentials: wrong password, revoked or
    /// expired token. Retrying soon will not help; refresh the credential.
    #[error("the server refused the credentials of {username}: {server_message}")]
    AuthenticationRefused {
        username: String,
        server_message: String,
    },

    /// The OAuth2 token endpoint could not give an access token (network,
    /// HTTP error, an answer that is not a token). Retried with backoff.
    #[error("OAuth2 token endpoint {endpoint}: {reason}")]
    TokenEndpoint { endpoint: String, reason: String },

    /// The server is up but cannot serve us now (`NO [UNAVAILABLE]`, `BYE` at
    /// greeting, a temporary authentication failure).
    #[error("the server is unavailable: {server_message}")]
    ServerUnavailable { server_message: String },

    /// A command or the greeting took longer than its limit; the connection
    /// is in an unknown state and must be dropped.
    #[error("no answer to {operation} within {timeout:?}")]
    Timeout {
        operation: &'static str,
        timeout: Duration,
    },

    /// The folder does not exist (or cannot be selected).
    #[error("folder \"{folder}\" cannot be selected: {server_message}")]
    NoSuchFolder {
        folder: String,
        server_message: String,
    },

    /// The server answered something we cannot work with (BAD, an unexpected
    /// NO, a missing capability, a connection lost mid-command).
    #[error("IMAP error during {operation}")]
    Protocol {
        operation: &'static str,
        #[source]
        source: async_imap::error::Error,
    },

    /// A session used after an earlier error broke it.
    #[error("the IMAP session is closed after an earlier error; reconnect")]
    SessionClosed,
}

impl IntakeError {
    /// Whether retrying the same thing later can succeed without someone
    /// changing the configuration. Refused credentials are "retryable" in that
    /// a rotated token may be picked up, but deserve a long backoff.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, IntakeError::Config { .. })
    }

    pub(crate) fn protocol(operation: &'static str, source: async_imap::error::Error) -> Self {
        match source {
            async_imap::error::Error::Io(io_error) => IntakeError::Network {
                address: format!("the server (during {operation})"),
                source: io_error,
            },
            async_imap::error::Error::ConnectionLost => IntakeError::Network {
                address: format!("the server (during {operation})"),
                source: std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "connection lost",
                ),
            },
            other => IntakeError::Protocol {
                operation,
                source: other,
            },
        }
    }
}
