//! The configuration loader on arbitrary YAML text as the main file
//! (`ccgate_cli::fuzzing::load_config`): a configuration or an error,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        ccgate_cli::fuzzing::load_config(text);
    }
});
