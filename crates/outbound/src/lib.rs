//! Mail back to people: acknowledgments, scope notices, Microsoft escalation
//! hand-offs and staff replies, sent from the outbox over SMTP.
//!
//! # Overview
//!
//! - [`Renderer`] (pure) turns one [`supportd_store::OutboxMail`] and its
//!   ticket into the bytes of an RFC 5322 message: templates as data
//!   (`config/templates/*.txt`, optional `*.html`, rendered with minijinja),
//!   headers built with lettre's builder, the subject tagged `[CS-1042] Re: …`,
//!   In-Reply-To/References to the customer's message, `Auto-Submitted:
//!   auto-replied` on automatic mail, `X-Supportd-Ticket` and supportd's own
//!   Message-ID on everything. Nothing taken from incoming mail can add a header:
//!   CR, LF and other control characters are removed and lettre encodes the rest.
//! - [`SmtpSettings`] and [`Secret`] describe the server: STARTTLS, implicit TLS,
//!   or plain (loopback only), with optional AUTH; the password never prints.
//! - [`Worker`] claims due rows from the store with a lease
//!   ([`supportd_store::Store::claim_outbox`]), renders each once (the bytes are
//!   saved before the first attempt, so a retry after a crash sends the same
//!   mail), sends it, and marks it: sent; retried later with exponential backoff
//!   on 4xx replies and network errors; dead with the server's reply on 5xx.
//!   [`Worker::try_execute_task`] does one round and returns an
//!   [`ExecutionOutcome`]; [`Worker::run`] loops until cancelled.
//! - [`OutboundError`] is the crate's one error type.

mod error;
mod render;
mod smtp;
mod worker;

pub use error::OutboundError;
pub use render::{Contact, Identity, RenderInput, Renderer, sanitize_header_text};
pub use smtp::{Secret, Security, SmtpClient, SmtpError, SmtpSession, SmtpSettings};
pub use worker::{ExecutionOutcome, Worker, WorkerSettings, backoff};
