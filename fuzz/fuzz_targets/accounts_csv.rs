//! The account directory import (`supportd accounts import`): any text is a
//! directory or an error naming the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supportd_classifier::Directory;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Directory::from_csv(text, "accounts.csv") {
        Ok(directory) => {
            for record in directory.records() {
                if let Some(subscription_id) = &record.subscription_id {
                    assert!(directory.record_for_subscription(subscription_id).is_some());
                }
            }
        }
        Err(error) => assert!(error.to_string().contains("accounts.csv")),
    }
});
