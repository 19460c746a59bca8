//! Raw mail bytes to [`InboundMessage`]: MIME parsing, bodies, reply stripping,
//! auto-reply detection. No I/O, no async.
//!
//! The main types and how they fit together:
//!
//! - [`normalise`] takes the raw bytes of one RFC 5322 message and a set of
//!   [`Limits`] and returns a [`Normalised`]: either a
//!   [`Normalised::Message`] holding a `supportd_core::InboundMessage`, or a
//!   [`Normalised::Quarantine`] holding a [`Quarantine`] record for bytes that
//!   cannot be parsed at all or that are over a limit. It never panics and never
//!   fails: a merely odd message (bad date, unknown charset, missing From)
//!   becomes a `Message` whose `warnings` say what was worked around.
//! - [`Quarantine`] says why the bytes were rejected and carries what could be
//!   read of the header block (Message-ID, Subject, From), the size and the
//!   content hash, so the caller can store the raw bytes and never drop them.
//! - [`content_hash`] is the SHA-256 of the raw bytes (lower-case hex): with
//!   the Message-ID it is the idempotency key of ingest.
//! - [`split_mbox`] cuts an mbox file (mboxo or mboxrd) into raw messages.
//!
//! Notes for callers:
//! - An oversized message comes back as a [`Quarantine`] (reason "message of N
//!   bytes exceeds the M byte limit"); only its header block is read.
//! - mail-parser promises not to panic; as a safety net its calls (and the
//!   building of the message) run under `catch_unwind`, and a caught panic
//!   becomes a quarantine. That net needs `panic = "unwind"` (the default).
//! - `new_text` is what classification reads: the reply without quoted history
//!   and signature. When the customer's own text is tiny ("FYI, see below"), the
//!   forwarded original (inline block or message/rfc822 part) is kept in it; the
//!   rules are in the `reply` module. `forwarded_text` always holds the
//!   forwarded originals.
//!
//! Inside, the work is split by concern, one module each: `header_block`
//! (pre-scan of the raw header block: envelope line, line endings, binary junk,
//! size), `addresses`, `bodies` (text/HTML body selection), `html` (HTML to
//! readable text), `reply` (new text of a reply: quoted history, signatures,
//! forwarded blocks), `attachments` (metadata and file-name sanitising),
//! `automatic` (auto-submitted, bounce and list cues) and `mbox`.

mod addresses;
mod attachments;
mod automatic;
mod bodies;
mod header_block;
mod html;
mod mbox;
mod normalise;
mod reply;

use sha2::{Digest, Sha256};
use supportd_core::{Address, InboundMessage};

pub use attachments::{AttachmentContent, attachment_content};
pub use mbox::split_mbox;
pub use normalise::normalise;

/// Bounds on what [`normalise`] will parse. Anything over a bound is quarantined,
/// not parsed, so one hostile message cannot exhaust memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Raw messages larger than this are quarantined after reading only their header block.
    pub max_message_bytes: usize,
    /// Total number of MIME parts, nested messages included.
    pub max_mime_parts: usize,
    /// Nesting depth of multiparts and enclosed messages.
    pub max_mime_depth: usize,
    /// Size of the top-level header block.
    pub max_header_bytes: usize,
}

impl Limits {
    /// 25 MiB per message, 1000 parts, depth 50, 256 KiB of header.
    pub const DEFAULT: Limits = Limits {
        max_message_bytes: 25 * 1024 * 1024,
        max_mime_parts: 1000,
        max_mime_depth: 50,
        max_header_bytes: 256 * 1024,
    };
}

/// The outcome of [`normalise`].
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Normalised {
    /// A parsed message, possibly with warnings.
    Message(InboundMessage),
    /// Cannot be parsed at all (or over a limit): must be stored raw and quarantined, never dropped.
    Quarantine(Quarantine),
}

/// A message that could not be normalised, with what could be read of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// What is wrong, for the operator (for example "empty message" or
    /// "message of N bytes exceeds the M byte limit").
    pub reason: String,
    /// The Message-ID from the header block without angle brackets, or one
    /// synthesised from the content hash (`<hex>@supportd.invalid`).
    pub message_id: String,
    /// Best-effort decoded Subject, `""` when unreadable.
    pub subject: String,
    /// Best-effort From address.
    pub from: Option<Address>,
    /// Raw size in bytes.
    pub size: u64,
    /// SHA-256 of the raw bytes, lower-case hex.
    pub content_hash: String,
}

/// SHA-256 of `raw`, lower-case hex.
pub fn content_hash(raw: &[u8]) -> String {
    hex::encode(Sha256::digest(raw))
}

/// The Message-ID used when a mail has none: the first 32 hex digits of its
/// content hash at the reserved `supportd.invalid` domain. Same bytes, same id.
fn synthesised_message_id(content_hash: &str) -> String {
    let prefix = content_hash.get(..32).unwrap_or(content_hash);
    format!("{prefix}@supportd.invalid")
}
