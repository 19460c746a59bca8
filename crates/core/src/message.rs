//! A parsed, normalised inbound mail.

use serde::{Deserialize, Serialize};

/// A mailbox address with its display name, as written by the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Display name, decoded (RFC 2047), `None` when absent or empty.
    pub name: Option<String>,
    /// The address itself, trimmed; the domain is lower-cased, the local part kept.
    pub email: String,
}

impl Address {
    /// The domain part, lower-case, or `""` when the address has none.
    pub fn domain(&self) -> &str {
        self.email.rsplit_once('@').map_or("", |(_, domain)| domain)
    }
}

/// Metadata of one attachment; the bytes stay in the raw message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// File name with path separators, control characters and leading dots removed,
    /// so it is safe to offer in a Content-Disposition or to write to disk.
    pub filename: String,
    /// `type/subtype`, lower-case.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: u64,
    /// SHA-256 of the decoded bytes, lower-case hex.
    pub sha256: String,
}

/// What the normaliser noticed about a message that matters for routing and replies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFlags {
    /// Machine-sent mail (Auto-Submitted, Precedence bulk/junk/list, X-Autoreply,
    /// X-Auto-Response-Suppress, List-Id, MAILER-DAEMON, multipart/report DSN):
    /// it never gets an automatic reply. `auto_reason` says which cue fired.
    pub auto_submitted: bool,
    pub auto_reason: Option<String>,
    /// A delivery status notification (bounce): multipart/report or from MAILER-DAEMON.
    pub bounce: bool,
    /// The mail forwards another one (Fwd: subject, forwarded-message marker or a
    /// message/rfc822 part).
    pub forwarded: bool,
}

/// A mail after normalisation: everything the classifier, the router and the store need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// Message-ID without angle brackets. Synthesised from the content hash
    /// (`<sha256-prefix>@supportd.invalid`) when the mail has none.
    pub message_id: String,
    pub message_id_synthesized: bool,
    /// In-Reply-To and References ids, without angle brackets, in header order.
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<Address>,
    pub reply_to: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    /// Subject, RFC 2047 decoded, whitespace collapsed; `""` when absent.
    pub subject: String,
    /// Date header as Unix seconds, when present and valid.
    pub date: Option<i64>,
    /// The whole text body: text/plain preferred, HTML converted to text otherwise.
    pub body_text: String,
    /// The HTML body when the mail has one (kept for display, sanitised there).
    pub body_html: Option<String>,
    /// The new text of a reply: `body_text` without quoted history and signature.
    /// Classification reads this.
    pub new_text: String,
    /// Text of forwarded originals (message/rfc822 parts): their subject and body.
    pub forwarded_text: String,
    pub attachments: Vec<Attachment>,
    pub flags: MessageFlags,
    /// Raw size in bytes.
    pub size: u64,
    /// SHA-256 of the raw bytes, lower-case hex: with the Message-ID, the idempotency key.
    pub content_hash: String,
    /// Things the parser had to work around (bad date, undecodable charset, …).
    pub warnings: Vec<String>,
}

impl InboundMessage {
    /// The address to answer: Reply-To when given, else From.
    pub fn reply_address(&self) -> Option<&Address> {
        self.reply_to.first().or(self.from.as_ref())
    }

    /// The sender address, lower-case, or `""`.
    pub fn sender_email(&self) -> String {
        self.from
            .as_ref()
            .map(|address| address.email.to_lowercase())
            .unwrap_or_default()
    }
}
