//! A score per category. Every scorer (the rules today, a trained model later) produces
//! one of these; the classifier adds them up and picks the best.

use supportd_core::Category;

/// One score per category, indexed in [`Category::ALL`] order.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CategoryScores([f32; Category::ALL.len()]);

impl CategoryScores {
    pub fn add(&mut self, category: Category, score: f32) {
        self.0[category as usize] += score;
    }

    pub fn get(&self, category: Category) -> f32 {
        self.0[category as usize]
    }

    /// Adds another scorer's scores, scaled by `weight`.
    pub fn add_scaled(&mut self, other: &CategoryScores, weight: f32) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += weight * theirs;
        }
    }

    /// The highest-scoring category and its score; ties go to the category listed
    /// first in [`Category::ALL`], so the result is deterministic.
    pub fn best(&self) -> (Category, f32) {
        let mut best = (Category::ALL[0], self.0[0]);
        for (category, score) in Category::ALL.into_iter().zip(self.0) {
            if score > best.1 {
                best = (category, score);
            }
        }
        best
    }

    /// The best category other than `excluded`, and its score.
    pub fn best_except(&self, excluded: Category) -> (Category, f32) {
        let mut best: Option<(Category, f32)> = None;
        for (category, score) in Category::ALL.into_iter().zip(self.0) {
            if category != excluded && best.is_none_or(|(_, best_score)| score > best_score) {
                best = Some((category, score));
            }
        }
        best.unwrap_or((excluded, 0.0))
    }

    /// Softmax probability of `category` with the given temperature: close to 1 when it
    /// leads by a wide margin, 1/18 when nothing fired.
    pub fn probability(&self, category: Category, temperature: f32) -> f32 {
        let temperature = temperature.max(1e-3);
        let maximum = self.0.iter().copied().fold(f32::MIN, f32::max);
        let total: f32 = self
            .0
            .iter()
            .map(|score| ((score - maximum) / temperature).exp())
            .sum();
        ((self.get(category) - maximum) / temperature).exp() / total
    }

    /// Categories with a non-zero score, highest first.
    pub fn ranked(&self) -> Vec<(Category, f32)> {
        let mut ranked: Vec<(Category, f32)> = Category::ALL
            .into_iter()
            .zip(self.0)
            .filter(|(_, score)| *score != 0.0)
            .collect();
        ranked.sort_by(|left, right| right.1.total_cmp(&left.1));
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_probability_and_ties() {
        let mut scores = CategoryScores::default();
        assert_eq!(scores.best().0, Category::ALL[0]);
        assert!((scores.probability(Category::Billing, 1.0) - 1.0 / 18.0).abs() < 1e-6);
        scores.add(Category::Billing, 4.0);
        scores.add(Category::MonthToDate, 1.0);
        assert_eq!(scores.best(), (Category::Billing, 4.0));
        assert_eq!(
            scores.best_except(Category::Billing),
            (Category::MonthToDate, 1.0)
        );
        assert!(scores.probability(Category::Billing, 1.0) > 0.7);
        assert_eq!(
            scores.ranked(),
            [(Category::Billing, 4.0), (Category::MonthToDate, 1.0)]
        );
    }
}
