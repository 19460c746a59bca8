//! Acceptance test over the shared corpus (never copied into the repository).
//!
//! The corpus is found through `SUPPORTD_SHARED_DIR`, or as `../../../shared`
//! relative to this crate. When it is missing the tests print a skip line, unless
//! `CI` is set: then they fail, because CI must run them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use supportd_mail::{Limits, Normalised, normalise};

fn corpus_dir(test_name: &str) -> Option<PathBuf> {
    let shared_dir = match std::env::var_os("SUPPORTD_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let corpus = shared_dir.join("corpus");
    if corpus.is_dir() {
        return Some(corpus);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test_name}: shared corpus not found at {} (set SUPPORTD_SHARED_DIR); CI must run this test",
        corpus.display()
    );
    println!(
        "SKIP {test_name}: shared corpus not found at {}",
        corpus.display()
    );
    None
}

fn sorted_files(dir: &Path, extension: Option<&str>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .filter(|path| {
            !path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'))
        })
        .filter(|path| {
            extension
                .is_none_or(|extension| path.extension().is_some_and(|found| found == extension))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn mime_corpus_is_normalised_without_panic() {
    let Some(corpus) = corpus_dir("mime_corpus_is_normalised_without_panic") else {
        return;
    };
    let files = sorted_files(&corpus.join("mime"), None);
    assert!(
        files.len() >= 360,
        "expected the 362 files of corpus/mime, found {}",
        files.len()
    );
    let mut messages = 0;
    let mut quarantined: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut warnings = 0;
    let mut bytes = 0;
    let started = Instant::now();
    for path in &files {
        let raw = std::fs::read(path).expect("read corpus file");
        bytes += raw.len();
        let first = normalise(&raw, &Limits::DEFAULT);
        let second = normalise(&raw, &Limits::DEFAULT);
        assert_eq!(
            first,
            second,
            "{}: normalise is not deterministic",
            path.display()
        );
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        match first {
            Normalised::Message(inbound_message) => {
                messages += 1;
                warnings += inbound_message.warnings.len();
                assert_eq!(inbound_message.size, raw.len() as u64);
                assert_eq!(inbound_message.content_hash.len(), 64);
                assert!(
                    !inbound_message.message_id.is_empty(),
                    "{name}: empty message id"
                );
                assert!(
                    !inbound_message.message_id.contains(['<', '>']),
                    "{name}: brackets in message id"
                );
            }
            Normalised::Quarantine(quarantine) => {
                assert!(!quarantine.reason.is_empty());
                assert!(!quarantine.message_id.is_empty());
                quarantined.entry(quarantine.reason).or_default().push(name);
            }
        }
    }
    let elapsed = started.elapsed();
    let quarantined_count: usize = quarantined.values().map(Vec::len).sum();
    println!(
        "corpus/mime: {} files, {messages} messages ({warnings} warnings), {quarantined_count} quarantined, {:.1} MB in {:?} (each twice)",
        files.len(),
        bytes as f64 / 1e6,
        elapsed
    );
    for (reason, names) in &quarantined {
        println!("  quarantined ({reason}): {}", names.join(", "));
    }
    assert_eq!(messages + quarantined_count, files.len());
}

/// Truncated streams (a connection cut mid-message) and tight limits: still no
/// panic, and the parser's own failures never need the panic safety net.
#[test]
fn truncated_mime_corpus_is_normalised_without_panic() {
    let Some(corpus) = corpus_dir("truncated_mime_corpus_is_normalised_without_panic") else {
        return;
    };
    let tight_limits = Limits {
        max_message_bytes: 200_000,
        max_mime_parts: 20,
        max_mime_depth: 3,
        max_header_bytes: 4_096,
        max_header_fields: 40,
        max_header_line_bytes: 1_024,
        max_recipients: 3,
        max_attachments: 2,
    };
    let mut outcomes = [0usize; 2];
    for path in sorted_files(&corpus.join("mime"), Some("eml")) {
        let raw = std::fs::read(&path).expect("read corpus file");
        for cut in [
            raw.len() / 3,
            raw.len() / 2,
            raw.len().saturating_sub(7),
            100.min(raw.len()),
        ] {
            for limits in [&Limits::DEFAULT, &tight_limits] {
                match normalise(&raw[..cut], limits) {
                    Normalised::Message(_) => outcomes[0] += 1,
                    Normalised::Quarantine(quarantine) => {
                        assert!(
                            !quarantine.reason.contains("panic"),
                            "{} cut at {cut}: {}",
                            path.display(),
                            quarantine.reason
                        );
                        outcomes[1] += 1;
                    }
                }
            }
        }
    }
    println!(
        "corpus/mime truncated: {} messages, {} quarantined",
        outcomes[0], outcomes[1]
    );
}

/// One line of corpus/dev/messages.jsonl, the fields this test checks.
struct SourceMessage {
    id: String,
    from: String,
    from_name: String,
    subject: String,
    body_text: String,
    mime_style: String,
    has_in_reply_to: bool,
    attachments: Vec<serde_json::Value>,
}

fn source_messages(dev_dir: &Path) -> Vec<SourceMessage> {
    let jsonl =
        std::fs::read_to_string(dev_dir.join("messages.jsonl")).expect("read messages.jsonl");
    jsonl
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).expect("messages.jsonl line is JSON");
            let text = |key: &str| {
                value
                    .get(key)
                    .and_then(|field| field.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            SourceMessage {
                id: text("id"),
                from: text("from"),
                from_name: text("from_name"),
                subject: text("subject"),
                body_text: text("body_text"),
                mime_style: text("mime_style"),
                has_in_reply_to: value
                    .get("in_reply_to")
                    .is_some_and(|field| !field.is_null()),
                attachments: value
                    .get("attachments")
                    .and_then(|field| field.as_array())
                    .cloned()
                    .unwrap_or_default(),
            }
        })
        .collect()
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// For comparing with the source text: whitespace collapsed, and the dashes
/// that the source wrote as "-" in text but as `&mdash;` in its HTML made equal.
fn comparable(text: &str) -> String {
    collapse(text).replace(['\u{2014}', '\u{2013}'], "-")
}

/// Quoted-printable residue such as "=E9" or "=20" (an escaped byte left in the text).
fn has_quoted_printable_residue(text: &str) -> bool {
    text.as_bytes().windows(3).any(|window| {
        window[0] == b'='
            && window[1].is_ascii_hexdigit()
            && window[2].is_ascii_hexdigit()
            && (window[1].is_ascii_uppercase() || window[1].is_ascii_digit())
            && (window[2].is_ascii_uppercase() || window[2].is_ascii_digit())
    })
}

fn has_html_tags(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "<p>", "<p ", "</p>", "<div", "</div>", "<br", "<html", "<body", "<span", "<table",
        "&nbsp;", "&quot;", "&#",
    ]
    .iter()
    .any(|tag| lower.contains(tag))
}

#[test]
fn dev_corpus_decodes_every_message() {
    let Some(corpus) = corpus_dir("dev_corpus_decodes_every_message") else {
        return;
    };
    let dev_dir = corpus.join("dev");
    let sources: BTreeMap<String, SourceMessage> = source_messages(&dev_dir)
        .into_iter()
        .map(|source| (source.id.clone(), source))
        .collect();
    let files = sorted_files(&dev_dir, Some("eml"));
    assert_eq!(files.len(), 220, "expected 220 .eml files in corpus/dev");

    let mut messages = 0;
    let mut body_mismatches = Vec::new();
    let mut by_style: BTreeMap<String, usize> = BTreeMap::new();
    let started = Instant::now();
    for path in &files {
        let raw = std::fs::read(path).expect("read dev file");
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = name.trim_end_matches(".eml").to_string();
        let inbound_message = match normalise(&raw, &Limits::DEFAULT) {
            Normalised::Message(inbound_message) => inbound_message,
            Normalised::Quarantine(quarantine) => {
                panic!("{name}: quarantined: {}", quarantine.reason)
            }
        };
        messages += 1;
        let from = inbound_message
            .from
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no From"));
        assert!(!from.email.is_empty(), "{name}: empty From");
        assert!(!inbound_message.subject.is_empty(), "{name}: empty Subject");
        assert!(
            !inbound_message.body_text.trim().is_empty(),
            "{name}: empty body_text"
        );
        assert!(
            !inbound_message.new_text.trim().is_empty(),
            "{name}: empty new_text"
        );
        assert!(
            !inbound_message.message_id_synthesized,
            "{name}: Message-ID not found"
        );
        assert!(inbound_message.date.is_some(), "{name}: no date");
        for text in [&inbound_message.subject, &inbound_message.body_text] {
            assert!(!text.contains("=?"), "{name}: RFC 2047 residue in {text:?}");
            assert!(
                !has_quoted_printable_residue(text),
                "{name}: quoted-printable residue in {text:?}"
            );
            assert!(
                !text.contains('\u{fffd}'),
                "{name}: replacement character in {text:?}"
            );
        }
        if let Some(name_of_sender) = &from.name {
            assert!(
                !name_of_sender.contains("=?"),
                "{name}: RFC 2047 residue in From name"
            );
        }

        let source = sources
            .get(&id)
            .unwrap_or_else(|| panic!("{name}: not in messages.jsonl"));
        *by_style.entry(source.mime_style.clone()).or_default() += 1;
        assert_eq!(
            from.email.to_lowercase(),
            source.from.to_lowercase(),
            "{name}: From address"
        );
        assert_eq!(
            from.name.as_deref().unwrap_or(""),
            source.from_name,
            "{name}: From name"
        );
        assert_eq!(
            inbound_message.subject,
            collapse(&source.subject),
            "{name}: Subject"
        );
        if source.mime_style == "html_only" {
            assert!(
                !has_html_tags(&inbound_message.body_text),
                "{name}: HTML left in body_text"
            );
            assert!(
                inbound_message.body_html.is_some(),
                "{name}: body_html missing"
            );
        }
        if source.has_in_reply_to {
            assert!(
                !inbound_message.in_reply_to.is_empty(),
                "{name}: In-Reply-To missing"
            );
        }
        assert_eq!(
            inbound_message.attachments.len(),
            source.attachments.len(),
            "{name}: attachment count"
        );
        if source.mime_style == "forwarded_rfc822" {
            assert!(inbound_message.flags.forwarded, "{name}: forwarded flag");
            assert!(
                !inbound_message.forwarded_text.is_empty(),
                "{name}: forwarded_text empty"
            );
            assert!(
                inbound_message
                    .attachments
                    .iter()
                    .any(|attachment| attachment.content_type == "message/rfc822"),
                "{name}: message/rfc822 attachment missing"
            );
        }
        if comparable(&inbound_message.body_text) != comparable(&source.body_text) {
            body_mismatches.push(name.clone());
            let expected: String = comparable(&source.body_text).chars().take(200).collect();
            let found: String = comparable(&inbound_message.body_text)
                .chars()
                .take(200)
                .collect();
            assert_eq!(
                found, expected,
                "{name}: first 200 characters of body_text differ"
            );
        }
    }
    println!(
        "corpus/dev: {} files, {messages} messages, 0 quarantined, {} with body_text not equal after whitespace normalisation ({}), in {:?}; styles {by_style:?}",
        files.len(),
        body_mismatches.len(),
        body_mismatches.join(", "),
        started.elapsed()
    );
    assert_eq!(messages, files.len());
    assert!(
        body_mismatches.is_empty(),
        "body_text differs from messages.jsonl (after whitespace normalisation) for {}",
        body_mismatches.join(", ")
    );
}
