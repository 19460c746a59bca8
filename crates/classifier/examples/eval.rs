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
use supportd_core::InboundMessage;

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

/// Seconds this thread has run on a CPU (from /proc/thread-self/schedstat), so the
/// figures hold on a machine shared with other work; wall time when unavailable.
struct CpuClock {
    wall: Instant,
    cpu_start: Option<f64>,
}

impl CpuClock {
    fn cpu_seconds() -> Option<f64> {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let nanoseconds: f64 = text.split_whitespace().next()?.parse().ok()?;
        Some(nanoseconds / 1e9)
    }

    fn start() -> CpuClock {
        CpuClock {
            wall: Instant::now(),
            cpu_start: CpuClock::cpu_seconds(),
        }
    }

    fn elapsed(&self) -> f64 {
        match (self.cpu_start, CpuClock::cpu_seconds()) {
            (Some(start), Some(now)) => now - start,
            _ => self.wall.elapsed().as_secs_f64(),
        }
    }
}

/// Messages per CPU-second of `work` over `messages`: the best of five runs of ten
/// rounds, so other work on the machine does not distort the figure.
fn rate(messages: &[InboundMessage], mut work: impl FnMut(&InboundMessage) -> usize) -> f64 {
    let mut best: f64 = 0.0;
    let mut checksum = 0;
    for _ in 0..5 {
        let start = CpuClock::start();
        for _ in 0..10 {
            for message in messages {
                checksum += work(message);
            }
        }
        best = best.max((10 * messages.len()) as f64 / start.elapsed());
    }
    std::hint::black_box(checksum);
    best
}

fn speed(directory: &Directory, messages: &[corpus::LabelledMessage]) {
    let classifier = Classifier::new(directory.clone(), corpus::load_rules());
    let originals: Vec<InboundMessage> = messages.iter().map(|m| m.message.clone()).collect();
    let mean_bytes = originals
        .iter()
        .map(|m| m.body_text.len() + m.forwarded_text.len())
        .sum::<usize>()
        / originals.len();
    let classify = |message: &InboundMessage| classifier.classify(message).reasons.len();
    println!(
        "speed (corpus mails, mean text {mean_bytes} bytes): {:.0} messages/s",
        rate(&originals, classify)
    );

    // Each mail padded to a 4 KB body with the following mails' bodies: once as quoted
    // history (the new text unchanged), once as new text.
    let pad = |index: usize| {
        let mut body = originals[index].body_text.clone();
        let mut next = index + 1;
        while body.len() < 4096 {
            body.push_str("\n> ");
            body.push_str(&originals[next % originals.len()].body_text);
            next += 1;
        }
        body.truncate(body.floor_char_boundary(4096));
        body
    };
    let quoted: Vec<InboundMessage> = (0..originals.len())
        .map(|index| InboundMessage {
            body_text: pad(index),
            ..originals[index].clone()
        })
        .collect();
    let new_text: Vec<InboundMessage> = (0..originals.len())
        .map(|index| {
            let body = pad(index).replace("\n> ", "\n");
            InboundMessage {
                new_text: body.clone(),
                body_text: body,
                ..originals[index].clone()
            }
        })
        .collect();
    println!(
        "speed (4 KB body, mostly quoted history): {:.0} messages/s",
        rate(&quoted, classify)
    );
    println!(
        "speed (4 KB body, all new text): {:.0} messages/s",
        rate(&new_text, classify)
    );
    println!(
        "entities alone (4 KB body): {:.0} messages/s",
        rate(&new_text, |message| {
            supportd_classifier::extract_entities(&message.body_text)
                .regions
                .len()
        })
    );
}
