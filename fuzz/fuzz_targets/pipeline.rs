//! Raw bytes -> normalise -> classify -> route, with the shipped rules and
//! routing. Whatever the bytes, nothing panics: a message or a quarantine.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use supportd_classifier::{Classifier, Directory, Rules};
use supportd_mail::{Limits, Normalised, normalise};
use supportd_router::Router;

static PIPELINE: LazyLock<(Classifier, Router)> = LazyLock::new(|| {
    let_mail_parser_panics_unwind();
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

/// `normalise` runs mail-parser under `catch_unwind` and quarantines the mail
/// when it panics (mail-parser 0.11 has `debug_assert!`s that fuzzed mail
/// trips, crates/mail `enclosed_message_of_only_a_header…`). libfuzzer-sys's
/// panic hook aborts on every panic, caught or not; so panics raised inside
/// mail-parser are let unwind to that `catch_unwind`, and every other panic
/// still goes to libfuzzer-sys's hook (abort: a crash). A mail-parser panic
/// that nothing catches still aborts, in libfuzzer-sys's own `catch_unwind`.
fn let_mail_parser_panics_unwind() {
    let libfuzzer_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |panic_info| {
        let in_mail_parser = panic_info
            .location()
            .is_some_and(|location| location.file().contains("/mail-parser-"));
        if !in_mail_parser {
            libfuzzer_hook(panic_info);
        }
    }));
}

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
