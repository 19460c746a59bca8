//! Rules + a trained model, on a tiny model trained here on hand-written mails
//! (never corpus text): the mix decides, the reasons name the model's words, and
//! decisive rules (Auto-Submitted) win whatever the model says.

#[path = "corpus/mod.rs"]
mod corpus;

use supportd_classifier::model::{Model, TrainingExample, TrainingOptions};
use supportd_classifier::{CategoryModel, Classifier, Combination, Directory};
use supportd_core::{Address, Category, InboundMessage, MessageFlags};

const ACCOUNTS: &str = "\
customer,domains,contacts,tenant_id,subscription_id,relationship,managed_os,default
Acme Widgets,acme.example,,,22222222-2222-4222-8222-222222222222,elasticbox_arm,false,true
";

const EXAMPLES: &[(&str, &str, &str)] = &[
    (
        "Refund please",
        "We paid twice for the same month, please refund the duplicate amount.",
        "billing",
    ),
    (
        "Statement looks off",
        "The amount on our statement is higher than what we agreed, why did it go up?",
        "billing",
    ),
    (
        "Paid twice",
        "Our card was debited twice this month for the same amount.",
        "billing",
    ),
    (
        "Refund status",
        "When will the refund for the duplicate amount reach our account?",
        "billing",
    ),
    (
        "Amount wrong",
        "The amount we paid does not match the quote, please refund the difference.",
        "billing",
    ),
    (
        "Server unreachable",
        "Our virtual machine stopped responding and we cannot connect over RDP.",
        "technical-support",
    ),
    (
        "Deployment broken",
        "The template deployment stops half way with a conflict and nothing is created.",
        "technical-support",
    ),
    (
        "Disk full",
        "The data disk of our machine reports it is full although we deleted files.",
        "technical-support",
    ),
    (
        "Cannot connect",
        "We cannot connect to the database server since the network change.",
        "technical-support",
    ),
    (
        "Machine will not boot",
        "After the restart the virtual machine does not come back and we cannot connect.",
        "technical-support",
    ),
    (
        "Thank you",
        "Thanks a lot, all good now, nothing else needed.",
        "other",
    ),
    (
        "Lunch",
        "See you all at the team lunch on Friday, nothing else needed.",
        "other",
    ),
    (
        "Great work",
        "Thanks a lot for the quick help yesterday, all good.",
        "other",
    ),
    (
        "Newsletter",
        "Our monthly newsletter with product news, nothing else needed from you.",
        "other",
    ),
    (
        "Cheers",
        "All good now, thanks a lot to the whole team.",
        "other",
    ),
];

fn model() -> CategoryModel {
    let examples: Vec<TrainingExample<'_>> = EXAMPLES
        .iter()
        .map(|&(subject, text, label)| TrainingExample {
            subject,
            text,
            label,
        })
        .collect();
    let options = TrainingOptions {
        min_document_frequency: 1,
        calibration_folds: 0,
        ..TrainingOptions::recommended()
    };
    CategoryModel::new(Model::train(&examples, &options).unwrap()).unwrap()
}

fn classifier() -> Classifier {
    let directory = Directory::from_csv(ACCOUNTS, "accounts.csv").unwrap();
    Classifier::new(directory, corpus::load_rules()).with_model(model())
}

fn mail(subject: &str, text: &str) -> InboundMessage {
    InboundMessage {
        message_id: "test@acme.example".into(),
        message_id_synthesized: false,
        in_reply_to: vec![],
        references: vec![],
        from: Some(Address {
            name: None,
            email: "jo@acme.example".into(),
        }),
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
        size: text.len() as u64,
        content_hash: String::new(),
        warnings: vec![],
    }
}

#[test]
fn the_model_decides_where_no_rule_fires_and_its_words_are_the_reason() {
    let classifier = classifier();
    let message = mail(
        "Paid twice?",
        "It looks like we paid twice, please refund the duplicate amount.",
    );
    let classification = classifier.classify(&message);
    assert_eq!(
        classification.category,
        Category::Billing,
        "{classification:#?}"
    );
    let model_reason = classification
        .reasons
        .iter()
        .find(|reason| reason.starts_with("model: billing"))
        .unwrap_or_else(|| panic!("{:#?}", classification.reasons));
    assert!(model_reason.contains('`'), "{model_reason}");
    assert!(
        classification
            .reasons
            .iter()
            .any(|reason| reason.starts_with("category billing: rules")),
        "{:#?}",
        classification.reasons
    );
    assert!(classification.confidence > 0.0 && classification.confidence <= 1.0);
}

#[test]
fn rule_and_model_weights_trade_off_as_configured() {
    let classifier = classifier();
    let message = mail(
        "Paid twice?",
        "It looks like we paid twice, please refund the duplicate amount.",
    );
    let model_only = Combination {
        rule_weight: 0.0,
        model_weight: 1.0,
        ..classifier.rules().combination().clone()
    };
    let with_model = classifier.classify_with(&message, classifier.model(), &model_only);
    assert_eq!(with_model.category, Category::Billing);
    // Without a model the same classifier is the rules alone, explained as before.
    let rules_only = classifier.classify_with(&message, None, &model_only);
    assert!(
        rules_only
            .reasons
            .iter()
            .all(|reason| !reason.starts_with("model:")),
        "{:#?}",
        rules_only.reasons
    );
}

#[test]
fn a_decisive_rule_wins_over_the_model() {
    let classifier = classifier();
    let mut message = mail(
        "Automatic reply: server unreachable",
        "Our virtual machine stopped responding and we cannot connect over RDP.",
    );
    message.flags.auto_submitted = true;
    let classification = classifier.classify(&message);
    assert_eq!(
        classification.category,
        Category::Other,
        "{classification:#?}"
    );
    assert!(
        classification
            .reasons
            .iter()
            .any(|reason| reason.contains("decisive rule `auto-submitted`")),
        "{:#?}",
        classification.reasons
    );
}

#[test]
fn a_model_with_labels_that_are_not_categories_is_refused() {
    let examples = [
        TrainingExample {
            subject: "a",
            text: "alpha words here",
            label: "alpha",
        },
        TrainingExample {
            subject: "b",
            text: "beta words here",
            label: "beta",
        },
    ];
    let options = TrainingOptions {
        min_document_frequency: 1,
        calibration_folds: 0,
        ..TrainingOptions::recommended()
    };
    let model = Model::train(&examples, &options).unwrap();
    let error = CategoryModel::new(model).unwrap_err().to_string();
    assert!(error.contains("`alpha`"), "{error}");
}
