//! Stratified 5-fold cross-validation of the category model on the dev corpus.
//!
//! ```text
//! cargo run --release -p supportd-model --example cv [-- OPTIONS]
//!   --set KEY=VALUE   override a training option (repeatable):
//!                     word=1-2|1-1|none  char=3-5|2-5|none  min_df=N  max_df=F
//!                     subject=N  digits=true|false  sublinear=true|false
//!                     char_weight=F  l2=F  calibration=N  iterations=N  tolerance=F
//!   --seeds N         repeat the 5-fold split with seeds 1..=N (default 3)
//!   --sweep           vary one option at a time around the current options
//!   --speed           only train once and report size, load and predict times
//!   --nested          nested CV: pick l2, min_df and char n-grams by inner 3-fold CV
//!                     inside each outer training set, score on the outer fold
//! ```
//!
//! The corpus is `$SUPPORTD_SHARED_DIR/corpus/dev` (default: `shared/` beside
//! the repository). Each message is normalised with `supportd_mail::normalise`;
//! the model reads its subject and its new text plus forwarded text.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use supportd_mail::{Limits, Normalised};
use supportd_model::{
    CrossValidation, MeanAndDeviation, Model, NgramRange, TrainingExample, TrainingOptions,
    cross_validate, stratified_folds,
};

struct Message {
    subject: String,
    text: String,
    label: String,
}

fn main() -> anyhow::Result<()> {
    let mut options = TrainingOptions::recommended();
    let mut seeds = 3u64;
    let mut sweep = false;
    let mut nested = false;
    let mut speed = false;
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--set" => {
                let setting = arguments.next().context("--set needs KEY=VALUE")?;
                apply(&mut options, &setting)?;
            }
            "--seeds" => {
                seeds = arguments
                    .next()
                    .context("--seeds needs a number")?
                    .parse()
                    .context("--seeds needs a number")?;
            }
            "--sweep" => sweep = true,
            "--nested" => nested = true,
            "--speed" => speed = true,
            other => bail!("unknown argument {other:?} (see the top of examples/cv.rs)"),
        }
    }

    let messages = read_corpus()?;
    let examples: Vec<TrainingExample<'_>> = messages
        .iter()
        .map(|message| TrainingExample {
            subject: &message.subject,
            text: &message.text,
            label: &message.label,
        })
        .collect();
    println!(
        "{} messages, options: {}",
        examples.len(),
        describe(&options)
    );

    if speed {
        return report_costs(&examples, &options);
    }
    if nested {
        return nested_cross_validation(&examples, &options, seeds);
    }
    if sweep {
        return sweep_options(&examples, &options, seeds);
    }

    let started = Instant::now();
    let (accuracy, macro_f1, last) = repeated(&examples, &options, seeds)?;
    println!(
        "5-fold CV x {seeds} seeds: accuracy {accuracy}, macro F1 {macro_f1} ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    for (index, fold) in last.folds.iter().enumerate() {
        println!(
            "  seed {seeds} fold {index}: accuracy {:.3}, macro F1 {:.3} ({} messages)",
            fold.accuracy, fold.macro_f1, fold.test_examples
        );
    }
    print_confusions(&last);
    print_calibration(&last);
    report_costs(&examples, &options)
}

/// 5-fold CV repeated with seeds `1..=seeds`: mean ± sd over all folds of all
/// seeds, and the last run for details.
fn repeated(
    examples: &[TrainingExample<'_>],
    options: &TrainingOptions,
    seeds: u64,
) -> anyhow::Result<(MeanAndDeviation, MeanAndDeviation, CrossValidation)> {
    let mut accuracies = Vec::new();
    let mut macro_f1s = Vec::new();
    let mut last = None;
    for seed in 1..=seeds.max(1) {
        let cross_validation = cross_validate(examples, options, 5, seed)?;
        accuracies.extend(cross_validation.folds.iter().map(|fold| fold.accuracy));
        macro_f1s.extend(cross_validation.folds.iter().map(|fold| fold.macro_f1));
        last = Some(cross_validation);
    }
    let last = last.context("no seed ran")?;
    Ok((
        MeanAndDeviation::of(&accuracies),
        MeanAndDeviation::of(&macro_f1s),
        last,
    ))
}

fn print_confusions(cross_validation: &CrossValidation) {
    let mut mistakes = Vec::new();
    for (actual, row) in cross_validation.confusion.iter().enumerate() {
        for (predicted, &count) in row.iter().enumerate() {
            if actual != predicted && count > 0 {
                mistakes.push((count, actual, predicted));
            }
        }
    }
    mistakes.sort_by(|left, right| right.cmp(left));
    println!("most frequent confusions (actual -> predicted), last seed:");
    for (count, actual, predicted) in mistakes.iter().take(10) {
        println!(
            "  {count:>2} {} -> {}",
            cross_validation.labels[*actual], cross_validation.labels[*predicted]
        );
    }
}

/// How far the out-of-fold probability can be trusted: for each threshold,
/// the share of messages at or above it and the accuracy on those.
fn print_calibration(cross_validation: &CrossValidation) {
    let predictions = &cross_validation.predictions;
    let mean_probability = predictions
        .iter()
        .map(|prediction| f64::from(prediction.probability))
        .sum::<f64>()
        / predictions.len().max(1) as f64;
    println!(
        "confidence (out-of-fold, last seed): mean probability of the chosen label {mean_probability:.3}"
    );
    println!("  threshold -> share kept, accuracy of kept");
    for threshold in [0.0f32, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] {
        let kept: Vec<_> = cross_validation
            .predictions
            .iter()
            .filter(|prediction| prediction.probability >= threshold)
            .collect();
        let correct = kept
            .iter()
            .filter(|prediction| prediction.actual == prediction.predicted)
            .count();
        println!(
            "  {threshold:.1} -> {:.2}, {:.3}",
            kept.len() as f64 / cross_validation.predictions.len() as f64,
            correct as f64 / kept.len().max(1) as f64
        );
    }
}

/// Training time, model size, load time and prediction speed of a model
/// trained on every message.
fn report_costs(examples: &[TrainingExample<'_>], options: &TrainingOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let model = Model::train(examples, options)?;
    let training = started.elapsed();
    let bytes = model.to_bytes();
    let started = Instant::now();
    let loads = 20;
    for _ in 0..loads {
        std::hint::black_box(Model::from_bytes(&bytes)?);
    }
    let load = started.elapsed() / loads;
    let started = Instant::now();
    let mut predicted = 0u32;
    while started.elapsed() < Duration::from_secs(1) {
        for example in examples {
            std::hint::black_box(model.predict(example.subject, example.text));
            predicted += 1;
        }
    }
    let per_second = f64::from(predicted) / started.elapsed().as_secs_f64();
    let average_bytes = examples
        .iter()
        .map(|example| example.text.len())
        .sum::<usize>()
        / examples.len();
    println!(
        "full model: {} features, {} labels, temperature {:.2}, trained in {:.2} s, {:.2} MB, \
         loads in {:.1} ms, predicts {per_second:.0} corpus messages/s (average text {average_bytes} bytes)",
        model.feature_count(),
        model.labels().len(),
        model.temperature(),
        training.as_secs_f64(),
        bytes.len() as f64 / 1e6,
        load.as_secs_f64() * 1e3,
    );
    report_unseen_speed(examples, options)?;
    if let Some(example) = examples.first() {
        let prediction = model.predict(example.subject, example.text);
        let reasons: Vec<String> = prediction
            .top_features
            .iter()
            .map(ToString::to_string)
            .collect();
        println!(
            "first message: {} ({:.2}), model: {}",
            prediction.label,
            prediction.probability,
            reasons.join(", ")
        );
    }
    Ok(())
}

/// Prediction speed on ~4 KB texts the model has not seen: trained on four
/// folds, it reads the fifth fold's texts glued together into 4 KB pieces.
fn report_unseen_speed(
    examples: &[TrainingExample<'_>],
    options: &TrainingOptions,
) -> anyhow::Result<()> {
    let fold_of = stratified_folds(examples, 5, 1);
    let training: Vec<TrainingExample<'_>> = examples
        .iter()
        .zip(&fold_of)
        .filter(|&(_, &fold)| fold != 0)
        .map(|(example, _)| *example)
        .collect();
    let model = Model::train(&training, options)?;
    let mut pieces: Vec<(String, String)> = Vec::new();
    let mut piece = String::new();
    let mut subject = String::new();
    for (example, _) in examples
        .iter()
        .zip(&fold_of)
        .filter(|&(_, &fold)| fold == 0)
    {
        if piece.is_empty() {
            subject = example.subject.to_owned();
        }
        piece.push_str(example.text);
        piece.push_str("\n\n");
        if piece.len() >= 4096 {
            piece.truncate(piece.floor_char_boundary(4096));
            pieces.push((std::mem::take(&mut subject), std::mem::take(&mut piece)));
        }
    }
    let rounds = 20_000 / pieces.len().max(1) + 1;
    let started = Instant::now();
    let cpu_started = thread_cpu_nanoseconds();
    for _ in 0..rounds {
        for (subject, text) in &pieces {
            std::hint::black_box(model.predict(subject, text));
        }
    }
    let predictions = (rounds * pieces.len()) as f64;
    let wall = started.elapsed().as_secs_f64() / predictions;
    let cpu = match (cpu_started, thread_cpu_nanoseconds()) {
        (Some(before), Some(after)) => format!(
            ", {:.1} µs of CPU time each ({:.0}/s per core)",
            (after - before) as f64 / 1e3 / predictions,
            predictions * 1e9 / (after - before) as f64
        ),
        _ => String::new(),
    };
    println!(
        "unseen 4 KB texts ({} pieces of held-out mail): predict {:.1} µs wall each ({:.0}/s){cpu}",
        pieces.len(),
        wall * 1e6,
        1.0 / wall
    );
    let cpu_started = thread_cpu_nanoseconds();
    for _ in 0..rounds {
        for (subject, text) in &pieces {
            std::hint::black_box(model.probabilities(subject, text));
        }
    }
    if let (Some(before), Some(after)) = (cpu_started, thread_cpu_nanoseconds()) {
        println!(
            "  probabilities only (no explanation): {:.1} µs of CPU time each",
            (after - before) as f64 / 1e3 / predictions
        );
    }
    Ok(())
}

/// CPU time of this thread so far (Linux: first field of
/// `/proc/thread-self/schedstat`), so speed figures hold on a busy machine.
fn thread_cpu_nanoseconds() -> Option<u64> {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    schedstat.split_whitespace().next()?.parse().ok()
}

/// Varies one option at a time around `base`.
fn sweep_options(
    examples: &[TrainingExample<'_>],
    base: &TrainingOptions,
    seeds: u64,
) -> anyhow::Result<()> {
    let settings: &[&str] = &[
        "l2=0.01",
        "l2=0.02",
        "l2=0.05",
        "l2=0.1",
        "l2=0.2",
        "l2=0.5",
        "char_weight=0.5",
        "char_weight=1",
        "char_weight=1.5",
        "char=none",
        "char=2-4",
        "char=2-5",
        "char=3-5",
        "char=3-6",
        "char=4-6",
        "word=1-1",
        "word=1-2",
        "word=none",
        "min_df=1",
        "min_df=2",
        "min_df=3",
        "max_df=0.5",
        "max_df=1",
        "subject=0",
        "subject=1",
        "subject=2",
        "subject=3",
        "digits=false",
        "digits=true",
        "sublinear=false",
        "sublinear=true",
    ];
    let (accuracy, macro_f1, _) = repeated(examples, base, seeds)?;
    println!("base: accuracy {accuracy}, macro F1 {macro_f1}");
    for setting in settings {
        let mut options = *base;
        apply(&mut options, setting)?;
        if options == *base {
            continue;
        }
        let started = Instant::now();
        let (accuracy, macro_f1, _) = repeated(examples, &options, seeds)?;
        println!(
            "{setting:<16} accuracy {accuracy}, macro F1 {macro_f1} ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Outer stratified 5-fold; inside each outer training set, inner stratified
/// 3-fold CV chooses the L2 penalty, min_df and the character n-gram range; the
/// chosen options are trained on the outer training set and scored on the
/// outer test fold. Estimates the whole procedure, tuning included.
fn nested_cross_validation(
    examples: &[TrainingExample<'_>],
    base: &TrainingOptions,
    seeds: u64,
) -> anyhow::Result<()> {
    let mut candidates = Vec::new();
    for l2 in ["0.02", "0.05", "0.1"] {
        for min_df in ["2", "3"] {
            for char_range in ["4-4", "3-5"] {
                let mut options = *base;
                for setting in [
                    format!("l2={l2}"),
                    format!("min_df={min_df}"),
                    format!("char={char_range}"),
                ] {
                    apply(&mut options, &setting)?;
                }
                candidates.push(options);
            }
        }
    }
    let mut accuracies = Vec::new();
    let mut macro_f1s = Vec::new();
    for seed in 1..=seeds.max(1) {
        let outer = stratified_folds(examples, 5, seed);
        for fold in 0..5 {
            let training: Vec<TrainingExample<'_>> = examples
                .iter()
                .zip(&outer)
                .filter(|&(_, &example_fold)| example_fold != fold)
                .map(|(example, _)| *example)
                .collect();
            let mut best: Option<(f64, TrainingOptions)> = None;
            for candidate in &candidates {
                let inner = cross_validate(&training, candidate, 3, seed + 100)?;
                if best.is_none_or(|(score, _)| inner.accuracy.mean > score) {
                    best = Some((inner.accuracy.mean, *candidate));
                }
            }
            let (_, chosen) = best.context("no candidate")?;
            let model = Model::train(&training, &chosen)?;
            let tests: Vec<&TrainingExample<'_>> = examples
                .iter()
                .zip(&outer)
                .filter(|&(_, &example_fold)| example_fold == fold)
                .map(|(example, _)| example)
                .collect();
            let pairs: Vec<(&str, String)> = tests
                .iter()
                .map(|example| {
                    let predicted = model.predict(example.subject, example.text).label;
                    (example.label, predicted)
                })
                .collect();
            let (accuracy, macro_f1) = accuracy_and_macro_f1(&pairs);
            println!(
                "seed {seed} fold {fold}: chose {}, outer accuracy {accuracy:.3}, macro F1 {macro_f1:.3}",
                describe(&chosen)
            );
            accuracies.push(accuracy);
            macro_f1s.push(macro_f1);
        }
    }
    println!(
        "nested 5-fold CV: accuracy {}, macro F1 {}",
        MeanAndDeviation::of(&accuracies),
        MeanAndDeviation::of(&macro_f1s)
    );
    Ok(())
}

/// Accuracy, and F1 averaged over the labels that occur as actual or
/// predicted (as scikit-learn's `f1_score(average="macro")`).
fn accuracy_and_macro_f1(pairs: &[(&str, String)]) -> (f64, f64) {
    let correct = pairs
        .iter()
        .filter(|(actual, predicted)| *actual == predicted.as_str())
        .count();
    let labels: std::collections::BTreeSet<&str> = pairs
        .iter()
        .flat_map(|(actual, predicted)| [*actual, predicted.as_str()])
        .collect();
    let mut f1_sum = 0.0;
    for label in &labels {
        let true_positives = pairs
            .iter()
            .filter(|(actual, predicted)| actual == label && predicted == label)
            .count() as f64;
        let actual = pairs.iter().filter(|(actual, _)| actual == label).count() as f64;
        let predicted = pairs
            .iter()
            .filter(|(_, predicted)| predicted == label)
            .count() as f64;
        f1_sum += 2.0 * true_positives / (actual + predicted);
    }
    (
        correct as f64 / pairs.len().max(1) as f64,
        f1_sum / labels.len().max(1) as f64,
    )
}

fn parse_range(value: &str) -> anyhow::Result<Option<NgramRange>> {
    if value == "none" {
        return Ok(None);
    }
    let (min, max) = value
        .split_once('-')
        .with_context(|| format!("{value:?} is not MIN-MAX or none"))?;
    Ok(Some(NgramRange {
        min: min.parse()?,
        max: max.parse()?,
    }))
}

fn apply(options: &mut TrainingOptions, setting: &str) -> anyhow::Result<()> {
    let (key, value) = setting
        .split_once('=')
        .with_context(|| format!("{setting:?} is not KEY=VALUE"))?;
    match key {
        "word" => options.word_ngrams = parse_range(value)?,
        "char" => options.char_ngrams = parse_range(value)?,
        "min_df" => options.min_document_frequency = value.parse()?,
        "max_df" => options.max_document_fraction = value.parse()?,
        "subject" => options.subject_weight = value.parse()?,
        "digits" => options.fold_digits = value.parse()?,
        "sublinear" => options.sublinear_tf = value.parse()?,
        "char_weight" => options.char_weight = value.parse()?,
        "l2" => options.l2_penalty = value.parse()?,
        "calibration" => options.calibration_folds = value.parse()?,
        "iterations" => options.max_iterations = value.parse()?,
        "tolerance" => options.gradient_tolerance = value.parse()?,
        other => bail!("unknown option {other:?}"),
    }
    options.validate()?;
    Ok(())
}

fn describe(options: &TrainingOptions) -> String {
    let range = |range: Option<NgramRange>| match range {
        Some(range) => format!("{}-{}", range.min, range.max),
        None => "none".to_owned(),
    };
    format!(
        "word={} char={} char_weight={} min_df={} max_df={} subject={} digits={} sublinear={} l2={} calibration={} iterations={} tolerance={}",
        range(options.word_ngrams),
        range(options.char_ngrams),
        options.char_weight,
        options.min_document_frequency,
        options.max_document_fraction,
        options.subject_weight,
        options.fold_digits,
        options.sublinear_tf,
        options.l2_penalty,
        options.calibration_folds,
        options.max_iterations,
        options.gradient_tolerance,
    )
}

fn corpus_directory() -> PathBuf {
    let shared = match std::env::var_os("SUPPORTD_SHARED_DIR") {
        Some(directory) => PathBuf::from(directory),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    shared.join("corpus").join("dev")
}

fn read_corpus() -> anyhow::Result<Vec<Message>> {
    let directory = corpus_directory();
    let labels_path = directory.join("labels.csv");
    let labels = std::fs::read_to_string(&labels_path).with_context(|| {
        format!(
            "reading {} (set SUPPORTD_SHARED_DIR)",
            labels_path.display()
        )
    })?;
    let mut messages = Vec::new();
    for line in labels
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
    {
        let columns: Vec<&str> = line.split(',').collect();
        let (Some(file), Some(category)) = (columns.first(), columns.get(2)) else {
            bail!("bad line in labels.csv: {line:?}");
        };
        let path = directory.join(file);
        let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let Normalised::Message(message) = supportd_mail::normalise(&raw, &Limits::DEFAULT) else {
            bail!("{} was quarantined", path.display());
        };
        let mut text = message.new_text;
        if !message.forwarded_text.is_empty() {
            text.push('\n');
            text.push_str(&message.forwarded_text);
        }
        messages.push(Message {
            subject: message.subject,
            text,
            label: (*category).to_owned(),
        });
    }
    Ok(messages)
}
