//! HTML to readable text, in one bounded pass.
//!
//! mail-parser's own converter only breaks lines at `<br>` and `</p>`, so
//! paragraphs, list items, table rows and quoted blocks run together. This one:
//! - drops the content of `head`, `script`, `style`, `title`, `template`,
//!   `noscript`, comments and declarations;
//! - collapses whitespace like a browser, keeps `<pre>` as is;
//! - turns `p`, headings, lists, tables, `blockquote` into blank-line separated
//!   paragraphs, `div`, `tr`, `li` into line breaks, `br` into a line break;
//! - prefixes `blockquote` content with `> `, so quoted history in HTML replies
//!   is recognised like quoted plain text;
//! - decodes character references (named and numeric), `&nbsp;` as a space.
//!
//! Every byte is looked at a bounded number of times, so the cost is linear in
//! the input.

use mail_parser::decoders::html::add_html_token;

/// Converts an HTML document or fragment to plain text.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut writer = TextWriter::with_capacity(html.len() / 2);
    let bytes = html.as_bytes();
    let mut position = 0;
    let mut text_start = 0;
    while position < bytes.len() {
        match bytes[position] {
            b'<' => {
                writer.text(&html[text_start..position]);
                position = handle_markup(html, position, &mut writer);
                text_start = position;
            }
            b'&' => {
                writer.text(&html[text_start..position]);
                position = handle_reference(html, position, &mut writer);
                text_start = position;
            }
            _ => position += 1,
        }
    }
    writer.text(&html[text_start..]);
    writer.finish()
}

/// Handles the markup starting at `start` (a `<`); returns the position after it.
fn handle_markup(html: &str, start: usize, writer: &mut TextWriter) -> usize {
    let bytes = html.as_bytes();
    let after = &bytes[start + 1..];
    if after.starts_with(b"!--") {
        return find_from(bytes, start + 4, b"-->").map_or(bytes.len(), |end| end + 3);
    }
    if matches!(after.first(), Some(b'!' | b'?')) {
        return find_from(bytes, start + 1, b">").map_or(bytes.len(), |end| end + 1);
    }
    let is_closing = after.first() == Some(&b'/');
    let name_start = start + 1 + usize::from(is_closing);
    let name_len = bytes[name_start..]
        .iter()
        .take_while(|byte| byte.is_ascii_alphanumeric())
        .count();
    if name_len == 0 || !bytes[name_start].is_ascii_alphabetic() {
        // Not a tag ("a < b"): keep the "<" as text.
        writer.text("<");
        return start + 1;
    }
    let name = &html[name_start..name_start + name_len];
    let tag_end = end_of_tag(bytes, name_start + name_len);
    let self_closing = tag_end >= 2 && bytes[tag_end - 2] == b'/';
    let lower_name = name.to_ascii_lowercase();
    match lower_name.as_str() {
        "script" | "style" | "title" | "template" | "noscript" | "xml" if !is_closing => {
            if self_closing {
                return tag_end;
            }
            let closing = format!("</{lower_name}");
            find_from_ignore_case(bytes, tag_end, closing.as_bytes())
                .map_or(bytes.len(), |end| end_of_tag(bytes, end + closing.len()))
        }
        "head" if !is_closing => {
            // Skip to </head>, or to <body> when the head is never closed. The
            // searches remember what they found, so thousands of heads do not
            // make the pass quadratic.
            let head_end = writer
                .head_close_ahead
                .find(bytes, tag_end)
                .map(|end| end_of_tag(bytes, end + 6));
            let body_start = writer.body_ahead.find(bytes, tag_end);
            match (head_end, body_start) {
                (Some(head_end), Some(body_start)) => head_end.min(body_start),
                (Some(end), None) | (None, Some(end)) => end,
                (None, None) => tag_end,
            }
        }
        "br" => {
            writer.line_break();
            tag_end
        }
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ul" | "ol" | "dl" | "table" | "hr"
        | "address" | "figure" => {
            writer.paragraph_break();
            tag_end
        }
        "pre" => {
            writer.paragraph_break();
            writer.preformatted = !is_closing;
            tag_end
        }
        "blockquote" => {
            writer.paragraph_break();
            if is_closing {
                writer.quote_depth = writer.quote_depth.saturating_sub(1);
            } else if !self_closing {
                writer.quote_depth = writer.quote_depth.saturating_add(1).min(16);
            }
            tag_end
        }
        "li" => {
            writer.block_break();
            if !is_closing {
                writer.text_raw("- ");
            }
            tag_end
        }
        "div" | "tr" | "dt" | "dd" | "section" | "article" | "header" | "footer" | "main"
        | "nav" | "aside" | "center" | "form" | "fieldset" | "caption" | "tbody" | "thead"
        | "tfoot" | "body" | "html" => {
            writer.block_break();
            tag_end
        }
        "a" => {
            if is_closing {
                writer.close_link();
            } else {
                writer.open_link(link_target(&html[name_start + name_len..tag_end]));
            }
            tag_end
        }
        "td" | "th" => {
            if is_closing {
                writer.pending_space = true;
            }
            tag_end
        }
        _ => tag_end,
    }
}

/// The web address of an `<a>` tag's attributes (http, https or ftp only: not
/// mailto, anchors or scripts), with `&amp;` decoded.
fn link_target(attributes: &str) -> Option<String> {
    let bytes = attributes.as_bytes();
    let mut search_from = 0;
    while let Some(found) = find_from_ignore_case(bytes, search_from, b"href") {
        search_from = found + 4;
        let preceded_by_space = found == 0 || bytes[found - 1].is_ascii_whitespace();
        let rest = attributes[found + 4..].trim_start();
        let Some(value) = rest.strip_prefix('=').map(str::trim_start) else {
            continue;
        };
        if !preceded_by_space {
            continue;
        }
        let value = match value.chars().next() {
            Some(quote @ ('"' | '\'')) => value[1..].split(quote).next().unwrap_or(""),
            _ => value
                .split(|character: char| character.is_whitespace() || character == '>')
                .next()
                .unwrap_or(""),
        };
        let value = value.trim();
        let lower = value.to_ascii_lowercase();
        if lower.starts_with("http://")
            || lower.starts_with("https://")
            || lower.starts_with("ftp://")
        {
            return Some(value.replace("&amp;", "&"));
        }
        return None;
    }
    None
}

/// Position after the `>` closing a tag whose attributes start at `position`,
/// honouring quoted attribute values.
fn end_of_tag(bytes: &[u8], mut position: usize) -> usize {
    let mut quote: Option<u8> = None;
    while position < bytes.len() {
        let byte = bytes[position];
        match quote {
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None if byte == b'"' || byte == b'\'' => quote = Some(byte),
            None if byte == b'>' => return position + 1,
            None => {}
        }
        position += 1;
    }
    bytes.len()
}

/// Handles a character reference at `start` (a `&`); returns the position after it.
fn handle_reference(html: &str, start: usize, writer: &mut TextWriter) -> usize {
    let bytes = html.as_bytes();
    let semicolon = bytes[start + 1..]
        .iter()
        .take(32)
        .position(|&byte| byte == b';')
        .map(|offset| start + 1 + offset);
    let Some(semicolon) = semicolon else {
        writer.text("&");
        return start + 1;
    };
    let entity = &bytes[start + 1..semicolon];
    if entity.is_empty()
        || !entity
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'#')
    {
        writer.text("&");
        return start + 1;
    }
    let mut decoded = String::new();
    add_html_token(&mut decoded, &bytes[start..=semicolon], false);
    if decoded.chars().all(|character| character == '\u{a0}') {
        writer.text(" ");
    } else {
        writer.text_literal(&decoded);
    }
    semicolon + 1
}

fn find_from(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|offset| from + offset)
}

fn find_from_ignore_case(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
        .map(|offset| from + offset)
}

/// Builds the text: collapses whitespace, places line breaks and quote prefixes.
struct TextWriter {
    output: String,
    /// Line breaks owed before the next visible character (at most 2: a blank line).
    pending_breaks: u8,
    pending_space: bool,
    at_line_start: bool,
    quote_depth: u8,
    /// The open `<a>`: its web address and where its text starts in `output`.
    open_link: Option<(String, usize)>,
    /// Quote depth of the last line written: blank lines between a quote and
    /// unquoted text take the smaller of the two.
    last_line_quote_depth: u8,
    preformatted: bool,
    /// Where the next `</head` and `<body` are, remembered between `<head>` tags.
    head_close_ahead: Lookahead,
    body_ahead: Lookahead,
}

/// A case-insensitive search whose answer is remembered: positions only grow,
/// so every byte is searched at most once per needle.
struct Lookahead {
    needle: &'static [u8],
    /// The search covered `searched_from..` and found this (None: nothing there).
    searched_from: usize,
    found: Option<usize>,
    searched: bool,
}

impl Lookahead {
    fn new(needle: &'static [u8]) -> Lookahead {
        Lookahead {
            needle,
            searched_from: 0,
            found: None,
            searched: false,
        }
    }

    fn find(&mut self, bytes: &[u8], from: usize) -> Option<usize> {
        let still_valid = self.searched
            && self.searched_from <= from
            && self.found.is_none_or(|found| found >= from);
        if !still_valid {
            self.found = find_from_ignore_case(bytes, from, self.needle);
            self.searched_from = from;
            self.searched = true;
        }
        self.found
    }
}

impl TextWriter {
    fn with_capacity(capacity: usize) -> TextWriter {
        TextWriter {
            output: String::with_capacity(capacity),
            pending_breaks: 0,
            pending_space: false,
            at_line_start: true,
            quote_depth: 0,
            open_link: None,
            last_line_quote_depth: 0,
            preformatted: false,
            head_close_ahead: Lookahead::new(b"</head"),
            body_ahead: Lookahead::new(b"<body"),
        }
    }

    fn line_break(&mut self) {
        // A <br> always ends the line, even several in a row (at most one blank line).
        if self.pending_breaks < 2 {
            self.pending_breaks += 1;
        }
        self.pending_space = false;
    }

    fn block_break(&mut self) {
        if !self.at_line_start || self.pending_breaks > 0 {
            self.pending_breaks = self.pending_breaks.max(1);
        }
        self.pending_space = false;
    }

    fn paragraph_break(&mut self) {
        self.pending_breaks = 2;
        self.pending_space = false;
    }

    fn open_link(&mut self, target: Option<String>) {
        self.open_link = target.map(|target| (target, self.output.len()));
    }

    /// Writes the link's address after its text ("Verify Mailbox: https://…"),
    /// unless the text already shows it.
    fn close_link(&mut self) {
        let Some((target, text_start)) = self.open_link.take() else {
            return;
        };
        let link_text = self.output.get(text_start..).unwrap_or("");
        let bare_target = target
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        if link_text.contains(bare_target) {
            return;
        }
        if link_text.trim().is_empty() {
            self.text_literal(&target);
        } else {
            self.text_literal(": ");
            self.text_literal(&target);
        }
    }

    /// Text from the document: whitespace collapses unless preformatted.
    fn text(&mut self, text: &str) {
        for character in text.chars() {
            if self.preformatted {
                if character == '\n' {
                    self.pending_breaks = (self.pending_breaks + 1).min(2);
                } else if character != '\r' {
                    self.push_visible(character);
                }
            } else if character.is_whitespace() {
                if !self.at_line_start || self.pending_breaks == 0 {
                    self.pending_space = true;
                }
            } else {
                self.push_visible(character);
            }
        }
    }

    /// Decoded character reference: pushed as is, whitespace included.
    fn text_literal(&mut self, text: &str) {
        for character in text.chars() {
            if character == '\n' {
                self.line_break();
            } else {
                self.push_visible(character);
            }
        }
    }

    /// Generated text (list bullets) at the start of a line.
    fn text_raw(&mut self, text: &str) {
        for character in text.chars() {
            self.push_visible(character);
        }
    }

    fn push_visible(&mut self, character: char) {
        if self.pending_breaks > 0 && !self.output.is_empty() {
            let blank_line_depth = self.quote_depth.min(self.last_line_quote_depth);
            for break_index in 0..self.pending_breaks {
                if break_index > 0 {
                    for _ in 0..blank_line_depth {
                        self.output.push('>');
                    }
                }
                self.output.push('\n');
            }
            self.at_line_start = true;
        }
        self.pending_breaks = 0;
        if self.at_line_start {
            for _ in 0..self.quote_depth {
                self.output.push_str("> ");
            }
            self.at_line_start = false;
            self.last_line_quote_depth = self.quote_depth;
            self.pending_space = false;
            if character == ' ' && !self.preformatted {
                return;
            }
        } else if self.pending_space {
            self.output.push(' ');
        }
        self.pending_space = false;
        self.output.push(character);
    }

    fn finish(self) -> String {
        let mut output = self.output;
        let trimmed_len = output.trim_end().len();
        output.truncate(trimmed_len);
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_and_breaks() {
        let html = "<html><head><meta charset=utf-8><title>T</title><style>p{color:red}</style></head>\n<body><div>\n<p>Hello,</p>\n<p>It&#x27;s &quot;down&quot; &amp; out.</p>\n<p>Carl<br>\nOps</p>\n</div></body></html>";
        assert_eq!(
            html_to_text(html),
            "Hello,\n\nIt's \"down\" & out.\n\nCarl\nOps"
        );
    }

    #[test]
    fn scripts_and_comments_are_dropped() {
        let html = "<p>a<script type=\"text/javascript\">var x = '</p>';</script>b<!-- hidden <p> -->c</p>";
        assert_eq!(html_to_text(html), "abc");
    }

    #[test]
    fn lists_tables_and_quotes() {
        let html = "<ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table><blockquote><p>old</p><p>text</p></blockquote>after";
        assert_eq!(
            html_to_text(html),
            "- one\n- two\n\na b\nc\n\n> old\n>\n> text\n\nafter"
        );
    }

    #[test]
    fn links_show_their_address() {
        let html = "<p>Please <a style=\"x\" href=\"https://example.com/a?b=1&amp;c=2\">verify</a> now.</p><p><a href='https://example.com'>https://example.com</a> <a href=\"mailto:x@example.com\">x@example.com</a> <a href=\"#top\">top</a> <a href=https://img.example/><img src=x></a></p>";
        assert_eq!(
            html_to_text(html),
            "Please verify: https://example.com/a?b=1&c=2 now.\n\nhttps://example.com x@example.com top https://img.example/"
        );
    }

    #[test]
    fn broken_markup_is_bounded() {
        assert_eq!(html_to_text("a < b &amp c &nbsp;d"), "a < b &amp c d");
        assert_eq!(html_to_text("<p unterminated"), "");
        assert_eq!(html_to_text("<head><p>no body tag"), "no body tag");
        assert_eq!(html_to_text("<pre>  x\n  y</pre>"), "  x\n  y");
        assert_eq!(html_to_text("<head>a</head><head>b</head><body>c"), "c");
    }

    /// Hostile HTML of 1 MiB each: every one converts in linear time (at most
    /// about 1.5 s in an unoptimised build on a busy machine; a quadratic pass
    /// would take hours).
    #[test]
    fn pathological_html_is_converted_in_bounded_time() {
        const SIZE: usize = 1024 * 1024;
        let repeat = |unit: &str| unit.repeat(SIZE / unit.len());
        let cases = [
            repeat("<head>"),
            repeat("<head></head>") + "<body>x",
            repeat("<head></head>"),
            repeat("<script>"),
            repeat("<!--"),
            repeat("<a href=\"https://example.com/"),
            repeat("<a href=https://example.com>x</a>"),
            repeat("<blockquote><p>x"),
            repeat("&"),
            repeat("&#"),
            repeat("&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            repeat("<"),
            repeat("<p \""),
            repeat("<li><br>"),
            repeat("<pre>\n</pre>"),
            repeat("<a href=x href=y href=z "),
        ];
        for html in cases {
            let started = std::time::Instant::now();
            let text = html_to_text(&html);
            let elapsed = started.elapsed();
            assert!(
                elapsed < std::time::Duration::from_secs(15),
                "{:?}… took {elapsed:?}",
                &html[..20]
            );
            assert!(text.len() <= html.len() * 4, "{:?}…", &html[..20]);
        }
    }
}
