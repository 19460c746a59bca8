//! Priority from urgency cues: phrases in the subject and the new text of a mail.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use supportd_core::Priority;

use crate::config::RawPriority;

/// The urgency cues of `[priority]`, compiled into one automaton.
#[derive(Debug)]
pub struct PriorityCues {
    automaton: Option<AhoCorasick>,
    /// Parallel to the automaton's patterns.
    cues: Vec<(String, Priority)>,
}

/// The cue that decided a priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityCue {
    pub priority: Priority,
    pub phrase: String,
}

impl PriorityCues {
    pub(crate) fn new(raw: &RawPriority) -> PriorityCues {
        let cues: Vec<(String, Priority)> = [
            (&raw.urgent, Priority::Urgent),
            (&raw.high, Priority::High),
            (&raw.normal, Priority::Normal),
            (&raw.low, Priority::Low),
        ]
        .into_iter()
        .flat_map(|(phrases, priority)| {
            phrases
                .iter()
                .map(move |phrase| (phrase.trim().to_lowercase(), priority))
        })
        .filter(|(phrase, _)| !phrase.is_empty())
        .collect();
        // Leftmost-longest: "not urgent" is one match, not "urgent" inside it.
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(cues.iter().map(|(phrase, _)| phrase))
            .ok();
        PriorityCues { automaton, cues }
    }

    /// The most urgent cue found in `subject` or `text`; a low cue counts only
    /// when nothing more urgent is there.
    pub fn find(&self, subject: &str, text: &str) -> Option<PriorityCue> {
        let automaton = self.automaton.as_ref()?;
        let mut best: Option<&(String, Priority)> = None;
        for haystack in [subject, text] {
            for found in automaton.find_iter(haystack) {
                if !on_word_boundaries(haystack, found.start(), found.end()) {
                    continue;
                }
                let cue = &self.cues[found.pattern().as_usize()];
                let better = match best {
                    None => true,
                    Some((_, best_priority)) => rank(cue.1) > rank(*best_priority),
                };
                if better {
                    best = Some(cue);
                }
            }
        }
        best.map(|(phrase, priority)| PriorityCue {
            priority: *priority,
            phrase: phrase.clone(),
        })
    }
}

/// Low cues outrank nothing but "no cue"; otherwise more urgent is stronger.
fn rank(priority: Priority) -> u8 {
    match priority {
        Priority::Low => 1,
        Priority::Normal => 2,
        Priority::High => 3,
        Priority::Urgent => 4,
    }
}

fn on_word_boundaries(haystack: &str, start: usize, end: usize) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let before = haystack[..start].chars().next_back();
    let after = haystack[end..].chars().next();
    !before.is_some_and(is_word) && !after.is_some_and(is_word)
}
