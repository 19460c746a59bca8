//! Domain types of supportd, shared by every other crate.
//!
//! The pipeline is a chain of these types:
//!
//! ```text
//! raw bytes --mail::normalise--> InboundMessage --classifier--> Classification
//!           --router--> RouteDecision --store--> Ticket (with its TicketRef)
//! ```
//!
//! - [`InboundMessage`] is a parsed, normalised mail: addresses, thread keys,
//!   decoded subject, text body, the new text of a reply, attachment metadata
//!   and the flags that matter for routing (auto-submitted, bounce, forwarded).
//! - [`Classification`] carries the four labels of LABELS.md ([`Tier`],
//!   [`Category`], in-scope, microsoft), the entities found, a confidence and
//!   the reasons that decided it.
//! - [`RouteDecision`] is the queue, [`Priority`], first-response SLA and the
//!   mail [`Action`]s a classification leads to, with the rule that decided it.
//! - [`TicketRef`] is the customer-visible ticket reference (`CS-1042`).
//! - [`health::SourceBoard`] holds what each mail source last reported about
//!   itself, for `/readyz` and `/metrics`.
//!
//! This crate does no I/O and depends on serde only.

mod category;
pub mod health;
mod message;
mod ticket;

pub use category::{Category, ParseLabelError, Tier, in_scope};
pub use message::{Address, Attachment, InboundMessage, MessageFlags};
pub use ticket::{
    AccountRecord, Action, Classification, Entities, Priority, QueueName, Relationship,
    RouteDecision, TicketRef, TicketStatus,
};
