//! Pre-scan of the raw bytes before mail-parser sees them: strip an mbox
//! envelope line, repair bare-CR line endings, and measure the header block
//! (size, recognisable fields, binary junk) so that unparseable input is
//! quarantined instead of being guessed at.

use std::borrow::Cow;

/// The raw bytes as they will be parsed, and what was changed on the way.
pub(crate) struct PreparedBytes<'raw> {
    pub bytes: Cow<'raw, [u8]>,
    /// A leading mbox `From ` envelope line was removed.
    pub envelope_stripped: bool,
    /// The message used bare CR line endings (old Mac); they were turned into CRLF.
    pub bare_cr_converted: bool,
    /// Blank lines before the header block were removed.
    pub leading_blank_lines_removed: bool,
}

/// Strips a leading mbox envelope line and converts bare-CR line endings.
pub(crate) fn prepare(raw: &[u8]) -> PreparedBytes<'_> {
    let mut bytes = raw;
    let mut envelope_stripped = false;
    if bytes.starts_with(b"From ") {
        let line_end = bytes
            .iter()
            .position(|&byte| byte == b'\n' || byte == b'\r')
            .unwrap_or(bytes.len());
        let mut body_start = line_end;
        if bytes.get(body_start) == Some(&b'\r') {
            body_start += 1;
        }
        if bytes.get(body_start) == Some(&b'\n') {
            body_start += 1;
        }
        bytes = &bytes[body_start..];
        envelope_stripped = true;
    }
    // Whitespace-only lines before the first header would end mail-parser's
    // header block at once (everything would become body).
    let mut leading_blank_lines_removed = false;
    while let Some(line_end) = bytes.iter().position(|&byte| byte == b'\n') {
        if bytes[..line_end].iter().all(u8::is_ascii_whitespace) && line_end + 1 < bytes.len() {
            bytes = &bytes[line_end + 1..];
            leading_blank_lines_removed = true;
        } else {
            break;
        }
    }
    let has_line_feed = bytes.contains(&b'\n');
    if !has_line_feed && bytes.contains(&b'\r') {
        let mut converted = Vec::with_capacity(bytes.len() + bytes.len() / 32);
        for &byte in bytes {
            converted.push(byte);
            if byte == b'\r' {
                converted.push(b'\n');
            }
        }
        return PreparedBytes {
            bytes: Cow::Owned(converted),
            envelope_stripped,
            bare_cr_converted: true,
            leading_blank_lines_removed,
        };
    }
    PreparedBytes {
        bytes: Cow::Borrowed(bytes),
        envelope_stripped,
        bare_cr_converted: false,
        leading_blank_lines_removed,
    }
}

/// What the header block of a message looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderScan {
    /// Bytes from the start to the end of the blank line closing the header
    /// block (the whole input when there is none).
    pub header_len: usize,
    /// Lines of the form `Name: value`.
    pub recognised_fields: usize,
    /// The longest physical line of the header block, in bytes (line ending excluded).
    pub longest_line: usize,
    /// The header block is larger than the limit (scanning stopped there).
    pub over_limit: bool,
    /// The header block holds NUL bytes or is mostly not text.
    pub binary_junk: bool,
    /// A blank line closes the header block.
    pub has_blank_line: bool,
}

/// Scans the header block of already prepared bytes, reading at most
/// `max_header_bytes` (plus one line).
pub(crate) fn scan(bytes: &[u8], max_header_bytes: usize) -> HeaderScan {
    let mut position = 0;
    let mut recognised_fields = 0;
    let mut seen_content = false;
    let mut header_len = bytes.len();
    let mut has_blank_line = false;
    let mut over_limit = false;
    let mut longest_line = 0;
    while position < bytes.len() {
        if position > max_header_bytes {
            over_limit = true;
            header_len = position;
            break;
        }
        let line_end = bytes[position..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(bytes.len(), |offset| position + offset);
        let line = &bytes[position..line_end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        longest_line = longest_line.max(line.len());
        let next_position = (line_end + 1).min(bytes.len());
        if line.iter().all(|byte| byte.is_ascii_whitespace()) {
            if seen_content {
                header_len = next_position;
                has_blank_line = true;
                break;
            }
        } else {
            let is_continuation = seen_content && matches!(line.first(), Some(b' ' | b'\t'));
            if !is_continuation && is_header_field(line.trim_ascii_start()) {
                recognised_fields += 1;
            }
            seen_content = true;
        }
        position = next_position;
    }
    let header_block = &bytes[..header_len.min(bytes.len())];
    HeaderScan {
        header_len,
        recognised_fields,
        longest_line,
        over_limit,
        binary_junk: is_binary_junk(header_block),
        has_blank_line,
    }
}

/// `Name:` with a field name of printable ASCII without colon (RFC 5322 ftext),
/// optionally followed by blanks before the colon (seen in the wild).
fn is_header_field(line: &[u8]) -> bool {
    let name_len = line
        .iter()
        .take_while(|&&byte| (33..=126).contains(&byte) && byte != b':')
        .count();
    if name_len == 0 || name_len > 76 {
        return false;
    }
    let rest = line[name_len..].trim_ascii_start();
    rest.first() == Some(&b':')
}

/// NUL bytes, or more than a third of the bytes neither text nor part of valid UTF-8.
fn is_binary_junk(header_block: &[u8]) -> bool {
    if header_block.contains(&0) {
        return true;
    }
    let control_bytes = header_block
        .iter()
        .filter(|&&byte| {
            (byte < 0x20 && !matches!(byte, b'\t' | b'\r' | b'\n' | 0x1b)) || byte == 0x7f
        })
        .count();
    let invalid_utf8_bytes: usize = header_block
        .utf8_chunks()
        .map(|chunk| chunk.invalid().len())
        .sum();
    (control_bytes + invalid_utf8_bytes) * 3 > header_block.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_line_is_stripped() {
        let prepared =
            prepare(b"From someone@example.com Mon Jan  1 00:00:00 2024\nSubject: x\n\nbody\n");
        assert!(prepared.envelope_stripped);
        assert_eq!(&prepared.bytes[..], b"Subject: x\n\nbody\n");
    }

    #[test]
    fn leading_blank_lines_are_removed() {
        let prepared = prepare(b"   \r\n\nSubject: x\n\nbody\n");
        assert!(prepared.leading_blank_lines_removed);
        assert_eq!(&prepared.bytes[..], b"Subject: x\n\nbody\n");
    }

    #[test]
    fn bare_cr_becomes_crlf() {
        let prepared = prepare(b"Subject: x\rFrom: a@b\r\rbody\r");
        assert!(prepared.bare_cr_converted);
        assert_eq!(
            &prepared.bytes[..],
            b"Subject: x\r\nFrom: a@b\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn scan_finds_the_blank_line() {
        let header_scan = scan(b"Subject: x\r\nX-Long: a\r\n b\r\n\r\nbody", 1000);
        assert_eq!(header_scan.recognised_fields, 2);
        assert!(header_scan.has_blank_line);
        assert_eq!(header_scan.header_len, 29);
        assert!(!header_scan.binary_junk);
        assert!(!header_scan.over_limit);
    }

    #[test]
    fn scan_stops_at_the_limit() {
        let mut big = b"Subject: x\n".to_vec();
        for _ in 0..100 {
            big.extend_from_slice(b"X-Filler: 0123456789\n");
        }
        let header_scan = scan(&big, 200);
        assert!(header_scan.over_limit);
    }

    #[test]
    fn prose_has_no_header_field() {
        assert_eq!(
            scan(b"// Not an RFC-822 Document", 1000).recognised_fields,
            0
        );
        assert!(is_header_field(b"Subject : x"));
        assert!(!is_header_field(b"Hello world: x"));
    }

    #[test]
    fn junk_is_recognised() {
        assert!(is_binary_junk(b"Subject: \0x"));
        assert!(is_binary_junk(&[
            0xff, 0xfe, 0x01, 0x02, 0x80, b'a', b':', 0x90
        ]));
        assert!(!is_binary_junk("Subject: caf\u{e9}\n".as_bytes()));
    }
}
