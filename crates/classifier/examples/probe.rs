//! Classifies hand-typed mails, for rule authors:
//! `cargo run -p supportd-classifier --example probe -- 'sender@x.example' 'subject' 'body'`
//! (any number of subject/body pairs after the sender). Uses config/classifier.toml and
//! an empty account directory.

#[path = "../tests/corpus/mod.rs"]
mod corpus;

use supportd_classifier::{Classifier, Directory};
use supportd_core::{Address, InboundMessage, MessageFlags};

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let Some((sender, pairs)) = arguments.split_first() else {
        eprintln!("usage: probe SENDER SUBJECT BODY [SUBJECT BODY …]");
        std::process::exit(2);
    };
    let classifier = Classifier::new(Directory::from_records(Vec::new()), corpus::load_rules());
    for pair in pairs.chunks(2) {
        let (subject, body) = (&pair[0], pair.get(1).cloned().unwrap_or_default());
        let message = InboundMessage {
            message_id: "probe@example".into(),
            message_id_synthesized: true,
            in_reply_to: vec![],
            references: vec![],
            from: Some(Address {
                name: None,
                email: sender.clone(),
            }),
            reply_to: vec![],
            to: vec![],
            cc: vec![],
            subject: subject.clone(),
            date: None,
            body_text: body.clone(),
            body_html: None,
            new_text: body.clone(),
            forwarded_text: String::new(),
            attachments: vec![],
            flags: MessageFlags::default(),
            size: body.len() as u64,
            content_hash: String::new(),
            warnings: vec![],
        };
        let classification = classifier.classify(&message);
        println!(
            "{subject:?} -> {} (confidence {:.2}, microsoft {})",
            classification.category, classification.confidence, classification.microsoft
        );
        for reason in classification.reasons.iter().skip(1) {
            println!("    {reason}");
        }
    }
}
