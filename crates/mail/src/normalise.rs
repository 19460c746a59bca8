//! The entry point: raw bytes to [`Normalised`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::{HeaderName, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use supportd_core::{Address, InboundMessage, MessageFlags};

use crate::addresses::{addresses_of, bare_sender_of, clean_header_text};
use crate::attachments::attachments_of;
use crate::automatic::automatic_cues;
use crate::bodies::{bodies_of, enclosed_messages_text};
use crate::header_block::{self, HeaderScan};
use crate::reply::{TINY_TEXT_WORDS, reply_parts, word_count};
use crate::{Limits, Normalised, Quarantine, content_hash, synthesised_message_id};

/// One parser for every call: it holds only the (empty) custom header map.
static MESSAGE_PARSER: LazyLock<MessageParser> = LazyLock::new(MessageParser::default);

/// Why a message cannot be normalised. The text is the quarantine reason.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UnparseableError {
    #[error("empty message")]
    Empty,
    #[error("message of {size} bytes exceeds the {limit} byte limit")]
    Oversized { size: usize, limit: usize },
    #[error("header block exceeds the {limit} byte limit")]
    HeaderTooLarge { limit: usize },
    #[error("header block has {fields} fields, over the limit of {limit}")]
    TooManyHeaderFields { fields: usize, limit: usize },
    #[error("a header line of {length} bytes exceeds the {limit} byte limit")]
    HeaderLineTooLong { length: usize, limit: usize },
    #[error("no header block: no recognisable header field before the body")]
    NoHeaderBlock,
    #[error("binary data in the header block (NUL bytes or mostly non-text)")]
    BinaryHeader,
    #[error("MIME part count exceeds the limit of {limit}")]
    TooManyParts { limit: usize },
    #[error("MIME nesting depth {depth} exceeds the limit of {limit}")]
    TooDeep { depth: usize, limit: usize },
    #[error("the MIME parser found no message in the bytes")]
    ParserFoundNothing,
    #[error("the MIME parser failed on this message (internal panic caught)")]
    ParserPanicked,
}

/// Normalises one raw message. Never panics, never fails: what cannot be
/// parsed (or is over a limit) comes back as [`Normalised::Quarantine`].
pub fn normalise(raw: &[u8], limits: &Limits) -> Normalised {
    let content_hash = content_hash(raw);
    if raw.iter().all(u8::is_ascii_whitespace) {
        return quarantine(UnparseableError::Empty, &[], raw, content_hash);
    }

    if raw.len() > limits.max_message_bytes {
        // Read only the header block: a bounded prefix is enough.
        let prefix_len = raw
            .len()
            .min(limits.max_header_bytes.saturating_add(64 * 1024));
        let prepared = header_block::prepare(&raw[..prefix_len]);
        let header_scan = header_block::scan(&prepared.bytes, limits.max_header_bytes);
        let header_bytes = readable_header_block(&prepared.bytes, &header_scan);
        let error = UnparseableError::Oversized {
            size: raw.len(),
            limit: limits.max_message_bytes,
        };
        return quarantine(error, header_bytes, raw, content_hash);
    }

    let prepared = header_block::prepare(raw);
    let bytes = prepared.bytes.as_ref();
    let header_scan = header_block::scan(bytes, limits.max_header_bytes);
    let header_bytes = readable_header_block(bytes, &header_scan);
    if header_scan.over_limit {
        let error = UnparseableError::HeaderTooLarge {
            limit: limits.max_header_bytes,
        };
        return quarantine(error, header_bytes, raw, content_hash);
    }
    if header_scan.recognised_fields > limits.max_header_fields {
        let error = UnparseableError::TooManyHeaderFields {
            fields: header_scan.recognised_fields,
            limit: limits.max_header_fields,
        };
        return quarantine(error, &[], raw, content_hash);
    }
    if header_scan.longest_line > limits.max_header_line_bytes {
        let error = UnparseableError::HeaderLineTooLong {
            length: header_scan.longest_line,
            limit: limits.max_header_line_bytes,
        };
        return quarantine(error, &[], raw, content_hash);
    }
    if header_scan.binary_junk {
        return quarantine(UnparseableError::BinaryHeader, &[], raw, content_hash);
    }
    if header_scan.recognised_fields == 0 {
        return quarantine(UnparseableError::NoHeaderBlock, &[], raw, content_hash);
    }

    let message = match catch_unwind(AssertUnwindSafe(|| MESSAGE_PARSER.parse(bytes))) {
        Ok(Some(message)) if !message.parts.is_empty() => message,
        Ok(_) => {
            return quarantine(
                UnparseableError::ParserFoundNothing,
                header_bytes,
                raw,
                content_hash,
            );
        }
        Err(_) => {
            return quarantine(
                UnparseableError::ParserPanicked,
                header_bytes,
                raw,
                content_hash,
            );
        }
    };

    let shape = mime_shape(&message, limits.max_mime_parts);
    if shape.parts > limits.max_mime_parts {
        let error = UnparseableError::TooManyParts {
            limit: limits.max_mime_parts,
        };
        return quarantine(error, header_bytes, raw, content_hash);
    }
    if shape.depth > limits.max_mime_depth {
        let error = UnparseableError::TooDeep {
            depth: shape.depth,
            limit: limits.max_mime_depth,
        };
        return quarantine(error, header_bytes, raw, content_hash);
    }

    let mut warnings = Vec::new();
    if prepared.envelope_stripped {
        warnings.push("mbox envelope line (\"From \") removed before parsing".to_string());
    }
    if prepared.leading_blank_lines_removed {
        warnings.push("blank lines before the header block removed".to_string());
    }
    if prepared.bare_cr_converted {
        warnings.push("bare CR line endings converted to CRLF".to_string());
    }
    if !header_scan.has_blank_line {
        warnings.push("no blank line after the header block".to_string());
    }

    let hash_for_quarantine = content_hash.clone();
    let size = raw.len() as u64;
    let limits = *limits;
    let build = move || inbound_message(&message, &limits, size, content_hash, warnings);
    match catch_unwind(AssertUnwindSafe(build)) {
        Ok(inbound_message) => Normalised::Message(inbound_message),
        Err(_) => quarantine(
            UnparseableError::ParserPanicked,
            header_bytes,
            raw,
            hash_for_quarantine,
        ),
    }
}

/// The header block when it is worth reading for the quarantine record.
fn readable_header_block<'bytes>(bytes: &'bytes [u8], header_scan: &HeaderScan) -> &'bytes [u8] {
    if header_scan.recognised_fields == 0 || header_scan.binary_junk {
        return &[];
    }
    &bytes[..header_scan.header_len.min(bytes.len())]
}

fn quarantine(
    error: UnparseableError,
    header_bytes: &[u8],
    raw: &[u8],
    content_hash: String,
) -> Normalised {
    let headers = if header_bytes.is_empty() {
        None
    } else {
        catch_unwind(AssertUnwindSafe(|| {
            MESSAGE_PARSER.parse_headers(header_bytes)
        }))
        .unwrap_or(None)
    };
    let message_id = headers.as_ref().and_then(message_id_of);
    let subject = headers
        .as_ref()
        .and_then(|headers| root_value(headers, HeaderName::Subject))
        .and_then(HeaderValue::as_text)
        .map(clean_header_text)
        .unwrap_or_default();
    let from = headers.as_ref().and_then(sender_of);
    Normalised::Quarantine(Quarantine {
        reason: error.to_string(),
        message_id: message_id.unwrap_or_else(|| synthesised_message_id(&content_hash)),
        subject,
        from,
        size: raw.len() as u64,
        content_hash,
    })
}

/// The first address of the From header, or the bare word of a bounce's From.
fn sender_of(message: &Message<'_>) -> Option<Address> {
    let from_header = root_value(message, HeaderName::From);
    addresses_of(from_header)
        .into_iter()
        .next()
        .or_else(|| bare_sender_of(from_header))
}

/// The first top-level header called `name`.
fn root_value<'message, 'x>(
    message: &'message Message<'x>,
    name: HeaderName<'static>,
) -> Option<&'message HeaderValue<'x>> {
    message
        .parts
        .first()?
        .headers
        .iter()
        .find(|header| header.name == name)
        .map(|header| &header.value)
}

fn message_id_of(message: &Message<'_>) -> Option<String> {
    ids_of(root_value(message, HeaderName::MessageId))
        .into_iter()
        .next()
}

/// Message ids of an id header, without angle brackets or whitespace.
fn ids_of(header_value: Option<&HeaderValue<'_>>) -> Vec<String> {
    let clean = |id: &str| {
        id.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .split_whitespace()
            .collect::<String>()
    };
    let ids: Vec<String> = match header_value {
        Some(HeaderValue::Text(id)) => vec![clean(id)],
        Some(HeaderValue::TextList(ids)) => ids.iter().map(|id| clean(id)).collect(),
        _ => Vec::new(),
    };
    ids.into_iter().filter(|id| !id.is_empty()).collect()
}

/// Size and depth of the MIME tree, enclosed messages included.
struct MimeShape {
    parts: usize,
    depth: usize,
}

fn mime_shape(message: &Message<'_>, max_parts: usize) -> MimeShape {
    let mut shape = MimeShape { parts: 0, depth: 0 };
    let mut pending: Vec<(&Message<'_>, u32, usize)> = vec![(message, 0, 0)];
    while let Some((current_message, part_id, depth)) = pending.pop() {
        let Some(part) = current_message.parts.get(part_id as usize) else {
            continue;
        };
        shape.parts += 1;
        shape.depth = shape.depth.max(depth);
        if shape.parts > max_parts {
            break;
        }
        match &part.body {
            PartType::Multipart(children) => {
                for &child in children {
                    if child > part_id {
                        pending.push((current_message, child, depth + 1));
                    }
                }
            }
            PartType::Message(enclosed) => pending.push((enclosed, 0, depth + 1)),
            _ => {}
        }
    }
    shape
}

fn inbound_message(
    message: &Message<'_>,
    limits: &Limits,
    size: u64,
    content_hash: String,
    mut warnings: Vec<String>,
) -> InboundMessage {
    let message_id = message_id_of(message);
    let message_id_synthesized = message_id.is_none();
    let message_id = message_id.unwrap_or_else(|| {
        warnings.push("no Message-ID; synthesised one from the content hash".to_string());
        synthesised_message_id(&content_hash)
    });

    let from = sender_of(message);
    if from.is_none() {
        warnings.push("no usable From address".to_string());
    }

    let subject = root_value(message, HeaderName::Subject)
        .and_then(HeaderValue::as_text)
        .map(clean_header_text)
        .unwrap_or_default();
    if subject.contains("=?") && subject.contains("?=") {
        warnings.push("Subject holds an encoded-word that could not be decoded".to_string());
    }

    let date = match root_value(message, HeaderName::Date) {
        Some(HeaderValue::DateTime(date_time)) if date_time.is_valid() => {
            Some(date_time.to_timestamp())
        }
        Some(_) => {
            warnings.push("Date header could not be parsed".to_string());
            None
        }
        None => None,
    };

    let bodies = bodies_of(message);
    collect_decoding_warnings(message, &mut warnings);
    if bodies.text.contains('\u{fffd}') {
        warnings.push("body text holds undecodable bytes (replaced by U+FFFD)".to_string());
    }

    let attachments = attachments_of(message, limits.max_attachments);
    if message.attachments.len() > limits.max_attachments {
        warnings.push(format!(
            "{} attachments, over the limit of {}: only the first {} are listed",
            message.attachments.len(),
            limits.max_attachments,
            limits.max_attachments
        ));
    }
    let has_enclosed_message = message.attachments.iter().any(|&part_id| {
        message.parts.get(part_id as usize).is_some_and(|part| {
            matches!(part.body, PartType::Message(_)) || part.is_content_type("message", "rfc822")
        })
    });

    let subject_is_forward = is_forward_subject(&subject);
    let reply = reply_parts(&bodies.text, subject_is_forward);
    let mut new_text = reply.new_text;
    let mut forwarded_text = reply.forwarded_block;
    let enclosed_text = enclosed_messages_text(message);
    // "FYI" above an attached original: the original is the request (see reply.rs).
    if forwarded_text.is_empty()
        && !enclosed_text.is_empty()
        && word_count(&new_text) < TINY_TEXT_WORDS
    {
        if !new_text.is_empty() {
            new_text.push_str("\n\n");
        }
        new_text.push_str(&enclosed_text);
    }
    if !enclosed_text.is_empty() {
        if !forwarded_text.is_empty() {
            forwarded_text.push_str("\n\n");
        }
        forwarded_text.push_str(&enclosed_text);
    }

    let automatic = automatic_cues(message, from.as_ref(), &subject);
    let flags = MessageFlags {
        auto_submitted: !automatic.reasons.is_empty(),
        auto_reason: (!automatic.reasons.is_empty()).then(|| automatic.reasons.join("; ")),
        bounce: automatic.bounce,
        forwarded: subject_is_forward || reply.has_forward_marker || has_enclosed_message,
    };

    let mut to = addresses_of(root_value(message, HeaderName::To));
    let mut cc = addresses_of(root_value(message, HeaderName::Cc));
    let recipients = to.len() + cc.len();
    if recipients > limits.max_recipients {
        warnings.push(format!(
            "{recipients} To and Cc addresses, over the limit of {}: the rest are ignored",
            limits.max_recipients
        ));
        to.truncate(limits.max_recipients);
        cc.truncate(limits.max_recipients - to.len());
    }

    InboundMessage {
        message_id,
        message_id_synthesized,
        in_reply_to: ids_of(root_value(message, HeaderName::InReplyTo)),
        references: ids_of(root_value(message, HeaderName::References)),
        from,
        reply_to: addresses_of(root_value(message, HeaderName::ReplyTo)),
        to,
        cc,
        subject,
        date,
        body_text: bodies.text,
        body_html: bodies.html,
        new_text,
        forwarded_text,
        attachments,
        flags,
        size,
        content_hash,
        warnings,
    }
}

/// Parts whose transfer encoding failed, and charsets nobody knows.
fn collect_decoding_warnings(message: &Message<'_>, warnings: &mut Vec<String>) {
    for (part_index, part) in message.parts.iter().enumerate() {
        if part.is_encoding_problem {
            warnings.push(format!(
                "part {part_index}: content could not be decoded and was kept as raw text"
            ));
        }
        if !matches!(part.body, PartType::Text(_) | PartType::Html(_)) {
            continue;
        }
        let Some(charset) = part
            .content_type()
            .and_then(|content_type| content_type.attribute("charset"))
        else {
            continue;
        };
        let charset = charset.trim();
        let lower = charset.to_ascii_lowercase().replace('_', "-");
        let is_utf8 = lower == "utf-8" || lower == "utf8" || lower.is_empty();
        if !is_utf8 && charset_decoder(charset.as_bytes()).is_none() {
            warnings.push(format!(
                "part {part_index}: unknown charset {charset:?}, decoded as UTF-8"
            ));
        }
    }
}

/// Subject starting (after `[tags]`) with a forward prefix: Fwd:, Fw:, WG:, TR:, RV:, ENC:.
/// "Re: Fwd:" is a reply to a forward, not a forward.
pub(crate) fn is_forward_subject(subject: &str) -> bool {
    let mut rest = subject.trim_start();
    while let Some(tagged) = rest.strip_prefix('[') {
        match tagged.find(']') {
            Some(end) => rest = tagged[end + 1..].trim_start(),
            None => break,
        }
    }
    let Some((prefix, _)) = rest.split_once(':') else {
        return false;
    };
    let prefix = prefix.trim().to_ascii_lowercase();
    let prefix = prefix.split('[').next().unwrap_or("").trim_end();
    matches!(prefix, "fwd" | "fw" | "wg" | "tr" | "rv" | "enc")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split_mbox;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
    }

    fn message(raw: &[u8]) -> InboundMessage {
        match normalise(raw, &Limits::DEFAULT) {
            Normalised::Message(inbound_message) => inbound_message,
            Normalised::Quarantine(quarantine) => panic!("quarantined: {}", quarantine.reason),
        }
    }

    fn quarantined(raw: &[u8], limits: &Limits) -> Quarantine {
        match normalise(raw, limits) {
            Normalised::Quarantine(quarantine) => quarantine,
            Normalised::Message(inbound_message) => panic!("not quarantined: {inbound_message:?}"),
        }
    }

    #[test]
    fn plain_message_fields() {
        let inbound_message = message(&fixture("plain.eml"));
        assert_eq!(inbound_message.message_id, "plain-0001@northgate-civil.com");
        assert!(!inbound_message.message_id_synthesized);
        let from = inbound_message.from.as_ref().expect("from");
        assert_eq!(from.email, "raj.malhotra@northgate-civil.com");
        assert_eq!(from.name.as_deref(), Some("Raj Malhotra"));
        assert_eq!(inbound_message.subject, "VM won't start after resize");
        assert_eq!(inbound_message.date, Some(1_793_370_120));
        assert_eq!(inbound_message.cc.len(), 2);
        assert_eq!(
            inbound_message.reply_to[0].email,
            "helpdesk@northgate-civil.com"
        );
        assert!(
            inbound_message
                .body_text
                .starts_with("Hi,\n\nOur VM vm-analysis-01")
        );
        assert!(!inbound_message.new_text.contains("Thanks"));
        assert!(inbound_message.warnings.is_empty());
        assert_eq!(
            inbound_message.content_hash,
            content_hash(&fixture("plain.eml"))
        );
    }

    #[test]
    fn html_only_is_converted() {
        let inbound_message = message(&fixture("html_only.eml"));
        assert!(
            inbound_message
                .body_html
                .as_deref()
                .is_some_and(|html| html.contains("<ul>"))
        );
        let text = &inbound_message.body_text;
        assert!(text.contains("all week & we can't work.\n\nSteps so far:"));
        assert!(text.contains("- checked the \"ARP table\""));
        assert!(text.ends_with("Carl Becker\nNetwork Operations"));
        assert!(!text.contains('<') && !text.contains("alert") && !text.contains("margin"));
    }

    #[test]
    fn alternative_prefers_text_plain() {
        let inbound_message = message(&fixture("alternative.eml"));
        assert!(inbound_message.body_text.contains("upload-only SAS links?"));
        assert!(!inbound_message.body_text.contains("<b>"));
        assert!(inbound_message.body_html.is_some());
    }

    #[test]
    fn charsets_are_decoded() {
        let latin1 = message(&fixture("qp_latin1.eml"));
        assert_eq!(latin1.subject, "Facture erronée de septembre");
        assert_eq!(
            latin1.from.as_ref().and_then(|from| from.name.as_deref()),
            Some("André Lévesque")
        );
        assert!(latin1.body_text.contains("erronée : le montant dû"));
        let windows = message(&fixture("windows1252.eml"));
        assert_eq!(
            windows.subject,
            "“Stopped” vs deallocated – what’s the difference?"
        );
        assert!(windows.body_text.contains("It costs €40 • per VM…"));
        let utf8 = message(&fixture("base64_utf8.eml"));
        assert_eq!(utf8.subject, "Portal sign-in fails – 佐藤");
        assert!(
            utf8.body_text
                .contains("Our designer 佐藤 由紀 cannot sign in")
        );
        for inbound_message in [&latin1, &windows, &utf8] {
            assert!(
                !inbound_message.body_text.contains("=E9")
                    && !inbound_message.body_text.contains("=?")
            );
        }
    }

    #[test]
    fn forwarded_rfc822_part() {
        let inbound_message = message(&fixture("forwarded_rfc822.eml"));
        assert!(inbound_message.flags.forwarded);
        assert_eq!(inbound_message.body_text, "FYI");
        assert!(
            inbound_message
                .new_text
                .starts_with("FYI\n\nSubject: Fired: Sev1")
        );
        assert!(
            inbound_message
                .forwarded_text
                .starts_with("Subject: Fired: Sev1 Azure Monitor Alert")
        );
        assert!(
            inbound_message
                .forwarded_text
                .contains("0f6b5d1e-1111-4222-8333-944445555666")
        );
        let attachments = &inbound_message.attachments;
        assert_eq!(attachments.len(), 2);
        assert_eq!(attachments[0].content_type, "message/rfc822");
        assert_eq!(attachments[0].filename, "Azure Monitor alert.eml");
        assert_eq!(attachments[1].filename, "report.pdf");
        assert_eq!(attachments[1].content_type, "application/pdf");
        assert_eq!(attachments[1].size, 54);
        assert_eq!(attachments[1].sha256.len(), 64);
    }

    #[test]
    fn replies_are_stripped() {
        let gmail = message(&fixture("reply_gmail.eml"));
        assert_eq!(
            gmail.new_text,
            "I want this escalated to Microsoft today. Please open the case and send me\nthe case number."
        );
        assert_eq!(gmail.in_reply_to, ["cls-0048019-3@centurylink.com"]);
        assert_eq!(
            gmail.references,
            [
                "cls-0048019-1@centurylink.com",
                "cls-0048019-3@centurylink.com"
            ]
        );
        let outlook = message(&fixture("reply_outlook.eml"));
        assert_eq!(
            outlook.new_text,
            "Hi Dawn,\n\nCould you please push Microsoft for an update on case 2610130040006652?\n\nErik"
        );
        let outlook_web = message(&fixture("reply_outlook_web.eml"));
        assert_eq!(
            outlook_web.new_text,
            "Still no banner in the Control Portal. What should we do?\n\nBecca"
        );
    }

    #[test]
    fn inline_forward_with_tiny_text_stays_in_new_text() {
        let inbound_message = message(&fixture("inline_forward.eml"));
        assert!(inbound_message.flags.forwarded);
        assert!(
            inbound_message
                .new_text
                .contains("Invoice INV-2026-09-441102 was rejected")
        );
        assert!(
            inbound_message
                .forwarded_text
                .starts_with("---------- Forwarded message")
        );
    }

    #[test]
    fn every_automatic_cue_fires() {
        let cases = [
            ("auto_submitted.eml", "Auto-Submitted: auto-replied"),
            ("auto_precedence.eml", "Precedence: bulk"),
            ("auto_x_autoreply.eml", "X-Autoreply header"),
            ("auto_x_autorespond.eml", "X-Autorespond header"),
            (
                "auto_response_suppress.eml",
                "X-Auto-Response-Suppress header",
            ),
            ("auto_list_id.eml", "List-Id header"),
            ("auto_list_unsubscribe.eml", "List-Unsubscribe header"),
            ("auto_return_path_null.eml", "Return-Path: <>"),
            ("auto_postmaster.eml", "From postmaster"),
            (
                "auto_subject.eml",
                "Subject starts with \"automatic reply\"",
            ),
        ];
        for (name, reason) in cases {
            let flags = message(&fixture(name)).flags;
            assert!(flags.auto_submitted, "{name}");
            assert_eq!(flags.auto_reason.as_deref(), Some(reason), "{name}");
        }
        let normal = message(&fixture("auto_submitted_no.eml")).flags;
        assert!(!normal.auto_submitted && normal.auto_reason.is_none());
    }

    #[test]
    fn dsn_is_a_bounce() {
        let inbound_message = message(&fixture("bounce_dsn.eml"));
        assert!(inbound_message.flags.bounce);
        assert!(inbound_message.flags.auto_submitted);
        let reason = inbound_message.flags.auto_reason.unwrap_or_default();
        assert!(
            reason.starts_with("multipart/report (delivery-status)"),
            "{reason}"
        );
        assert!(inbound_message.body_text.contains("550 5.1.1 User unknown"));
        assert_eq!(
            inbound_message.attachments[0].content_type,
            "message/delivery-status"
        );
        assert_eq!(inbound_message.attachments[0].filename, "attachment-1");
    }

    #[test]
    fn missing_message_id_is_synthesised_stably() {
        let raw = fixture("missing_message_id.eml");
        let first = message(&raw);
        let second = message(&raw);
        assert!(first.message_id_synthesized);
        assert_eq!(first.message_id, second.message_id);
        assert_eq!(
            first.message_id,
            format!("{}@supportd.invalid", &content_hash(&raw)[..32])
        );
        assert_eq!(first.date, None);
        assert!(
            first
                .warnings
                .iter()
                .any(|warning| warning.contains("Date"))
        );
        let mut changed = raw.clone();
        changed.extend_from_slice(b"one more line\n");
        assert_ne!(message(&changed).message_id, first.message_id);
    }

    #[test]
    fn oversized_reads_only_the_header() {
        let mut raw = fixture("plain.eml");
        raw.extend(std::iter::repeat_n(b'x', 10_000));
        let limits = Limits {
            max_message_bytes: 5_000,
            ..Limits::DEFAULT
        };
        let quarantine = quarantined(&raw, &limits);
        assert_eq!(
            quarantine.reason,
            format!("message of {} bytes exceeds the 5000 byte limit", raw.len())
        );
        assert_eq!(quarantine.message_id, "plain-0001@northgate-civil.com");
        assert_eq!(quarantine.subject, "VM won't start after resize");
        assert_eq!(
            quarantine.from.map(|from| from.email).as_deref(),
            Some("raj.malhotra@northgate-civil.com")
        );
        assert_eq!(quarantine.size, raw.len() as u64);
        assert_eq!(quarantine.content_hash, content_hash(&raw));
    }

    #[test]
    fn unparseable_input_is_quarantined() {
        let empty = quarantined(b"", &Limits::DEFAULT);
        assert_eq!(empty.reason, "empty message");
        assert_eq!(
            empty.message_id,
            format!("{}@supportd.invalid", &content_hash(b"")[..32])
        );
        assert_eq!(
            quarantined(b" \r\n\n", &Limits::DEFAULT).reason,
            "empty message"
        );
        assert!(
            quarantined(&fixture("garbage.eml"), &Limits::DEFAULT)
                .reason
                .starts_with("binary data")
        );
        assert!(
            quarantined(&fixture("no_header.eml"), &Limits::DEFAULT)
                .reason
                .starts_with("no header block")
        );
        let nul_header = quarantined(b"Subject: a\0b\nFrom: x@y\n\nbody", &Limits::DEFAULT);
        assert!(nul_header.reason.starts_with("binary data"));
    }

    #[test]
    fn header_block_over_the_limit() {
        let mut raw = b"Message-ID: <big@example.com>\nSubject: big\n".to_vec();
        for _ in 0..200 {
            raw.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\n");
        }
        raw.extend_from_slice(b"\nbody\n");
        let limits = Limits {
            max_header_bytes: 1024,
            ..Limits::DEFAULT
        };
        let quarantine = quarantined(&raw, &limits);
        assert_eq!(
            quarantine.reason,
            "header block exceeds the 1024 byte limit"
        );
        assert_eq!(quarantine.message_id, "big@example.com");
    }

    fn nested_multipart(depth: usize) -> Vec<u8> {
        let mut raw = b"From: a@example.com\nSubject: nested\nMIME-Version: 1.0\n".to_vec();
        for level in 0..depth {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"b{level}\"\n\n--b{level}\n")
                    .as_bytes(),
            );
        }
        raw.extend_from_slice(b"Content-Type: text/plain\n\ndeep text\n");
        for level in (0..depth).rev() {
            raw.extend_from_slice(format!("--b{level}--\n").as_bytes());
        }
        raw
    }

    #[test]
    fn mime_limits() {
        let deep = nested_multipart(8);
        let inbound_message = message(&deep);
        assert_eq!(inbound_message.body_text, "deep text");
        let limits = Limits {
            max_mime_depth: 4,
            ..Limits::DEFAULT
        };
        assert!(
            quarantined(&deep, &limits)
                .reason
                .starts_with("MIME nesting depth")
        );
        let mut wide =
            b"From: a@example.com\nSubject: wide\nContent-Type: multipart/mixed; boundary=w\n\n"
                .to_vec();
        for index in 0..20 {
            wide.extend_from_slice(
                format!("--w\nContent-Type: text/plain\n\npart {index}\n").as_bytes(),
            );
        }
        wide.extend_from_slice(b"--w--\n");
        let limits = Limits {
            max_mime_parts: 10,
            ..Limits::DEFAULT
        };
        assert!(
            quarantined(&wide, &limits)
                .reason
                .contains("MIME part count exceeds the limit of 10")
        );
    }

    /// Normalises `raw` and checks it took less than `seconds` (debug build).
    fn normalise_within(raw: &[u8], seconds: u64) -> Normalised {
        let started = std::time::Instant::now();
        let normalised = normalise(raw, &Limits::DEFAULT);
        let elapsed = started.elapsed();
        assert!(
            elapsed < std::time::Duration::from_secs(seconds),
            "normalise took {elapsed:?}"
        );
        normalised
    }

    #[test]
    fn ten_thousand_parts_are_quarantined_quickly() {
        let mut raw =
            b"From: a@example.com\nSubject: wide\nContent-Type: multipart/mixed; boundary=w\n\n"
                .to_vec();
        for index in 0..10_000 {
            raw.extend_from_slice(
                format!("--w\nContent-Type: text/plain\n\npart {index}\n").as_bytes(),
            );
        }
        raw.extend_from_slice(b"--w--\n");
        let Normalised::Quarantine(quarantine) = normalise_within(&raw, 5) else {
            panic!("10,000 parts must be quarantined");
        };
        assert_eq!(
            quarantine.reason,
            "MIME part count exceeds the limit of 1000"
        );
        assert_eq!(quarantine.subject, "wide");
    }

    #[test]
    fn five_hundred_levels_of_nesting_are_quarantined_without_overflow() {
        let Normalised::Quarantine(quarantine) = normalise_within(&nested_multipart(500), 5) else {
            panic!("500 nested multiparts must be quarantined");
        };
        assert!(
            quarantine.reason.starts_with("MIME nesting depth"),
            "{}",
            quarantine.reason
        );
        // Enclosed messages nest in their own way (message/rfc822 in message/rfc822).
        let mut enclosed = Vec::new();
        for level in 0..500 {
            enclosed.extend_from_slice(
                format!(
                    "From: a@example.com\nSubject: level {level}\nContent-Type: message/rfc822\n\n"
                )
                .as_bytes(),
            );
        }
        enclosed.extend_from_slice(b"From: a@example.com\nSubject: core\n\ninnermost\n");
        match normalise_within(&enclosed, 5) {
            Normalised::Quarantine(quarantine) => assert!(
                quarantine.reason.starts_with("MIME nesting depth")
                    || quarantine.reason.starts_with("MIME part count"),
                "{}",
                quarantine.reason
            ),
            Normalised::Message(message) => assert_eq!(message.subject, "level 0"),
        }
    }

    #[test]
    fn header_field_count_and_line_length() {
        let mut many = b"Message-ID: <many@example.com>\nSubject: many\n".to_vec();
        for index in 0..2_000 {
            many.extend_from_slice(format!("X-F{index}: v\n").as_bytes());
        }
        many.extend_from_slice(b"\nbody\n");
        assert_eq!(
            quarantined(&many, &Limits::DEFAULT).reason,
            "header block has 2002 fields, over the limit of 1000"
        );
        let mut long = b"Message-ID: <long@example.com>\nSubject: ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 40_000));
        long.extend_from_slice(b"\n\nbody\n");
        assert_eq!(
            quarantined(&long, &Limits::DEFAULT).reason,
            "a header line of 40009 bytes exceeds the 32768 byte limit"
        );
        // Folded lines are counted one physical line at a time.
        let mut folded = b"Message-ID: <folded@example.com>\nSubject: folded\nReferences:".to_vec();
        for index in 0..2_000 {
            folded.extend_from_slice(format!("\n <ref-{index}@example.com>").as_bytes());
        }
        folded.extend_from_slice(b"\n\nbody\n");
        assert_eq!(message(&folded).references.len(), 2_000);
    }

    #[test]
    fn recipients_and_attachments_over_the_limit_are_ignored() {
        let limits = Limits {
            max_recipients: 3,
            max_attachments: 2,
            ..Limits::DEFAULT
        };
        let mut raw = b"From: a@example.com\nSubject: many\nTo: t1@example.com, t2@example.com\nCc: c1@example.com, c2@example.com, c3@example.com\nContent-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\nsee attached\n".to_vec();
        for index in 0..5 {
            raw.extend_from_slice(
                format!("--m\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"f{index}.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n").as_bytes(),
            );
        }
        raw.extend_from_slice(b"--m--\n");
        let Normalised::Message(inbound_message) = normalise(&raw, &limits) else {
            panic!("over the recipient and attachment limits is still a message");
        };
        assert_eq!(inbound_message.to.len(), 2);
        assert_eq!(inbound_message.cc.len(), 1);
        assert_eq!(inbound_message.attachments.len(), 2);
        assert!(
            inbound_message.warnings.contains(
                &"5 To and Cc addresses, over the limit of 3: the rest are ignored".to_string()
            ),
            "{:?}",
            inbound_message.warnings
        );
        assert!(
            inbound_message
                .warnings
                .iter()
                .any(|warning| warning.starts_with("5 attachments, over the limit of 2")),
            "{:?}",
            inbound_message.warnings
        );
        let Normalised::Message(unlimited) = normalise(&raw, &Limits::DEFAULT) else {
            panic!("a message");
        };
        assert_eq!(unlimited.attachments.len(), 5);
        assert_eq!(unlimited.cc.len(), 3);
    }

    #[test]
    fn mbox_envelope_and_bare_cr() {
        let inbound_message = message(&fixture("mbox_envelope.eml"));
        assert_eq!(inbound_message.subject, "envelope line first");
        assert_eq!(
            inbound_message.from.map(|from| from.email).as_deref(),
            Some("ann@example.org")
        );
        let bare_cr = message(b"Subject: old mac\rFrom: a@example.com\r\rline one\rline two\r");
        assert_eq!(bare_cr.body_text, "line one\nline two");
    }

    /// Byte flips, insertions and cuts of every fixture (a small deterministic
    /// fuzz): no panic anywhere, including behind the catch_unwind safety net.
    #[test]
    fn mutated_fixtures_never_panic() {
        let fixtures_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let interesting: &[&[u8]] = &[
            b"\n",
            b"\r",
            b"<",
            b">",
            b"&",
            b"=?",
            b"?=",
            b"--",
            b":",
            b"\0",
            b"\xff",
            b"boundary=",
            b"\n--",
        ];
        for entry in std::fs::read_dir(fixtures_dir).expect("fixtures") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|extension| extension != "eml") {
                continue;
            }
            let raw = std::fs::read(&path).expect("read fixture");
            for _ in 0..150 {
                let mut mutated = raw.clone();
                for _ in 0..(next() % 4 + 1) {
                    if mutated.is_empty() {
                        break;
                    }
                    let position = (next() as usize) % mutated.len();
                    match next() % 3 {
                        0 => mutated[position] = next() as u8,
                        1 => {
                            let insert = interesting[(next() as usize) % interesting.len()];
                            mutated.splice(position..position, insert.iter().copied());
                        }
                        _ => mutated.truncate(position),
                    }
                }
                if let Normalised::Quarantine(quarantine) = normalise(&mutated, &Limits::DEFAULT) {
                    assert!(
                        !quarantine.reason.contains("panic"),
                        "{}: {}",
                        path.display(),
                        quarantine.reason
                    );
                }
            }
        }
    }

    #[test]
    fn mbox_file_is_split() {
        let mbox = fixture("sample.mbox");
        let messages = split_mbox(&mbox);
        assert_eq!(messages.len(), 2);
        let first = message(&messages[0]);
        assert_eq!(first.subject, "first");
        assert!(first.body_text.contains("\nFrom the top of the line"));
        assert!(first.body_text.contains("\n>From deeper quoting."));
        assert_eq!(message(&messages[1]).body_text, "Second body.");
    }

    #[test]
    fn forward_subjects() {
        assert!(is_forward_subject("Fwd: x"));
        assert!(is_forward_subject("FW: x"));
        assert!(is_forward_subject("[CLS-1] WG: x"));
        assert!(is_forward_subject("Fwd[2]: x"));
        assert!(is_forward_subject("TR : x"));
        assert!(!is_forward_subject("Re: Fwd: x"));
        assert!(!is_forward_subject("Firewall: port 443"));
        assert!(!is_forward_subject("no colon"));
    }

    /// Found by the `pipeline` fuzz target: a multipart whose part is a
    /// message/rfc822 holding only a header block makes mail-parser 0.11 hit
    /// its own `debug_assert!` ("Invalid part ID, could not find multipart.").
    /// With debug assertions (tests, the fuzz build) that panic is caught and
    /// the mail quarantined; without (release) mail-parser recovers and the
    /// mail is parsed. Either way `normalise` returns, keeping subject and size.
    #[test]
    fn enclosed_message_of_only_a_header_is_parsed_or_quarantined() {
        let raw = b"Subject: Delivery report\r\n\
            Content-Type: multipart/mixed; boundary=\"b0\"\r\n\
            \r\n\
            --b0\r\n\
            Content-Type: message/rfc822\r\n\
            \r\n\
            Content-Type: message/rfc822\r\n\
            \r\n\
            \r\n\
            --b0--\r\n";
        match (normalise(raw, &Limits::DEFAULT), cfg!(debug_assertions)) {
            (Normalised::Quarantine(quarantine), true) => {
                assert_eq!(
                    quarantine.reason,
                    "the MIME parser failed on this message (internal panic caught)"
                );
                assert_eq!(quarantine.subject, "Delivery report");
                assert_eq!(quarantine.size, raw.len() as u64);
            }
            (Normalised::Message(inbound_message), false) => {
                assert_eq!(inbound_message.subject, "Delivery report");
                assert_eq!(inbound_message.size, raw.len() as u64);
            }
            (normalised, debug_assertions) => {
                panic!("debug assertions {debug_assertions}, normalised to {normalised:?}")
            }
        }
    }
}
