//! `supportd eval`: classify a labelled folder and measure the result the way the
//! project's scorer does: accuracy of the four labels, precision / recall / F1 per
//! category, the confusion matrix, and Microsoft precision and recall.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;
use supportd_classifier::model::{
    MeanAndDeviation, Model, TrainingExample, TrainingOptions, stratified_folds,
};
use supportd_classifier::{CategoryModel, model_text};
use supportd_core::{Category, InboundMessage, Tier};
use supportd_mail::Normalised;

use crate::pipeline::Pipeline;
use crate::sources::{self, Input};

/// The four labels of one message (a labels.csv row, or a prediction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Labels {
    pub tier: Tier,
    pub category: Category,
    pub in_scope: bool,
    pub microsoft: bool,
}

/// Reads labels.csv (`file,tier,category,in_scope,microsoft`); errors name the line.
pub fn read_labels(path: &Path) -> anyhow::Result<BTreeMap<String, Labels>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read labels {}", path.display()))?;
    parse_labels(&text, &path.display().to_string())
}

pub fn parse_labels(text: &str, source_name: &str) -> anyhow::Result<BTreeMap<String, Labels>> {
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, line)| line.trim())
        .unwrap_or_default();
    if header != "file,tier,category,in_scope,microsoft" {
        bail!("{source_name}:1: expected the header `file,tier,category,in_scope,microsoft`");
    }
    let mut labels = BTreeMap::new();
    for (index, line) in lines {
        let line_number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [file, tier, category, in_scope, microsoft] = fields[..] else {
            bail!(
                "{source_name}:{line_number}: expected 5 fields, found {}",
                fields.len()
            );
        };
        let boolean = |name: &str, value: &str| match value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(anyhow::anyhow!(
                "{source_name}:{line_number}: {name} must be true or false, not `{value}`"
            )),
        };
        let row = Labels {
            tier: tier
                .parse()
                .with_context(|| format!("{source_name}:{line_number}"))?,
            category: category
                .parse()
                .with_context(|| format!("{source_name}:{line_number}"))?,
            in_scope: boolean("in_scope", in_scope)?,
            microsoft: boolean("microsoft", microsoft)?,
        };
        labels.insert(file.to_owned(), row);
    }
    Ok(labels)
}

/// Precision, recall, F1 and support of one category.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryScore {
    pub category: Category,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// One message the classifier got wrong.
#[derive(Debug, Clone, Serialize)]
pub struct EvalError {
    pub file: String,
    pub expected: Labels,
    pub predicted: Labels,
    pub confidence: f32,
    pub reasons: Vec<String>,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub messages: u64,
    /// Labelled files with no prediction (unreadable or missing).
    pub missing: Vec<String>,
    pub tier_accuracy: f64,
    pub category_accuracy: f64,
    pub in_scope_accuracy: f64,
    pub microsoft_accuracy: f64,
    pub microsoft_precision: f64,
    pub microsoft_recall: f64,
    pub macro_f1: f64,
    pub categories: Vec<CategoryScore>,
    /// `confusion[expected][predicted]`, in `Category::ALL` order.
    pub confusion: Vec<Vec<u64>>,
    pub errors: Vec<EvalError>,
    /// Messages the router sent to the triage queue (low confidence).
    pub triaged: u64,
    /// Category accuracy of the messages not sent to triage.
    pub untriaged_category_accuracy: f64,
    /// Share of the messages not sent to triage with all four labels right.
    pub untriaged_all_labels_accuracy: f64,
}

/// A prediction with what explains it.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub labels: Labels,
    pub confidence: f32,
    pub reasons: Vec<String>,
    /// The queue the router chose: [`TRIAGE_QUEUE`] means a person decides.
    pub queue: String,
}

/// The queue of tickets whose category confidence is too low (config/routing.toml).
pub const TRIAGE_QUEUE: &str = "triage";

/// Scores `predictions` (by file name) against `gold`, like shared/tools/score.py:
/// a missing prediction counts as wrong on every label.
pub fn evaluate(
    gold: &BTreeMap<String, Labels>,
    predictions: &BTreeMap<String, Prediction>,
) -> Evaluation {
    let index_of = |category: Category| {
        Category::ALL
            .iter()
            .position(|candidate| *candidate == category)
            .unwrap_or(0)
    };
    let mut confusion = vec![vec![0u64; Category::ALL.len()]; Category::ALL.len()];
    let (mut tier, mut category, mut in_scope, mut microsoft) = (0u64, 0u64, 0u64, 0u64);
    let (mut true_positive, mut false_positive, mut false_negative) = (0u64, 0u64, 0u64);
    let mut missing = Vec::new();
    let mut errors = Vec::new();
    let (mut triaged, mut untriaged_category, mut untriaged_all) = (0u64, 0u64, 0u64);
    for (file, expected) in gold {
        let Some(prediction) = predictions.get(file) else {
            missing.push(file.clone());
            false_negative += u64::from(expected.microsoft);
            continue;
        };
        let predicted = prediction.labels;
        if prediction.queue == TRIAGE_QUEUE {
            triaged += 1;
        } else {
            untriaged_category += u64::from(predicted.category == expected.category);
            untriaged_all += u64::from(predicted == *expected);
        }
        tier += u64::from(predicted.tier == expected.tier);
        category += u64::from(predicted.category == expected.category);
        in_scope += u64::from(predicted.in_scope == expected.in_scope);
        microsoft += u64::from(predicted.microsoft == expected.microsoft);
        match (expected.microsoft, predicted.microsoft) {
            (true, true) => true_positive += 1,
            (false, true) => false_positive += 1,
            (true, false) => false_negative += 1,
            (false, false) => {}
        }
        confusion[index_of(expected.category)][index_of(predicted.category)] += 1;
        if predicted != *expected {
            errors.push(EvalError {
                file: file.clone(),
                expected: *expected,
                predicted,
                confidence: prediction.confidence,
                reasons: prediction.reasons.clone(),
            });
        }
    }
    let ratio = |part: u64, whole: u64| {
        if whole == 0 {
            1.0
        } else {
            part as f64 / whole as f64
        }
    };
    let total = gold.len() as u64;
    let mut categories = Vec::new();
    for (row, category) in Category::ALL.iter().enumerate() {
        let support: u64 = confusion[row].iter().sum::<u64>()
            + missing
                .iter()
                .filter(|file| gold[*file].category == *category)
                .count() as u64;
        if support == 0 {
            continue;
        }
        let hits = confusion[row][row];
        let predicted: u64 = confusion.iter().map(|counts| counts[row]).sum();
        let precision = if predicted == 0 {
            0.0
        } else {
            hits as f64 / predicted as f64
        };
        let recall = hits as f64 / support as f64;
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        categories.push(CategoryScore {
            category: *category,
            precision,
            recall,
            f1,
            support,
        });
    }
    let macro_f1 = if categories.is_empty() {
        0.0
    } else {
        categories.iter().map(|score| score.f1).sum::<f64>() / categories.len() as f64
    };
    Evaluation {
        messages: total,
        missing,
        tier_accuracy: ratio(tier, total),
        category_accuracy: ratio(category, total),
        in_scope_accuracy: ratio(in_scope, total),
        microsoft_accuracy: ratio(microsoft, total),
        microsoft_precision: ratio(true_positive, true_positive + false_positive),
        microsoft_recall: ratio(true_positive, true_positive + false_negative),
        macro_f1,
        categories,
        confusion,
        errors,
        triaged,
        untriaged_category_accuracy: ratio(untriaged_category, total - triaged),
        untriaged_all_labels_accuracy: ratio(untriaged_all, total - triaged),
    }
}

/// The evaluation as text for a terminal; errors listed when `with_errors`.
pub fn render(evaluation: &Evaluation, with_errors: bool) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{} messages{}",
        evaluation.messages,
        if evaluation.missing.is_empty() {
            String::new()
        } else {
            format!(" ({} without a prediction)", evaluation.missing.len())
        }
    );
    let _ = writeln!(
        text,
        "accuracy: tier {:.3}  category {:.3}  in_scope {:.3}  microsoft {:.3}",
        evaluation.tier_accuracy,
        evaluation.category_accuracy,
        evaluation.in_scope_accuracy,
        evaluation.microsoft_accuracy
    );
    let _ = writeln!(
        text,
        "microsoft: precision {:.3}  recall {:.3}    macro F1 {:.3}",
        evaluation.microsoft_precision, evaluation.microsoft_recall, evaluation.macro_f1
    );
    let _ = writeln!(
        text,
        "triage: {} of {} messages sent to a person; the other {}: category {:.3}, all four labels {:.3}\n",
        evaluation.triaged,
        evaluation.messages,
        evaluation.messages - evaluation.triaged,
        evaluation.untriaged_category_accuracy,
        evaluation.untriaged_all_labels_accuracy
    );
    let _ = writeln!(
        text,
        "{:<25} {:>9} {:>7} {:>6} {:>8}",
        "category", "precision", "recall", "F1", "support"
    );
    for score in &evaluation.categories {
        let _ = writeln!(
            text,
            "{:<25} {:>9.3} {:>7.3} {:>6.3} {:>8}",
            score.category.slug(),
            score.precision,
            score.recall,
            score.f1,
            score.support
        );
    }
    let _ = writeln!(
        text,
        "\nconfusion (rows: expected, columns: predicted, in the order above):"
    );
    let shown: Vec<usize> = Category::ALL
        .iter()
        .enumerate()
        .filter(|(index, _)| {
            evaluation.confusion[*index].iter().sum::<u64>() > 0
                || evaluation.confusion.iter().any(|row| row[*index] > 0)
        })
        .map(|(index, _)| index)
        .collect();
    for &row in &shown {
        let cells: Vec<String> = shown
            .iter()
            .map(|&column| match evaluation.confusion[row][column] {
                0 => "  .".to_owned(),
                count => format!("{count:>3}"),
            })
            .collect();
        let _ = writeln!(text, "{:<25} {}", Category::ALL[row].slug(), cells.join(""));
    }
    if with_errors {
        let _ = writeln!(
            text,
            "\n{} messages with a wrong label:",
            evaluation.errors.len()
        );
        for error in &evaluation.errors {
            let _ = writeln!(
                text,
                "\n{}: expected {} {} in_scope={} microsoft={}, got {} {} in_scope={} microsoft={} (confidence {:.2})",
                error.file,
                error.expected.tier,
                error.expected.category,
                error.expected.in_scope,
                error.expected.microsoft,
                error.predicted.tier,
                error.predicted.category,
                error.predicted.in_scope,
                error.predicted.microsoft,
                error.confidence
            );
            for reason in &error.reasons {
                let _ = writeln!(text, "    - {reason}");
            }
        }
    }
    text
}

/// Reads a model file written by `supportd train`.
pub fn read_model(path: &Path) -> anyhow::Result<CategoryModel> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read the model {}", path.display()))?;
    CategoryModel::from_bytes(&bytes)
        .with_context(|| format!("cannot load the model {}", path.display()))
}

/// A labelled message, normalised: what training and cross-validation read.
pub struct LabelledMessage {
    /// The file name, as labels.csv names it.
    pub file: String,
    pub message: InboundMessage,
    pub labels: Labels,
}

/// Reads and normalises every message of `inputs` that `gold` labels. Messages
/// without a label and messages the normaliser quarantines are left out, with
/// a warning.
pub fn read_labelled(
    pipeline: &Pipeline,
    inputs: &[Input],
    gold: &BTreeMap<String, Labels>,
) -> Vec<LabelledMessage> {
    let mut messages = Vec::new();
    for input in inputs {
        sources::read_input(input, |result| {
            let raw_mail = match result {
                Ok(raw_mail) => raw_mail,
                Err(problem) => {
                    tracing::warn!(file = %problem.label, error = %problem.error, "Skipped an unreadable entry.");
                    return;
                }
            };
            let file = file_name(&raw_mail.label);
            let Some(labels) = gold.get(&file) else {
                return;
            };
            match pipeline.normalise(&raw_mail.bytes) {
                Normalised::Message(message) => messages.push(LabelledMessage {
                    file,
                    message,
                    labels: *labels,
                }),
                Normalised::Quarantine(quarantine) => {
                    tracing::warn!(file = %file, reason = %quarantine.reason, "Left out a quarantined message.");
                }
            }
        });
    }
    messages
}

/// The last path component of an input label, as labels.csv names files.
pub fn file_name(label: &str) -> String {
    Path::new(label).file_name().map_or_else(
        || label.to_owned(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// Trains the category model on labelled messages: subject, and new text plus
/// forwarded text ([`model_text`]), with the recommended options.
pub fn train_model(messages: &[LabelledMessage]) -> anyhow::Result<Model> {
    let texts: Vec<String> = messages
        .iter()
        .map(|labelled| model_text(&labelled.message).into_owned())
        .collect();
    let examples: Vec<TrainingExample<'_>> = messages
        .iter()
        .zip(&texts)
        .map(|(labelled, text)| TrainingExample {
            subject: &labelled.message.subject,
            text,
            label: labelled.labels.category.slug(),
        })
        .collect();
    Model::train(&examples, &TrainingOptions::recommended()).context("training the model")
}

/// Mean and population standard deviation of a figure over folds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub standard_deviation: f64,
}

impl std::fmt::Display for Spread {
    /// `0.912 ± 0.031`
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{:.3} ± {:.3}",
            self.mean, self.standard_deviation
        )
    }
}

/// Mean and standard deviation over the folds of a cross-validation.
#[derive(Debug, Clone, Serialize)]
pub struct FoldSummary {
    pub folds: usize,
    pub category_accuracy: Spread,
    pub macro_f1: Spread,
    pub tier_accuracy: Spread,
    pub microsoft_precision: Spread,
    pub microsoft_recall: Spread,
    pub triaged_share: Spread,
    pub untriaged_category_accuracy: Spread,
    /// The out-of-fold predictions of every fold, evaluated together.
    pub pooled: Evaluation,
}

/// K-fold cross-validation of the combined classifier: for each of `folds`
/// stratified folds (by category, seeded), a model is trained on the other
/// folds and the held-out messages are classified by the rules plus that model
/// and routed, exactly as `classify` would.
pub fn cross_validate_combined(
    pipeline: &Pipeline,
    messages: &[LabelledMessage],
    folds: usize,
    seed: u64,
) -> anyhow::Result<FoldSummary> {
    if folds < 2 || folds > messages.len() {
        bail!(
            "cannot make {folds} folds of {} messages (need 2 <= folds <= messages)",
            messages.len()
        );
    }
    let texts: Vec<String> = messages
        .iter()
        .map(|labelled| model_text(&labelled.message).into_owned())
        .collect();
    let examples: Vec<TrainingExample<'_>> = messages
        .iter()
        .zip(&texts)
        .map(|(labelled, text)| TrainingExample {
            subject: &labelled.message.subject,
            text,
            label: labelled.labels.category.slug(),
        })
        .collect();
    let fold_of = stratified_folds(&examples, folds, seed);
    let classifier = pipeline.classifier();
    let combination = classifier.rules().combination();
    let received_at = crate::now();
    let mut per_fold: Vec<Evaluation> = Vec::with_capacity(folds);
    let mut pooled_gold = BTreeMap::new();
    let mut pooled_predictions = BTreeMap::new();
    for fold in 0..folds {
        let training: Vec<TrainingExample<'_>> = examples
            .iter()
            .zip(&fold_of)
            .filter(|&(_, &example_fold)| example_fold != fold)
            .map(|(example, _)| *example)
            .collect();
        let model = Model::train(&training, &TrainingOptions::recommended())
            .with_context(|| format!("training the model of fold {}", fold + 1))?;
        let model = CategoryModel::new(model)?;
        let mut gold = BTreeMap::new();
        let mut predictions = BTreeMap::new();
        for (labelled, _) in messages
            .iter()
            .zip(&fold_of)
            .filter(|&(_, &example_fold)| example_fold == fold)
        {
            let classification =
                classifier.classify_with(&labelled.message, Some(&model), combination);
            let route = pipeline
                .router()
                .route(&labelled.message, &classification, received_at);
            let mut reasons = classification.reasons.clone();
            reasons.extend(route.reasons.iter().cloned());
            let prediction = Prediction {
                labels: Labels {
                    tier: classification.tier,
                    category: classification.category,
                    in_scope: classification.in_scope,
                    microsoft: classification.microsoft,
                },
                confidence: classification.confidence,
                reasons,
                queue: route.queue.as_str().to_owned(),
            };
            gold.insert(labelled.file.clone(), labelled.labels);
            predictions.insert(labelled.file.clone(), prediction);
        }
        per_fold.push(evaluate(&gold, &predictions));
        pooled_gold.extend(gold);
        pooled_predictions.extend(predictions);
    }
    let over_folds = |value: fn(&Evaluation) -> f64| {
        let spread = MeanAndDeviation::of(&per_fold.iter().map(value).collect::<Vec<f64>>());
        Spread {
            mean: spread.mean,
            standard_deviation: spread.standard_deviation,
        }
    };
    Ok(FoldSummary {
        folds,
        category_accuracy: over_folds(|evaluation| evaluation.category_accuracy),
        macro_f1: over_folds(|evaluation| evaluation.macro_f1),
        tier_accuracy: over_folds(|evaluation| evaluation.tier_accuracy),
        microsoft_precision: over_folds(|evaluation| evaluation.microsoft_precision),
        microsoft_recall: over_folds(|evaluation| evaluation.microsoft_recall),
        triaged_share: over_folds(|evaluation| {
            evaluation.triaged as f64 / evaluation.messages.max(1) as f64
        }),
        untriaged_category_accuracy: over_folds(|evaluation| {
            evaluation.untriaged_category_accuracy
        }),
        pooled: evaluate(&pooled_gold, &pooled_predictions),
    })
}

/// The cross-validation figures as text, before the pooled evaluation.
pub fn render_folds(summary: &FoldSummary) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{}-fold cross-validation of rules + model (model retrained per fold), mean ± standard deviation over folds:",
        summary.folds
    );
    for (name, value) in [
        ("category accuracy", &summary.category_accuracy),
        ("macro F1", &summary.macro_f1),
        ("tier accuracy", &summary.tier_accuracy),
        ("microsoft precision", &summary.microsoft_precision),
        ("microsoft recall", &summary.microsoft_recall),
        ("share sent to triage", &summary.triaged_share),
        (
            "category accuracy, not triaged",
            &summary.untriaged_category_accuracy,
        ),
    ] {
        let _ = writeln!(text, "  {name:<31} {value}");
    }
    let _ = writeln!(text, "\nout-of-fold predictions of all folds together:");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(tier: Tier, category: Category, microsoft: bool) -> Labels {
        Labels {
            tier,
            category,
            in_scope: supportd_core::in_scope(tier, category),
            microsoft,
        }
    }

    fn prediction(labels: Labels) -> Prediction {
        Prediction {
            labels,
            confidence: 0.5,
            reasons: vec!["because".into()],
            queue: "billing".into(),
        }
    }

    #[test]
    fn labels_csv_errors_name_the_line() {
        let error = parse_labels(
            "file,tier,category,in_scope,microsoft\n0001.eml,platform,billing,true,false\n0002.eml,platform,bills,true,false\n",
            "labels.csv",
        )
        .unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("labels.csv:3") && message.contains("bills"),
            "{message}"
        );
        let error = parse_labels("wrong,header\n", "labels.csv").unwrap_err();
        assert!(format!("{error:#}").contains("labels.csv:1"));
    }

    #[test]
    fn scores_match_a_hand_computed_example() {
        use Category::*;
        use Tier::*;
        let gold: BTreeMap<String, Labels> = [
            ("a", labels(Platform, Billing, false)),
            ("b", labels(Platform, Billing, false)),
            ("c", labels(Platform, ServiceAvailability, true)),
            ("d", labels(Platform, MicrosoftEscalation, true)),
            ("e", labels(Unmanaged, Billing, false)),
        ]
        .into_iter()
        .map(|(file, labels)| (file.to_owned(), labels))
        .collect();
        let predictions: BTreeMap<String, Prediction> = [
            ("a", labels(Platform, Billing, false)),
            ("b", labels(Platform, MonthToDate, false)),
            ("c", labels(Platform, ServiceAvailability, true)),
            ("d", labels(Platform, MicrosoftEscalation, false)),
        ]
        .into_iter()
        .map(|(file, labels)| (file.to_owned(), prediction(labels)))
        .collect();
        let evaluation = evaluate(&gold, &predictions);
        assert_eq!(evaluation.messages, 5);
        assert_eq!(evaluation.missing, vec!["e".to_owned()]);
        assert!((evaluation.category_accuracy - 3.0 / 5.0).abs() < 1e-9);
        assert!((evaluation.tier_accuracy - 4.0 / 5.0).abs() < 1e-9);
        assert!((evaluation.microsoft_precision - 1.0).abs() < 1e-9);
        assert!((evaluation.microsoft_recall - 0.5).abs() < 1e-9);
        let billing = evaluation
            .categories
            .iter()
            .find(|score| score.category == Billing)
            .unwrap();
        // Billing: 1 hit of 3 expected (one missing), 1 predicted.
        assert_eq!(billing.support, 3);
        assert!((billing.precision - 1.0).abs() < 1e-9);
        assert!((billing.recall - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(evaluation.errors.len(), 2);
        let text = render(&evaluation, true);
        assert!(text.contains("b: expected platform billing"), "{text}");
    }
}
