//! Honest figures for rules, model and their combination on the shared dev corpus,
//! and the choice of the combination weights.
//!
//! The rules were written looking at the 176 mails whose number is not divisible
//! by 5; the 44 others are held out. This example reports:
//!
//! 1. rules alone on all 220, on the 176 and on the 44;
//! 2. the model alone: stratified 5-fold cross-validation on all 220 (3 seeds),
//!    and trained on the 176, tested on the 44;
//! 3. a grid of combination weights scored by 5-fold cross-validation on the 176
//!    only (3 seeds): the 44 never take part in the choice;
//! 4. rules + model with the weights of config/classifier.toml (or `--weights A,B`):
//!    5-fold cross-validation on all 220, and trained on the 176, tested on the 44;
//!    with the share of mails under each confidence threshold.
//!
//! `cargo run --release -p supportd-classifier --example combine [-- --weights 0.5,1.0] [-- --no-grid]`

#[path = "../tests/corpus/mod.rs"]
mod corpus;

use supportd_classifier::model::{
    MeanAndDeviation, Model, TrainingExample, TrainingOptions, stratified_folds,
};
use supportd_classifier::{CategoryModel, Classifier, Combination, model_text};
use supportd_core::Classification;

use corpus::{LabelledMessage, Scores};

const SEEDS: [u64; 3] = [1, 2, 3];
const FOLDS: usize = 5;

/// One fold: which messages are held out, and the model trained on the others.
struct Fold {
    held_out: Vec<usize>,
    model: CategoryModel,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().collect();
    let Some(shared) = corpus::shared_dir() else {
        eprintln!("shared corpus not found: set SUPPORTD_SHARED_DIR");
        std::process::exit(2);
    };
    let (directory, messages) = corpus::load_dev_corpus(&shared);
    let classifier = Classifier::new(directory, corpus::load_rules());
    let mut combination = classifier.rules().combination().clone();
    if let Some(position) = arguments
        .iter()
        .position(|argument| argument == "--weights")
        && let Some(value) = arguments.get(position + 1)
        && let Some((rule_weight, model_weight)) = value.split_once(',')
    {
        combination.rule_weight = rule_weight.parse()?;
        combination.model_weight = model_weight.parse()?;
    }
    let all: Vec<usize> = (0..messages.len()).collect();
    let development: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&index| !messages[index].is_held_out())
        .collect();
    let held_out: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&index| messages[index].is_held_out())
        .collect();
    let texts: Vec<String> = messages
        .iter()
        .map(|labelled| model_text(&labelled.message).into_owned())
        .collect();

    println!("== 1. rules alone");
    let rules_only: Vec<Classification> = messages
        .iter()
        .map(|labelled| classifier.classify_with(&labelled.message, None, &combination))
        .collect();
    for (name, subset) in [
        ("all-220", &all),
        ("dev-176", &development),
        ("held-out-44", &held_out),
    ] {
        println!(
            "  {name:<12} {}",
            score_subset(&messages, &rules_only, subset).summary()
        );
    }

    println!("== 2. model alone");
    let folds_all = make_folds(&messages, &texts, &all)?;
    let model_alone = |model: &CategoryModel, index: usize| {
        let mut classification = rules_only[index].clone();
        let prediction = model
            .model()
            .predict(&messages[index].message.subject, &texts[index]);
        classification.category = prediction.label.parse().unwrap_or(classification.category);
        classification
    };
    report_cv("5-fold CV on 220", &messages, &folds_all, &model_alone);
    let trained_on_development = train(&messages, &texts, &development)?;
    let predictions: Vec<Classification> = all
        .iter()
        .map(|&index| model_alone(&trained_on_development, index))
        .collect();
    println!(
        "  {:<28} {}",
        "trained on 176, on the 44",
        score_subset(&messages, &predictions, &held_out).summary()
    );

    if !arguments.iter().any(|argument| argument == "--no-grid") {
        println!(
            "== 3. weight grid, 5-fold CV on the 176 only (3 seeds): category accuracy, macro F1, mprec, mrecall"
        );
        let folds_development = make_folds(&messages, &texts, &development)?;
        let mut rows = Vec::new();
        for rule_weight in [0.0f32, 0.1, 0.2, 0.3, 0.5, 0.67, 1.0, 1.5] {
            for model_weight in [0.5f32, 1.0, 2.0] {
                let grid_point = Combination {
                    rule_weight,
                    model_weight,
                    ..combination.clone()
                };
                let per_fold = fold_scores(&messages, &folds_development, &|model, index| {
                    classifier.classify_with(&messages[index].message, Some(model), &grid_point)
                });
                rows.push((rule_weight, model_weight, summarise(&per_fold)));
            }
        }
        for (rule_weight, model_weight, summary) in &rows {
            println!("  a={rule_weight:<5} b={model_weight:<4} {summary}");
        }
    }

    println!(
        "== 4. rules + model, rule_weight {} model_weight {} floor {}",
        combination.rule_weight, combination.model_weight, combination.probability_floor
    );
    let combined = |model: &CategoryModel, index: usize| {
        classifier.classify_with(&messages[index].message, Some(model), &combination)
    };
    report_cv("5-fold CV on 220", &messages, &folds_all, &combined);
    let predictions: Vec<Classification> = all
        .iter()
        .map(|&index| combined(&trained_on_development, index))
        .collect();
    println!(
        "  {:<28} {}",
        "trained on 176, on the 44",
        score_subset(&messages, &predictions, &held_out).summary()
    );
    println!("  out-of-fold confidence thresholds (CV on 220, all seeds pooled):");
    let mut pooled: Vec<(f32, bool)> = Vec::new();
    for fold in &folds_all {
        for &index in &fold.held_out {
            let classification = combined(&fold.model, index);
            pooled.push((
                classification.confidence,
                classification.category == messages[index].category,
            ));
        }
    }
    for threshold in [0.3f32, 0.4, 0.5, 0.6, 0.7, 0.8] {
        let kept: Vec<&(f32, bool)> = pooled
            .iter()
            .filter(|(confidence, _)| *confidence >= threshold)
            .collect();
        let right = kept.iter().filter(|(_, right)| *right).count();
        let wrong_caught = pooled
            .iter()
            .filter(|(confidence, right)| *confidence < threshold && !right)
            .count();
        let wrong = pooled.iter().filter(|(_, right)| !right).count();
        println!(
            "    below {threshold:.1}: {:.1}% to triage, {:.3} right of the rest, {wrong_caught} of {wrong} mistakes caught",
            100.0 * (pooled.len() - kept.len()) as f64 / pooled.len() as f64,
            right as f64 / kept.len().max(1) as f64
        );
    }
    Ok(())
}

fn examples<'a>(
    messages: &'a [LabelledMessage],
    texts: &'a [String],
    subset: &[usize],
) -> Vec<TrainingExample<'a>> {
    subset
        .iter()
        .map(|&index| TrainingExample {
            subject: &messages[index].message.subject,
            text: &texts[index],
            label: messages[index].category.slug(),
        })
        .collect()
}

fn train(
    messages: &[LabelledMessage],
    texts: &[String],
    subset: &[usize],
) -> Result<CategoryModel, Box<dyn std::error::Error>> {
    let model = Model::train(
        &examples(messages, texts, subset),
        &TrainingOptions::recommended(),
    )?;
    Ok(CategoryModel::new(model)?)
}

/// Stratified folds of `subset` for every seed, each with its trained model.
fn make_folds(
    messages: &[LabelledMessage],
    texts: &[String],
    subset: &[usize],
) -> Result<Vec<Fold>, Box<dyn std::error::Error>> {
    let subset_examples = examples(messages, texts, subset);
    let mut folds = Vec::new();
    for seed in SEEDS {
        let fold_of = stratified_folds(&subset_examples, FOLDS, seed);
        for fold in 0..FOLDS {
            let training: Vec<usize> = subset
                .iter()
                .zip(&fold_of)
                .filter(|&(_, &f)| f != fold)
                .map(|(&index, _)| index)
                .collect();
            let held_out: Vec<usize> = subset
                .iter()
                .zip(&fold_of)
                .filter(|&(_, &f)| f == fold)
                .map(|(&index, _)| index)
                .collect();
            folds.push(Fold {
                held_out,
                model: train(messages, texts, &training)?,
            });
        }
    }
    Ok(folds)
}

fn fold_scores(
    messages: &[LabelledMessage],
    folds: &[Fold],
    classify: &dyn Fn(&CategoryModel, usize) -> Classification,
) -> Vec<Scores> {
    folds
        .iter()
        .map(|fold| {
            let classifications: Vec<Classification> = fold
                .held_out
                .iter()
                .map(|&index| classify(&fold.model, index))
                .collect();
            let pairs: Vec<_> = fold
                .held_out
                .iter()
                .map(|&index| &messages[index])
                .zip(classifications.iter())
                .collect();
            corpus::score(&pairs)
        })
        .collect()
}

fn summarise(per_fold: &[Scores]) -> String {
    let spread = |value: fn(&Scores) -> f64| {
        let figure = MeanAndDeviation::of(&per_fold.iter().map(value).collect::<Vec<_>>());
        format!("{:.3} ± {:.3}", figure.mean, figure.standard_deviation)
    };
    format!(
        "category {}  macro_f1 {}  tier {}  mprec {}  mrecall {}",
        spread(|scores| scores.category),
        spread(|scores| scores.macro_f1),
        spread(|scores| scores.tier),
        spread(|scores| scores.microsoft_precision),
        spread(|scores| scores.microsoft_recall),
    )
}

/// Mean ± sd over folds, and the out-of-fold predictions of the 44 (all seeds).
fn report_cv(
    name: &str,
    messages: &[LabelledMessage],
    folds: &[Fold],
    classify: &dyn Fn(&CategoryModel, usize) -> Classification,
) {
    println!(
        "  {name:<28} {}",
        summarise(&fold_scores(messages, folds, classify))
    );
    let mut held_out_pairs = Vec::new();
    for fold in folds {
        for &index in &fold.held_out {
            if messages[index].is_held_out() {
                held_out_pairs.push((&messages[index], classify(&fold.model, index)));
            }
        }
    }
    let pairs: Vec<_> = held_out_pairs
        .iter()
        .map(|(labelled, classification)| (*labelled, classification))
        .collect();
    println!(
        "  {:<28} {}",
        "  its out-of-fold 44 (x3)",
        corpus::score(&pairs).summary()
    );
}

fn score_subset(
    messages: &[LabelledMessage],
    classifications: &[Classification],
    subset: &[usize],
) -> Scores {
    let pairs: Vec<_> = subset
        .iter()
        .map(|&index| (&messages[index], &classifications[index]))
        .collect();
    corpus::score(&pairs)
}
