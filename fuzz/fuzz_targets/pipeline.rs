//! Raw bytes -> normalise -> classify -> route, with the shipped rules and
//! routing. Whatever the bytes, nothing panics: a message or a quarantine.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use supportd_classifier::{Classifier, Directory, Rules};
use supportd_mail::{Limits, Normalised, normalise};
use supportd_router::Router;

static PIPELINE: LazyLock<(Classifier, Router)> = LazyLock::new(|| {
    let rules = Rules::from_toml(
        include_str!("../../config/classifier.toml"),
        "classifier.toml",
    )
    .expect("the shipped classifier rules load");
    let router = Router::from_toml(include_str!("../../config/routing.toml"), "routing.toml")
        .expect("the shipped routing rules load");
    let directory = Directory::from_records(Vec::new());
    (Classifier::new(directory, rules).without_model(), router)
});

fuzz_target!(|raw: &[u8]| {
    let (classifier, router) = &*PIPELINE;
    match normalise(raw, &Limits::DEFAULT) {
        Normalised::Message(message) => {
            let classification = classifier.classify(&message);
            let decision = router.route(&message, &classification, 1_764_000_000);
            assert!(!decision.queue.as_str().is_empty());
        }
        Normalised::Quarantine(quarantine) => {
            assert!(!quarantine.reason.is_empty());
            assert_eq!(quarantine.size, raw.len() as u64);
        }
    }
});
