use supportd_tests::{TestEnv, fixtures, workspace_root};

#[test]
fn a_missing_path_is_named() {
    let env = TestEnv::new();
    let stderr = env.fails(&["ingest", "/no/such/folder"]);
    assert!(stderr.contains("/no/such/folder"), "{stderr}");
    assert!(!env.database_path().exists() || stderr.contains("No such file"));
}

#[test]
fn a_bad_csv_row_names_its_line_and_value() {
    let env = TestEnv::new();
    let csv = env.path().join("accounts.csv");
    std::fs::write(
        &csv,
        "customer,domains,contacts,tenant_id,subscription_id,relationship,managed_os,default\n\
         Good Co,good.example,,,,elasticbox_arm,false,true\n\
         Bad Co,bad.example,,,,elastic,false,true\n",
    )
    .unwrap();
    let stderr = env.fails(&["accounts", "import", csv.to_str().unwrap()]);
    assert!(stderr.contains("accounts.csv:3"), "{stderr}");
    assert!(stderr.contains("elastic"), "{stderr}");
}

#[test]
fn an_unknown_config_key_names_the_key_and_the_file() {
    let env = TestEnv::new();
    let config_dir = env.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    for file in ["routing.toml", "classifier.toml"] {
        std::fs::copy(
            workspace_root().join("config").join(file),
            config_dir.join(file),
        )
        .unwrap();
    }
    let default = std::fs::read_to_string(workspace_root().join("config/default.toml")).unwrap();
    let config = config_dir.join("custom.toml");
    std::fs::write(
        &config,
        default.replace("batch_size = 500", "batch_sise = 500"),
    )
    .unwrap();
    let output = supportd_tests::TestEnv::new()
        .command(&["config", "check"])
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("batch_sise"), "{stderr}");
    assert!(stderr.contains("custom.toml"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_shipped_configuration_checks() {
    let env = TestEnv::new();
    let stdout = env.ok(&["config", "check"]);
    assert!(stdout.contains("is valid"), "{stdout}");
}

#[test]
fn the_compose_deployment_configuration_checks() {
    // Mounted beside the rule files the image copies from config/, as
    // docker-compose.yml does; it sets fewer keys than the default file.
    let folder = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(workspace_root().join("config")).expect("config/") {
        let path = entry.expect("a config/ entry").path();
        if path.is_file() {
            std::fs::copy(&path, folder.path().join(path.file_name().expect("a name")))
                .expect("copy a config file");
        }
    }
    let compose = folder.path().join("compose.toml");
    std::fs::copy(
        workspace_root().join("deploy/compose/supportd.toml"),
        &compose,
    )
    .expect("copy the compose file");
    let output = std::process::Command::new(supportd_tests::supportd_binary())
        .arg("--config")
        .arg(&compose)
        .args(["config", "check"])
        .output()
        .expect("run supportd");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("is valid"), "{stdout}");
}

#[test]
fn an_unknown_ticket_or_queue_is_a_clear_error() {
    let env = TestEnv::new();
    let stderr = env.fails(&["ticket", "show", "CS-999999"]);
    assert!(stderr.contains("no ticket CS-999999"), "{stderr}");
    let stderr = env.fails(&["ticket", "show", "1042"]);
    assert!(stderr.contains("not a ticket reference"), "{stderr}");
    let stderr = env.fails(&["queue", "show", "Billing Queue"]);
    assert!(stderr.contains("not a queue name"), "{stderr}");
}

#[test]
fn truncated_and_binary_files_are_quarantined_not_lost() {
    let env = TestEnv::new();
    let folder = env.path().join("odd");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(
        fixtures().join("mail/08-binary.eml"),
        folder.join("binary.eml"),
    )
    .unwrap();
    std::fs::write(folder.join("empty.eml"), b"").unwrap();
    let billing = std::fs::read(fixtures().join("mail/01-billing.eml")).unwrap();
    std::fs::write(folder.join("truncated.eml"), &billing[..60]).unwrap();
    let stdout = env.ok(&["ingest", folder.to_str().unwrap()]);
    let summary = supportd_tests::parse_summary(&stdout);
    assert_eq!(summary[0], 3, "every file counted: {stdout}");
    assert_eq!(summary[5], 0, "nothing unreadable: {stdout}");
    assert!(
        summary[4] >= 2,
        "binary and empty files quarantined: {stdout}"
    );
    let queue = env.ok(&["queue", "show", "quarantine"]);
    assert!(queue.contains("CS-"), "{queue}");
}

#[test]
fn a_lease_renewed_too_rarely_for_its_ttl_is_refused_with_its_key() {
    let env = TestEnv::with_config("")
        .with_env("SUPPORTD_MAILBOX_LEASE__TTL_MS", "20000")
        .with_env("SUPPORTD_MAILBOX_LEASE__RENEW_INTERVAL_MS", "15000");
    let stderr = env.fails(&["config", "check"]);
    assert!(
        stderr.contains("mailbox_lease.renew_interval_ms") && stderr.contains("15000"),
        "{stderr}"
    );
}
