//! The outbox: types, and the pure decisions about which mail a stored item
//! asks for (and which of it is suppressed, and why).
//!
//! Written by ingest in the batch's transaction ([`plan_mails`] per created
//! ticket), read and marked by the outbox worker (crate `supportd-outbound`).
//! Loop protection lives here too: [`loop_references`] finds supportd's own
//! Message-IDs and ticket header inside a bounce or an auto-reply, so such mail
//! threads onto its ticket instead of opening a new one.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use supportd_core::{Action, InboundMessage, RouteDecision, TicketRef};

/// What the store needs to decide outbox rows: where our Message-IDs live, the
/// escalation desk, and the limits that keep supportd from flooding anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxPolicy {
    /// The domain of every Message-ID supportd writes (`outbox-7.k3x9@DOMAIN`).
    pub message_id_domain: String,
    /// Where Microsoft escalation hand-offs go.
    pub escalation_address: String,
    /// At most this many automatic mails (acknowledgments and scope notices)
    /// per recipient address within `acknowledgment_window_s`.
    pub acknowledgment_limit: u32,
    pub acknowledgment_window_s: i64,
    /// After a permanent bounce, no automatic mail to the address for this long.
    pub bounce_suppression_s: i64,
}

impl OutboxPolicy {
    /// The policy a store uses until it is given one: 5 acknowledgments per
    /// hour, 30 days of silence after a permanent bounce, Message-IDs under
    /// `supportd.invalid`. `supportd` always sets its configured policy.
    pub fn fallback() -> OutboxPolicy {
        OutboxPolicy {
            message_id_domain: "supportd.invalid".to_owned(),
            escalation_address: "microsoft-escalation@supportd.invalid".to_owned(),
            acknowledgment_limit: 5,
            acknowledgment_window_s: 3600,
            bounce_suppression_s: 30 * 24 * 3600,
        }
    }
}

macro_rules! outbox_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $slug:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $slug)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn slug(self) -> &'static str {
                match self {
                    $($name::$variant => $slug,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.slug())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|item| item.slug() == value)
                    .ok_or_else(|| format!("`{value}` is not a {}", stringify!($name)))
            }
        }
    };
}

outbox_enum! {
    /// What an outbox mail is; decides its template.
    OutboxKind {
        /// "We have your request", with the ticket tag.
        Acknowledge => "acknowledge",
        /// "This is outside your support scope, and here is why."
        ScopeNotice => "scope_notice",
        /// The hand-off to the Microsoft escalation desk.
        MicrosoftEscalation => "microsoft_escalation",
        /// A reply written by staff.
        StaffReply => "staff_reply",
    }
}

outbox_enum! {
    /// Where an outbox row is in its life.
    OutboxStatus {
        /// Waiting to be sent (or retried at `next_attempt_at`).
        Queued => "queued",
        Sent => "sent",
        /// Never sent; the reason says why (loop protection, rate limit, bounce).
        Suppressed => "suppressed",
        /// Refused permanently by the server, or out of attempts.
        Dead => "dead",
    }
}

impl OutboxKind {
    /// Automatic mail to the customer: rate limited and loop protected.
    pub fn is_automatic_reply(self) -> bool {
        matches!(self, OutboxKind::Acknowledge | OutboxKind::ScopeNotice)
    }
}

/// One outbox row as the worker and `supportd outbox list` see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxMail {
    pub id: i64,
    pub ticket_ref: TicketRef,
    pub kind: OutboxKind,
    pub status: OutboxStatus,
    pub recipient: String,
    /// Without angle brackets; fixed when the row was written.
    pub message_id: String,
    /// The stored customer message this mail answers (`StoredMessage::id`).
    pub source_message: Option<i64>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// The text of a staff reply.
    pub body: Option<String>,
    pub actor: String,
    /// Why it was suppressed, or the last error / final server reply.
    pub reason: Option<String>,
    pub attempts: u32,
    pub next_attempt_at: i64,
    /// The bytes as first rendered; resent unchanged on every retry.
    #[serde(skip)]
    pub rendered: Option<Vec<u8>>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// What a claim asks of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxClaim {
    /// Unix seconds.
    pub now: i64,
    /// The claimed rows belong to the claimer until `now + lease_s`; after
    /// that (a crashed worker) another claim takes them again.
    pub lease_s: i64,
    pub limit: u32,
}

/// A mail an ingested item asks for, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedMail {
    pub kind: OutboxKind,
    pub recipient: String,
    pub recipient_key: String,
    /// `None`: queued; `Some(reason)`: suppressed.
    pub suppressed: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
}

/// What the database says about the recipients of a batch.
#[derive(Debug, Default)]
pub(crate) struct RecipientFacts {
    /// Automatic mails (queued or sent) per recipient key within the window.
    pub recent_automatic: HashMap<String, u32>,
    /// Suppression end per recipient key, for suppressions still running.
    pub suppressed_until: HashMap<String, i64>,
}

/// Local parts that never read their mail.
const NO_REPLY_LOCAL_PARTS: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "mailer-daemon",
    "postmaster",
    "bounce",
    "bounces",
];

/// True for an address that must never get automatic mail by its form alone.
pub(crate) fn is_no_reply_address(email: &str) -> bool {
    let local = email
        .rsplit_once('@')
        .map_or(email, |(local, _)| local)
        .to_ascii_lowercase();
    let base = local.split('+').next().unwrap_or_default();
    NO_REPLY_LOCAL_PARTS.contains(&base)
        || base.starts_with("noreply")
        || base.starts_with("no-reply")
        || base.starts_with("bounce-")
}

/// Why a message's sender gets no mail at all, or `None` when it may.
fn sender_block_reason(message: &InboundMessage) -> Option<String> {
    if message.flags.bounce {
        return Some("sender is a bounce (delivery status notification)".to_owned());
    }
    if message.flags.auto_submitted {
        let cue = message.flags.auto_reason.as_deref().unwrap_or("automatic");
        return Some(format!("sender is machine-sent mail ({cue})"));
    }
    let Some(address) = message.reply_address() else {
        return Some("message has no sender address".to_owned());
    };
    if !address.email.contains('@') {
        return Some("sender address has no domain".to_owned());
    }
    if is_no_reply_address(&address.email) {
        return Some("sender is a no-reply address".to_owned());
    }
    None
}

/// The mails a newly created ticket asks for, in action order, each queued
/// or suppressed with its reason. A scope notice replaces the plain
/// acknowledgment. Counts planned mails into `facts`, so a later item of the
/// same batch sees them.
pub(crate) fn plan_mails(
    message: &InboundMessage,
    route: &RouteDecision,
    policy: &OutboxPolicy,
    now: i64,
    facts: &mut RecipientFacts,
) -> Vec<PlannedMail> {
    let scope_notice = route.actions.contains(&Action::ScopeNotice);
    let blocked = sender_block_reason(message);
    let customer = message
        .reply_address()
        .map(|address| address.email.clone())
        .unwrap_or_default();
    let in_reply_to = (!message.message_id_synthesized).then(|| message.message_id.clone());
    let mut references = message.references.clone();
    if let Some(id) = &in_reply_to
        && !references.contains(id)
    {
        references.push(id.clone());
    }
    let mut mails = Vec::new();
    for action in &route.actions {
        let kind = match action {
            Action::Acknowledge if scope_notice => continue,
            Action::Acknowledge => OutboxKind::Acknowledge,
            Action::ScopeNotice => OutboxKind::ScopeNotice,
            Action::MicrosoftEscalation => OutboxKind::MicrosoftEscalation,
        };
        let recipient = if kind == OutboxKind::MicrosoftEscalation {
            policy.escalation_address.clone()
        } else {
            customer.clone()
        };
        let recipient = if recipient.is_empty() {
            "(none)".to_owned()
        } else {
            recipient
        };
        let recipient_key = recipient.to_lowercase();
        let suppressed = if let Some(reason) = &blocked {
            Some(reason.clone())
        } else if kind.is_automatic_reply() {
            automatic_reply_limit(&recipient_key, policy, now, facts)
        } else {
            None
        };
        if suppressed.is_none() && kind.is_automatic_reply() {
            *facts
                .recent_automatic
                .entry(recipient_key.clone())
                .or_default() += 1;
        }
        mails.push(PlannedMail {
            kind,
            recipient,
            recipient_key,
            suppressed,
            in_reply_to: in_reply_to.clone(),
            references: references.clone(),
        });
    }
    mails
}

/// Why an automatic reply to `recipient_key` must not go now, if it must not.
fn automatic_reply_limit(
    recipient_key: &str,
    policy: &OutboxPolicy,
    now: i64,
    facts: &RecipientFacts,
) -> Option<String> {
    if let Some(until) = facts.suppressed_until.get(recipient_key)
        && *until > now
    {
        return Some(format!(
            "address bounced permanently; no automatic mail until {until}"
        ));
    }
    let sent = facts
        .recent_automatic
        .get(recipient_key)
        .copied()
        .unwrap_or(0);
    (sent >= policy.acknowledgment_limit).then(|| {
        format!(
            "rate limit: {sent} automatic mails to this address within {} s (limit {})",
            policy.acknowledgment_window_s, policy.acknowledgment_limit
        )
    })
}

/// The Message-ID of outbox row `id`: `outbox-<id>.<random>@<domain>`.
pub(crate) fn outbox_message_id(id: i64, domain: &str) -> String {
    let random: String = (0..12)
        .map(|_| fastrand::alphanumeric().to_ascii_lowercase())
        .collect();
    format!("outbox-{id}.{random}@{domain}")
}

/// How much of a raw message is searched for supportd's own ids.
const LOOP_SCAN_BYTES: usize = 256 * 1024;

/// What a machine-sent message says about supportd's own mail: the outbox
/// Message-IDs it names anywhere (a bounce quotes the original's headers),
/// the ticket header it quotes, and whether it reports a permanent failure.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LoopReferences {
    pub outbox_message_ids: Vec<String>,
    pub ticket_header: Option<i64>,
    pub permanent_failure: bool,
}

/// Reads [`LoopReferences`] from the raw bytes of a machine-sent message.
pub(crate) fn loop_references(raw: &[u8]) -> LoopReferences {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(LOOP_SCAN_BYTES)]);
    let mut references = LoopReferences::default();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find("outbox-") {
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| c == '>' || c.is_whitespace() || c == '"' || c == ';' || c == ',')
            .unwrap_or(candidate.len());
        let id = &candidate[..end];
        if is_outbox_message_id(id) && !references.outbox_message_ids.iter().any(|k| k == id) {
            references.outbox_message_ids.push(id.to_owned());
        }
        rest = &candidate[end.max(1)..];
    }
    for line in text.lines() {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case(TICKET_HEADER)
            && let Ok(ticket_ref) = value.trim().parse::<TicketRef>()
        {
            references.ticket_header = i64::try_from(ticket_ref.number()).ok();
            break;
        }
    }
    let lower = text.to_ascii_lowercase();
    references.permanent_failure = lower.lines().any(|line| {
        let line = line.trim();
        line.starts_with("action: failed")
            || (line.starts_with("status: 5") && line.len() >= "status: 5.".len())
    });
    references
}

/// The header supportd puts on everything it sends, naming the ticket.
pub const TICKET_HEADER: &str = "X-Supportd-Ticket";

fn is_outbox_message_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("outbox-") else {
        return false;
    };
    let Some((local, domain)) = rest.split_once('@') else {
        return false;
    };
    let Some((number, random)) = local.split_once('.') else {
        return false;
    };
    !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && !random.is_empty()
        && random.bytes().all(|b| b.is_ascii_alphanumeric())
        && !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use supportd_core::{Address, MessageFlags, Priority, QueueName};

    fn message(from: &str, flags: MessageFlags) -> InboundMessage {
        InboundMessage {
            message_id: "m1@customer.example".into(),
            message_id_synthesized: false,
            in_reply_to: vec![],
            references: vec!["root@customer.example".into()],
            from: Some(Address {
                name: None,
                email: from.into(),
            }),
            reply_to: vec![],
            to: vec![],
            cc: vec![],
            subject: "VM down".into(),
            date: None,
            body_text: String::new(),
            body_html: None,
            new_text: String::new(),
            forwarded_text: String::new(),
            attachments: vec![],
            flags,
            size: 0,
            content_hash: "h".into(),
            warnings: vec![],
        }
    }

    fn route(actions: &[Action]) -> RouteDecision {
        RouteDecision {
            queue: QueueName::parse("platform-tier1").unwrap(),
            priority: Priority::Normal,
            first_response_due: 0,
            rule: "r".into(),
            reasons: vec![],
            actions: actions.to_vec(),
        }
    }

    #[test]
    fn acknowledgments_thread_to_the_customer_message_and_are_rate_limited() {
        let policy = OutboxPolicy::fallback();
        let mut facts = RecipientFacts::default();
        let customer = message("Ann@Contoso.example", MessageFlags::default());
        let mut statuses = Vec::new();
        for _ in 0..7 {
            let mails = plan_mails(
                &customer,
                &route(&[Action::Acknowledge]),
                &policy,
                0,
                &mut facts,
            );
            assert_eq!(mails.len(), 1);
            assert_eq!(mails[0].recipient_key, "ann@contoso.example");
            assert_eq!(mails[0].in_reply_to.as_deref(), Some("m1@customer.example"));
            assert_eq!(
                mails[0].references,
                ["root@customer.example", "m1@customer.example"]
            );
            statuses.push(mails[0].suppressed.is_none());
        }
        assert_eq!(statuses, [true, true, true, true, true, false, false]);
    }

    #[test]
    fn machine_sent_and_no_reply_senders_get_nothing() {
        let policy = OutboxPolicy::fallback();
        let mut facts = RecipientFacts::default();
        let auto = MessageFlags {
            auto_submitted: true,
            auto_reason: Some("Auto-Submitted: auto-replied".into()),
            ..MessageFlags::default()
        };
        for sender in [
            message("ann@contoso.example", auto),
            message("no-reply@contoso.example", MessageFlags::default()),
            message("MAILER-DAEMON@contoso.example", MessageFlags::default()),
        ] {
            let mails = plan_mails(
                &sender,
                &route(&[Action::Acknowledge, Action::MicrosoftEscalation]),
                &policy,
                0,
                &mut facts,
            );
            assert_eq!(mails.len(), 2);
            assert!(mails.iter().all(|mail| mail.suppressed.is_some()));
        }
    }

    #[test]
    fn a_scope_notice_replaces_the_acknowledgment_and_escalations_go_to_the_desk() {
        let policy = OutboxPolicy::fallback();
        let mut facts = RecipientFacts::default();
        let customer = message("ann@contoso.example", MessageFlags::default());
        let mails = plan_mails(
            &customer,
            &route(&[
                Action::Acknowledge,
                Action::ScopeNotice,
                Action::MicrosoftEscalation,
            ]),
            &policy,
            0,
            &mut facts,
        );
        let kinds: Vec<_> = mails.iter().map(|mail| mail.kind).collect();
        assert_eq!(
            kinds,
            [OutboxKind::ScopeNotice, OutboxKind::MicrosoftEscalation]
        );
        assert_eq!(mails[1].recipient, policy.escalation_address);
    }

    #[test]
    fn a_bounced_address_is_suppressed_until_the_end() {
        let policy = OutboxPolicy::fallback();
        let mut facts = RecipientFacts::default();
        facts
            .suppressed_until
            .insert("ann@contoso.example".into(), 100);
        let customer = message("ann@contoso.example", MessageFlags::default());
        let ack = route(&[Action::Acknowledge]);
        assert!(
            plan_mails(&customer, &ack, &policy, 50, &mut facts)[0]
                .suppressed
                .is_some()
        );
        assert!(
            plan_mails(&customer, &ack, &policy, 100, &mut facts)[0]
                .suppressed
                .is_none()
        );
    }

    #[test]
    fn loop_references_find_our_ids_the_ticket_header_and_permanence() {
        let raw = b"From: MAILER-DAEMON@mx.example\r\nSubject: Undelivered\r\n\r\n\
            Reporting-MTA: dns; mx.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
            Message-ID: <outbox-42.ab12cd@support.example>\r\n\
            X-Supportd-Ticket: CS-1042\r\nIn-Reply-To: <outbox-x@support.example>\r\n";
        let found = loop_references(raw);
        assert_eq!(
            found.outbox_message_ids,
            ["outbox-42.ab12cd@support.example"]
        );
        assert_eq!(found.ticket_header, Some(1042));
        assert!(found.permanent_failure);
        let delayed = b"Action: delayed\r\nStatus: 4.4.1\r\nMessage-ID: <outbox-1.a@x.example>\r\n";
        assert!(!loop_references(delayed).permanent_failure);
    }

    #[test]
    fn no_reply_addresses_are_recognised_by_their_local_part() {
        for address in [
            "noreply@x.example",
            "No-Reply@x.example",
            "donotreply@x.example",
            "bounces+123@x.example",
            "noreply-alerts@x.example",
        ] {
            assert!(is_no_reply_address(address), "{address}");
        }
        for address in ["ann@x.example", "replyteam@x.example", "norah@x.example"] {
            assert!(!is_no_reply_address(address), "{address}");
        }
    }
}
