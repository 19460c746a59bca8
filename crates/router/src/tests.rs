use super::*;
use supportd_core::{Category, Entities, MessageFlags, Tier};

const ROUTING: &str = include_str!("../../../config/routing.toml");

fn router() -> Router {
    Router::from_toml(ROUTING, "config/routing.toml").expect("shipped routing.toml is valid")
}

fn message(subject: &str, text: &str) -> InboundMessage {
    InboundMessage {
        message_id: "m1@example.com".into(),
        message_id_synthesized: false,
        in_reply_to: vec![],
        references: vec![],
        from: None,
        reply_to: vec![],
        to: vec![],
        cc: vec![],
        subject: subject.into(),
        date: None,
        body_text: text.into(),
        body_html: None,
        new_text: text.into(),
        forwarded_text: String::new(),
        attachments: vec![],
        flags: MessageFlags::default(),
        size: 0,
        content_hash: String::new(),
        warnings: vec![],
    }
}

fn classification(tier: Tier, category: Category, microsoft: bool) -> Classification {
    Classification {
        tier,
        category,
        in_scope: supportd_core::in_scope(tier, category),
        microsoft,
        confidence: 0.9,
        reasons: vec![],
        entities: Entities::default(),
        account: None,
    }
}

// Wednesday 2026-11-25 15:00:00 UTC (09:00 at -06:00).
const WEDNESDAY: i64 = 1_795_618_800;

fn queue_of(tier: Tier, category: Category, microsoft: bool) -> String {
    let decision = router().route(
        &message("Question", "Hello"),
        &classification(tier, category, microsoft),
        WEDNESDAY,
    );
    decision.queue.to_string()
}

#[test]
fn queues_follow_the_issue_table() {
    use Category::*;
    use Tier::*;
    assert_eq!(
        queue_of(Platform, MicrosoftEscalation, true),
        "microsoft-escalation"
    );
    assert_eq!(
        queue_of(Platform, ServiceAvailability, true),
        "microsoft-escalation"
    );
    assert_eq!(
        queue_of(Platform, ServiceAvailability, false),
        "platform-tier1"
    );
    assert_eq!(
        queue_of(Platform, TechnicalSupport, false),
        "platform-tier1"
    );
    for category in [Billing, MonthToDate, Estimates] {
        assert_eq!(queue_of(Platform, category, false), "billing");
    }
    for category in [
        PortalUsers,
        AccountSetup,
        ControlPortal,
        SubscriptionManagement,
    ] {
        assert_eq!(queue_of(ManagedOs, category, false), "accounts-and-access");
    }
    assert_eq!(queue_of(ManagedOs, Patching, false), "managed-os");
    assert_eq!(queue_of(Platform, Patching, false), "out-of-scope");
    assert_eq!(queue_of(Unmanaged, Billing, false), "unmanaged");
    assert_eq!(queue_of(Unmanaged, Other, false), "noise");
    assert_eq!(queue_of(Platform, Other, false), "noise");
}

#[test]
fn machine_sent_mail_goes_to_noise_without_actions() {
    let mut auto_reply = message("Out of office", "I am away until Monday.");
    auto_reply.flags.auto_submitted = true;
    let decision = router().route(
        &auto_reply,
        &classification(Tier::Platform, Category::TechnicalSupport, false),
        WEDNESDAY,
    );
    assert_eq!(decision.queue.as_str(), "noise");
    assert!(decision.actions.is_empty());
    assert_eq!(decision.rule, "machine-sent");
}

#[test]
fn actions_follow_scope() {
    let router = router();
    let route = |tier, category, microsoft| {
        router
            .route(
                &message("Q", "Hello"),
                &classification(tier, category, microsoft),
                WEDNESDAY,
            )
            .actions
    };
    assert_eq!(
        route(Tier::Platform, Category::MicrosoftEscalation, true),
        vec![Action::Acknowledge, Action::MicrosoftEscalation]
    );
    assert_eq!(
        route(Tier::Platform, Category::Patching, false),
        vec![Action::ScopeNotice]
    );
    assert_eq!(
        route(Tier::Unmanaged, Category::Billing, false),
        vec![Action::ScopeNotice]
    );
    assert_eq!(
        route(Tier::Platform, Category::Billing, false),
        vec![Action::Acknowledge]
    );
}

use supportd_core::Action;

#[test]
fn priority_comes_from_cues_and_rule_minimum() {
    let router = router();
    let platform_tech = classification(Tier::Platform, Category::TechnicalSupport, false);
    let priority = |subject: &str, text: &str, classification: &Classification| {
        router
            .route(&message(subject, text), classification, WEDNESDAY)
            .priority
    };
    assert_eq!(
        priority("VM question", "How do I resize?", &platform_tech),
        Priority::Normal
    );
    assert_eq!(
        priority("PRODUCTION DOWN", "help", &platform_tech),
        Priority::Urgent
    );
    assert_eq!(
        priority("Sev A: app gateway", "", &platform_tech),
        Priority::Urgent
    );
    assert_eq!(
        priority("Resize", "Please do it asap.", &platform_tech),
        Priority::High
    );
    assert_eq!(
        priority("Resize", "This is not urgent.", &platform_tech),
        Priority::Low
    );
    // A cue must be a whole word: "downgrade" is not "down", "sevastopol" not "sev a".
    assert_eq!(
        priority("Downgrade plan", "Sevastopol office", &platform_tech),
        Priority::Normal
    );
    // Microsoft-bound tickets are at least high.
    let microsoft = classification(Tier::Platform, Category::MicrosoftEscalation, true);
    assert_eq!(
        priority("Case follow-up", "Any news?", &microsoft),
        Priority::High
    );
}

#[test]
fn clock_sla_adds_hours_and_business_days_skip_weekends() {
    let router = router();
    let due = |subject: &str, received_at| {
        router
            .route(
                &message(subject, ""),
                &classification(Tier::Platform, Category::TechnicalSupport, false),
                received_at,
            )
            .first_response_due
    };
    assert_eq!(due("outage", WEDNESDAY), WEDNESDAY + 3_600);
    assert_eq!(due("asap", WEDNESDAY), WEDNESDAY + 4 * 3_600);
    assert_eq!(due("question", WEDNESDAY), WEDNESDAY + 86_400);
    // Friday 09:00 local -> Monday 09:00 local.
    let friday = WEDNESDAY + 2 * 86_400;
    assert_eq!(due("question", friday), friday + 3 * 86_400);
    // Saturday 09:00 local -> the clock starts Monday 08:00 local; due Tuesday 08:00.
    let saturday = WEDNESDAY + 3 * 86_400;
    let monday_eight = WEDNESDAY + 5 * 86_400 - 3_600;
    assert_eq!(due("question", saturday), monday_eight + 86_400);
}

#[test]
fn bad_files_are_refused_with_their_place() {
    let unknown_key = ROUTING.replacen("[sla]", "[sla]\nurgnet = \"1h\"", 1);
    let error = Router::from_toml(&unknown_key, "routing.toml")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("routing.toml") && error.contains("urgnet"),
        "{error}"
    );

    let bad_queue = ROUTING.replacen(
        "queue = \"billing\"\nactions",
        "queue = \"bills\"\nactions",
        1,
    );
    let error = Router::from_toml(&bad_queue, "routing.toml")
        .unwrap_err()
        .to_string();
    assert!(error.contains("`bills`"), "{error}");

    let bad_duration = ROUTING.replacen("high = \"4h\"", "high = \"4 fortnights\"", 1);
    let error = Router::from_toml(&bad_duration, "routing.toml")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("4 fortnights") && error.contains("high"),
        "{error}"
    );

    let bad_slug = ROUTING.replacen("category = [\"other\"]", "category = [\"othre\"]", 1);
    let error = Router::from_toml(&bad_slug, "routing.toml")
        .unwrap_err()
        .to_string();
    assert!(error.contains("othre"), "{error}");
}

#[test]
fn sla_durations_parse() {
    use sla::SlaDuration;
    assert_eq!(SlaDuration::parse("90m"), Ok(SlaDuration::Clock(5_400)));
    assert_eq!(SlaDuration::parse("4h"), Ok(SlaDuration::Clock(14_400)));
    assert_eq!(
        SlaDuration::parse("2 business days"),
        Ok(SlaDuration::BusinessDays(2))
    );
    assert!(SlaDuration::parse("0h").is_err());
    assert!(SlaDuration::parse("h").is_err());
    assert!(SlaDuration::parse("soon").is_err());
}
