//! Admission control for accepted TCP connections: a relay-wide cap and a
//! cap per source address, counted from accept until the socket is closed
//! (HTTP keep-alive, blob transfers and upgraded WebSockets alike).
//!
//! A connection over either cap is not served: while only a few such
//! refusals are in flight it gets one `503 Service Unavailable` with
//! `Retry-After` (so a client can tell "full" from "down"); beyond that the
//! socket is closed at once, so refusing can never use more than a fixed
//! number of descriptors.
//!
//! Addresses are counted per [`SourceKey`], the unit the rate limits use
//! too: an IPv4 address or an IPv6 /64 (one subscriber usually holds a whole
//! /64, so counting single IPv6 addresses would let one host take the relay
//! by rotating its interface id).
//!
//! Must never: log or export an address (counts only), let a count outlive
//! its connection (permits release on drop, also on panic), or grow the
//! per-address table beyond the live connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::rate_limit::SourceKey;

/// Refusals (503 answers) in flight at once; past this, over-cap sockets
/// are closed without an answer. Small: each one holds a descriptor for at
/// most the header-read timeout.
pub const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// Why a connection was refused (the metric label and the 503 text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The relay-wide cap is reached.
    Full,
    /// This source address (or /64) holds its cap.
    AddressFull,
}

impl RefusalReason {
    /// The body of the 503 answer.
    pub fn text(self) -> &'static str {
        match self {
            RefusalReason::Full => "relay is at its connection limit; retry later\n",
            RefusalReason::AddressFull => {
                "too many connections from this address; close some and retry\n"
            }
        }
    }
}

/// The decision for one accepted socket.
#[derive(Debug)]
pub enum Verdict {
    /// Serve it; the permit counts it until dropped.
    Admitted(Permit),
    /// Answer 503 and close; the refusal counts toward
    /// [`MAX_REFUSALS_IN_FLIGHT`] until dropped.
    Refused(Refusal),
    /// Over a cap and too many refusals in flight: close it now.
    Dropped(RefusalReason),
}

/// The caps. `max_per_address == 0` turns the per-address cap off. A relay
/// behind a reverse proxy lists it in `trusted_proxies` instead: the proxy's
/// own connections skip the per-address cap (see `admit_trusted_proxy`)
/// while every other address keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Connections at once, relay-wide.
    pub max_total: usize,
    /// Connections at once per [`SourceKey`]; 0 = unlimited.
    pub max_per_address: usize,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    refusing: usize,
    by_address: HashMap<SourceKey, usize>,
}

#[derive(Debug)]
struct Inner {
    caps: Caps,
    counts: Mutex<Counts>,
}

impl Inner {
    fn counts(&self) -> MutexGuard<'_, Counts> {
        // Each critical section is a few integer updates that cannot be
        // left half-done, so a poisoned lock is still consistent.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts live connections against [`Caps`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Admission(Arc<Inner>);

impl Admission {
    /// An empty count under `caps`.
    pub fn new(caps: Caps) -> Admission {
        Admission(Arc::new(Inner {
            caps,
            counts: Mutex::new(Counts::default()),
        }))
    }

    /// The caps in force.
    pub fn caps(&self) -> Caps {
        self.0.caps
    }

    /// Decides for a socket from `ip`.
    pub fn admit(&self, ip: IpAddr) -> Verdict {
        self.decide(ip, true)
    }

    /// Decides for a socket from a trusted reverse proxy: only the
    /// relay-wide cap applies. The per-address cap cannot see the client
    /// here (the forwarded address arrives later, in the request headers),
    /// and applied to the proxy it would cap every client together.
    pub fn admit_trusted_proxy(&self, ip: IpAddr) -> Verdict {
        self.decide(ip, false)
    }

    fn decide(&self, ip: IpAddr, per_address: bool) -> Verdict {
        let key = SourceKey::of(ip);
        let caps = self.0.caps;
        let mut counts = self.0.counts();
        let reason = if counts.total >= caps.max_total {
            Some(RefusalReason::Full)
        } else if per_address
            && caps.max_per_address > 0
            && counts.by_address.get(&key).copied().unwrap_or(0) >= caps.max_per_address
        {
            Some(RefusalReason::AddressFull)
        } else {
            None
        };
        match reason {
            None => {
                counts.total += 1;
                *counts.by_address.entry(key).or_insert(0) += 1;
                Verdict::Admitted(Permit {
                    inner: self.0.clone(),
                    key,
                })
            }
            Some(reason) if counts.refusing < MAX_REFUSALS_IN_FLIGHT => {
                counts.refusing += 1;
                Verdict::Refused(Refusal {
                    inner: self.0.clone(),
                    reason,
                })
            }
            Some(reason) => Verdict::Dropped(reason),
        }
    }

    /// Connections admitted and still open.
    pub fn open(&self) -> usize {
        self.0.counts().total
    }

    /// Distinct addresses (or /64s) with an open connection.
    pub fn tracked_addresses(&self) -> usize {
        self.0.counts().by_address.len()
    }
}

/// One admitted connection; dropping it frees its slot.
#[derive(Debug)]
pub struct Permit {
    inner: Arc<Inner>,
    key: SourceKey,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.inner.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_address.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.by_address.remove(&self.key);
            }
        }
    }
}

/// One refusal being answered; dropping it frees its slot.
#[derive(Debug)]
pub struct Refusal {
    inner: Arc<Inner>,
    reason: RefusalReason,
}

impl Refusal {
    /// Why the connection is refused.
    pub fn reason(&self) -> RefusalReason {
        self.reason
    }
}

impl Drop for Refusal {
    fn drop(&mut self) {
        let mut counts = self.inner.counts();
        counts.refusing = counts.refusing.saturating_sub(1);
    }
}

/// Descriptors kept free for everything that is not a client connection:
/// the listener, the store's pool, log files, the refusals in flight, and
/// margin for the runtime.
pub const RESERVED_DESCRIPTORS: usize = 128 + MAX_REFUSALS_IN_FLIGHT;

/// The caps to enforce for the configured `max_total`: lowered to what the
/// process's descriptor limit can hold, so the cap (which answers 503) is
/// reached before accept starts failing (which answers nothing).
pub fn caps_within_descriptor_limit(max_total: usize, max_per_address: usize) -> Caps {
    let max_total = match descriptor_limit() {
        Some(limit) if limit.saturating_sub(RESERVED_DESCRIPTORS) < max_total => {
            let lowered = limit.saturating_sub(RESERVED_DESCRIPTORS).max(1);
            tracing::warn!(
                configured = max_total,
                descriptor_limit = limit,
                effective = lowered,
                "max_connections exceeds what the descriptor limit (ulimit -n) allows; lowered"
            );
            lowered
        }
        _ => max_total,
    };
    Caps {
        max_total,
        max_per_address,
    }
}

/// The soft limit on open descriptors, where the platform says (Linux:
/// /proc/self/limits); `None` elsewhere or when unlimited.
fn descriptor_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_descriptor_limit(&text)
}

fn parse_descriptor_limit(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("literal address")
    }

    fn admitted(v: Verdict) -> Permit {
        match v {
            Verdict::Admitted(p) => p,
            other => panic!("expected admission, got {other:?}"),
        }
    }

    #[test]
    fn per_address_cap_refuses_then_frees_on_drop() {
        let a = Admission::new(Caps {
            max_total: 100,
            max_per_address: 2,
        });
        let first = admitted(a.admit(ip("2001:db8::1")));
        let _second = admitted(a.admit(ip("2001:db8::2")));
        match a.admit(ip("2001:db8::3")) {
            Verdict::Refused(r) => assert_eq!(r.reason(), RefusalReason::AddressFull),
            other => panic!("third from the /64 must be refused: {other:?}"),
        }
        // Another /64 has its own allowance; a mapped IPv4 address is the
        // IPv4 address.
        let _other = admitted(a.admit(ip("2001:db8:0:1::1")));
        let _v4 = admitted(a.admit(ip("192.0.2.7")));
        let _v4_again = admitted(a.admit(ip("::ffff:192.0.2.7")));
        assert!(matches!(a.admit(ip("192.0.2.7")), Verdict::Refused(_)));
        drop(first);
        let _again = admitted(a.admit(ip("2001:db8::3")));
        assert_eq!(a.open(), 5);
    }

    #[test]
    fn a_trusted_proxy_is_exempt_from_the_per_address_cap_only() {
        let a = Admission::new(Caps {
            max_total: 3,
            max_per_address: 1,
        });
        let _direct = admitted(a.admit(ip("10.0.0.1")));
        assert!(matches!(a.admit(ip("10.0.0.1")), Verdict::Refused(_)));
        let _proxied = admitted(a.admit_trusted_proxy(ip("10.0.0.1")));
        let _more = admitted(a.admit_trusted_proxy(ip("10.0.0.1")));
        match a.admit_trusted_proxy(ip("10.0.0.1")) {
            Verdict::Refused(r) => assert_eq!(r.reason(), RefusalReason::Full),
            other => panic!("the relay-wide cap still applies: {other:?}"),
        }
    }

    #[test]
    fn global_cap_and_refusals_in_flight_are_bounded() {
        let a = Admission::new(Caps {
            max_total: 1,
            max_per_address: 0,
        });
        let permit = admitted(a.admit(ip("192.0.2.1")));
        let refusals: Vec<Refusal> = (0..MAX_REFUSALS_IN_FLIGHT)
            .map(|_| match a.admit(ip("192.0.2.2")) {
                Verdict::Refused(r) => r,
                other => panic!("expected a refusal, got {other:?}"),
            })
            .collect();
        assert!(matches!(
            a.admit(ip("192.0.2.2")),
            Verdict::Dropped(RefusalReason::Full)
        ));
        drop(refusals);
        assert!(matches!(a.admit(ip("192.0.2.2")), Verdict::Refused(_)));
        drop(permit);
        let _next = admitted(a.admit(ip("192.0.2.2")));
        assert_eq!(
            a.tracked_addresses(),
            1,
            "the table holds live addresses only"
        );
    }

    #[test]
    fn descriptor_limit_parses_the_soft_column() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             127372               127372               processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_descriptor_limit(text), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_descriptor_limit(unlimited), None);
    }
}
