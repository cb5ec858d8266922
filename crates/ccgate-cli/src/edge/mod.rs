//! Edge safety (SPEC §10): the rules every request meets at its entry
//! point, before routing and before any middleware, so that routing, the
//! middlewares and the upstream all see one and the same request.
//!
//! - [`path`]: percent-decoding of unreserved characters, refused encoded
//!   characters, collapsed slashes and removed dot segments.

pub(crate) mod path;
