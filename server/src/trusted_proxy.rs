//! Which TCP peers are trusted reverse proxies, and the client address such a
//! proxy reports in `X-Forwarded-For`.
//!
//! Behind a TLS-terminating proxy every connection comes from the proxy, so
//! the per-source budgets ([`SourceKey`](crate::rate_limit::SourceKey)) would
//! all key on one address. For a peer listed in `trusted_proxies`, the source
//! is the right-most `X-Forwarded-For` entry that is not itself a trusted
//! proxy (the left part of the header is whatever the client wrote, so only
//! entries appended by trusted hops are believed).
//!
//! Must never: read the header from a peer that is not a trusted proxy, fail
//! or panic on a malformed header (the proxy's own address is used instead),
//! or log an address or header value.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The header a proxy appends the client's address to.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// One trusted network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `width`-bit value.
fn masked(value: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let keep = u32::from(width - prefix);
    (value >> keep) << keep
}

/// An IPv4-mapped IPv6 address is the IPv4 address (a dual-stack listener
/// reports IPv4 peers that way).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Why a `trusted_proxies` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` is not an IP address or CIDR (e.g. 10.0.0.1, 10.0.0.0/8, fd00::/8)")]
pub struct BadProxyEntry {
    /// The entry as given (an operator's setting, not a secret).
    pub entry: String,
}

/// The trusted proxies; empty (the default) trusts nobody and every source
/// is the TCP peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Net>,
}

impl TrustedProxies {
    /// Parses addresses (`192.0.2.1`, `::1`) and CIDRs (`10.0.0.0/8`,
    /// `fd00::/8`). Host bits set under the prefix are ignored.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, BadProxyEntry> {
        let nets = entries
            .iter()
            .map(|entry| parse_net(entry.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies { nets })
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(ip))
    }

    /// The client's source for a request from `peer`: the TCP peer itself
    /// unless it is a trusted proxy; then the right-most `X-Forwarded-For`
    /// entry that is not a trusted proxy, or the peer when the header is
    /// absent, malformed, or names only trusted proxies.
    pub fn client_source(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        self.forwarded_client(headers).unwrap_or(peer)
    }

    fn forwarded_client(&self, headers: &HeaderMap) -> Option<IpAddr> {
        // Several header lines are one list in order (RFC 9110 §5.3); walk
        // them from the last.
        let values: Vec<&str> = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .map(|v| v.to_str().ok())
            .collect::<Option<_>>()?;
        for entry in values.iter().rev().flat_map(|v| v.rsplit(',')) {
            let ip = parse_forwarded_entry(entry.trim())?;
            if !self.contains(ip) {
                return Some(canonical(ip));
            }
        }
        None
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`). Anything else is malformed.
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

fn parse_net(entry: &str) -> Result<Net, BadProxyEntry> {
    let bad = || BadProxyEntry {
        entry: entry.to_string(),
    };
    let trimmed = entry.trim();
    let (addr, prefix) = match trimmed.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (trimmed, None),
    };
    let given = addr.parse::<IpAddr>().map_err(|_| bad())?;
    let width = match given {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let prefix = match prefix {
        None => width,
        // Digits only: `u8::from_str` would also take a leading `+`.
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    if prefix > width {
        return Err(bad());
    }
    // An IPv4-mapped network (::ffff:10.0.0.0/104) is the IPv4 network.
    let addr = canonical(given);
    let prefix = match (given, addr) {
        (IpAddr::V6(_), IpAddr::V4(_)) => prefix.checked_sub(96).ok_or_else(bad)?,
        _ => prefix,
    };
    Ok(Net { addr, prefix })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).unwrap()
    }

    #[test]
    fn parses_addresses_and_cidrs_and_refuses_the_rest() {
        let p = proxies(&[
            "10.0.0.0/8",
            "192.0.2.1",
            "fd00::/8",
            "::1",
            "::ffff:172.16.0.0/108",
        ]);
        assert!(p.contains(ip("10.200.3.4")));
        assert!(p.contains(ip("192.0.2.1")));
        assert!(!p.contains(ip("192.0.2.2")));
        assert!(p.contains(ip("fd12::7")));
        assert!(p.contains(ip("::1")));
        assert!(!p.contains(ip("fe80::1")));
        assert!(
            p.contains(ip("172.16.9.9")),
            "mapped network is the IPv4 one"
        );
        assert!(
            p.contains(ip("::ffff:10.1.1.1")),
            "mapped peer is the IPv4 one"
        );
        assert!(proxies(&["0.0.0.0/0"]).contains(ip("198.51.100.1")));
        assert!(!proxies(&["0.0.0.0/0"]).contains(ip("2001:db8::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0/8",
            "proxy.local",
            "10.0.0.1/8/8",
            "::ffff:10.0.0.0/95",
        ] {
            assert_eq!(
                TrustedProxies::parse(&[bad]),
                Err(BadProxyEntry {
                    entry: bad.to_string()
                }),
                "{bad:?}"
            );
        }
        assert!(TrustedProxies::default().is_empty());
    }

    #[test]
    fn trusted_peer_gives_the_rightmost_untrusted_entry() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = ip("127.0.0.1");
        // The client wrote the first entry itself; the proxies appended the rest.
        let chain = xff(&["6.6.6.6, 203.0.113.7, 10.1.2.3"]);
        assert_eq!(p.client_source(peer, &chain), ip("203.0.113.7"));
        // Several header lines are one list.
        let lines = xff(&["6.6.6.6", "203.0.113.7:4711", "10.1.2.3"]);
        assert_eq!(p.client_source(peer, &lines), ip("203.0.113.7"));
        let v6 = xff(&["[2001:db8::5]:443"]);
        assert_eq!(p.client_source(peer, &v6), ip("2001:db8::5"));
        let mapped = xff(&["::ffff:198.51.100.9"]);
        assert_eq!(p.client_source(peer, &mapped), ip("198.51.100.9"));
    }

    #[test]
    fn untrusted_peer_ignores_the_header() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = ip("198.51.100.1");
        assert_eq!(p.client_source(peer, &xff(&["203.0.113.7"])), peer);
        let nobody = TrustedProxies::default();
        assert_eq!(
            nobody.client_source(ip("127.0.0.1"), &xff(&["203.0.113.7"])),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn absent_malformed_or_all_trusted_header_gives_the_proxy() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = ip("127.0.0.1");
        assert_eq!(p.client_source(peer, &HeaderMap::new()), peer);
        for bad in [
            "",
            "unknown",
            "203.0.113.7, garbage",
            "203.0.113.7,,",
            "203.0.113.7 10.0.0.1",
            "10.0.0.1, 10.0.0.2",
        ] {
            assert_eq!(p.client_source(peer, &xff(&[bad])), peer, "{bad:?}");
        }
        // A malformed entry to the right of a good one stops the walk: what
        // lies left of it was not appended by a hop we can vouch for.
        assert_eq!(
            p.client_source(peer, &xff(&["203.0.113.7", "nonsense"])),
            peer
        );
        let mut opaque = HeaderMap::new();
        opaque.insert(FORWARDED_FOR, HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        assert_eq!(p.client_source(peer, &opaque), peer);
    }
}
