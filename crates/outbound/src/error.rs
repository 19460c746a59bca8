//! The one error type of the outbound crate.

/// Why an outbound operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// A template is missing or does not render. Fix `config/templates/`.
    #[error("template {name}: {reason}")]
    Template { name: String, reason: String },

    /// An address (sender, recipient, escalation desk) is not a mail address.
    #[error("`{address}` is not a usable mail address: {reason}")]
    Address { address: String, reason: String },

    /// The SMTP settings cannot make a transport (bad host name for TLS, …).
    #[error("SMTP settings: {0}")]
    Settings(String),

    /// The store failed; retry later when it says so.
    #[error(transparent)]
    Store(#[from] supportd_store::StoreError),

    /// Anything else: a bug or a broken invariant.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
