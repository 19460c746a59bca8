//! The model file: a versioned little-endian binary format.
//!
//! ```text
//! magic        8 bytes  "SPDMODEL"
//! version      u32      FORMAT_VERSION
//! options      word n-gram min, max (u8, u8; 0, 0 = none), char n-gram min, max,
//!              min_document_frequency u32, max_document_fraction f32,
//!              subject_weight u32, fold_digits u8, sublinear_tf u8, char_weight f32,
//!              l2_penalty f64, calibration_folds u32, max_iterations u64,
//!              gradient_tolerance f64
//! labels       u32 count, then per label: u32 length, UTF-8 bytes
//! features     u32 count, then per feature: u8 kind, u32 length, UTF-8 bytes
//!              (sorted by kind, then text)
//! known words  u32 count, then per word: u32 length, UTF-8 bytes (sorted;
//!              training words that are not features, kept only for speed)
//! temperature  f32 (scores are divided by it before the softmax)
//! idf          f32 per feature
//! intercepts   f32 per label
//! weights      f32 per feature and label, feature-major
//! checksum     u64 FNV-1a of every byte before it
//! ```
//!
//! The checksum catches truncated and damaged files; the version catches files
//! written by an older or newer supportd. Both give a clear [`ModelError`].

use crate::ModelError;
use crate::features::{Feature, FeatureKind, Featuriser, Lookup};
use crate::model::Model;
use crate::options::{NgramRange, TrainingOptions};

/// First bytes of every model file.
pub const MAGIC: [u8; 8] = *b"SPDMODEL";

/// The version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// 64-bit FNV-1a, a simple published hash used here only as a checksum.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn put_u32(bytes: &mut Vec<u8>, value: u32) {
    bytes.extend_from_slice(&value.to_le_bytes());
}

fn put_text(bytes: &mut Vec<u8>, text: &str) {
    put_u32(bytes, text.len() as u32);
    bytes.extend_from_slice(text.as_bytes());
}

fn put_range(bytes: &mut Vec<u8>, range: Option<NgramRange>) {
    match range {
        Some(range) => bytes.extend_from_slice(&[range.min, range.max]),
        None => bytes.extend_from_slice(&[0, 0]),
    }
}

pub(crate) fn to_bytes(model: &Model) -> Vec<u8> {
    let label_count = model.labels.len();
    let feature_count = model.features.len();
    let mut bytes = Vec::with_capacity(64 + feature_count * (16 + 4 * label_count));
    bytes.extend_from_slice(&MAGIC);
    put_u32(&mut bytes, FORMAT_VERSION);

    let options = &model.options;
    put_range(&mut bytes, options.word_ngrams);
    put_range(&mut bytes, options.char_ngrams);
    put_u32(&mut bytes, options.min_document_frequency);
    bytes.extend_from_slice(&options.max_document_fraction.to_le_bytes());
    put_u32(&mut bytes, options.subject_weight);
    bytes.push(u8::from(options.fold_digits));
    bytes.push(u8::from(options.sublinear_tf));
    bytes.extend_from_slice(&options.char_weight.to_le_bytes());
    bytes.extend_from_slice(&options.l2_penalty.to_le_bytes());
    put_u32(&mut bytes, options.calibration_folds);
    bytes.extend_from_slice(&options.max_iterations.to_le_bytes());
    bytes.extend_from_slice(&options.gradient_tolerance.to_le_bytes());

    put_u32(&mut bytes, label_count as u32);
    for label in &model.labels {
        put_text(&mut bytes, label);
    }
    put_u32(&mut bytes, feature_count as u32);
    for feature in &model.features {
        bytes.push(feature.kind as u8);
        put_text(&mut bytes, &feature.text);
    }
    put_u32(&mut bytes, model.known_words.len() as u32);
    for word in &model.known_words {
        put_text(&mut bytes, word);
    }
    bytes.extend_from_slice(&model.temperature.to_le_bytes());
    for values in [&model.idf, &model.intercepts, &model.weights] {
        for value in values {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
    }
    let checksum = fnv1a(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    bytes
}

/// Reads the body after the version, failing with "truncated" at the end.
struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize, what: &str) -> Result<&'a [u8], ModelError> {
        let end = self
            .position
            .checked_add(length)
            .filter(|&end| end <= self.bytes.len());
        match end {
            Some(end) => {
                let slice = &self.bytes[self.position..end];
                self.position = end;
                Ok(slice)
            }
            None => Err(corrupt(format!(
                "truncated: {what} needs {length} bytes at offset {}",
                self.position
            ))),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ModelError> {
        let slice = self.take(N, what)?;
        let mut array = [0u8; N];
        array.copy_from_slice(slice);
        Ok(array)
    }

    fn u8(&mut self, what: &str) -> Result<u8, ModelError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, ModelError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, ModelError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn f32(&mut self, what: &str) -> Result<f32, ModelError> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }

    fn f64(&mut self, what: &str) -> Result<f64, ModelError> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    fn bool(&mut self, what: &str) -> Result<bool, ModelError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(corrupt(format!("{what} is {other}, not 0 or 1"))),
        }
    }

    fn range(&mut self, what: &str) -> Result<Option<NgramRange>, ModelError> {
        let min = self.u8(what)?;
        let max = self.u8(what)?;
        Ok(if min == 0 && max == 0 {
            None
        } else {
            Some(NgramRange { min, max })
        })
    }

    fn text(&mut self, what: &str) -> Result<String, ModelError> {
        let length = self.u32(what)? as usize;
        let bytes = self.take(length, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(format!("{what} is not UTF-8")))
    }

    fn floats(&mut self, count: usize, what: &str) -> Result<Vec<f32>, ModelError> {
        let length = count
            .checked_mul(4)
            .ok_or_else(|| corrupt(format!("{what}: count {count} is too large")))?;
        let bytes = self.take(length, what)?;
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        if values.iter().any(|value| !value.is_finite()) {
            return Err(corrupt(format!("{what} holds a value that is not finite")));
        }
        Ok(values)
    }

    /// A count that must still fit in the remaining bytes at `minimum` bytes each,
    /// so a damaged count cannot make us allocate gigabytes.
    fn count(&mut self, minimum: usize, what: &str) -> Result<usize, ModelError> {
        let count = self.u32(what)? as usize;
        let remaining = self.bytes.len() - self.position;
        if count.saturating_mul(minimum) > remaining {
            return Err(corrupt(format!(
                "{what} is {count}, more than the {remaining} remaining bytes can hold"
            )));
        }
        Ok(count)
    }
}

fn corrupt(reason: String) -> ModelError {
    ModelError::CorruptModel { reason }
}

pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(ModelError::NotAModel);
    }
    let version_end = MAGIC.len() + 4;
    let version_bytes = bytes
        .get(MAGIC.len()..version_end)
        .ok_or_else(|| corrupt("truncated: no format version".to_owned()))?;
    let version = u32::from_le_bytes([
        version_bytes[0],
        version_bytes[1],
        version_bytes[2],
        version_bytes[3],
    ]);
    if version != FORMAT_VERSION {
        return Err(ModelError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let Some(body_end) = bytes.len().checked_sub(8).filter(|&end| end >= version_end) else {
        return Err(corrupt("truncated: no checksum".to_owned()));
    };
    let mut stored_checksum = [0u8; 8];
    stored_checksum.copy_from_slice(&bytes[body_end..]);
    if u64::from_le_bytes(stored_checksum) != fnv1a(&bytes[..body_end]) {
        return Err(corrupt(
            "checksum mismatch: the file is damaged or truncated".to_owned(),
        ));
    }

    let mut reader = Reader {
        bytes: &bytes[..body_end],
        position: version_end,
    };
    let options = TrainingOptions {
        word_ngrams: reader.range("word n-gram range")?,
        char_ngrams: reader.range("character n-gram range")?,
        min_document_frequency: reader.u32("min_document_frequency")?,
        max_document_fraction: reader.f32("max_document_fraction")?,
        subject_weight: reader.u32("subject_weight")?,
        fold_digits: reader.bool("fold_digits")?,
        sublinear_tf: reader.bool("sublinear_tf")?,
        char_weight: reader.f32("char_weight")?,
        l2_penalty: reader.f64("l2_penalty")?,
        calibration_folds: reader.u32("calibration_folds")?,
        max_iterations: reader.u64("max_iterations")?,
        gradient_tolerance: reader.f64("gradient_tolerance")?,
    };
    options
        .validate()
        .map_err(|error| corrupt(format!("stored options: {error}")))?;

    let label_count = reader.count(4, "label count")?;
    if label_count < 2 {
        return Err(corrupt(format!("{label_count} labels, need at least 2")));
    }
    let mut labels = Vec::with_capacity(label_count);
    for _ in 0..label_count {
        labels.push(reader.text("label")?);
    }
    if labels.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(corrupt("labels are not sorted and distinct".to_owned()));
    }

    let feature_count = reader.count(5, "feature count")?;
    let mut features = Vec::with_capacity(feature_count);
    for _ in 0..feature_count {
        let kind_byte = reader.u8("feature kind")?;
        let kind = FeatureKind::from_byte(kind_byte)
            .ok_or_else(|| corrupt(format!("unknown feature kind {kind_byte}")))?;
        let text = reader.text("feature text")?;
        features.push(Feature { kind, text });
    }
    if features.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(corrupt("features are not sorted and distinct".to_owned()));
    }

    let known_word_count = reader.count(4, "known word count")?;
    let mut known_words = Vec::with_capacity(known_word_count);
    for _ in 0..known_word_count {
        known_words.push(reader.text("known word")?);
    }
    if known_words.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(corrupt(
            "known words are not sorted and distinct".to_owned(),
        ));
    }

    let temperature = reader.f32("temperature")?;
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(corrupt(format!(
            "temperature {temperature} is not a positive number"
        )));
    }
    let idf = reader.floats(feature_count, "idf")?;
    let intercepts = reader.floats(label_count, "intercepts")?;
    let weight_count = feature_count
        .checked_mul(label_count)
        .ok_or_else(|| corrupt("weight matrix is too large".to_owned()))?;
    let weights = reader.floats(weight_count, "weights")?;
    if reader.position != reader.bytes.len() {
        return Err(corrupt(format!(
            "{} unexpected bytes after the weights",
            reader.bytes.len() - reader.position
        )));
    }

    let lookup = Lookup::build(Featuriser::from_options(&options), &features, &known_words);
    Ok(Model {
        options,
        labels,
        features,
        idf,
        weights,
        intercepts,
        temperature,
        known_words,
        lookup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::toy_examples;

    fn toy_bytes() -> Vec<u8> {
        let options = TrainingOptions {
            min_document_frequency: 1,
            ..TrainingOptions::DEFAULT
        };
        Model::train(&toy_examples(), &options).unwrap().to_bytes()
    }

    #[test]
    fn round_trip_keeps_every_byte_and_prediction() {
        let bytes = toy_bytes();
        assert_eq!(bytes[..8], MAGIC);
        let model = Model::from_bytes(&bytes).unwrap();
        assert_eq!(model.to_bytes(), bytes);
        let trained = Model::from_bytes(&bytes).unwrap();
        for example in toy_examples() {
            assert_eq!(
                model.predict(example.subject, example.text),
                trained.predict(example.subject, example.text)
            );
        }
    }

    #[test]
    fn damaged_bytes_are_rejected_clearly() {
        let bytes = toy_bytes();

        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        let error = Model::from_bytes(&flipped).unwrap_err();
        assert!(matches!(error, ModelError::CorruptModel { .. }));
        assert!(error.to_string().contains("checksum"), "{error}");

        let truncated = &bytes[..bytes.len() - 100];
        assert!(matches!(
            Model::from_bytes(truncated),
            Err(ModelError::CorruptModel { .. })
        ));
        assert!(matches!(
            Model::from_bytes(&bytes[..10]),
            Err(ModelError::CorruptModel { .. })
        ));

        assert!(matches!(Model::from_bytes(b""), Err(ModelError::NotAModel)));
        assert!(matches!(
            Model::from_bytes(b"{\"labels\": []}"),
            Err(ModelError::NotAModel)
        ));

        let mut old = bytes.clone();
        old[8..12].copy_from_slice(&0u32.to_le_bytes());
        let error = Model::from_bytes(&old).unwrap_err();
        assert!(matches!(
            error,
            ModelError::UnsupportedVersion {
                found: 0,
                supported: FORMAT_VERSION
            }
        ));
        assert!(error.to_string().contains("retrain"), "{error}");
    }

    #[test]
    fn well_checksummed_nonsense_is_still_rejected() {
        // A valid checksum over a body with an impossible label count.
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3, 5]);
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&1.0f32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&[1, 1]);
        bytes.extend_from_slice(&1.0f32.to_le_bytes());
        bytes.extend_from_slice(&0.1f64.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&100u64.to_le_bytes());
        bytes.extend_from_slice(&1e-4f64.to_le_bytes());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let checksum = fnv1a(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        let error = Model::from_bytes(&bytes).unwrap_err();
        assert!(error.to_string().contains("label count"), "{error}");
    }
}
