//! Integration tests of the `ccgate` command, run as a child process.

mod claims_cmd;
mod examples_check;
mod forward_auth;
mod gateway_auth;
mod gateway_ops;
mod gateway_routing;
mod support;
