//! mbox (mboxo and mboxrd) splitting.

use std::borrow::Cow;

/// Splits an mbox file into raw messages.
///
/// A message starts at a `From ` line at the start of the file or after a blank
/// line; that envelope line is removed, as is the blank line that separates a
/// message from the next one. `>From ` quoting is undone the mboxrd way (one `>`
/// is removed from every line matching `^>+From `), which is also right for
/// mboxo files. Text before the first envelope line counts as a message when it
/// is not blank; blank messages are skipped. Messages that need no unquoting
/// are borrowed from `bytes`.
pub fn split_mbox(bytes: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let mut starts = Vec::new();
    let mut line_start = 0;
    let mut previous_line_blank = true;
    while line_start < bytes.len() {
        let line_end = bytes[line_start..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(bytes.len(), |offset| line_start + offset + 1);
        let line = &bytes[line_start..line_end];
        if previous_line_blank && line.starts_with(b"From ") {
            starts.push((line_start, line_end));
        }
        previous_line_blank = matches!(line, b"\n" | b"\r\n");
        line_start = line_end;
    }

    let mut messages = Vec::with_capacity(starts.len() + 1);
    let first_start = starts.first().map_or(bytes.len(), |&(start, _)| start);
    push_message(&mut messages, &bytes[..first_start]);
    for (index, &(_, content_start)) in starts.iter().enumerate() {
        let content_end = starts
            .get(index + 1)
            .map_or(bytes.len(), |&(next_start, _)| next_start);
        push_message(&mut messages, &bytes[content_start..content_end]);
    }
    messages
}

fn push_message<'bytes>(messages: &mut Vec<Cow<'bytes, [u8]>>, segment: &'bytes [u8]) {
    if segment.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    // The blank line before the next envelope line belongs to the mbox, not the message.
    let segment = segment
        .strip_suffix(b"\r\n\r\n")
        .map(|stripped| &segment[..stripped.len() + 2])
        .or_else(|| {
            segment
                .strip_suffix(b"\n\n")
                .map(|stripped| &segment[..stripped.len() + 1])
        })
        .unwrap_or(segment);
    messages.push(unquote_from_lines(segment));
}

/// Removes one `>` from every line matching `^>+From `.
fn unquote_from_lines(segment: &[u8]) -> Cow<'_, [u8]> {
    let is_quoted_from = |line: &[u8]| {
        let quotes = line.iter().take_while(|&&byte| byte == b'>').count();
        quotes > 0 && line[quotes..].starts_with(b"From ")
    };
    if !segment.split(|&byte| byte == b'\n').any(is_quoted_from) {
        return Cow::Borrowed(segment);
    }
    let mut unquoted = Vec::with_capacity(segment.len());
    for (index, line) in segment.split(|&byte| byte == b'\n').enumerate() {
        if index > 0 {
            unquoted.push(b'\n');
        }
        if is_quoted_from(line) {
            unquoted.extend_from_slice(&line[1..]);
        } else {
            unquoted.extend_from_slice(line);
        }
    }
    Cow::Owned(unquoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_unquotes() {
        let mbox = b"From a@example.com Mon Jan  1 00:00:00 2024\nSubject: one\n\nHello\n>From the start\n>>From deeper\nFrom here is not a separator\n\nFrom b@example.com Mon Jan  1 00:00:01 2024\nSubject: two\n\nBye\n";
        let messages = split_mbox(mbox);
        assert_eq!(messages.len(), 2);
        assert_eq!(
            &messages[0][..],
            b"Subject: one\n\nHello\nFrom the start\n>From deeper\nFrom here is not a separator\n"
        );
        assert!(matches!(messages[1], Cow::Borrowed(_)));
        assert_eq!(&messages[1][..], b"Subject: two\n\nBye\n");
    }

    #[test]
    fn crlf_and_leading_text() {
        let mbox = b"Subject: no envelope\r\n\r\nx\r\n\r\nFrom b@example.com Mon Jan  1 00:00:01 2024\r\nSubject: two\r\n\r\nBye\r\n";
        let messages = split_mbox(mbox);
        assert_eq!(messages.len(), 2);
        assert_eq!(&messages[0][..], b"Subject: no envelope\r\n\r\nx\r\n");
        assert_eq!(&messages[1][..], b"Subject: two\r\n\r\nBye\r\n");
    }

    #[test]
    fn empty_input() {
        assert!(split_mbox(b"").is_empty());
        assert!(split_mbox(b"\n\n").is_empty());
    }
}
