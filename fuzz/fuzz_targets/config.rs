//! The configuration loader (`Settings::parse`, what `--config FILE` goes
//! through after reading the file): any text is settings or an error, never
//! a panic. Relative files resolve beside the repository's config/.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use supportd::settings::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/fuzz.toml");
    let _ = Settings::parse(text, &config_path);
});
