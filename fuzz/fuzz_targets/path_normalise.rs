//! The path normaliser of the entry points (SPEC §10): the first byte picks
//! the rules (bit 0: every encoded character allowed, bit 1: sanitizePath
//! off), the rest is the path. `ccgate_cli::fuzzing::normalise_path` checks
//! idempotence and, when sanitising, that no `//`, `/./` or `/../` is left.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(rest) else {
        return;
    };
    ccgate_cli::fuzzing::normalise_path(path, flags & 1 == 1, flags & 2 == 0);
});
