//! Attachment metadata: safe file name, content type, decoded size and SHA-256.
//! The bytes themselves stay in the raw message.

use mail_parser::decoders::{base64::base64_decode, quoted_printable::quoted_printable_decode};
use mail_parser::{Encoding, Message, MessagePart, MimeHeaders, PartType};
use sha2::{Digest, Sha256};
use supportd_core::Attachment;

use crate::addresses::clean_header_text;

/// File names are cut to this many bytes (the extension is kept).
const MAX_FILENAME_BYTES: usize = 180;

/// Metadata of every top-level attachment of `message`, enclosed messages included.
pub(crate) fn attachments_of(message: &Message<'_>) -> Vec<Attachment> {
    let raw = message.raw_message.as_ref();
    message
        .attachments
        .iter()
        .filter_map(|&part_id| message.parts.get(part_id as usize))
        .enumerate()
        .map(|(index, part)| attachment_of(raw, part, index + 1))
        .collect()
}

/// One attachment's bytes, for a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentContent {
    /// The same safe name as the stored metadata.
    pub filename: String,
    pub content_type: String,
    /// After undoing the transfer encoding.
    pub bytes: Vec<u8>,
}

/// The attachment at `position` (0-based, the order of the stored metadata)
/// of the raw message, decoded; `None` when the message has no such
/// attachment or cannot be parsed. Parses exactly as [`crate::normalise`]
/// does, so positions agree with what was stored.
pub fn attachment_content(raw: &[u8], position: usize) -> Option<AttachmentContent> {
    let prepared = crate::header_block::prepare(raw);
    let bytes = prepared.bytes.as_ref();
    let message = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        mail_parser::MessageParser::default().parse(bytes)
    }))
    .ok()
    .flatten()?;
    let raw = message.raw_message.as_ref();
    let part = message
        .attachments
        .iter()
        .filter_map(|&part_id| message.parts.get(part_id as usize))
        .nth(position)?;
    let content_type = content_type_of(part);
    Some(AttachmentContent {
        filename: sanitise_filename(
            part.attachment_name().unwrap_or(""),
            position + 1,
            &content_type,
        ),
        content_type,
        bytes: decoded_bytes(raw, part).into_owned(),
    })
}

fn attachment_of(raw: &[u8], part: &MessagePart<'_>, number: usize) -> Attachment {
    let content_type = content_type_of(part);
    let filename = sanitise_filename(part.attachment_name().unwrap_or(""), number, &content_type);
    let decoded = decoded_bytes(raw, part);
    Attachment {
        filename,
        content_type,
        size: decoded.len() as u64,
        sha256: hex::encode(Sha256::digest(&decoded)),
    }
}

/// `type/subtype`, lower-case, with defaults by part kind.
fn content_type_of(part: &MessagePart<'_>) -> String {
    if let Some(content_type) = part.content_type() {
        let main_type = content_type.ctype().trim();
        if !main_type.is_empty() {
            return match content_type.subtype().map(str::trim) {
                Some(subtype) if !subtype.is_empty() => {
                    format!("{main_type}/{subtype}").to_ascii_lowercase()
                }
                _ => main_type.to_ascii_lowercase(),
            };
        }
    }
    match part.body {
        PartType::Message(_) => "message/rfc822",
        PartType::Text(_) => "text/plain",
        PartType::Html(_) => "text/html",
        _ => "application/octet-stream",
    }
    .to_string()
}

/// The part's bytes after undoing the transfer encoding (before any charset conversion).
fn decoded_bytes<'part>(
    raw: &'part [u8],
    part: &'part MessagePart<'_>,
) -> std::borrow::Cow<'part, [u8]> {
    match &part.body {
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => bytes.as_ref().into(),
        PartType::Message(enclosed) if part.encoding != Encoding::None => {
            enclosed.raw_message.as_ref().into()
        }
        PartType::Multipart(_) => Vec::new().into(),
        PartType::Text(text) | PartType::Html(text) => {
            let encoded = raw_body_of(raw, part);
            let decoded = match part.encoding {
                Encoding::Base64 => encoded.and_then(base64_decode),
                Encoding::QuotedPrintable => encoded.and_then(quoted_printable_decode),
                Encoding::None => encoded.map(<[u8]>::to_vec),
            };
            decoded.map_or_else(|| text.as_bytes().to_vec().into(), Into::into)
        }
        PartType::Message(_) => raw_body_of(raw, part).unwrap_or_default().into(),
    }
}

fn raw_body_of<'raw>(raw: &'raw [u8], part: &MessagePart<'_>) -> Option<&'raw [u8]> {
    raw.get(part.offset_body as usize..part.offset_end as usize)
}

/// A file name safe to offer in a Content-Disposition or to write to disk: no
/// path, no control or reserved characters, no leading dots, bounded length;
/// `attachment-N` (with an extension from the type) when nothing is left.
pub(crate) fn sanitise_filename(name: &str, number: usize, content_type: &str) -> String {
    let name = clean_header_text(name);
    let base_name = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base_name
        .chars()
        .filter(|character| !character.is_control())
        .map(|character| match character {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            other => other,
        })
        .collect();
    let cleaned = cleaned
        .trim()
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    if cleaned.is_empty() {
        return format!("attachment-{number}{}", extension_for(content_type));
    }
    bound_length(cleaned)
}

fn bound_length(name: &str) -> String {
    if name.len() <= MAX_FILENAME_BYTES {
        return name.to_string();
    }
    let extension = name
        .rfind('.')
        .map(|dot| &name[dot..])
        .filter(|extension| extension.len() <= 16)
        .unwrap_or("");
    let mut stem_end = MAX_FILENAME_BYTES - extension.len();
    while !name.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    format!("{}{extension}", &name[..stem_end])
}

fn extension_for(content_type: &str) -> &'static str {
    match content_type {
        "message/rfc822" | "message/global" => ".eml",
        "text/plain" => ".txt",
        "text/html" => ".html",
        "application/pdf" => ".pdf",
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "image/gif" => ".gif",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_controls_are_removed() {
        assert_eq!(
            sanitise_filename("../../etc/passwd", 1, "text/plain"),
            "passwd"
        );
        assert_eq!(
            sanitise_filename("C:\\Users\\x\\report.pdf", 1, "application/pdf"),
            "report.pdf"
        );
        assert_eq!(sanitise_filename("...hidden", 1, "text/plain"), "hidden");
        assert_eq!(
            sanitise_filename("a\u{0}b\u{7}c.txt", 1, "text/plain"),
            "abc.txt"
        );
        assert_eq!(sanitise_filename("what?.txt", 1, "text/plain"), "what_.txt");
    }

    #[test]
    fn fallback_names() {
        assert_eq!(
            sanitise_filename("", 3, "message/rfc822"),
            "attachment-3.eml"
        );
        assert_eq!(
            sanitise_filename("..", 2, "application/x-foo"),
            "attachment-2"
        );
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long_name = format!("{}.docx", "é".repeat(200));
        let bounded = sanitise_filename(&long_name, 1, "application/octet-stream");
        assert!(bounded.len() <= MAX_FILENAME_BYTES);
        assert!(bounded.ends_with(".docx"));
    }
}
