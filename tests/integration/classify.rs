use supportd_tests::{TestEnv, fixtures};

fn classify_json(env: &TestEnv, file: &str) -> serde_json::Value {
    let accounts = fixtures().join("accounts.csv");
    let path = fixtures().join("mail").join(file);
    let stdout = env.ok(&[
        "classify",
        "--json",
        "--accounts",
        accounts.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    let mut lines = stdout.lines();
    let line = lines.next().expect("one line");
    assert!(lines.next().is_none(), "exactly one line per message");
    serde_json::from_str(line).expect("valid JSON")
}

#[test]
fn classify_json_has_the_required_keys_and_writes_no_database() {
    let env = TestEnv::new();
    let line = classify_json(&env, "01-billing.eml");
    for key in [
        "file",
        "tier",
        "category",
        "in_scope",
        "microsoft",
        "queue",
        "priority",
        "confidence",
        "reasons",
    ] {
        assert!(line.get(key).is_some(), "missing key {key} in {line}");
    }
    assert_eq!(line["tier"], "platform");
    assert_eq!(line["category"], "billing");
    assert_eq!(line["in_scope"], true);
    assert_eq!(line["microsoft"], false);
    assert_eq!(line["queue"], "billing");
    let reasons = line["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|reason| reason.as_str().unwrap().contains("Fabrikam Freight")),
        "the account record used is a reason: {line}"
    );
    assert!(
        !env.database_path().exists(),
        "classify must not create a database"
    );
}

#[test]
fn tier_follows_the_account_directory() {
    let env = TestEnv::new();
    // Known contact address of a Managed OS customer asking for OS work.
    let patching = classify_json(&env, "03-patching-managed-os.eml");
    assert_eq!(patching["tier"], "managed_os");
    assert_eq!(patching["category"], "patching");
    assert_eq!(patching["in_scope"], true);
    assert_eq!(patching["queue"], "managed-os");
    // Unknown sender: unmanaged, nothing in scope.
    let unknown = classify_json(&env, "06-unmanaged.eml");
    assert_eq!(unknown["tier"], "unmanaged");
    assert_eq!(unknown["in_scope"], false);
    assert_eq!(unknown["queue"], "unmanaged");
    // Ongoing outage of a platform customer: Microsoft-bound, urgent.
    let outage = classify_json(&env, "05-outage.eml");
    assert_eq!(outage["tier"], "platform");
    assert_eq!(outage["microsoft"], true);
    assert_eq!(outage["queue"], "microsoft-escalation");
    assert_eq!(outage["priority"], "urgent");
    // An out-of-office reply: the sender's tier, category other, noise.
    let auto_reply = classify_json(&env, "04-out-of-office.eml");
    assert_eq!(auto_reply["tier"], "platform");
    assert_eq!(auto_reply["category"], "other");
    assert_eq!(auto_reply["in_scope"], false);
    assert_eq!(auto_reply["queue"], "noise");
}

#[test]
fn binary_junk_is_reported_as_quarantined() {
    let env = TestEnv::new();
    let line = classify_json(&env, "08-binary.eml");
    assert_eq!(line["queue"], "quarantine");
    assert_eq!(line["quarantined"], true);
}
