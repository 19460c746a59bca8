//! Body selection: the text body (text/plain preferred, HTML converted
//! otherwise), the HTML body, and the text of enclosed (forwarded) messages.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use crate::addresses::clean_header_text;
use crate::html::html_to_text;

/// The bodies of one message.
pub(crate) struct Bodies {
    /// Readable text, line endings normalised to `\n`, outer blank lines trimmed.
    pub text: String,
    /// The first HTML body part, as sent.
    pub html: Option<String>,
}

/// Enclosed messages are read this deep (a forward of a forward of a forward).
const MAX_ENCLOSED_DEPTH: usize = 3;
/// Forwarded text is cut at this many bytes (it feeds classification, not display).
const MAX_FORWARDED_TEXT_BYTES: usize = 256 * 1024;

/// Text and HTML body of `message`.
pub(crate) fn bodies_of(message: &Message<'_>) -> Bodies {
    let mut text = String::new();
    for &part_id in &message.text_body {
        let Some(part) = message.parts.get(part_id as usize) else {
            continue;
        };
        let part_text = match &part.body {
            PartType::Text(plain) => plain_text_of(part, plain),
            PartType::Html(html) => html_to_text(html),
            _ => continue,
        };
        let part_text = part_text.trim_matches(is_blank_edge);
        if part_text.is_empty() {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(part_text);
    }
    let html = message
        .html_body
        .iter()
        .filter_map(|&part_id| message.parts.get(part_id as usize))
        .find_map(|part| match &part.body {
            PartType::Html(html) => Some(html.to_string()),
            _ => None,
        });
    if text.is_empty()
        && let Some(html) = &html
    {
        text = html_to_text(html).trim_matches(is_blank_edge).to_string();
    }
    Bodies { text, html }
}

fn is_blank_edge(character: char) -> bool {
    character == '\n' || character == '\r' || character == '\u{feff}'
}

/// Line endings to `\n`, and format=flowed (RFC 3676) lines joined.
fn plain_text_of(part: &MessagePart<'_>, text: &str) -> String {
    let content_type = part.content_type();
    let flowed = content_type
        .and_then(|content_type| content_type.attribute("format"))
        .is_some_and(|format| format.eq_ignore_ascii_case("flowed"));
    let delete_space = content_type
        .and_then(|content_type| content_type.attribute("delsp"))
        .is_some_and(|delsp| delsp.eq_ignore_ascii_case("yes"));
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !flowed {
        return normalise_line_endings(text);
    }
    let mut joined = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.strip_prefix(' ').unwrap_or(line);
        if line.ends_with(' ') && line != "-- " {
            let line = if delete_space {
                &line[..line.len() - 1]
            } else {
                line
            };
            joined.push_str(line);
        } else {
            joined.push_str(line);
            joined.push('\n');
        }
    }
    joined
}

/// `\r\n` and bare `\r` become `\n`.
pub(crate) fn normalise_line_endings(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_string();
    }
    let mut normalised = String::with_capacity(text.len());
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        if character == '\r' {
            if characters.peek() == Some(&'\n') {
                characters.next();
            }
            normalised.push('\n');
        } else {
            normalised.push(character);
        }
    }
    normalised
}

/// Subject and body text of every enclosed message (message/rfc822 parts,
/// nested forwards included), one block per message.
pub(crate) fn enclosed_messages_text(message: &Message<'_>) -> String {
    let mut forwarded_text = String::new();
    collect_enclosed(message, 0, &mut forwarded_text);
    if forwarded_text.len() > MAX_FORWARDED_TEXT_BYTES {
        let mut cut = MAX_FORWARDED_TEXT_BYTES;
        while !forwarded_text.is_char_boundary(cut) {
            cut -= 1;
        }
        forwarded_text.truncate(cut);
    }
    forwarded_text
}

fn collect_enclosed(message: &Message<'_>, depth: usize, forwarded_text: &mut String) {
    if depth >= MAX_ENCLOSED_DEPTH || forwarded_text.len() > MAX_FORWARDED_TEXT_BYTES {
        return;
    }
    for &part_id in &message.attachments {
        let Some(PartType::Message(enclosed)) =
            message.parts.get(part_id as usize).map(|part| &part.body)
        else {
            continue;
        };
        let subject = enclosed
            .subject()
            .map(clean_header_text)
            .unwrap_or_default();
        let bodies = bodies_of(enclosed);
        if !forwarded_text.is_empty() {
            forwarded_text.push_str("\n\n");
        }
        if !subject.is_empty() {
            forwarded_text.push_str("Subject: ");
            forwarded_text.push_str(&subject);
            forwarded_text.push_str("\n\n");
        }
        forwarded_text.push_str(&bodies.text);
        collect_enclosed(enclosed, depth + 1, forwarded_text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings() {
        assert_eq!(normalise_line_endings("a\r\nb\rc\n"), "a\nb\nc\n");
    }
}
