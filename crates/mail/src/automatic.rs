//! Machine-sent mail: auto-replies, bulk and list mail, bounces. Such mail must
//! never get an automatic answer (no mail loops).

use mail_parser::{Message, MimeHeaders};
use supportd_core::Address;

/// The raw (undecoded) value of the first top-level header called `name`, trimmed.
pub(crate) fn raw_header<'message>(
    message: &'message Message<'_>,
    name: &str,
) -> Option<&'message str> {
    let root = message.parts.first()?;
    root.headers
        .iter()
        .find(|header| header.name.as_str().eq_ignore_ascii_case(name))
        .and_then(|header| {
            message
                .raw_message
                .get(header.offset_start as usize..header.offset_end as usize)
        })
        .map(|value| std::str::from_utf8(value).unwrap_or("").trim())
}

fn has_header(message: &Message<'_>, name: &str) -> bool {
    message.parts.first().is_some_and(|root| {
        root.headers
            .iter()
            .any(|header| header.name.as_str().eq_ignore_ascii_case(name))
    })
}

/// What the automatic-mail cues say about a message.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AutomaticCues {
    /// One entry per cue that fired, naming it.
    pub reasons: Vec<String>,
    pub bounce: bool,
}

/// Subject prefixes that auto-responders use (Outlook, Apple Mail, Exchange,
/// German and French clients). Only a prefix counts, never a word inside.
const AUTO_REPLY_SUBJECT_PREFIXES: &[&str] = &[
    "automatic reply:",
    "auto reply:",
    "auto-reply:",
    "autoreply:",
    "auto response:",
    "out of office:",
    "out of office reply:",
    "out of office autoreply:",
    "abwesenheitsnotiz:",
    "automatische antwort:",
    "réponse automatique :",
    "réponse automatique:",
];

/// Checks every cue; see [`supportd_core::MessageFlags`].
pub(crate) fn automatic_cues(
    message: &Message<'_>,
    from: Option<&Address>,
    subject: &str,
) -> AutomaticCues {
    let mut cues = AutomaticCues::default();

    if let Some(content_type) = message.parts.first().and_then(|root| root.content_type())
        && content_type.ctype().eq_ignore_ascii_case("multipart")
        && content_type
            .subtype()
            .is_some_and(|subtype| subtype.eq_ignore_ascii_case("report"))
    {
        let report_type = content_type.attribute("report-type").unwrap_or("").trim();
        cues.reasons.push(if report_type.is_empty() {
            "multipart/report".to_string()
        } else {
            format!("multipart/report ({})", report_type.to_ascii_lowercase())
        });
        // Read receipts (disposition-notification) and abuse reports
        // (feedback-report) are automatic but not delivery failures.
        if report_type.is_empty() || report_type.eq_ignore_ascii_case("delivery-status") {
            cues.bounce = true;
        }
    }

    if let Some(from) = from {
        let local_part = from.email.split('@').next().unwrap_or("");
        if local_part.eq_ignore_ascii_case("mailer-daemon")
            || local_part.eq_ignore_ascii_case("postmaster")
        {
            cues.reasons.push(format!("From {local_part}"));
            cues.bounce = true;
        }
    }

    if let Some(auto_submitted) = raw_header(message, "Auto-Submitted") {
        let keyword = auto_submitted.split(';').next().unwrap_or("").trim();
        if !keyword.eq_ignore_ascii_case("no") {
            cues.reasons
                .push(format!("Auto-Submitted: {}", keyword.to_ascii_lowercase()));
        }
    }

    for header_name in ["X-Autoreply", "X-Autorespond"] {
        if has_header(message, header_name) {
            cues.reasons.push(format!("{header_name} header"));
        }
    }

    if let Some(precedence) = raw_header(message, "Precedence") {
        let precedence = precedence.to_ascii_lowercase();
        if matches!(precedence.as_str(), "bulk" | "junk" | "list") {
            cues.reasons.push(format!("Precedence: {precedence}"));
        }
    }

    if has_header(message, "X-Auto-Response-Suppress") {
        cues.reasons
            .push("X-Auto-Response-Suppress header".to_string());
    }

    for header_name in ["List-Id", "List-Unsubscribe"] {
        if has_header(message, header_name) {
            cues.reasons.push(format!("{header_name} header"));
        }
    }

    if let Some(return_path) = raw_header(message, "Return-Path")
        && return_path.split_whitespace().collect::<String>() == "<>"
    {
        cues.reasons.push("Return-Path: <>".to_string());
    }

    let lower_subject = subject.to_lowercase();
    if let Some(prefix) = AUTO_REPLY_SUBJECT_PREFIXES
        .iter()
        .find(|prefix| lower_subject.starts_with(*prefix))
    {
        cues.reasons.push(format!(
            "Subject starts with {:?}",
            prefix.trim_end_matches([' ', ':'])
        ));
    }

    cues
}
