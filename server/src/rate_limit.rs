//! Per-key request budgets (GCRA via `governor`) for the requests an attacker
//! would repeat: registration and login (per client IP and per username),
//! prekey bundle fetches (per requesting account, since each fetch burns one
//! of the target's one-time prekeys), and username resolution (per
//! requesting account, since each answer says whether a name is registered,
//! so an unlimited sweep would enumerate the user base).
//!
//! A refusal carries how long to wait, which the relay reports as
//! `Error{RateLimited, retry_after_secs}`.
//!
//! Must never: key a budget on something the client can vary for free when a
//! stabler key exists, grow without bound (call [`RateLimits::shrink`]
//! periodically), or log the keys (usernames, IPs).

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use umbra_wire::AccountId;

use crate::config::Limits;

/// A refusal: the caller must wait at least this many whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u32);

/// One keyed budget of `per_minute` requests, refilled evenly over a minute,
/// with the whole minute's worth available as a burst.
pub struct KeyedBudget<K: Hash + Eq + Clone, C: Clock = DefaultClock> {
    limiter: RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
}

impl<K: Hash + Eq + Clone, C: Clock + Clone> KeyedBudget<K, C> {
    /// A budget of `per_minute` for each key, measured by `clock`.
    pub fn with_clock(per_minute: NonZeroU32, clock: C) -> Self {
        let limiter = RateLimiter::new(
            Quota::per_minute(per_minute),
            DefaultKeyedStateStore::default(),
            clock.clone(),
        );
        KeyedBudget { limiter, clock }
    }

    /// Spends one unit for `key`, or says how long to wait.
    pub fn check(&self, key: &K) -> Result<(), RetryAfter> {
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            // Round up so a client that waits exactly this long succeeds.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            RetryAfter(u32::try_from(secs.max(1)).unwrap_or(u32::MAX))
        })
    }

    /// Forgets keys whose budget is full again, bounding memory.
    pub fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Keys currently tracked.
    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// Every budget the relay enforces.
pub struct RateLimits<C: Clock = DefaultClock> {
    auth_by_ip: KeyedBudget<IpAddr, C>,
    auth_by_username: KeyedBudget<String, C>,
    bundle_fetches: KeyedBudget<AccountId, C>,
    username_resolves: KeyedBudget<AccountId, C>,
}

impl RateLimits<DefaultClock> {
    /// Budgets from the configured limits, on the real clock.
    pub fn new(limits: &Limits) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    /// Budgets from the configured limits on a chosen clock (tests use a fake one).
    pub fn with_clock(limits: &Limits, clock: C) -> Self {
        RateLimits {
            auth_by_ip: KeyedBudget::with_clock(
                nonzero(limits.auth_per_ip_per_minute),
                clock.clone(),
            ),
            auth_by_username: KeyedBudget::with_clock(
                nonzero(limits.auth_per_username_per_minute),
                clock.clone(),
            ),
            bundle_fetches: KeyedBudget::with_clock(
                nonzero(limits.bundle_fetches_per_minute),
                clock.clone(),
            ),
            username_resolves: KeyedBudget::with_clock(
                nonzero(limits.username_resolves_per_minute),
                clock,
            ),
        }
    }

    /// A register or login attempt from `ip` for the (canonical) `username`.
    /// Both budgets must allow it: the per-IP budget stops one machine from
    /// sweeping many usernames, the per-username budget stops a distributed
    /// guesser aimed at one account (at the price that such a guesser can
    /// delay that account's own logins; the wait is short and advertised).
    pub fn check_auth(&self, ip: IpAddr, username: &str) -> Result<(), RetryAfter> {
        self.auth_by_ip.check(&ip)?;
        self.auth_by_username.check(&username.to_string())
    }

    /// A prekey bundle fetch by `requester`.
    pub fn check_bundle_fetch(&self, requester: AccountId) -> Result<(), RetryAfter> {
        self.bundle_fetches.check(&requester)
    }

    /// A `ResolveUsername` by `requester`. Its own budget, so resolving names
    /// never eats into the budget for the bundle fetches that follow.
    pub fn check_username_resolve(&self, requester: AccountId) -> Result<(), RetryAfter> {
        self.username_resolves.check(&requester)
    }

    /// Forgets idle keys in every budget.
    pub fn shrink(&self) {
        self.auth_by_ip.shrink();
        self.auth_by_username.shrink();
        self.bundle_fetches.shrink();
        self.username_resolves.shrink();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::time::Duration;

    fn limits(ip: u32, user: u32, fetch: u32) -> Limits {
        Limits {
            auth_per_ip_per_minute: ip,
            auth_per_username_per_minute: user,
            bundle_fetches_per_minute: fetch,
            ..Limits::default()
        }
    }

    #[test]
    fn per_username_budget_refuses_then_refills() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(&limits(100, 2, 10), clock.clone());
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(rl.check_auth(ip, "alice").is_ok());
        assert!(rl.check_auth(ip, "alice").is_ok());
        let refused = rl
            .check_auth(ip, "alice")
            .expect_err("third attempt within a minute is refused");
        assert_eq!(refused, RetryAfter(30), "2/min refills one every 30 s");
        assert!(
            rl.check_auth(ip, "bob").is_ok(),
            "other usernames keep their own budget"
        );
        clock.advance(Duration::from_secs(30));
        assert!(
            rl.check_auth(ip, "alice").is_ok(),
            "refilled after the advertised wait"
        );
    }

    #[test]
    fn per_ip_budget_applies_across_usernames() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(&limits(3, 100, 10), clock);
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        for name in ["a1", "a2", "a3"] {
            assert!(rl.check_auth(ip, name).is_ok());
        }
        assert!(
            rl.check_auth(ip, "a4").is_err(),
            "fourth username from the same IP is refused"
        );
        assert!(
            rl.check_auth(other, "a4").is_ok(),
            "another IP is unaffected"
        );
    }

    #[test]
    fn bundle_fetches_are_limited_per_requester_and_idle_keys_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(&limits(10, 10, 1), clock.clone());
        let a = AccountId::from_bytes([1; 16]);
        let b = AccountId::from_bytes([2; 16]);
        assert!(rl.check_bundle_fetch(a).is_ok());
        assert_eq!(rl.check_bundle_fetch(a), Err(RetryAfter(60)));
        assert!(rl.check_bundle_fetch(b).is_ok());
        assert_eq!(rl.bundle_fetches.tracked(), 2);
        clock.advance(Duration::from_secs(120));
        rl.shrink();
        assert_eq!(rl.bundle_fetches.tracked(), 0, "full budgets are dropped");
    }

    #[test]
    fn username_resolves_have_their_own_per_requester_budget() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(
            &Limits {
                username_resolves_per_minute: 2,
                bundle_fetches_per_minute: 1,
                ..Limits::default()
            },
            clock.clone(),
        );
        let a = AccountId::from_bytes([1; 16]);
        let b = AccountId::from_bytes([2; 16]);
        assert!(rl.check_username_resolve(a).is_ok());
        assert!(rl.check_username_resolve(a).is_ok());
        assert_eq!(
            rl.check_username_resolve(a),
            Err(RetryAfter(30)),
            "2/min refills one every 30 s"
        );
        assert!(
            rl.check_username_resolve(b).is_ok(),
            "another requester keeps its own budget"
        );
        assert!(
            rl.check_bundle_fetch(a).is_ok(),
            "resolving does not spend the bundle-fetch budget"
        );
        clock.advance(Duration::from_secs(30));
        assert!(rl.check_username_resolve(a).is_ok(), "refilled");
        clock.advance(Duration::from_secs(120));
        rl.shrink();
        assert_eq!(rl.username_resolves.tracked(), 0);
    }
}
