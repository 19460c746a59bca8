//! Prediction and loading speed on synthetic data of realistic size.
//!
//! The training set imitates the dev corpus: 220 messages of ~90 words over 18
//! labels, words drawn from a Zipf-like vocabulary of 4,000 made-up words plus
//! 40 topic words per label. The message to classify is ~4 KB of the same
//! words with one word in ten never seen in training. The recommended
//! options give a model of ~4,000 features; the `large_` benchmarks use a
//! model with every feature kept and character 3- to 5-grams (~30,000).
//!
//! `cargo bench -p supportd-model --bench predict`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use supportd_model::{Model, NgramRange, TrainingExample, TrainingOptions};

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "nu", "re", "sa", "ti", "vo", "zen", "bar", "dor", "fel", "gra", "hin",
    "jus", "ker", "lim", "mon", "nor", "pel", "qui", "ros", "sul", "tra", "ung", "ver", "wes",
    "xan", "yor", "zul",
];

fn made_up_word(random: &mut SplitMix64) -> String {
    let syllables = 2 + random.below(3);
    (0..syllables)
        .map(|_| SYLLABLES[random.below(SYLLABLES.len())])
        .collect()
}

struct Corpus {
    common: Vec<String>,
    topics: Vec<Vec<String>>,
    labels: Vec<String>,
}

impl Corpus {
    fn new(random: &mut SplitMix64) -> Corpus {
        Corpus {
            common: (0..4000).map(|_| made_up_word(random)).collect(),
            topics: (0..18)
                .map(|_| (0..40).map(|_| made_up_word(random)).collect())
                .collect(),
            labels: (0..18).map(|label| format!("label-{label:02}")).collect(),
        }
    }

    /// Zipf-like: index `n` with probability roughly proportional to `1 / (n + 1)`.
    fn common_word(&self, random: &mut SplitMix64) -> &str {
        let uniform = (random.next() >> 11) as f64 / (1u64 << 53) as f64;
        let index = ((self.common.len() as f64 + 1.0).powf(uniform) - 1.0) as usize;
        &self.common[index.min(self.common.len() - 1)]
    }

    fn text(
        &self,
        random: &mut SplitMix64,
        label: usize,
        words: usize,
        unseen_every: usize,
    ) -> String {
        let mut text = String::new();
        for position in 0..words {
            if position > 0 {
                text.push(if position % 12 == 0 { '.' } else { ' ' });
                if position % 12 == 0 {
                    text.push(' ');
                }
            }
            if unseen_every > 0 && position % unseen_every == unseen_every - 1 {
                text.push_str(&made_up_word(random));
                text.push('x');
            } else if random.below(5) == 0 {
                let topic = &self.topics[label];
                text.push_str(&topic[random.below(topic.len())]);
            } else {
                text.push_str(self.common_word(random));
            }
        }
        text
    }
}

fn benchmarks(criterion: &mut Criterion) {
    let mut random = SplitMix64(2024);
    let corpus = Corpus::new(&mut random);
    let messages: Vec<(String, String, usize)> = (0..220)
        .map(|index| {
            let label = index % 18;
            let subject = corpus.text(&mut random, label, 5, 0);
            let text = corpus.text(&mut random, label, 90, 0);
            (subject, text, label)
        })
        .collect();
    let examples: Vec<TrainingExample<'_>> = messages
        .iter()
        .map(|(subject, text, label)| TrainingExample {
            subject,
            text,
            label: &corpus.labels[*label],
        })
        .collect();
    let train = |options: &TrainingOptions| match Model::train(&examples, options) {
        Ok(model) => model,
        Err(error) => panic!("training the benchmark model failed: {error}"),
    };
    let model = train(&TrainingOptions::recommended());
    let bytes = model.to_bytes();
    // A much bigger model: every feature kept, character 3- to 5-grams.
    let large_model = train(&TrainingOptions {
        char_ngrams: Some(NgramRange { min: 3, max: 5 }),
        min_document_frequency: 1,
        ..TrainingOptions::recommended()
    });
    let large_bytes = large_model.to_bytes();

    let mut text = String::new();
    while text.len() < 4096 {
        text.push_str(&corpus.text(&mut random, 3, 60, 10));
        text.push_str("\n\n");
    }
    text.truncate(text.floor_char_boundary(4096));
    let subject = corpus.text(&mut random, 3, 6, 0);
    eprintln!(
        "recommended model: {} features, {} labels, {} bytes; large model: {} features, {} bytes; message {} bytes",
        model.feature_count(),
        model.labels().len(),
        bytes.len(),
        large_model.feature_count(),
        large_bytes.len(),
        text.len()
    );

    let mut group = criterion.benchmark_group("model");
    group.throughput(Throughput::Elements(1));
    group.bench_function("predict_4kb", |bencher| {
        bencher.iter(|| model.predict(black_box(&subject), black_box(&text)))
    });
    group.bench_function("probabilities_4kb", |bencher| {
        bencher.iter(|| model.probabilities(black_box(&subject), black_box(&text)))
    });
    group.bench_function("from_bytes", |bencher| {
        bencher.iter(|| Model::from_bytes(black_box(&bytes)))
    });
    group.bench_function("large_predict_4kb", |bencher| {
        bencher.iter(|| large_model.predict(black_box(&subject), black_box(&text)))
    });
    group.bench_function("large_from_bytes", |bencher| {
        bencher.iter(|| Model::from_bytes(black_box(&large_bytes)))
    });
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
