//! Integration tests of the `ccgate` command, run as a child process.

mod check_cmd;
mod claims_cmd;
mod config_files;
#[cfg(feature = "kubernetes")]
mod deploy_manifests;
mod edge_safety;
mod examples_check;
mod forward_auth;
mod gateway_auth;
mod gateway_caller_http1;
mod gateway_grpc;
mod gateway_h2;
mod gateway_health;
mod gateway_http1;
mod gateway_limits;
mod gateway_ops;
mod gateway_routing;
mod gateway_safety;
mod gateway_token_checks;
mod gateway_transport;
mod gateway_upstreams;
mod gateway_websocket;
#[cfg(feature = "kubernetes")]
mod kubernetes_provider;
mod support;
