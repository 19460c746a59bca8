//! Address and header text conversion from mail-parser values to the domain
//! types: display names decoded and trimmed, domains lower-cased.

use mail_parser::{HeaderValue, parsers::MessageStream};
use supportd_core::Address;

/// Every mailbox of an address header (groups flattened), in header order.
pub(crate) fn addresses_of(header_value: Option<&HeaderValue<'_>>) -> Vec<Address> {
    let Some(HeaderValue::Address(address)) = header_value else {
        return Vec::new();
    };
    address
        .iter()
        .filter_map(|addr| address_from_parts(addr.name.as_deref(), addr.address.as_deref()))
        .collect()
}

/// The sender of a From header holding only a bare word, as bounces do
/// ("From: MAILER-DAEMON", "From: MAILER-DAEMON <>"): the word stands for the address.
pub(crate) fn bare_sender_of(header_value: Option<&HeaderValue<'_>>) -> Option<Address> {
    let Some(HeaderValue::Address(address)) = header_value else {
        return None;
    };
    let word = address.first()?.name.as_deref()?.trim();
    let is_bare_word = !word.is_empty()
        && !word.contains(char::is_whitespace)
        && word
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.+".contains(character));
    is_bare_word.then(|| Address {
        name: None,
        email: word.to_string(),
    })
}

/// Builds an [`Address`] from a display name and an address, either possibly missing.
/// A name that is itself an address stands in for a missing address.
pub(crate) fn address_from_parts(name: Option<&str>, email: Option<&str>) -> Option<Address> {
    let name = name
        .map(|name| strip_quotes(clean_header_text(name)))
        .filter(|name| !name.is_empty());
    let email = email
        .map(normalise_email)
        .filter(|email| !email.is_empty())
        .or_else(|| {
            name.as_deref()
                .filter(|name| name.contains('@') && !name.contains(' '))
                .map(normalise_email)
        })?;
    let name = name.filter(|name| !name.eq_ignore_ascii_case(&email));
    Some(Address { name, email })
}

/// Trims the address, drops surrounding angle brackets and lower-cases the domain.
pub(crate) fn normalise_email(email: &str) -> String {
    let email = email
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    match email.rsplit_once('@') {
        Some((local_part, domain)) => format!("{local_part}@{}", domain.to_lowercase()),
        None => email.to_string(),
    }
}

/// Collapses whitespace and decodes RFC 2047 encoded-words that mail-parser left
/// in place (for example inside quotes or glued to other text).
pub(crate) fn clean_header_text(text: &str) -> String {
    let collapsed = collapse_whitespace(text);
    if !(collapsed.contains("=?") && collapsed.contains("?=")) {
        return collapsed;
    }
    let spaced = space_out_encoded_words(&collapsed);
    let mut line = spaced.into_bytes();
    line.push(b'\n');
    match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(text) => collapse_whitespace(&text),
        _ => collapsed,
    }
}

/// Puts a space before `=?` and after `?=` so glued encoded-words are decodable.
fn space_out_encoded_words(text: &str) -> String {
    let mut spaced = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(start) = rest.find("=?") {
        spaced.push_str(&rest[..start]);
        if !spaced.is_empty() && !spaced.ends_with(' ') && !spaced.ends_with('"') {
            spaced.push(' ');
        }
        let word = &rest[start..];
        // An encoded-word is =?charset?enc?text?= : the end is the third "?" followed by "=".
        let end = word
            .char_indices()
            .filter(|&(_, character)| character == '?')
            .nth(3)
            .filter(|&(index, _)| word[index + 1..].starts_with('='))
            .map(|(index, _)| index + 2);
        match end {
            Some(end) => {
                spaced.push_str(&word[..end]);
                rest = &word[end..];
                if !rest.is_empty() && !rest.starts_with(' ') && !rest.starts_with("=?") {
                    spaced.push(' ');
                }
            }
            None => {
                spaced.push_str(word);
                rest = "";
            }
        }
    }
    spaced.push_str(rest);
    spaced
}

/// Display names sometimes keep the quotes of a quoted-string.
fn strip_quotes(text: String) -> String {
    let trimmed = text.trim_matches(|character| character == '"' || character == '\'');
    if trimmed.len() == text.len() {
        text
    } else {
        trimmed.trim().to_string()
    }
}

/// Every run of whitespace (including folded line breaks) becomes one space; ends trimmed.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    let mut collapsed = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !collapsed.is_empty() {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
    }
    collapsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_is_lower_cased_local_part_kept() {
        assert_eq!(
            normalise_email(" <John.Doe@Example.COM> "),
            "John.Doe@example.com"
        );
    }

    #[test]
    fn name_that_is_an_address_fills_in() {
        let address = address_from_parts(Some("Bob@Example.com"), None);
        assert_eq!(
            address,
            Some(Address {
                name: None,
                email: "Bob@example.com".into()
            })
        );
        assert_eq!(address_from_parts(Some("Just A Name"), None), None);
    }

    #[test]
    fn bare_word_sender() {
        let mut stream_input = b"MAILER-DAEMON\n".to_vec();
        let header_value = MessageStream::new(&stream_input).parse_address();
        assert_eq!(
            bare_sender_of(Some(&header_value))
                .map(|address| address.email)
                .as_deref(),
            Some("MAILER-DAEMON")
        );
        stream_input = b"Some Body\n".to_vec();
        let header_value = MessageStream::new(&stream_input).parse_address();
        assert_eq!(bare_sender_of(Some(&header_value)), None);
    }

    #[test]
    fn leftover_encoded_words_are_decoded() {
        assert_eq!(
            address_from_parts(Some("\"=?ISO-8859-1?Q?Andr=E9?= Pirard\""), Some("a@b"))
                .and_then(|address| address.name),
            Some("André Pirard".to_string())
        );
        assert_eq!(
            clean_header_text("stuck on \"Select offer\""),
            "stuck on \"Select offer\""
        );
        assert_eq!(clean_header_text("Re:=?utf-8?Q?caf=C3=A9?="), "Re: café");
        assert_eq!(clean_header_text("  plain\r\n  text "), "plain text");
    }
}
