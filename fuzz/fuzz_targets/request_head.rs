//! An HTTP/1.1 request head as a client sends it, through hyper's parser,
//! the edge rules and routing (`ccgate_cli::fuzzing::request_head`): no
//! panic, a normalised head, and no path to a guarded router that takes
//! the catch-all instead.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ccgate_cli::fuzzing::request_head(data);
});
