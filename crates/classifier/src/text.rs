//! The text of a message as the rules see it: one lower-cased, normalised buffer holding
//! four sections (subject, new text, forwarded text, quoted history), so the whole
//! message is searched in one pass of the phrase automaton.

use supportd_core::InboundMessage;

/// Where in the message a piece of text stands. Used as bits in a [`SectionMask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Subject = 0,
    /// The reply itself, without quoted history and signature.
    NewText = 1,
    /// Forwarded originals (message/rfc822 parts).
    Forwarded = 2,
    /// Whatever the body holds beyond the new text: quoted history, signature.
    Quoted = 3,
}

impl Section {
    pub(crate) const ALL: [Section; 4] = [
        Section::Subject,
        Section::NewText,
        Section::Forwarded,
        Section::Quoted,
    ];

    pub(crate) fn bit(self) -> SectionMask {
        1 << (self as u8)
    }
}

/// A set of sections, one bit per [`Section`].
pub(crate) type SectionMask = u8;

/// The lower-cased, whitespace-collapsed text of a message, section by section.
#[derive(Debug)]
pub(crate) struct MessageText {
    /// Every section, separated by `"\n\n"` so no phrase spans two sections.
    pub(crate) buffer: String,
    /// Byte range of each section in `buffer`, indexed by `Section as usize`.
    pub(crate) ranges: [(usize, usize); 4],
    /// Words in the new text; short replies ("see below") lean on forwarded text.
    pub(crate) new_text_words: usize,
}

impl MessageText {
    pub(crate) fn new(message: &InboundMessage) -> MessageText {
        // No new text (a normaliser that found nothing to strip, or a bare forward):
        // the whole body is what the sender wrote.
        let (new_text, quoted) = if message.new_text.trim().is_empty() {
            (message.body_text.as_str(), "")
        } else {
            (
                message.new_text.as_str(),
                quoted_part(&message.body_text, &message.new_text),
            )
        };
        let pieces = [
            message.subject.as_str(),
            new_text,
            message.forwarded_text.as_str(),
            quoted,
        ];
        let capacity = pieces.iter().map(|piece| piece.len() + 2).sum();
        let mut buffer = String::with_capacity(capacity);
        let mut ranges = [(0, 0); 4];
        for (section, piece) in Section::ALL.into_iter().zip(pieces) {
            let start = buffer.len();
            push_normalised(&mut buffer, piece);
            ranges[section as usize] = (start, buffer.len());
            buffer.push_str("\n\n");
        }
        // The normalised new text has every run of whitespace collapsed to one
        // space and none at either end: words are spaces plus one.
        let (start, end) = ranges[Section::NewText as usize];
        let normalised_new_text = &buffer.as_bytes()[start..end];
        let new_text_words = if normalised_new_text.is_empty() {
            0
        } else {
            1 + normalised_new_text
                .iter()
                .filter(|&&byte| byte == b' ')
                .count()
        };
        MessageText {
            buffer,
            ranges,
            new_text_words,
        }
    }

    /// The section holding byte offset `position`.
    pub(crate) fn section_at(&self, position: usize) -> Section {
        Section::ALL
            .into_iter()
            .rev()
            .find(|section| self.ranges[*section as usize].0 <= position)
            .unwrap_or(Section::Subject)
    }

    pub(crate) fn section_text(&self, section: Section) -> &str {
        let (start, end) = self.ranges[section as usize];
        &self.buffer[start..end]
    }
}

/// The part of the body that is not the new text: quoted history and signature.
/// The normaliser's new text is normally a prefix of the body; when it is not,
/// the whole body counts as quoted (searched, but weighted as history).
fn quoted_part<'a>(body_text: &'a str, new_text: &str) -> &'a str {
    let new_text = new_text.trim();
    if new_text.is_empty() {
        return body_text;
    }
    let body_trimmed = body_text.trim_start();
    if let Some(rest) = body_trimmed.strip_prefix(new_text) {
        return rest;
    }
    match body_text.find(new_text) {
        Some(position) => &body_text[position + new_text.len()..],
        None => body_text,
    }
}

/// Appends `text` lower-cased, with typographic quotes and dashes made plain and every
/// run of whitespace collapsed to one space, so `can’t` matches `can't` and a phrase
/// broken over two lines still matches.
pub(crate) fn push_normalised(buffer: &mut String, text: &str) {
    let mut last_was_space = true;
    let mut rest = text;
    while !rest.is_empty() {
        // ASCII runs are copied byte by byte without decoding.
        let ascii_length = rest
            .bytes()
            .position(|byte| !byte.is_ascii())
            .unwrap_or(rest.len());
        let ascii = &rest[..ascii_length];
        let ascii_bytes = ascii.as_bytes();
        let mut copied_up_to = 0;
        for (position, &byte) in ascii_bytes.iter().enumerate() {
            // Lower-case letters, digits and punctuation are copied in bulk below;
            // only capitals and whitespace need handling here.
            let is_space = byte.is_ascii_whitespace() || byte == 0x0b;
            if !is_space && !byte.is_ascii_uppercase() {
                last_was_space = false;
                continue;
            }
            buffer.push_str(&ascii[copied_up_to..position]);
            copied_up_to = position + 1;
            if is_space {
                if !last_was_space {
                    buffer.push(' ');
                    last_was_space = true;
                }
            } else {
                last_was_space = false;
                buffer.push(char::from(byte.to_ascii_lowercase()));
            }
        }
        buffer.push_str(&ascii[copied_up_to..]);
        rest = &rest[ascii_length..];
        let Some(character) = rest.chars().next() else {
            break;
        };
        rest = &rest[character.len_utf8()..];
        let character = match character {
            '\u{2018}' | '\u{2019}' | '\u{201b}' | '\u{2032}' => '\'',
            '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{2033}' => '"',
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2212}' => '-',
            '\u{a0}' | '\u{2007}' | '\u{202f}' | '\u{200b}' => ' ',
            other => other,
        };
        if character.is_whitespace() {
            if !last_was_space {
                buffer.push(' ');
                last_was_space = true;
            }
        } else {
            last_was_space = false;
            buffer.extend(character.to_lowercase());
        }
    }
    if buffer.ends_with(' ') {
        buffer.pop();
    }
}

/// Lower-cases and normalises a configured phrase the same way as message text.
pub(crate) fn normalise_phrase(phrase: &str) -> String {
    let mut normalised = String::with_capacity(phrase.len());
    push_normalised(&mut normalised, phrase);
    normalised
}

/// True when the character is part of a word (letters, digits, underscore).
pub(crate) fn is_word_character(character: char) -> bool {
    character.is_alphanumeric() || character == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_quotes_dashes_and_whitespace() {
        assert_eq!(
            normalise_phrase("  We CAN’T\r\n  log in – “again”  "),
            "we can't log in - \"again\""
        );
        assert_eq!(normalise_phrase("ÜBER Straße"), "über straße");
    }

    #[test]
    fn new_text_words_are_counted_on_the_normalised_text() {
        let message = supportd_core::InboundMessage {
            message_id: String::new(),
            message_id_synthesized: false,
            in_reply_to: vec![],
            references: vec![],
            from: None,
            reply_to: vec![],
            to: vec![],
            cc: vec![],
            subject: "Subject words".into(),
            date: None,
            body_text: "  one\n\n two\u{a0} three  \n> quoted".into(),
            body_html: None,
            new_text: "  one\n\n two\u{a0} three  ".into(),
            forwarded_text: String::new(),
            attachments: vec![],
            flags: supportd_core::MessageFlags::default(),
            size: 0,
            content_hash: String::new(),
            warnings: vec![],
        };
        assert_eq!(MessageText::new(&message).new_text_words, 3);
    }

    #[test]
    fn quoted_part_is_the_body_after_the_new_text() {
        assert_eq!(quoted_part("hi\n> old", "hi"), "\n> old");
        assert_eq!(quoted_part("  hi\n> old", "hi"), "\n> old");
        assert_eq!(quoted_part("hi", ""), "hi");
        assert_eq!(quoted_part("other", "hi"), "other");
    }
}
