//! The new text of a reply: the body without quoted history and signature,
//! and the inline forwarded block, if any.
//!
//! Rules, in order (conservative: if they would leave nothing, the whole body
//! is kept):
//!
//! 1. The body is cut at the first *history marker*: an attribution line
//!    ("On … wrote:", also wrapped over two lines and in a few languages), an
//!    Outlook "-----Original Message-----" line, an Outlook header block
//!    ("From: …" followed within a few lines by "Sent:"/"Date:" and
//!    "To:"/"Subject:"), a line of underscores (Outlook web separator), or a
//!    forwarded-message marker ("---------- Forwarded message ----------",
//!    "Begin forwarded message:", "-------- Forwarded Message --------").
//!    An attribution line directly followed by "> " lines is only removed (the
//!    quoted lines go in step 2), so text written below a quote is kept.
//! 2. Lines starting with `>` are removed wherever they are (inline replies).
//! 3. The signature is removed: from a "-- " line (or "--" with at most
//!    [`MAX_SIGNATURE_LINES`] lines after it), trailing "Sent from my …" lines,
//!    and a sign-off block ("Thanks,", "Best regards", … alone on a line, or
//!    "Thanks – Raj") when it sits in the last lines, is followed only by a
//!    few short lines without a question, and has text above it.
//!
//! Forwarded content: a forwarded-message marker, or an Outlook
//! "Original Message"/header block in a mail whose subject says it is a
//! forward (FW:, Fwd:, …), starts a *forwarded block*. The block always goes
//! to `forwarded_text`. It also stays in `new_text` when the customer's own text
//! above it is tiny (fewer than [`TINY_TEXT_WORDS`] words after signature
//! removal, e.g. "FYI, see below"): then the forwarded mail *is* the request,
//! and dropping it would leave the classifier nothing to read. The same rule
//! applies to forwarded originals attached as message/rfc822 parts (applied by
//! the caller, which holds their text): when the own text is tiny, their
//! subject and body are appended to `new_text`.

/// A `--` signature (without the trailing space of the standard delimiter) is only
/// trusted when this few lines follow it.
const MAX_SIGNATURE_LINES: usize = 12;
/// Own text shorter than this (in words) keeps the inline forwarded block in new_text.
pub(crate) const TINY_TEXT_WORDS: usize = 15;
/// A sign-off block is at most this many lines after the sign-off line.
const MAX_SIGN_OFF_TAIL_LINES: usize = 6;

/// The new text of a reply and its inline forwarded block.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ReplyParts {
    pub new_text: String,
    /// The inline forwarded block (marker included), `""` when there is none.
    pub forwarded_block: String,
    /// A forwarded-message marker was found in the body.
    pub has_forward_marker: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// "On … wrote:" spanning `lines` lines.
    Attribution {
        lines: usize,
    },
    OriginalMessage,
    OutlookHeaderBlock,
    UnderscoreSeparator,
    Forwarded,
}

/// Splits `body_text` (lines separated by `\n`) into new text and forwarded block.
pub(crate) fn reply_parts(body_text: &str, subject_is_forward: bool) -> ReplyParts {
    let lines: Vec<&str> = body_text.lines().collect();
    let mut own_lines: Vec<&str> = Vec::with_capacity(lines.len());
    let mut forwarded_block = String::new();
    let mut has_forward_marker = false;
    let mut index = 0;
    while index < lines.len() {
        match marker_at(&lines, index) {
            None => {
                own_lines.push(lines[index]);
                index += 1;
            }
            Some(Marker::Attribution {
                lines: marker_lines,
            }) => {
                let next_content = lines[index + marker_lines..]
                    .iter()
                    .find(|line| !line.trim().is_empty());
                if next_content.is_some_and(|line| line.trim_start().starts_with('>')) {
                    index += marker_lines;
                } else {
                    break;
                }
            }
            Some(marker) => {
                let is_forward = marker == Marker::Forwarded
                    || (subject_is_forward
                        && matches!(
                            marker,
                            Marker::OriginalMessage
                                | Marker::OutlookHeaderBlock
                                | Marker::UnderscoreSeparator
                        ));
                if is_forward {
                    has_forward_marker |= marker == Marker::Forwarded;
                    forwarded_block = lines[index..].join("\n").trim().to_string();
                }
                break;
            }
        }
    }

    remove_attribution_before_trailing_quote(&mut own_lines);
    let unquoted: Vec<&str> = own_lines
        .into_iter()
        .filter(|line| !line.trim_start().starts_with('>'))
        .collect();
    let own_text = join_trimmed(&without_signature(&unquoted));

    let mut new_text = own_text;
    if !forwarded_block.is_empty() && word_count(&new_text) < TINY_TEXT_WORDS {
        if !new_text.is_empty() {
            new_text.push_str("\n\n");
        }
        new_text.push_str(&forwarded_block);
    }
    if new_text.trim().is_empty() {
        new_text = body_text.trim().to_string();
    }
    ReplyParts {
        new_text,
        forwarded_block,
        has_forward_marker,
    }
}

fn is_quote_line(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// Clients write attributions without "wrote:" ("2010/10/7 <x@example.com>",
/// "Le 3 mai, X a écrit :" cut short). When the text ends with a block of quoted
/// lines, a short line right above it that ends with ':' or '>' or holds an
/// address is taken as its attribution.
fn remove_attribution_before_trailing_quote(lines: &mut Vec<&str>) {
    let Some(last_content) = lines.iter().rposition(|line| !line.trim().is_empty()) else {
        return;
    };
    if !is_quote_line(lines[last_content]) {
        return;
    }
    let mut block_start = last_content;
    while block_start > 0
        && (is_quote_line(lines[block_start - 1]) || lines[block_start - 1].trim().is_empty())
    {
        block_start -= 1;
    }
    let Some(candidate) = block_start.checked_sub(1) else {
        return;
    };
    let line = lines[candidate].trim();
    if line.chars().count() <= 200
        && (line.ends_with(':') || line.ends_with('>') || line.contains('@'))
    {
        lines.remove(candidate);
    }
}

pub(crate) fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

fn join_trimmed(lines: &[&str]) -> String {
    let mut text = String::new();
    for line in lines {
        text.push_str(line.trim_end());
        text.push('\n');
    }
    let trimmed =
        text.trim_matches(|character: char| character == '\n' || character.is_whitespace());
    // Collapse runs of blank lines left where quotes were removed.
    let mut collapsed = String::with_capacity(trimmed.len());
    let mut blank_run = 0;
    for line in trimmed.split('\n') {
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        if !collapsed.is_empty() {
            collapsed.push('\n');
        }
        collapsed.push_str(line);
    }
    collapsed
}

/// Which history marker, if any, starts at `lines[index]`.
fn marker_at(lines: &[&str], index: usize) -> Option<Marker> {
    let line = strip_emphasis(lines[index].trim());
    if line.is_empty() || line.starts_with('>') {
        return None;
    }
    let lower = line.to_lowercase();
    if is_forward_marker(&lower) {
        return Some(Marker::Forwarded);
    }
    if is_original_message_marker(&lower) {
        return Some(Marker::OriginalMessage);
    }
    if line.len() >= 10 && line.chars().all(|character| character == '_') {
        return Some(Marker::UnderscoreSeparator);
    }
    if let Some(marker_lines) = attribution_lines(lines, index) {
        return Some(Marker::Attribution {
            lines: marker_lines,
        });
    }
    if is_outlook_header_block(lines, index) {
        return Some(Marker::OutlookHeaderBlock);
    }
    None
}

/// `*From:*` (bold from HTML conversion) reads as `From:`.
fn strip_emphasis(line: &str) -> &str {
    line.strip_prefix('*').unwrap_or(line)
}

fn is_forward_marker(lower: &str) -> bool {
    let core = lower.trim_matches(|character: char| character == '-' || character.is_whitespace());
    let dashed = lower.starts_with("--") && lower.ends_with("--");
    (dashed
        && matches!(
            core,
            "forwarded message"
                | "forwarded message follows"
                | "weitergeleitete nachricht"
                | "message transféré"
        ))
        || lower == "begin forwarded message:"
        || lower.starts_with("---------- forwarded message")
}

fn is_original_message_marker(lower: &str) -> bool {
    let dashed = lower.starts_with("--") && lower.ends_with("--");
    let core = lower.trim_matches(|character: char| character == '-' || character.is_whitespace());
    dashed
        && matches!(
            core,
            "original message"
                | "ursprüngliche nachricht"
                | "message d'origine"
                | "mensaje original"
        )
}

/// Attribution lines: "On … wrote:" (one line, or wrapped onto a second),
/// and the German, French and Spanish forms.
fn attribution_lines(lines: &[&str], index: usize) -> Option<usize> {
    let first = lines[index].trim();
    let starts_like_attribution = ["On ", "Am ", "Le ", "El ", "Em "]
        .iter()
        .any(|prefix| first.starts_with(prefix));
    if !starts_like_attribution || first.len() > 400 {
        return None;
    }
    if ends_like_attribution(first) {
        return Some(1);
    }
    let second = lines.get(index + 1)?.trim();
    if !second.is_empty() && first.len() + second.len() <= 400 && ends_like_attribution(second) {
        return Some(2);
    }
    None
}

fn ends_like_attribution(line: &str) -> bool {
    let lower = line.to_lowercase();
    [
        "wrote:",
        "schrieb:",
        "a écrit :",
        "a écrit:",
        "escribió:",
        "escreveu:",
    ]
    .iter()
    .any(|ending| lower.ends_with(ending))
}

/// "From: …" followed within four lines by "Sent:"/"Date:" and "To:"/"Subject:".
fn is_outlook_header_block(lines: &[&str], index: usize) -> bool {
    let first = strip_emphasis(lines[index].trim()).to_lowercase();
    if !(first.starts_with("from:")
        || first.starts_with("von:")
        || first.starts_with("de :")
        || first.starts_with("de:"))
    {
        return false;
    }
    let mut has_date = false;
    let mut has_recipient = false;
    for line in lines.iter().skip(index + 1).take(5) {
        let lower = strip_emphasis(line.trim()).to_lowercase();
        if [
            "sent:",
            "date:",
            "gesendet:",
            "envoyé :",
            "envoyé:",
            "enviado:",
        ]
        .iter()
        .any(|prefix| lower.starts_with(prefix))
        {
            has_date = true;
        }
        if [
            "to:", "subject:", "an:", "betreff:", "à :", "objet :", "para:", "asunto:", "cc:",
        ]
        .iter()
        .any(|prefix| lower.starts_with(prefix))
        {
            has_recipient = true;
        }
    }
    has_date && has_recipient
}

/// The lines without a trailing signature.
fn without_signature<'line>(lines: &[&'line str]) -> Vec<&'line str> {
    let mut end = lines.len();

    // 1. "-- " delimiter (standard), or "--" when what follows is short.
    if let Some(delimiter) = lines.iter().position(|line| *line == "-- ") {
        end = delimiter;
    } else if let Some(delimiter) = lines.iter().rposition(|line| line.trim_end() == "--")
        && lines.len() - delimiter - 1 <= MAX_SIGNATURE_LINES
    {
        end = delimiter;
    }

    // 2. Mobile footers at the end.
    while let Some(last_content) = lines[..end]
        .iter()
        .rposition(|line| !line.trim().is_empty())
    {
        let lower = lines[last_content].trim().to_lowercase();
        if lower.starts_with("sent from my ")
            || lower.starts_with("sent from outlook")
            || lower.starts_with("get outlook for ")
            || lower.starts_with("sent from mail for windows")
        {
            end = last_content;
        } else {
            break;
        }
    }

    // 3. Sign-off block in the last lines.
    let content_lines: Vec<usize> = (0..end)
        .filter(|&index| !lines[index].trim().is_empty())
        .collect();
    let tail_start = content_lines
        .len()
        .saturating_sub(MAX_SIGN_OFF_TAIL_LINES + 1);
    for (position, &line_index) in content_lines.iter().enumerate().skip(tail_start) {
        if !is_sign_off(lines[line_index]) {
            continue;
        }
        let has_text_above = position > 0;
        let tail_is_short = content_lines[position + 1..].iter().all(|&tail_index| {
            let tail = lines[tail_index].trim();
            tail.chars().count() <= 80 && !tail.ends_with('?')
        });
        if has_text_above && tail_is_short {
            end = line_index;
            break;
        }
    }

    lines[..end].to_vec()
}

const SIGN_OFFS: &[&str] = &[
    "thanks",
    "thank you",
    "thanks again",
    "thanks in advance",
    "thank you in advance",
    "many thanks",
    "thanks a lot",
    "thank you very much",
    "regards",
    "best regards",
    "kind regards",
    "warm regards",
    "warmest regards",
    "with regards",
    "many regards",
    "best",
    "all the best",
    "best wishes",
    "cheers",
    "sincerely",
    "yours sincerely",
    "sincerely yours",
    "yours faithfully",
    "yours truly",
    "respectfully",
    "thx",
    "br",
    "rgds",
    "mit freundlichen grüßen",
    "viele grüße",
    "cordialement",
    "saludos",
];

/// A sign-off phrase alone on its line ("Kind regards,"), or followed by a dash
/// and a short name ("Thanks – Raj").
fn is_sign_off(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    let phrase_of = |text: &str| {
        let phrase = text.trim().trim_end_matches(['.', ',', '!', ' ']);
        SIGN_OFFS.contains(&phrase)
    };
    if phrase_of(&lower) {
        return true;
    }
    for dash in [" – ", " — ", " - "] {
        if let Some((phrase, name)) = lower.split_once(dash)
            && phrase_of(phrase)
            && name.split_whitespace().count() <= 3
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_text(body: &str) -> String {
        reply_parts(body, false).new_text
    }

    #[test]
    fn gmail_reply() {
        let body = "Please escalate this.\n\nGreg Tolliver\nDirector\n\nOn Mon, Nov 2, 2026 at 4:55 PM Support <support@example.com> wrote:\n> Hello Greg,\n>\n> Please send a HAR file.\n";
        assert_eq!(
            new_text(body),
            "Please escalate this.\n\nGreg Tolliver\nDirector"
        );
    }

    #[test]
    fn wrapped_attribution_and_bottom_posting() {
        let body = "On Mon, Nov 2, 2026 at 4:55 PM Support <\nsupport@example.com> wrote:\n> question?\n\nMy answer below the quote.";
        assert_eq!(new_text(body), "My answer below the quote.");
    }

    #[test]
    fn attribution_without_wrote() {
        let body = "Which Saturday should I come?\n\nDavid\n\n2010/10/7 <school@example.com>\n\n> Dear David,\n> Thanks.\n";
        assert_eq!(new_text(body), "Which Saturday should I come?\n\nDavid");
        // An inline reply keeps its text.
        let inline = "> question one\nMy answer:\n> question two\nSecond answer.";
        assert_eq!(new_text(inline), "My answer:\nSecond answer.");
    }

    #[test]
    fn outlook_original_message() {
        let body = "Can you chase Microsoft?\n\nErik\n\n-----Original Message-----\nFrom: Support <s@example.com>\nSent: Tuesday\nTo: Erik\nSubject: case\n\nWe opened a case.";
        assert_eq!(new_text(body), "Can you chase Microsoft?\n\nErik");
    }

    #[test]
    fn outlook_header_block_with_separator() {
        let body = "Any news?\n\n________________________________\nFrom: Support <s@example.com>\nSent: Tuesday, 3 PM\nTo: me\nSubject: x\n\nold text";
        assert_eq!(new_text(body), "Any news?");
        let body = "Any news?\n\nFrom: Support <s@example.com>\nSent: Tuesday, 3 PM\nTo: me\nSubject: x\n\nold text";
        assert_eq!(new_text(body), "Any news?");
    }

    #[test]
    fn signatures() {
        assert_eq!(
            new_text("The VM is down.\n\nTheo\n--\nTheo Lindqvist\nHead of Platform"),
            "The VM is down.\n\nTheo"
        );
        assert_eq!(
            new_text("The VM is down.\n-- \nlong\nsig"),
            "The VM is down."
        );
        assert_eq!(
            new_text(
                "The VM is down, please help.\n\nKind regards,\nTom Ashdown\nIT Coordinator\nQuillfeather"
            ),
            "The VM is down, please help."
        );
        assert_eq!(
            new_text("Is there an article?\n\nThanks – Raj"),
            "Is there an article?"
        );
        assert_eq!(new_text("Ping?\n\nSent from my iPhone"), "Ping?");
        // A sign-off followed by a question is not a signature.
        assert_eq!(
            new_text("Status please.\n\nThanks,\nalso, can you call me?"),
            "Status please.\n\nThanks,\nalso, can you call me?"
        );
    }

    #[test]
    fn nothing_left_keeps_the_body() {
        assert_eq!(new_text("> only a quote"), "> only a quote");
        assert_eq!(new_text("Thanks!"), "Thanks!");
    }

    #[test]
    fn tiny_text_keeps_the_inline_forward() {
        let body = "FYI, see below\n\n---------- Forwarded message ---------\nFrom: Azure <noreply@azure.example>\nSubject: Alert\n\nYour VM stopped.";
        let parts = reply_parts(body, false);
        assert!(parts.has_forward_marker);
        assert!(
            parts
                .new_text
                .starts_with("FYI, see below\n\n---------- Forwarded message")
        );
        assert!(parts.new_text.ends_with("Your VM stopped."));
        assert!(
            parts
                .forwarded_block
                .starts_with("---------- Forwarded message")
        );
    }

    #[test]
    fn long_text_drops_the_inline_forward_from_new_text() {
        let body = "Our license server VM stopped overnight and will not start again; we tried twice and it fails with an internal error every time.\n\nBegin forwarded message:\n\nFrom: Azure\nSubject: Alert\n\nYour VM stopped.";
        let parts = reply_parts(body, false);
        assert!(parts.new_text.ends_with("internal error every time."));
        assert!(parts.forwarded_block.ends_with("Your VM stopped."));
    }

    #[test]
    fn outlook_forward_needs_a_forward_subject() {
        let body = "see below\n\n-----Original Message-----\nFrom: a\nSent: b\nTo: c\n\nThe portal is down.";
        assert_eq!(reply_parts(body, false).new_text, "see below");
        let parts = reply_parts(body, true);
        assert!(parts.new_text.ends_with("The portal is down."));
        assert!(!parts.has_forward_marker);
    }
}
