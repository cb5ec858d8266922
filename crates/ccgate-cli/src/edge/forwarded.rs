//! Forwarded headers (SPEC §10): `X-Forwarded-*`, `X-Real-Ip` and
//! `Forwarded` say who the client is and how it connected, and upstreams
//! use them for IP allowlists and redirects. From a client that is not
//! trusted they are removed on arrival (the proxy then sets
//! `X-Forwarded-For`, `-Proto` and `-Host` afresh), and `X-Real-Ip` is set
//! to the client's address; from a trusted one (the entry point's
//! `forwardedHeaders.trustedIPs`, or `forwardedHeaders.insecure: true`)
//! they are kept and `X-Forwarded-For` is appended to. Traefik's names and
//! behaviour.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// `X-Real-Ip`.
pub(crate) const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Whose forwarded headers an entry point believes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Trust {
    /// `forwardedHeaders.insecure`: everybody's.
    pub(crate) insecure: bool,
    /// `forwardedHeaders.trustedIPs`.
    pub(crate) networks: Vec<Network>,
}

impl Trust {
    /// Whether the forwarded headers of a client at `ip` are kept.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        self.insecure || self.networks.iter().any(|network| network.contains(ip))
    }
}

/// An IP network: an address and a prefix length (a lone address is a
/// network of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `192.0.2.7`, `10.0.0.0/8`, `::1` or `2001:db8::/32`.
    ///
    /// # Errors
    ///
    /// A reason when it is neither an address nor a CIDR block.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR block"))?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {bits}"))?,
        };
        Ok(Self { address, prefix })
    }

    /// Whether `ip` is in the network (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub(crate) fn contains(self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        match (self.address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => masked(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// Whether `a` and `b`, numbers of `bits` bits, agree on their first
/// `prefix` bits.
fn masked(a: u128, b: u128, bits: u32, prefix: u8) -> bool {
    let shift = bits - u32::from(prefix);
    shift >= bits || (a >> shift) == (b >> shift)
}

/// Removes a client's forwarded headers (when it is not trusted) and sets
/// `X-Real-Ip` to `client_ip` (when it is not trusted, or sent none).
///
/// One pass over the header names finds those to remove, so a request
/// without any (the common case) costs no hashing.
pub(crate) fn arrive(headers: &mut HeaderMap, trusted: bool, client_ip: &HeaderValue) {
    if !trusted {
        let sent: Vec<HeaderName> = headers
            .keys()
            .filter(|name| is_forwarded(name.as_str()))
            .cloned()
            .collect();
        for name in &sent {
            headers.remove(name);
        }
    }
    if !trusted || !headers.contains_key(X_REAL_IP) {
        headers.insert(X_REAL_IP, client_ip.clone());
    }
}

/// `X-Forwarded-*`, `X-Real-Ip` or `Forwarded` (names are lower case).
fn is_forwarded(name: &str) -> bool {
    name.starts_with("x-forwarded-") || name == "x-real-ip" || name == "forwarded"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_contain() {
        let net = Network::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.255.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        let one = Network::parse("192.0.2.7").unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all = Network::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "example.com",
            "::1/129",
            "1.2.3.4/x",
        ] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    fn spoofed() -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-forwarded-for", "10.0.0.1"),
            ("X-Forwarded-Host", "admin.internal"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "443"),
            ("x-real-ip", "10.0.0.1"),
            ("forwarded", "for=10.0.0.1"),
            ("x-keep", "yes"),
        ] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static(value),
            );
        }
        headers
    }

    #[test]
    fn an_untrusted_clients_forwarded_headers_are_replaced() {
        let mut headers = spoofed();
        arrive(
            &mut headers,
            false,
            &HeaderValue::from_static("203.0.113.9"),
        );
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-keep", "x-real-ip"]);
        assert_eq!(headers[X_REAL_IP], "203.0.113.9");
    }

    #[test]
    fn a_trusted_clients_forwarded_headers_are_kept() {
        let mut headers = spoofed();
        arrive(&mut headers, true, &HeaderValue::from_static("203.0.113.9"));
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1");
        assert_eq!(headers[X_REAL_IP], "10.0.0.1", "kept");
        let mut bare = HeaderMap::new();
        arrive(&mut bare, true, &HeaderValue::from_static("203.0.113.9"));
        assert_eq!(bare[X_REAL_IP], "203.0.113.9", "set when absent");
    }

    #[test]
    fn trust_is_insecure_or_by_network() {
        let trust = Trust {
            insecure: false,
            networks: vec![Network::parse("127.0.0.0/8").unwrap()],
        };
        assert!(trust.trusts(ip("127.0.0.1")));
        assert!(!trust.trusts(ip("192.0.2.1")));
        assert!(!Trust::default().trusts(ip("127.0.0.1")));
        let insecure = Trust {
            insecure: true,
            networks: vec![],
        };
        assert!(insecure.trusts(ip("192.0.2.1")));
    }
}
