//! Is a service-availability report an ongoing outage (for the Microsoft queue)?
//!
//! The cues are rules in config/classifier.toml with `signal = "outage-impact"`,
//! `"outage-present"` or `"outage-not-ongoing"`; this file only combines them:
//! there must be impact ("down", "timing out", "503", "degraded") and, net of
//! planned maintenance, resolved or past incidents and questions about SLAs or
//! status pages, enough evidence that it is happening now.

use crate::rules::{OutageSettings, OutageSignal, RuleEvaluation};

/// The outage decision and the figures behind it, for the reasons list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct OutageAssessment {
    pub(crate) ongoing: bool,
    pub(crate) impact: f32,
    pub(crate) present: f32,
    pub(crate) not_ongoing: f32,
}

pub(crate) fn assess_outage(
    evaluation: &RuleEvaluation,
    settings: &OutageSettings,
) -> OutageAssessment {
    let impact = evaluation.signal(OutageSignal::Impact);
    let present = evaluation.signal(OutageSignal::Present);
    let not_ongoing = evaluation.signal(OutageSignal::NotOngoing);
    let ongoing =
        impact >= settings.minimum_impact && impact + present - not_ongoing >= settings.threshold;
    OutageAssessment {
        ongoing,
        impact,
        present,
        not_ongoing,
    }
}

impl OutageAssessment {
    pub(crate) fn describe(&self) -> String {
        format!(
            "outage {}: impact {:.1} + present {:.1} - not ongoing {:.1}",
            if self.ongoing {
                "ongoing"
            } else {
                "not ongoing"
            },
            self.impact,
            self.present,
            self.not_ongoing
        )
    }
}
