//! Integration tests of the `ccgate` command, run as a child process.

mod claims_cmd;
