//! Rendering an outbox row into message bytes: templates as data, headers by
//! lettre's builder. Pure: no I/O but reading the template folder once.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart, header::Header};
use minijinja::Environment;
use serde::Serialize;
use supportd_core::Tier;
use supportd_store::{OutboxKind, OutboxMail, StoredMessage, TICKET_HEADER, TicketDetail};

use crate::OutboundError;

/// How supportd presents itself, from the configuration.
#[derive(Debug, Clone)]
pub struct Identity {
    /// From: of every mail (e.g. CenturyLink Cloud Support <CloudSupport@centurylink.com>).
    pub from: Mailbox,
    /// How customers reach support, shown in every customer mail.
    pub contact: Contact,
}

/// The contact options of the scope document, all from the configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    pub phone: String,
    pub email: String,
    pub portal: String,
}

/// Everything one rendering needs.
pub struct RenderInput<'a> {
    pub mail: &'a OutboxMail,
    pub ticket: &'a TicketDetail,
    /// The customer message the mail answers (first message when unknown).
    pub source: Option<&'a StoredMessage>,
    /// Its raw bytes, attached to an escalation as message/rfc822.
    pub source_raw: Option<&'a [u8]>,
    pub now: SystemTime,
}

/// Templates compiled once, plus the identity.
pub struct Renderer {
    environment: Environment<'static>,
    identity: Identity,
}

/// Template names (files in the template folder), per kind of mail. The
/// plain text one must exist; `<name>.html` is optional.
fn template_name(mail: &OutboxMail, ticket: &TicketDetail) -> &'static str {
    match mail.kind {
        OutboxKind::Acknowledge => "acknowledgment",
        OutboxKind::ScopeNotice => match ticket.ticket.labels.map(|labels| labels.tier) {
            Some(Tier::Unmanaged) | None => "scope_notice_unmanaged",
            Some(_) => "scope_notice_platform",
        },
        OutboxKind::MicrosoftEscalation => "microsoft_escalation",
        OutboxKind::StaffReply => "staff_reply",
    }
}

const TEMPLATE_NAMES: &[&str] = &[
    "acknowledgment",
    "scope_notice_unmanaged",
    "scope_notice_platform",
    "microsoft_escalation",
    "staff_reply",
];

/// Longest subject kept from incoming mail, in characters.
const MAX_SUBJECT_CHARS: usize = 200;
/// Longest summary of the customer's text in an escalation, in characters.
const MAX_SUMMARY_CHARS: usize = 1500;

/// Text from incoming mail made safe for a header: control characters
/// (CR and LF above all) become spaces, runs of whitespace one space, and
/// the result is cut to `max_chars`.
pub fn sanitize_header_text(text: &str, max_chars: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max_chars)
        .collect()
}

/// The original subject without reply prefixes and without our own tag.
fn base_subject(subject: &str) -> String {
    let mut subject = sanitize_header_text(subject, MAX_SUBJECT_CHARS);
    loop {
        let trimmed = subject.trim_start();
        let lower = trimmed.to_ascii_lowercase();
        let next = if let Some(rest) = ["re:", "aw:", "fw:", "fwd:", "sv:"]
            .iter()
            .find_map(|prefix| lower.starts_with(prefix).then(|| &trimmed[prefix.len()..]))
        {
            rest.to_owned()
        } else if trimmed.starts_with('[')
            && let Some(close) = trimmed.find(']')
            && trimmed[1..close]
                .parse::<supportd_core::TicketRef>()
                .is_ok()
        {
            trimmed[close + 1..].to_owned()
        } else {
            break;
        };
        subject = next;
    }
    let subject = subject.trim().to_owned();
    if subject.is_empty() {
        "your support request".to_owned()
    } else {
        subject
    }
}

/// `Auto-Submitted` (RFC 3834).
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-replied".to_owned())
    }
}

/// `X-Supportd-Ticket: CS-1042`, on everything supportd sends.
#[derive(Debug, Clone)]
struct SupportdTicket(String);

impl Header for SupportdTicket {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(TICKET_HEADER)
    }
    fn parse(value: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(SupportdTicket(value.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `X-Auto-Response-Suppress: All`: asks Exchange not to answer our mail.
#[derive(Debug, Clone)]
struct AutoResponseSuppress;

impl Header for AutoResponseSuppress {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Auto-Response-Suppress")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoResponseSuppress)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "All".to_owned())
    }
}

#[derive(Serialize)]
struct TemplateContext<'a> {
    ticket_ref: String,
    /// The customer's subject, sanitised, without prefixes.
    subject: String,
    /// Display name of the customer, sanitised; "" when unknown.
    customer_name: String,
    customer_email: String,
    /// The account directory's customer name, when one matched.
    customer: String,
    queue: &'a str,
    priority: &'a str,
    category: String,
    tier: String,
    first_response_due: String,
    subscription_ids: Vec<String>,
    tenant_ids: Vec<String>,
    summary: String,
    body: &'a str,
    contact: &'a Contact,
}

impl Renderer {
    /// Reads every template of `folder`: `<name>.txt` must exist for each
    /// kind, `<name>.html` may.
    pub fn load(folder: &Path, identity: Identity) -> Result<Renderer, OutboundError> {
        let mut environment = Environment::new();
        environment.set_keep_trailing_newline(true);
        for name in TEMPLATE_NAMES {
            for (extension, required) in [("txt", true), ("html", false)] {
                let file = format!("{name}.{extension}");
                let path = folder.join(&file);
                match std::fs::read_to_string(&path) {
                    Ok(source) => environment
                        .add_template_owned(file.clone(), source)
                        .map_err(|error| OutboundError::Template {
                            name: path.display().to_string(),
                            reason: format!("{error:#}"),
                        })?,
                    Err(error) if required || error.kind() != std::io::ErrorKind::NotFound => {
                        return Err(OutboundError::Template {
                            name: path.display().to_string(),
                            reason: error.to_string(),
                        });
                    }
                    Err(_) => {}
                }
            }
        }
        Ok(Renderer {
            environment,
            identity,
        })
    }

    /// The message bytes for `input.mail`.
    pub fn render(&self, input: &RenderInput<'_>) -> Result<Vec<u8>, OutboundError> {
        let mail = input.mail;
        let ticket = &input.ticket.ticket;
        let name = template_name(mail, input.ticket);
        let source = input.source.or(input.ticket.messages.first());
        let classification = source.and_then(|message| message.classification.as_ref());
        let original_subject = source.map_or(ticket.subject.as_str(), |m| m.subject.as_str());
        let subject = base_subject(original_subject);
        let summary: String = source
            .map(|message| {
                if message.new_text.trim().is_empty() {
                    message.body_text.as_str()
                } else {
                    message.new_text.as_str()
                }
            })
            .unwrap_or_default()
            .chars()
            .take(MAX_SUMMARY_CHARS)
            .collect();
        let requester = ticket.requester.as_ref();
        let context = TemplateContext {
            ticket_ref: ticket.ticket_ref.to_string(),
            subject: subject.clone(),
            customer_name: requester
                .and_then(|address| address.name.as_deref())
                .map(|name| sanitize_header_text(name, 100))
                .unwrap_or_default(),
            customer_email: requester.map(|a| a.email.clone()).unwrap_or_default(),
            customer: classification
                .and_then(|c| c.account.as_ref())
                .map(|account| account.customer.clone())
                .unwrap_or_default(),
            queue: ticket.queue.as_str(),
            priority: ticket.priority.slug(),
            category: ticket
                .labels
                .map(|labels| labels.category.to_string())
                .unwrap_or_default(),
            tier: ticket
                .labels
                .map(|labels| labels.tier.to_string())
                .unwrap_or_default(),
            first_response_due: format_time(ticket.first_response_due),
            subscription_ids: classification
                .map(|c| c.entities.subscription_ids.clone())
                .unwrap_or_default(),
            tenant_ids: classification
                .map(|c| c.entities.tenant_ids.clone())
                .unwrap_or_default(),
            summary,
            body: mail.body.as_deref().unwrap_or_default(),
            contact: &self.identity.contact,
        };
        let text = self.render_template(&format!("{name}.txt"), &context)?;
        let html_name = format!("{name}.html");
        let html = match self.environment.get_template(&html_name) {
            Ok(_) => Some(self.render_template(&html_name, &context)?),
            Err(_) => None,
        };

        let tag = ticket.ticket_ref.to_string();
        let subject_line = match mail.kind {
            OutboxKind::MicrosoftEscalation => {
                format!("[{tag}] Microsoft escalation: {subject}")
            }
            _ => format!("[{tag}] Re: {subject}"),
        };
        let recipient: Mailbox =
            mail.recipient
                .parse()
                .map_err(
                    |error: lettre::address::AddressError| OutboundError::Address {
                        address: mail.recipient.clone(),
                        reason: error.to_string(),
                    },
                )?;
        let mut builder = lettre::Message::builder()
            .from(self.identity.from.clone())
            .to(recipient)
            .subject(subject_line)
            .date(input.now)
            .message_id(Some(format!("<{}>", mail.message_id)))
            .header(SupportdTicket(tag))
            .header(AutoResponseSuppress);
        if mail.kind != OutboxKind::StaffReply {
            builder = builder.header(AutoSubmitted);
        }
        if mail.kind != OutboxKind::MicrosoftEscalation {
            if let Some(in_reply_to) = &mail.in_reply_to {
                builder = builder.in_reply_to(format!("<{}>", clean_id(in_reply_to)));
            }
            if !mail.references.is_empty() {
                let references: Vec<String> = mail
                    .references
                    .iter()
                    .map(|id| format!("<{}>", clean_id(id)))
                    .collect();
                builder = builder.references(references.join(" "));
            }
        }
        let content = match html {
            Some(html) => MultiPart::alternative_plain_html(text, html),
            None => MultiPart::mixed().singlepart(SinglePart::plain(text)),
        };
        let content = match (mail.kind, input.source_raw) {
            (OutboxKind::MicrosoftEscalation, Some(raw)) => MultiPart::mixed()
                .multipart(content)
                .singlepart(original_attachment(raw)?),
            _ => content,
        };
        let message = builder
            .multipart(content)
            .map_err(|error| OutboundError::Unexpected(anyhow::anyhow!(error)))?;
        Ok(message.formatted())
    }

    fn render_template(
        &self,
        name: &str,
        context: &TemplateContext<'_>,
    ) -> Result<String, OutboundError> {
        let error = |error: minijinja::Error| OutboundError::Template {
            name: name.to_owned(),
            reason: format!("{error:#}"),
        };
        self.environment
            .get_template(name)
            .map_err(error)?
            .render(context)
            .map_err(error)
    }
}

/// A Message-ID from incoming mail, reduced to what may stand between angle
/// brackets (no whitespace, no brackets, no control characters).
fn clean_id(id: &str) -> String {
    id.chars()
        .filter(|c| !c.is_control() && !c.is_whitespace() && *c != '<' && *c != '>')
        .collect()
}

/// The customer's original mail as a message/rfc822 attachment.
fn original_attachment(raw: &[u8]) -> Result<SinglePart, OutboundError> {
    let content_type = ContentType::parse("message/rfc822")
        .map_err(|error| OutboundError::Unexpected(anyhow::anyhow!(error)))?;
    Ok(Attachment::new("original-message.eml".to_owned())
        .body(Body::new(raw.to_vec()), content_type))
}

/// Unix seconds as `2026-11-27 14:00 UTC`.
fn format_time(seconds: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    chrono::DateTime::<chrono::Utc>::from(time)
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_loses_line_breaks_and_control_characters() {
        let hostile = "Help\r\nBcc: victim@example.com\r\n\r\nbody\t\u{0}x";
        let clean = sanitize_header_text(hostile, 200);
        assert!(!clean.contains('\r') && !clean.contains('\n') && !clean.contains('\0'));
        assert_eq!(clean, "Help Bcc: victim@example.com body x");
    }

    #[test]
    fn base_subject_drops_prefixes_and_our_tag() {
        assert_eq!(base_subject("Re: RE: [CS-1042] Re: VM down"), "VM down");
        assert_eq!(base_subject("Fwd: [ext] VM"), "[ext] VM");
        assert_eq!(base_subject("  "), "your support request");
    }

    #[test]
    fn ids_cannot_break_out_of_their_brackets() {
        assert_eq!(clean_id("a@b>\r\nBcc: x@y"), "a@bBcc:x@y");
    }
}
