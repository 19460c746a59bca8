//! Prints what `normalise` makes of mail files (one JSON line per message): `cargo run -p supportd-mail --example normalise_file -- FILE...`

use supportd_mail::{Limits, Normalised, normalise};

fn main() {
    for path in std::env::args().skip(1) {
        let raw = match std::fs::read(&path) {
            Ok(raw) => raw,
            Err(error) => {
                eprintln!("{path}: {error}");
                continue;
            }
        };
        println!("===== {path}");
        match normalise(&raw, &Limits::DEFAULT) {
            Normalised::Message(inbound_message) => match serde_json::to_string(&inbound_message) {
                Ok(json) => println!("{json}"),
                Err(error) => eprintln!("{path}: {error}"),
            },
            Normalised::Quarantine(quarantine) => println!("{quarantine:#?}"),
        }
    }
}
