//! Scores the classifier on the shared dev corpus: the development part (files whose
//! number is not divisible by 5), the hold-out part (divisible by 5) and all of it.
//!
//! `cargo run --release -p supportd-classifier --example eval [-- --errors] [-- --speed]`
//! `--errors` lists the development-part mistakes (never the hold-out's);
//! `--speed` times classification over the corpus.

#[path = "../tests/corpus/mod.rs"]
mod corpus;

use std::time::Instant;

use supportd_classifier::{Classifier, Directory};

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let Some(shared) = corpus::shared_dir() else {
        eprintln!("shared corpus not found: set SUPPORTD_SHARED_DIR");
        std::process::exit(2);
    };
    let (directory, messages) = corpus::load_dev_corpus(&shared);
    let classifier = Classifier::new(directory.clone(), corpus::load_rules());
    let classifications = corpus::classify_all(&classifier, &messages);
    let pairs: Vec<_> = messages.iter().zip(classifications.iter()).collect();
    let development: Vec<_> = pairs
        .iter()
        .copied()
        .filter(|(m, _)| !m.is_held_out())
        .collect();
    let held_out: Vec<_> = pairs
        .iter()
        .copied()
        .filter(|(m, _)| m.is_held_out())
        .collect();

    let development_scores = corpus::score(&development);
    println!("dev-176   {}", development_scores.summary());
    if arguments.iter().any(|argument| argument == "--holdout") {
        println!("holdout-44 {}", corpus::score(&held_out).summary());
        println!("all-220   {}", corpus::score(&pairs).summary());
    }
    println!("dev confusion (gold -> predicted):");
    for ((gold, predicted), count) in &development_scores.confusion {
        println!("  {count:2}  {gold} -> {predicted}");
    }
    if arguments.iter().any(|argument| argument == "--errors") {
        for (labelled, classification) in &development {
            let wrong = labelled.category != classification.category
                || labelled.tier != classification.tier
                || labelled.microsoft != classification.microsoft;
            if !wrong {
                continue;
            }
            println!(
                "\n{} gold {}/{}/{} predicted {}/{}/{} (confidence {:.2}) subject: {}",
                labelled.file,
                labelled.tier,
                labelled.category,
                labelled.microsoft,
                classification.tier,
                classification.category,
                classification.microsoft,
                classification.confidence,
                labelled.message.subject
            );
            for reason in &classification.reasons {
                println!("    {reason}");
            }
        }
    }
    if arguments.iter().any(|argument| argument == "--speed") {
        speed(&directory, &messages);
    }
}

fn speed(directory: &Directory, messages: &[corpus::LabelledMessage]) {
    let classifier = Classifier::new(directory.clone(), corpus::load_rules());
    let total_bytes: usize = messages
        .iter()
        .map(|m| m.message.body_text.len() + m.message.forwarded_text.len())
        .sum();
    let rounds = 50;
    let start = Instant::now();
    let mut checksum = 0usize;
    for _ in 0..rounds {
        for labelled in messages {
            checksum += classifier.classify(&labelled.message).reasons.len();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let classified = (rounds * messages.len()) as f64;
    println!(
        "speed: {:.0} messages/s, mean text {} bytes, {:.1} MB/s (checksum {checksum})",
        classified / elapsed,
        total_bytes / messages.len(),
        (rounds * total_bytes) as f64 / elapsed / 1e6
    );
}
