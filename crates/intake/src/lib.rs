//! Mail sources for supportd: the IMAP mailbox client.
//!
//! - [`ImapAccount`] is one mailbox from the config file, validated while it
//!   is deserialised: server, [`Security`] (TLS, STARTTLS, or plain on
//!   loopback only), [`Auth`] (password or OAuth2 bearer token, read through a
//!   [`SecretSource`] into a [`Secret`] that never prints), folders, what
//!   [`Acknowledge`] does, limits and timeouts, and where to [`Start`].
//! - [`connect`] opens a [`Session`]: TCP, TLS with rustls (web PKI roots
//!   plus the account's `ca_file`; verification is never off), LOGIN or SASL
//!   XOAUTH2, every step under a timeout. Failures are an [`IntakeError`]
//!   whose variant says what to do: fix the config, refresh the credential,
//!   or reconnect after a [`Backoff`] delay.
//! - On a [`Session`]: [`Session::select`] gives a [`FolderState`]
//!   (UIDVALIDITY, UIDNEXT); [`Session::fetch_after`] returns the
//!   [`FetchedMessage`]s above a UID, raw bytes without setting `\Seen`
//!   (an oversized one comes as its header only, for quarantine);
//!   [`Session::acknowledge`] and [`Session::quarantine`] act on committed
//!   UIDs; [`Session::idle_wait`] waits for new mail with IDLE (or a poll)
//!   and returns an [`IdleOutcome`].
//!
//! How a daemon uses it, per (mailbox, folder): connect, select, compare
//! UIDVALIDITY with the stored checkpoint (a different one means start over
//! from 0, the idempotent ingest drops what it already has; no checkpoint at
//! all means [`Session::start_after_uid`] for the account's [`Start`]), then loop:
//! `fetch_after(checkpoint)`, ingest and commit the batch together with the
//! new checkpoint, and only then acknowledge; when a fetch returns nothing,
//! `idle_wait`. On any error other than [`IntakeError::Config`], drop the
//! session and reconnect after [`Backoff::delay_with_random_jitter`].
//!
//! What is new is decided by UID, never by `\Seen`: a person reading the
//! mailbox in another client changes nothing here.

mod backoff;
mod config;
mod error;
mod oauth2;
mod session;
mod transport;
mod uid_set;
mod xoauth2;

pub use backoff::Backoff;
pub use config::{
    Acknowledge, Auth, ImapAccount, MAX_IDLE_TIMEOUT, Secret, SecretSource, Security, Start,
    is_loopback_host, parse_duration,
};
pub use error::IntakeError;
pub use oauth2::{AccessToken, EXPIRY_MARGIN, OAuth2Settings, TokenRefresher};
pub use session::{FetchedMessage, FolderState, IdleOutcome, ServerCapabilities, Session, connect};
pub use transport::ImapTransport;
pub use uid_set::uid_set;
pub use xoauth2::xoauth2_initial_response;
