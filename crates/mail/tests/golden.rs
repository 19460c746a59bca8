//! Golden files: every `tests/fixtures/*.eml` is normalised with
//! `Limits::DEFAULT` and compared with the `*.json` beside it. Run with
//! `UPDATE_EXPECT=1` to (re)write the expected files after a deliberate change,
//! then review the diff.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use supportd_mail::{Limits, Normalised, normalise};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn as_json(normalised: &Normalised) -> Value {
    match normalised {
        Normalised::Message(inbound_message) => {
            json!({ "message": serde_json::to_value(inbound_message).expect("InboundMessage serialises") })
        }
        Normalised::Quarantine(quarantine) => json!({
            "quarantine": {
                "reason": quarantine.reason,
                "message_id": quarantine.message_id,
                "subject": quarantine.subject,
                "from": serde_json::to_value(&quarantine.from).expect("Address serialises"),
                "size": quarantine.size,
                "content_hash": quarantine.content_hash,
            }
        }),
    }
}

#[test]
fn fixtures_match_their_golden_files() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("list fixtures")
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 20, "fixtures missing: {}", fixtures.len());
    let mut mismatches = Vec::new();
    for fixture in &fixtures {
        let raw = std::fs::read(fixture).expect("read fixture");
        let actual = as_json(&normalise(&raw, &Limits::DEFAULT));
        let mut actual_text = serde_json::to_string_pretty(&actual).expect("pretty JSON");
        actual_text.push('\n');
        let expected_path = fixture.with_extension("json");
        if update {
            std::fs::write(&expected_path, &actual_text).expect("write golden file");
            continue;
        }
        let expected_text = std::fs::read_to_string(&expected_path).unwrap_or_default();
        let expected: Value = serde_json::from_str(&expected_text).unwrap_or(Value::Null);
        if expected != actual {
            mismatches.push(format!(
                "{}:\n--- expected\n{expected_text}\n--- actual\n{actual_text}",
                fixture.display()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} golden file(s) differ (rerun with UPDATE_EXPECT=1 to accept):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
