//! `supportd eval`: classify a labelled folder and measure the result the way the
//! project's scorer does: accuracy of the four labels, precision / recall / F1 per
//! category, the confusion matrix, and Microsoft precision and recall.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;
use supportd_core::{Category, Tier};

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
}

/// A prediction with what explains it.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub labels: Labels,
    pub confidence: f32,
    pub reasons: Vec<String>,
}

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
    for (file, expected) in gold {
        let Some(prediction) = predictions.get(file) else {
            missing.push(file.clone());
            false_negative += u64::from(expected.microsoft);
            continue;
        };
        let predicted = prediction.labels;
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
        "microsoft: precision {:.3}  recall {:.3}    macro F1 {:.3}\n",
        evaluation.microsoft_precision, evaluation.microsoft_recall, evaluation.macro_f1
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
