//! From text to a TF-IDF vector: the vocabulary, the lookup tables built from
//! it, and the one function that vectorises a message for both training and
//! prediction.
//!
//! Training counts features as plain strings ([`document_features`]) to choose
//! the vocabulary. After that, training and prediction both go through
//! [`Lookup::vectorise`], so a message is always cut into the same features.
//! `vectorise` is built for speed: the distinct words of a message are looked
//! up once, and each known word brings its precomputed character n-gram ids;
//! only words the vocabulary has never seen are cut into n-grams on the fly.

use std::cell::RefCell;
use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use crate::options::{NgramRange, TrainingOptions};
use crate::text_map::TextMap;
use crate::tokens::{CharGrams, WordSpan, push_words};

/// What a vocabulary entry is. The numbers are part of the file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FeatureKind {
    /// One word, for example `invoice`.
    Word = 0,
    /// Two consecutive words separated by one space, for example `charged twice`.
    WordPair = 1,
    /// A character n-gram of a word padded with spaces, for example ` inv`.
    CharGram = 2,
}

impl FeatureKind {
    pub(crate) fn from_byte(byte: u8) -> Option<FeatureKind> {
        match byte {
            0 => Some(FeatureKind::Word),
            1 => Some(FeatureKind::WordPair),
            2 => Some(FeatureKind::CharGram),
            _ => None,
        }
    }
}

/// One vocabulary entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Feature {
    pub kind: FeatureKind,
    pub text: String,
}

/// The part of [`TrainingOptions`] that decides how text becomes features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Featuriser {
    pub word_ngrams: Option<NgramRange>,
    pub char_ngrams: Option<NgramRange>,
    pub subject_weight: u32,
    pub fold_digits: bool,
    pub sublinear_tf: bool,
    pub char_weight: f32,
}

impl Featuriser {
    pub fn from_options(options: &TrainingOptions) -> Featuriser {
        Featuriser {
            word_ngrams: options.word_ngrams,
            char_ngrams: options.char_ngrams,
            subject_weight: options.subject_weight,
            fold_digits: options.fold_digits,
            sublinear_tf: options.sublinear_tf,
            char_weight: options.char_weight,
        }
    }

    fn unigrams(&self) -> bool {
        self.word_ngrams.is_some_and(|range| range.min <= 1)
    }

    fn pairs(&self) -> bool {
        self.word_ngrams.is_some_and(|range| range.max >= 2)
    }
}

/// The distinct features of one message, as strings: the slow, obvious
/// definition that chooses the vocabulary (and that tests compare
/// [`Lookup::vectorise`] against).
pub(crate) fn document_features(
    featuriser: &Featuriser,
    subject: &str,
    text: &str,
) -> FxHashMap<Feature, u32> {
    let mut counts: FxHashMap<Feature, u32> = FxHashMap::default();
    let mut char_grams = CharGrams::default();
    let parts = [(subject, featuriser.subject_weight), (text, 1)];
    for (part, weight) in parts {
        if weight == 0 {
            continue;
        }
        let mut lowered = String::new();
        let mut words = Vec::new();
        push_words(part, featuriser.fold_digits, &mut lowered, &mut words);
        let mut add = |kind: FeatureKind, text: &str| {
            *counts
                .entry(Feature {
                    kind,
                    text: text.to_owned(),
                })
                .or_insert(0) += weight;
        };
        for (index, span) in words.iter().enumerate() {
            let word = span.text(&lowered);
            if featuriser.unigrams() {
                add(FeatureKind::Word, word);
            }
            if featuriser.pairs()
                && let Some(previous) = index.checked_sub(1).and_then(|before| words.get(before))
            {
                add(
                    FeatureKind::WordPair,
                    &format!("{} {word}", previous.text(&lowered)),
                );
            }
            if let Some(range) = featuriser.char_ngrams {
                char_grams.for_each(word, range.min, range.max, |gram| {
                    add(FeatureKind::CharGram, gram);
                });
            }
        }
    }
    counts
}

/// Marks "no feature" in the `u32` tables.
const NO_FEATURE: u32 = u32::MAX;

const FIRST_OF_PAIR: u8 = 1;
const SECOND_OF_PAIR: u8 = 2;

/// Term-frequency weights for counts below this come from a table.
const TF_TABLE_SIZE: usize = 256;

/// Fast lookup tables derived from the vocabulary (not stored in the file:
/// rebuilt by [`Lookup::build`] when a model is trained or loaded).
#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    featuriser: Featuriser,
    /// Every word that is a `Word` feature, part of a `WordPair` feature, or
    /// a known training word, to its slot number.
    word_slots: TextMap,
    /// Per slot: the word itself (for explanations).
    slot_words: Vec<Box<str>>,
    /// Per slot: its `Word` feature id, or `NO_FEATURE`.
    slot_unigram: Vec<u32>,
    /// Per slot: `FIRST_OF_PAIR` and/or `SECOND_OF_PAIR` if it is that word of
    /// some `WordPair` feature; lets prediction skip hopeless pair lookups.
    slot_pair_roles: Vec<u8>,
    /// Per slot: the range of `slot_char_features` holding the ids of its
    /// character n-grams that are in the vocabulary (with repeats).
    slot_char_start: Vec<u32>,
    slot_char_features: Vec<u32>,
    /// `WordPair` features by the slots of their two words (`first << 32 | second`).
    pairs: FxHashMap<u64, u32>,
    /// `CharGram` features by their text.
    char_grams: TextMap,
    /// `1 + ln(tf)` (or `tf`) for small counts.
    tf_table: Vec<f32>,
    feature_count: usize,
    /// The vocabulary is sorted by kind, so ids below `first_pair` are words,
    /// ids from `first_pair` below `first_char_gram` word pairs, and the rest
    /// character n-grams.
    first_pair: u32,
    first_char_gram: u32,
}

impl Lookup {
    /// `known_words` are training words that are not features themselves:
    /// they get a slot too, so their character n-grams are looked up once
    /// here instead of in every prediction. They change no result.
    pub fn build(featuriser: Featuriser, features: &[Feature], known_words: &[String]) -> Lookup {
        let mut word_slots = TextMap::default();
        let mut slot_words: Vec<Box<str>> = Vec::new();
        let mut slot_unigram: Vec<u32> = Vec::new();
        let mut char_grams = TextMap::default();
        let mut slot_of =
            |word: &str, word_slots: &mut TextMap, slot_unigram: &mut Vec<u32>| -> u32 {
                let next_slot = slot_words.len() as u32;
                let slot = word_slots.get_or_insert(word, next_slot);
                if slot == next_slot {
                    slot_words.push(word.into());
                    slot_unigram.push(NO_FEATURE);
                }
                slot
            };
        let mut pair_features: Vec<(u32, u32, u32)> = Vec::new();
        for (id, feature) in features.iter().enumerate() {
            let id = id as u32;
            match feature.kind {
                FeatureKind::Word => {
                    let slot = slot_of(&feature.text, &mut word_slots, &mut slot_unigram);
                    slot_unigram[slot as usize] = id;
                }
                FeatureKind::WordPair => {
                    if let Some((first, second)) = feature.text.split_once(' ') {
                        let first = slot_of(first, &mut word_slots, &mut slot_unigram);
                        let second = slot_of(second, &mut word_slots, &mut slot_unigram);
                        pair_features.push((first, second, id));
                    }
                }
                FeatureKind::CharGram => {
                    char_grams.get_or_insert(&feature.text, id);
                }
            }
        }
        if featuriser.char_ngrams.is_some() {
            for word in known_words {
                slot_of(word, &mut word_slots, &mut slot_unigram);
            }
        }
        let mut slot_pair_roles = vec![0u8; slot_words.len()];
        for &(first, second, _) in &pair_features {
            slot_pair_roles[first as usize] |= FIRST_OF_PAIR;
            slot_pair_roles[second as usize] |= SECOND_OF_PAIR;
        }
        let pairs = pair_features
            .into_iter()
            .map(|(first, second, id)| ((u64::from(first) << 32) | u64::from(second), id))
            .collect();

        let mut slot_char_start = Vec::with_capacity(slot_words.len() + 1);
        let mut slot_char_features = Vec::new();
        let mut char_gram_buffers = CharGrams::default();
        for word in &slot_words {
            slot_char_start.push(slot_char_features.len() as u32);
            if let Some(range) = featuriser.char_ngrams {
                char_gram_buffers.for_each(word, range.min, range.max, |gram| {
                    if let Some(id) = char_grams.get(gram) {
                        slot_char_features.push(id);
                    }
                });
            }
        }
        slot_char_start.push(slot_char_features.len() as u32);

        let tf_table = (0..TF_TABLE_SIZE)
            .map(|count| term_weight(featuriser.sublinear_tf, count as u32))
            .collect();
        Lookup {
            featuriser,
            word_slots,
            slot_words,
            slot_unigram,
            slot_pair_roles,
            slot_char_start,
            slot_char_features,
            pairs,
            char_grams,
            tf_table,
            feature_count: features.len(),
            first_pair: first_of_kind(features, FeatureKind::WordPair),
            first_char_gram: first_of_kind(features, FeatureKind::CharGram),
        }
    }

    pub fn is_pair(&self, id: u32) -> bool {
        (self.first_pair..self.first_char_gram).contains(&id)
    }

    fn slot_chars(&self, slot: u32) -> &[u32] {
        let from = self.slot_char_start[slot as usize] as usize;
        let to = self.slot_char_start[slot as usize + 1] as usize;
        &self.slot_char_features[from..to]
    }

    fn tf_weight(&self, count: u32) -> f32 {
        match self.tf_table.get(count as usize) {
            Some(&weight) => weight,
            None => term_weight(self.featuriser.sublinear_tf, count),
        }
    }

    /// Cuts a message into features and calls `use_vector` with the
    /// l2-normalised TF-IDF vector (feature ids and values, in no particular
    /// order) and the word breakdown needed for explanations.
    pub fn vectorise<T>(
        &self,
        idf: &[f32],
        subject: &str,
        text: &str,
        use_vector: impl FnOnce(&mut Vectorised<'_>) -> T,
    ) -> T {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.vectorise_with(&mut scratch, idf, subject, text, use_vector),
            // Only reachable if `use_vector` itself vectorises on this thread.
            Err(_) => {
                let mut scratch = Scratch::default();
                self.vectorise_with(&mut scratch, idf, subject, text, use_vector)
            }
        })
    }

    fn vectorise_with<T>(
        &self,
        scratch: &mut Scratch,
        idf: &[f32],
        subject: &str,
        text: &str,
        use_vector: impl FnOnce(&mut Vectorised<'_>) -> T,
    ) -> T {
        // Normally a no-op; cleans up after a call that panicked half-way.
        scratch.reset();
        scratch.prepare(self.feature_count, self.slot_words.len());
        scratch.lowered.reserve(subject.len() + text.len());
        let featuriser = &self.featuriser;
        let subject_weight = featuriser.subject_weight;
        if subject_weight > 0 {
            push_words(
                subject,
                featuriser.fold_digits,
                &mut scratch.lowered,
                &mut scratch.words,
            );
        }
        let subject_words = scratch.words.len();
        push_words(
            text,
            featuriser.fold_digits,
            &mut scratch.lowered,
            &mut scratch.words,
        );

        // Words: count known words per slot, word pairs directly, and set
        // unknown words aside.
        let pairs_wanted = featuriser.pairs() && !self.pairs.is_empty();
        let mut previous_slot = NO_FEATURE;
        for (index, span) in scratch.words.iter().enumerate() {
            let weight = if index < subject_words {
                subject_weight
            } else {
                1
            };
            if index == subject_words {
                previous_slot = NO_FEATURE;
            }
            let word = span.text(&scratch.lowered);
            match self.word_slots.get(word) {
                Some(slot) => {
                    let count = &mut scratch.slot_counts[slot as usize];
                    if *count == 0 {
                        scratch.touched_slots.push(slot);
                    }
                    *count += weight;
                    if pairs_wanted
                        && previous_slot != NO_FEATURE
                        && self.slot_pair_roles[previous_slot as usize] & FIRST_OF_PAIR != 0
                        && self.slot_pair_roles[slot as usize] & SECOND_OF_PAIR != 0
                    {
                        let key = (u64::from(previous_slot) << 32) | u64::from(slot);
                        if let Some(&id) = self.pairs.get(&key) {
                            scratch.feature_counts.add(id, weight);
                        }
                    }
                    previous_slot = slot;
                }
                None => {
                    scratch.unknown.push((*span, weight));
                    previous_slot = NO_FEATURE;
                }
            }
        }

        // Known words: their word feature and precomputed character n-grams.
        let unigrams = featuriser.unigrams();
        for position in 0..scratch.touched_slots.len() {
            let slot = scratch.touched_slots[position];
            let count = scratch.slot_counts[slot as usize];
            let unigram = self.slot_unigram[slot as usize];
            if unigrams && unigram != NO_FEATURE {
                scratch.feature_counts.add(unigram, count);
            }
            for &id in self.slot_chars(slot) {
                scratch.feature_counts.add(id, count);
            }
        }

        // Unknown words: merge repeats, then look up their character n-grams.
        if let Some(range) = featuriser.char_ngrams {
            let Scratch {
                lowered, unknown, ..
            } = &mut *scratch;
            let mut position_of: FxHashMap<&str, usize> = FxHashMap::default();
            let mut merged = 0usize;
            for index in 0..unknown.len() {
                let (span, weight) = unknown[index];
                match position_of.entry(span.text(lowered)) {
                    Entry::Occupied(entry) => unknown[*entry.get()].1 += weight,
                    Entry::Vacant(entry) => {
                        entry.insert(merged);
                        unknown[merged] = (span, weight);
                        merged += 1;
                    }
                }
            }
            unknown.truncate(merged);
            for position in 0..scratch.unknown.len() {
                let (span, count) = scratch.unknown[position];
                let start = scratch.unknown_char_features.len() as u32;
                let Scratch {
                    lowered,
                    char_grams,
                    unknown_char_features,
                    ..
                } = &mut *scratch;
                char_grams.for_each(span.text(lowered), range.min, range.max, |gram| {
                    if let Some(id) = self.char_grams.get(gram) {
                        unknown_char_features.push(id);
                    }
                });
                let end = scratch.unknown_char_features.len() as u32;
                scratch.unknown_ranges.push((start, end));
                for index in start..end {
                    let id = scratch.unknown_char_features[index as usize];
                    scratch.feature_counts.add(id, count);
                }
            }
        }

        // TF-IDF values, then l2 normalisation of each block (words and word
        // pairs; character n-grams), the second block scaled by `char_weight`.
        let mut word_squared_norm = 0.0f32;
        let mut char_squared_norm = 0.0f32;
        for &id in &scratch.feature_counts.touched {
            let value =
                self.tf_weight(scratch.feature_counts.counts[id as usize]) * idf[id as usize];
            if id < self.first_char_gram {
                word_squared_norm += value * value;
            } else {
                char_squared_norm += value * value;
            }
            scratch.values.push(value);
        }
        let block_scale = |squared_norm: f32, weight: f32| {
            if squared_norm > 0.0 {
                weight / squared_norm.sqrt()
            } else {
                weight
            }
        };
        let word_scale = block_scale(word_squared_norm, 1.0);
        let char_scale = block_scale(char_squared_norm, featuriser.char_weight);
        for (&id, value) in scratch
            .feature_counts
            .touched
            .iter()
            .zip(&mut scratch.values)
        {
            *value *= if id < self.first_char_gram {
                word_scale
            } else {
                char_scale
            };
        }

        let mut vectorised = Vectorised {
            lookup: self,
            scratch,
        };
        let result = use_vector(&mut vectorised);
        vectorised.scratch.reset();
        result
    }
}

/// Term counts of the current message.
#[derive(Debug, Default)]
struct FeatureCounts {
    /// Per feature id: its term count (zero outside a call).
    counts: Vec<u32>,
    /// Feature ids with a non-zero count, in first-seen order.
    touched: Vec<u32>,
}

impl FeatureCounts {
    fn add(&mut self, id: u32, count: u32) {
        let slot = &mut self.counts[id as usize];
        if *slot == 0 {
            self.touched.push(id);
        }
        *slot += count;
    }
}

/// The id of the first feature of `kind` or a later kind (the vocabulary is
/// sorted by kind).
fn first_of_kind(features: &[Feature], kind: FeatureKind) -> u32 {
    features.partition_point(|feature| feature.kind < kind) as u32
}

fn term_weight(sublinear_tf: bool, count: u32) -> f32 {
    if count == 0 {
        0.0
    } else if sublinear_tf {
        1.0 + (count as f32).ln()
    } else {
        count as f32
    }
}

thread_local! {
    /// Buffers reused across calls on one thread, so a prediction allocates
    /// almost nothing. They hold no state between calls: every call resets
    /// what it touched.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Debug, Default)]
struct Scratch {
    feature_counts: FeatureCounts,
    /// Per touched feature (same order): its normalised TF-IDF value.
    values: Vec<f32>,
    /// Per word slot: its count in the current message (zero outside a call).
    slot_counts: Vec<u32>,
    touched_slots: Vec<u32>,
    /// Subject and text words, lowered, back to back.
    lowered: String,
    words: Vec<WordSpan>,
    /// Words without a slot, with their weight; merged to distinct words.
    unknown: Vec<(WordSpan, u32)>,
    /// Per distinct unknown word: the range of `unknown_char_features` with
    /// its character n-gram ids.
    unknown_ranges: Vec<(u32, u32)>,
    unknown_char_features: Vec<u32>,
    char_grams: CharGrams,
    /// Per feature id: its part of a score per occurrence (explanations;
    /// only entries of touched features are meaningful).
    occurrence_parts: Vec<f32>,
}

impl Scratch {
    fn prepare(&mut self, feature_count: usize, slot_count: usize) {
        if self.feature_counts.counts.len() < feature_count {
            self.feature_counts.counts.resize(feature_count, 0);
        }
        if self.slot_counts.len() < slot_count {
            self.slot_counts.resize(slot_count, 0);
        }
    }

    fn reset(&mut self) {
        for &id in &self.feature_counts.touched {
            self.feature_counts.counts[id as usize] = 0;
        }
        for &slot in &self.touched_slots {
            self.slot_counts[slot as usize] = 0;
        }
        self.feature_counts.touched.clear();
        self.values.clear();
        self.touched_slots.clear();
        self.lowered.clear();
        self.words.clear();
        self.unknown.clear();
        self.unknown_ranges.clear();
        self.unknown_char_features.clear();
    }
}

/// A vectorised message, valid inside the [`Lookup::vectorise`] callback.
pub(crate) struct Vectorised<'a> {
    lookup: &'a Lookup,
    scratch: &'a mut Scratch,
}

impl Vectorised<'_> {
    /// Feature ids with a non-zero value.
    pub fn ids(&self) -> &[u32] {
        &self.scratch.feature_counts.touched
    }

    /// Their normalised TF-IDF values (same order as [`Vectorised::ids`]).
    pub fn values(&self) -> &[f32] {
        &self.scratch.values
    }

    /// [`Vectorised::for_each_word_share`], collected.
    #[cfg(test)]
    pub fn word_shares(&mut self, weight_of: impl Fn(u32) -> f32) -> Vec<(&str, f32)> {
        let mut shares = Vec::new();
        self.for_each_word_share(weight_of, |word, share| shares.push((word, share)));
        shares
    }

    /// Splits a linear score (`weight_of(id)` times the feature's value,
    /// summed) over the words of the message and calls `visit(word, share)`
    /// per distinct word: a word gets its own `Word` feature's part plus, for
    /// each of its character n-grams, the share of that n-gram's part
    /// proportional to how often the n-gram came from this word. Word pairs
    /// are not included: their parts are their own.
    pub fn for_each_word_share<'s>(
        &'s mut self,
        weight_of: impl Fn(u32) -> f32,
        mut visit: impl FnMut(&'s str, f32),
    ) {
        let lookup = self.lookup;
        let scratch = &mut *self.scratch;
        // The part of one occurrence of each feature, by id.
        if scratch.occurrence_parts.len() < scratch.feature_counts.counts.len() {
            scratch
                .occurrence_parts
                .resize(scratch.feature_counts.counts.len(), 0.0);
        }
        for (&id, &value) in scratch.feature_counts.touched.iter().zip(&scratch.values) {
            let count = scratch.feature_counts.counts[id as usize] as f32;
            scratch.occurrence_parts[id as usize] = weight_of(id) * value / count;
        }
        let scratch = &*scratch;
        let parts = &scratch.occurrence_parts;
        for &slot in &scratch.touched_slots {
            let count = scratch.slot_counts[slot as usize] as f32;
            let mut share = 0.0f32;
            let unigram = lookup.slot_unigram[slot as usize];
            if lookup.featuriser.unigrams() && unigram != NO_FEATURE {
                share += parts[unigram as usize]
                    * scratch.feature_counts.counts[unigram as usize] as f32;
            }
            let mut char_share = 0.0f32;
            for &id in lookup.slot_chars(slot) {
                char_share += parts[id as usize];
            }
            visit(
                &lookup.slot_words[slot as usize],
                share + char_share * count,
            );
        }
        for (&(span, count), &(start, end)) in scratch.unknown.iter().zip(&scratch.unknown_ranges) {
            let mut share = 0.0f32;
            for &id in &scratch.unknown_char_features[start as usize..end as usize] {
                share += parts[id as usize];
            }
            visit(span.text(&scratch.lowered), share * count as f32);
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::toy_examples;

    /// Vocabulary of every feature of the toy examples, idf 1 + id / 100.
    fn toy_lookup(
        featuriser: Featuriser,
        known_words: &[String],
    ) -> (Vec<Feature>, Vec<f32>, Lookup) {
        let mut features: Vec<Feature> = toy_examples()
            .iter()
            .flat_map(|example| {
                document_features(&featuriser, example.subject, example.text).into_keys()
            })
            .collect();
        features.sort();
        features.dedup();
        let idf = (0..features.len())
            .map(|id| 1.0 + id as f32 / 100.0)
            .collect();
        let lookup = Lookup::build(featuriser, &features, known_words);
        (features, idf, lookup)
    }

    fn featurisers() -> Vec<Featuriser> {
        let base = Featuriser::from_options(&TrainingOptions::DEFAULT);
        vec![
            base,
            Featuriser {
                subject_weight: 0,
                sublinear_tf: false,
                fold_digits: false,
                ..base
            },
            Featuriser {
                word_ngrams: Some(NgramRange { min: 2, max: 2 }),
                char_ngrams: Some(NgramRange { min: 2, max: 4 }),
                ..base
            },
            Featuriser {
                word_ngrams: None,
                ..base
            },
            Featuriser {
                char_ngrams: None,
                subject_weight: 3,
                ..base
            },
            Featuriser {
                char_weight: 0.3,
                ..base
            },
        ]
    }

    const SUBJECT: &str = "Re: invoice charged twice (2 times!)";
    const TEXT: &str = "The invoice, the INVOICE and the outage: users cannot reach \
                        the portal. Unseenword and anotherunseen word; unseenword again. Straße 12";

    /// Words of `TEXT` that are no toy feature, plus one that is.
    fn known_words() -> Vec<String> {
        ["again", "anotherunseen", "invoice", "straße", "unseenword"]
            .map(str::to_owned)
            .to_vec()
    }

    #[test]
    fn fast_vectorising_matches_the_string_definition() {
        let no_words: Vec<String> = Vec::new();
        let with_words = known_words();
        for (featuriser, known_words) in featurisers()
            .into_iter()
            .flat_map(|featuriser| [(featuriser, &no_words), (featuriser, &with_words)])
        {
            let (features, idf, lookup) = toy_lookup(featuriser, known_words);
            let counts = document_features(&featuriser, SUBJECT, TEXT);
            let mut expected: Vec<(u32, f32)> = counts
                .iter()
                .filter_map(|(feature, &count)| {
                    let id = features.binary_search(feature).ok()? as u32;
                    Some((
                        id,
                        term_weight(featuriser.sublinear_tf, count) * idf[id as usize],
                    ))
                })
                .collect();
            let is_char = |id: u32| features[id as usize].kind == FeatureKind::CharGram;
            let block_norm = |chars: bool| {
                expected
                    .iter()
                    .filter(|&&(id, _)| is_char(id) == chars)
                    .map(|(_, value)| value * value)
                    .sum::<f32>()
                    .sqrt()
            };
            let (word_norm, char_norm) = (block_norm(false), block_norm(true));
            for (id, value) in &mut expected {
                if is_char(*id) {
                    *value *= featuriser.char_weight / char_norm;
                } else {
                    *value /= word_norm;
                }
            }
            expected.sort_by_key(|&(id, _)| id);
            let mut actual: Vec<(u32, f32)> = lookup.vectorise(&idf, SUBJECT, TEXT, |vectorised| {
                vectorised
                    .ids()
                    .iter()
                    .copied()
                    .zip(vectorised.values().iter().copied())
                    .collect()
            });
            actual.sort_by_key(|&(id, _)| id);
            assert_eq!(expected.len(), actual.len(), "{featuriser:?}");
            for ((expected_id, expected_value), (actual_id, actual_value)) in
                expected.iter().zip(&actual)
            {
                assert_eq!(expected_id, actual_id);
                assert!((expected_value - actual_value).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn word_shares_and_pairs_add_up_to_the_score() {
        for featuriser in featurisers() {
            let (features, idf, lookup) = toy_lookup(featuriser, &known_words());
            let weight_of = |id: u32| (id % 7) as f32 - 3.0;
            lookup.vectorise(&idf, SUBJECT, TEXT, |vectorised| {
                let mut score = 0.0f32;
                let mut pairs = 0.0f32;
                for (&id, &value) in vectorised.ids().iter().zip(vectorised.values()) {
                    score += weight_of(id) * value;
                    if features[id as usize].kind == FeatureKind::WordPair {
                        pairs += weight_of(id) * value;
                    }
                }
                let shares: f32 = vectorised
                    .word_shares(weight_of)
                    .iter()
                    .map(|&(_, share)| share)
                    .sum();
                assert!((shares + pairs - score).abs() < 1e-4, "{featuriser:?}");
            });
        }
    }

    #[test]
    fn buffers_are_clean_between_calls() {
        let featuriser = featurisers()[0];
        let (_, idf, lookup) = toy_lookup(featuriser, &known_words());
        let collect = || {
            lookup.vectorise(&idf, SUBJECT, TEXT, |vectorised| {
                (vectorised.ids().to_vec(), vectorised.values().to_vec())
            })
        };
        let first = collect();
        lookup.vectorise(&idf, "other", "completely different text here", |_| ());
        assert_eq!(first, collect());
    }
}
