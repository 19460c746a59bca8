//! The shared dev corpus (../../../shared/corpus/dev or $SUPPORTD_SHARED_DIR/corpus/dev),
//! read through the real normaliser, and the scores LABELS.md / score.py define.
//! Shared by tests/dev_corpus.rs and examples/eval.rs; nothing of the corpus is copied.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use supportd_classifier::{Classifier, Directory, Rules};
use supportd_core::{Category, Classification, InboundMessage, Tier};

/// One corpus mail with its gold labels.
pub struct LabelledMessage {
    pub file: String,
    pub number: u32,
    pub message: InboundMessage,
    pub tier: Tier,
    pub category: Category,
    pub in_scope: bool,
    pub microsoft: bool,
}

impl LabelledMessage {
    /// Files whose number is divisible by 5 are held out from rule writing.
    pub fn is_held_out(&self) -> bool {
        self.number.is_multiple_of(5)
    }
}

/// The shared folder, when present.
pub fn shared_dir() -> Option<PathBuf> {
    let candidate = match std::env::var_os("SUPPORTD_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    candidate
        .join("corpus/dev/labels.csv")
        .is_file()
        .then_some(candidate)
}

pub fn rules_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/classifier.toml")
}

pub fn load_rules() -> Rules {
    let path = rules_path();
    let text = std::fs::read_to_string(&path).expect("config/classifier.toml is readable");
    Rules::from_toml(&text, "classifier.toml").unwrap_or_else(|error| panic!("{error}"))
}

/// The directory and every labelled message of the dev corpus.
pub fn load_dev_corpus(shared: &Path) -> (Directory, Vec<LabelledMessage>) {
    let dev = shared.join("corpus/dev");
    let accounts = std::fs::read_to_string(dev.join("accounts.csv")).expect("accounts.csv");
    let directory = Directory::from_csv(&accounts, "accounts.csv").expect("valid accounts.csv");
    let labels = std::fs::read_to_string(dev.join("labels.csv")).expect("labels.csv");
    let mut reader = csv::Reader::from_reader(labels.as_bytes());
    let mut messages = Vec::new();
    for row in reader.records() {
        let row = row.expect("labels.csv row");
        let file = row[0].to_owned();
        let raw = std::fs::read(dev.join(&file)).expect("corpus .eml");
        let message = match supportd_mail::normalise(&raw, &supportd_mail::Limits::DEFAULT) {
            supportd_mail::Normalised::Message(message) => message,
            supportd_mail::Normalised::Quarantine(quarantine) => {
                panic!("{file} was quarantined: {}", quarantine.reason)
            }
        };
        messages.push(LabelledMessage {
            number: file
                .trim_end_matches(".eml")
                .parse()
                .expect("numbered file"),
            file,
            message,
            tier: row[1].parse().expect("tier"),
            category: row[2].parse().expect("category"),
            in_scope: &row[3] == "true",
            microsoft: &row[4] == "true",
        });
    }
    (directory, messages)
}

/// Accuracy figures of a set of predictions, as tools/score.py computes them.
#[derive(Debug, Default, Clone)]
pub struct Scores {
    pub count: usize,
    pub tier: f64,
    pub category: f64,
    pub in_scope: f64,
    pub microsoft: f64,
    pub microsoft_precision: f64,
    pub microsoft_recall: f64,
    pub macro_f1: f64,
    /// (gold, predicted) -> count, mistakes only.
    pub confusion: BTreeMap<(Category, Category), usize>,
}

pub fn score(pairs: &[(&LabelledMessage, &Classification)]) -> Scores {
    let count = pairs.len();
    let fraction = |hits: usize| {
        if count == 0 {
            0.0
        } else {
            hits as f64 / count as f64
        }
    };
    let hits = |predicate: &dyn Fn(&LabelledMessage, &Classification) -> bool| {
        pairs
            .iter()
            .filter(|(gold, predicted)| predicate(gold, predicted))
            .count()
    };
    let (mut true_positive, mut false_positive, mut false_negative) = (0, 0, 0);
    let mut confusion = BTreeMap::new();
    let mut per_category: BTreeMap<Category, (usize, usize, usize)> = BTreeMap::new();
    for (gold, predicted) in pairs {
        match (gold.microsoft, predicted.microsoft) {
            (true, true) => true_positive += 1,
            (false, true) => false_positive += 1,
            (true, false) => false_negative += 1,
            (false, false) => {}
        }
        per_category.entry(gold.category).or_default();
        if gold.category == predicted.category {
            per_category.entry(gold.category).or_default().0 += 1;
        } else {
            per_category.entry(gold.category).or_default().2 += 1;
            per_category.entry(predicted.category).or_default().1 += 1;
            *confusion
                .entry((gold.category, predicted.category))
                .or_insert(0) += 1;
        }
    }
    let ratio = |numerator: usize, denominator: usize| {
        if denominator == 0 {
            1.0
        } else {
            numerator as f64 / denominator as f64
        }
    };
    let gold_categories: Vec<Category> = {
        let mut categories: Vec<Category> = pairs.iter().map(|(gold, _)| gold.category).collect();
        categories.sort();
        categories.dedup();
        categories
    };
    let f1s: Vec<f64> = gold_categories
        .iter()
        .map(|category| {
            let (tp, fp, fn_) = per_category[category];
            let precision = if tp + fp == 0 {
                0.0
            } else {
                tp as f64 / (tp + fp) as f64
            };
            let recall = if tp + fn_ == 0 {
                0.0
            } else {
                tp as f64 / (tp + fn_) as f64
            };
            if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            }
        })
        .collect();
    Scores {
        count,
        tier: fraction(hits(&|gold, predicted| gold.tier == predicted.tier)),
        category: fraction(hits(&|gold, predicted| gold.category == predicted.category)),
        in_scope: fraction(hits(&|gold, predicted| gold.in_scope == predicted.in_scope)),
        microsoft: fraction(hits(&|gold, predicted| {
            gold.microsoft == predicted.microsoft
        })),
        microsoft_precision: ratio(true_positive, true_positive + false_positive),
        microsoft_recall: ratio(true_positive, true_positive + false_negative),
        macro_f1: if f1s.is_empty() {
            0.0
        } else {
            f1s.iter().sum::<f64>() / f1s.len() as f64
        },
        confusion,
    }
}

impl Scores {
    pub fn summary(&self) -> String {
        format!(
            "n={} tier={:.3} category={:.3} in_scope={:.3} microsoft={:.3} mprec={:.3} mrecall={:.3} macro_f1={:.3}",
            self.count,
            self.tier,
            self.category,
            self.in_scope,
            self.microsoft,
            self.microsoft_precision,
            self.microsoft_recall,
            self.macro_f1
        )
    }
}

/// Classifies every message of the corpus.
pub fn classify_all(classifier: &Classifier, messages: &[LabelledMessage]) -> Vec<Classification> {
    messages
        .iter()
        .map(|labelled| classifier.classify(&labelled.message))
        .collect()
}
