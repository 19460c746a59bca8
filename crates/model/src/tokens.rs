//! Cutting text into words and words into character n-grams.
//!
//! A word is a run of Unicode alphanumeric characters (`char::is_alphanumeric`),
//! lower-cased (`char::to_lowercase`), with ASCII digits optionally folded to
//! `0`. Everything else (punctuation, spaces, symbols) separates words and is
//! dropped. Words of one character ("a", "I") and of more than
//! [`MAX_WORD_CHARS`] characters (base64, hashes, long URLs) are skipped: the
//! first say nothing about a category, the second would only add noise and time.

/// Words longer than this many characters are skipped.
pub(crate) const MAX_WORD_CHARS: usize = 32;

/// Words shorter than this many characters are skipped.
pub(crate) const MIN_WORD_CHARS: usize = 2;

/// A word of a lowered text: byte range into the lowered buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WordSpan {
    pub start: u32,
    pub end: u32,
}

impl WordSpan {
    pub fn text(self, lowered: &str) -> &str {
        lowered
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// Appends the lower-cased words of `text` to `lowered` (back to back, without
/// separators) and their spans to `words`.
pub(crate) fn push_words(
    text: &str,
    fold_digits: bool,
    lowered: &mut String,
    words: &mut Vec<WordSpan>,
) {
    let mut word_start = lowered.len();
    let mut word_chars = 0usize;
    let mut finish_word = |lowered: &mut String, word_start: usize, word_chars: usize| {
        if (MIN_WORD_CHARS..=MAX_WORD_CHARS).contains(&word_chars) {
            words.push(WordSpan {
                start: word_start as u32,
                end: lowered.len() as u32,
            });
        } else {
            lowered.truncate(word_start);
        }
    };
    let bytes = text.as_bytes();
    let mut position = 0usize;
    while position < bytes.len() {
        let byte = bytes[position];
        // ASCII, the common case, byte by byte; anything else as a char.
        let (character, length) = if byte.is_ascii() {
            (char::from(byte), 1)
        } else {
            match text.get(position..).and_then(|rest| rest.chars().next()) {
                Some(character) => (character, character.len_utf8()),
                None => break,
            }
        };
        position += length;
        if character.is_alphanumeric() {
            if word_chars == 0 {
                word_start = lowered.len();
            }
            word_chars += 1;
            if word_chars > MAX_WORD_CHARS {
                // Keep counting so the word is rejected, but stop copying it.
                continue;
            }
            if character.is_ascii() {
                if fold_digits && character.is_ascii_digit() {
                    lowered.push('0');
                } else {
                    lowered.push(character.to_ascii_lowercase());
                }
            } else {
                lowered.extend(character.to_lowercase());
            }
        } else if word_chars > 0 {
            finish_word(lowered, word_start, word_chars);
            word_chars = 0;
        }
    }
    if word_chars > 0 {
        finish_word(lowered, word_start, word_chars);
    }
}

/// Reusable buffers for the character n-grams of one word at a time.
#[derive(Debug, Default)]
pub(crate) struct CharGrams {
    /// The word with one space on either side.
    padded: String,
    /// Byte offset of every character of `padded`, plus its length.
    boundaries: Vec<usize>,
}

impl CharGrams {
    /// Calls `visit` with every n-gram of `min..=max` characters of `" word "`,
    /// shortest first, left to right. A word too short for an n has no n-gram
    /// of that length.
    pub fn for_each(&mut self, word: &str, min: u8, max: u8, mut visit: impl FnMut(&str)) {
        self.padded.clear();
        self.padded.push(' ');
        self.padded.push_str(word);
        self.padded.push(' ');
        if self.padded.is_ascii() {
            // One byte per character: slice directly.
            let characters = self.padded.len();
            for length in usize::from(min)..=usize::from(max) {
                if length > characters {
                    break;
                }
                for start in 0..=(characters - length) {
                    if let Some(gram) = self.padded.get(start..start + length) {
                        visit(gram);
                    }
                }
            }
            return;
        }
        self.boundaries.clear();
        self.boundaries
            .extend(self.padded.char_indices().map(|(offset, _)| offset));
        self.boundaries.push(self.padded.len());
        let characters = self.boundaries.len() - 1;
        for length in usize::from(min)..=usize::from(max) {
            if length > characters {
                break;
            }
            for start in 0..=(characters - length) {
                let from = self.boundaries[start];
                let to = self.boundaries[start + length];
                if let Some(gram) = self.padded.get(from..to) {
                    visit(gram);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_of(text: &str, fold_digits: bool) -> Vec<String> {
        let mut lowered = String::new();
        let mut words = Vec::new();
        push_words(text, fold_digits, &mut lowered, &mut words);
        words
            .iter()
            .map(|span| span.text(&lowered).to_owned())
            .collect()
    }

    #[test]
    fn words_are_lowered_unicode_runs_without_punctuation() {
        assert_eq!(
            words_of(
                "Why did we get CHARGED twice, for März? I don't know.",
                false
            ),
            [
                "why", "did", "we", "get", "charged", "twice", "for", "märz", "don", "know"
            ]
        );
    }

    #[test]
    fn digits_are_folded_on_request() {
        assert_eq!(
            words_of("Invoice 2024-117", true),
            ["invoice", "0000", "000"]
        );
        assert_eq!(
            words_of("Invoice 2024-117", false),
            ["invoice", "2024", "117"]
        );
    }

    #[test]
    fn overlong_words_are_skipped() {
        let long = "x".repeat(MAX_WORD_CHARS + 1);
        assert_eq!(words_of(&format!("ok {long} fine"), false), ["ok", "fine"]);
        let just_fits = "y".repeat(MAX_WORD_CHARS);
        assert_eq!(words_of(&just_fits, false), [just_fits]);
    }

    #[test]
    fn char_grams_pad_the_word_with_spaces() {
        let mut char_grams = CharGrams::default();
        let mut grams = Vec::new();
        char_grams.for_each("vm", 3, 5, |gram| grams.push(gram.to_owned()));
        assert_eq!(grams, [" vm", "vm ", " vm "]);
        grams.clear();
        char_grams.for_each("für", 3, 3, |gram| grams.push(gram.to_owned()));
        assert_eq!(grams, [" fü", "für", "ür "]);
    }
}
