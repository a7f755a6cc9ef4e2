//! Per-key request budgets (GCRA via `governor`) for the requests an attacker
//! would repeat:
//!
//! - `LoginStart` (each one is one online password guess: the answer lets the
//!   caller test one password offline): per source address, per (username,
//!   source address), and per username across all addresses at a much higher
//!   threshold, so a guesser spread over many addresses is slowed while a
//!   guesser on one address cannot lock the owner out from another;
//! - `RegisterStart` (each answer says whether a name is taken): the same
//!   per-source budget, never per username (a name-keyed budget would let
//!   anyone block a name's logins by starting registrations for it);
//! - prekey bundle fetches (per requesting account, since each fetch burns one
//!   of the target's one-time prekeys), and username resolution (per
//!   requesting account, since each answer says whether a name is registered,
//!   so an unlimited sweep would enumerate the user base);
//! - `LinkFetch` polls (each one reads the store; the joiner has no account
//!   yet, so it is counted per source address, the creator per account).
//!
//! A source address is the peer's IPv4 address, or its IPv6 /64 (one
//! subscriber usually holds a whole /64, so counting single IPv6 addresses
//! would give one machine 2^64 budgets).
//!
//! A refusal carries how long to wait, which the relay reports as
//! `Error{RateLimited, retry_after_secs}`.
//!
//! Must never: key a budget on something the client can vary for free when a
//! stabler key exists, let a request refused by a narrow budget spend a wider
//! one (or one attacker could drain a victim's shared budget with refused
//! requests), grow without bound (call [`RateLimits::shrink`] periodically),
//! or log the keys (usernames, addresses).

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use umbra_wire::AccountId;

use crate::config::Limits;

/// How often idle keys are forgotten ([`RateLimits::shrink_every`]). The
/// keys are chosen by whoever sends requests (any username, any source
/// address), so the maps hold whatever arrived since the last shrink; a
/// minute is the budgets' own refill period, after which a key that sent
/// nothing more is full again and can go. Tied to the 10-minute expiry
/// sweep instead, a flood of made-up usernames would sit in memory ten
/// times as long.
pub const SHRINK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

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

/// The unit a per-address budget counts: an IPv4 address, or an IPv6 /64
/// (an IPv4-mapped IPv6 address counts as its IPv4 address).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceKey(IpAddr);

impl SourceKey {
    /// The budget unit `peer` belongs to.
    pub fn of(peer: IpAddr) -> SourceKey {
        match peer {
            IpAddr::V4(v4) => SourceKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => SourceKey(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                    SourceKey(IpAddr::V6(prefix))
                }
            },
        }
    }
}

impl std::fmt::Debug for SourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // An address is personal data; budgets never print it.
        f.write_str("SourceKey(<redacted>)")
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// Every budget the relay enforces.
pub struct RateLimits<C: Clock = DefaultClock> {
    /// Every `LoginStart` and `RegisterStart` from one source.
    auth_by_source: KeyedBudget<SourceKey, C>,
    /// `LoginStart`s for one username from one source.
    login_by_username_and_source: KeyedBudget<(String, SourceKey), C>,
    /// `LoginStart`s for one username from anywhere (the distributed-guessing
    /// brake; set well above the per-source budget so that a lockout needs
    /// many sources).
    login_by_username: KeyedBudget<String, C>,
    bundle_fetches: KeyedBudget<AccountId, C>,
    username_resolves: KeyedBudget<AccountId, C>,
    /// Key-transparency proofs asked by one account (all its connections).
    kt_proofs: KeyedBudget<AccountId, C>,
    /// `Ephemeral` frames sent by one account (all its connections
    /// together, so opening more connections buys no more).
    ephemeral: KeyedBudget<AccountId, C>,
    /// `LinkFetch`es of joiners (unauthenticated) from one source.
    link_fetches_by_source: KeyedBudget<SourceKey, C>,
    /// `LinkFetch`es of one account's creators (all its connections).
    link_fetches_by_account: KeyedBudget<AccountId, C>,
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
            auth_by_source: KeyedBudget::with_clock(
                nonzero(limits.auth_per_ip_per_minute),
                clock.clone(),
            ),
            login_by_username_and_source: KeyedBudget::with_clock(
                nonzero(limits.auth_per_username_per_minute),
                clock.clone(),
            ),
            login_by_username: KeyedBudget::with_clock(
                nonzero(limits.logins_per_username_per_minute),
                clock.clone(),
            ),
            bundle_fetches: KeyedBudget::with_clock(
                nonzero(limits.bundle_fetches_per_minute),
                clock.clone(),
            ),
            username_resolves: KeyedBudget::with_clock(
                nonzero(limits.username_resolves_per_minute),
                clock.clone(),
            ),
            kt_proofs: KeyedBudget::with_clock(nonzero(limits.kt_proofs_per_minute), clock.clone()),
            ephemeral: KeyedBudget::with_clock(nonzero(limits.ephemeral_per_minute), clock.clone()),
            link_fetches_by_source: KeyedBudget::with_clock(
                nonzero(limits.link_fetches_per_minute),
                clock.clone(),
            ),
            link_fetches_by_account: KeyedBudget::with_clock(
                nonzero(limits.link_fetches_per_minute),
                clock,
            ),
        }
    }

    /// A `LoginStart` from `peer` for the (canonical) `username`. The
    /// budgets are checked narrowest first and a refusal stops there, so a
    /// source that is already refused for this name spends nothing of the
    /// name's shared budget: an attacker on one source can never delay the
    /// owner's logins from another source; only one spread over more sources
    /// than `logins_per_username / auth_per_username` can (THREAT_MODEL.md).
    pub fn check_login(&self, peer: IpAddr, username: &str) -> Result<(), RetryAfter> {
        let source = SourceKey::of(peer);
        self.auth_by_source.check(&source)?;
        self.login_by_username_and_source
            .check(&(username.to_owned(), source))?;
        self.login_by_username.check(&username.to_owned())
    }

    /// A `RegisterStart` from `peer`. Keyed by source only: a budget per
    /// name would let anyone who starts registering a victim's name block
    /// the victim's logins.
    pub fn check_register(&self, peer: IpAddr) -> Result<(), RetryAfter> {
        self.auth_by_source.check(&SourceKey::of(peer))
    }

    /// A `LinkJoin` from `peer` (PROTOCOL.md 15.6): the same per-source
    /// budget as registering and logging in, so guessing tickets costs what
    /// guessing logins does.
    pub fn check_link_join(&self, peer: IpAddr) -> Result<(), RetryAfter> {
        self.auth_by_source.check(&SourceKey::of(peer))
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

    /// A key-transparency proof (`KtHead`, `KtHistory`, or `KtLookup` of an
    /// account; a username's lookup is a resolution) for `requester`.
    pub fn check_kt_proof(&self, requester: AccountId) -> Result<(), RetryAfter> {
        self.kt_proofs.check(&requester)
    }

    /// An `Ephemeral` frame from `sender`. The relay forwards these without
    /// storing them, so this budget is all that bounds the work one account
    /// can make it do for typing notices.
    pub fn check_ephemeral(&self, sender: AccountId) -> Result<(), RetryAfter> {
        self.ephemeral.check(&sender)
    }

    /// A `LinkFetch` (PROTOCOL.md 15.6, polled about once a second): by
    /// `account` when the connection is authenticated (the creator), else
    /// from `peer` (the joiner, which has no account to charge yet).
    pub fn check_link_fetch(
        &self,
        account: Option<AccountId>,
        peer: IpAddr,
    ) -> Result<(), RetryAfter> {
        match account {
            Some(account) => self.link_fetches_by_account.check(&account),
            None => self.link_fetches_by_source.check(&SourceKey::of(peer)),
        }
    }

    /// Calls [`RateLimits::shrink`] every `period` until `stop` resolves,
    /// on its own timer so no slow store sweep delays it.
    pub async fn shrink_every(
        &self,
        period: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = ticker.tick() => self.shrink(),
            }
        }
    }

    /// Forgets idle keys in every budget.
    pub fn shrink(&self) {
        self.auth_by_source.shrink();
        self.login_by_username_and_source.shrink();
        self.login_by_username.shrink();
        self.bundle_fetches.shrink();
        self.kt_proofs.shrink();
        self.username_resolves.shrink();
        self.ephemeral.shrink();
        self.link_fetches_by_source.shrink();
        self.link_fetches_by_account.shrink();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;
    use std::time::Duration;

    fn limits(ip: u32, user_and_source: u32, fetch: u32) -> Limits {
        Limits {
            auth_per_ip_per_minute: ip,
            auth_per_username_per_minute: user_and_source,
            logins_per_username_per_minute: 1_000,
            bundle_fetches_per_minute: fetch,
            ..Limits::default()
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("literal address")
    }

    #[tokio::test]
    async fn idle_keys_are_forgotten_on_the_shrink_timer_alone() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(&limits(100, 2, 10), clock.clone());
        for name in ["made", "up", "names"] {
            assert!(rl.check_login(ip("10.0.0.1"), name).is_ok());
        }
        assert_eq!(rl.login_by_username.tracked(), 3);
        // The budgets are full again; nothing but the timer runs shrink.
        clock.advance(Duration::from_secs(120));
        let shrinking = rl.shrink_every(Duration::from_millis(1), std::future::pending());
        let emptied = async {
            while rl.login_by_username.tracked() > 0 {
                tokio::task::yield_now().await;
            }
        };
        // The timeout only turns a broken timer into a failure, not a hang.
        let shrunk = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::select! {
                () = shrinking => unreachable!("runs until stopped"),
                () = emptied => {}
            }
        });
        shrunk
            .await
            .expect("the shrink timer never forgot the idle keys");
        assert_eq!(rl.login_by_username_and_source.tracked(), 0);
        // It stops when told to.
        rl.shrink_every(Duration::from_millis(1), async {}).await;
    }

    #[test]
    fn per_username_and_source_budget_refuses_then_refills() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(&limits(100, 2, 10), clock.clone());
        let me = ip("127.0.0.1");
        assert!(rl.check_login(me, "alice").is_ok());
        assert!(rl.check_login(me, "alice").is_ok());
        let refused = rl
            .check_login(me, "alice")
            .expect_err("third attempt within a minute is refused");
        assert_eq!(refused, RetryAfter(30), "2/min refills one every 30 s");
        assert!(
            rl.check_login(me, "bob").is_ok(),
            "other usernames keep their own budget"
        );
        clock.advance(Duration::from_secs(30));
        assert!(
            rl.check_login(me, "alice").is_ok(),
            "refilled after the advertised wait"
        );
    }

    /// Issue 9 item 7: ten LoginStarts a minute for a victim's name from one
    /// address used to lock the victim out everywhere.
    #[test]
    fn an_attacker_on_one_source_cannot_lock_the_owner_out_from_another() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(&Limits::default(), clock);
        let attacker = ip("203.0.113.7");
        let owner = ip("198.51.100.20");
        let refused = (0..1_000)
            .filter(|_| rl.check_login(attacker, "bob").is_err())
            .count();
        assert!(
            refused > 900,
            "the attacker is throttled ({refused} refused)"
        );
        assert!(
            rl.check_login(owner, "bob").is_ok(),
            "bob still logs in from his own address"
        );
    }

    #[test]
    fn the_per_username_budget_counts_across_sources_and_spares_refused_requests() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(
            &Limits {
                auth_per_ip_per_minute: 100,
                auth_per_username_per_minute: 2,
                logins_per_username_per_minute: 5,
                ..Limits::default()
            },
            clock,
        );
        // One source hammering: only its own 2 ever reach the shared budget.
        for _ in 0..50 {
            let _ = rl.check_login(ip("10.0.0.1"), "bob");
        }
        assert!(rl.check_login(ip("10.0.0.2"), "bob").is_ok());
        assert!(rl.check_login(ip("10.0.0.3"), "bob").is_ok());
        assert!(rl.check_login(ip("10.0.0.4"), "bob").is_ok());
        assert!(
            rl.check_login(ip("10.0.0.5"), "bob").is_err(),
            "the sixth from fresh sources exceeds 5/min for the name"
        );
        assert!(rl.check_login(ip("10.0.0.5"), "carol").is_ok());
    }

    #[test]
    fn per_source_budget_applies_across_usernames() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(&limits(3, 100, 10), clock);
        let one = ip("10.0.0.1");
        let other = ip("10.0.0.2");
        for name in ["a1", "a2", "a3"] {
            assert!(rl.check_login(one, name).is_ok());
        }
        assert!(
            rl.check_login(one, "a4").is_err(),
            "fourth username from the same address is refused"
        );
        assert!(
            rl.check_login(other, "a4").is_ok(),
            "another address is unaffected"
        );
    }

    #[test]
    fn ipv6_sources_are_counted_per_slash_64() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(&limits(2, 100, 10), clock);
        assert!(rl.check_login(ip("2001:db8:1:2::1"), "a").is_ok());
        assert!(rl.check_login(ip("2001:db8:1:2:ffff::9"), "b").is_ok());
        assert!(
            rl.check_login(ip("2001:db8:1:2:abcd::1"), "c").is_err(),
            "a third address in the same /64 shares its budget"
        );
        assert!(rl.check_login(ip("2001:db8:1:3::1"), "c").is_ok());
        assert_eq!(
            SourceKey::of(ip("::ffff:192.0.2.1")),
            SourceKey::of(ip("192.0.2.1")),
            "an IPv4-mapped address is its IPv4 address"
        );
        assert!(!format!("{:?}", SourceKey::of(ip("192.0.2.1"))).contains("192"));
    }

    #[test]
    fn register_starts_are_limited_per_source_and_never_touch_a_name() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(
            &Limits {
                auth_per_ip_per_minute: 3,
                auth_per_username_per_minute: 1,
                ..Limits::default()
            },
            clock.clone(),
        );
        let prober = ip("10.9.9.9");
        for _ in 0..3 {
            assert!(rl.check_register(prober).is_ok());
        }
        assert_eq!(rl.check_register(prober), Err(RetryAfter(20)));
        assert!(rl.check_register(ip("10.9.9.8")).is_ok(), "per source");
        assert!(
            rl.check_login(ip("10.1.1.1"), "bob").is_ok(),
            "registration probes spend no login budget of any name"
        );
        clock.advance(Duration::from_secs(20));
        assert!(rl.check_register(prober).is_ok(), "refilled");
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
        assert!(rl.check_login(ip("10.0.0.1"), "x").is_ok());
        clock.advance(Duration::from_secs(120));
        rl.shrink();
        assert_eq!(rl.bundle_fetches.tracked(), 0, "full budgets are dropped");
        assert_eq!(rl.login_by_username_and_source.tracked(), 0);
        assert_eq!(rl.login_by_username.tracked(), 0);
        assert_eq!(rl.auth_by_source.tracked(), 0);
    }

    #[test]
    fn link_fetches_are_limited_per_source_for_joiners_and_per_account_for_creators() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(
            &Limits {
                link_fetches_per_minute: 2,
                auth_per_ip_per_minute: 1,
                ..Limits::default()
            },
            clock.clone(),
        );
        let joiner = ip("10.0.0.1");
        let creator = AccountId::from_bytes([1; 16]);
        assert!(rl.check_link_fetch(None, joiner).is_ok());
        assert!(rl.check_link_fetch(None, joiner).is_ok());
        assert_eq!(rl.check_link_fetch(None, joiner), Err(RetryAfter(30)));
        assert!(
            rl.check_link_fetch(None, ip("10.0.0.2")).is_ok(),
            "another source keeps its own budget"
        );
        // The creator, authenticated from the same address, is counted by
        // its account, and polling spends nothing of the login budget.
        assert!(rl.check_link_fetch(Some(creator), joiner).is_ok());
        assert!(rl.check_link_fetch(Some(creator), joiner).is_ok());
        assert_eq!(
            rl.check_link_fetch(Some(creator), ip("10.9.9.9")),
            Err(RetryAfter(30)),
            "all the account's connections together"
        );
        assert!(rl.check_link_join(joiner).is_ok());
        clock.advance(Duration::from_secs(30));
        assert!(rl.check_link_fetch(None, joiner).is_ok(), "refilled");
        clock.advance(Duration::from_secs(120));
        rl.shrink();
        assert_eq!(rl.link_fetches_by_source.tracked(), 0);
        assert_eq!(rl.link_fetches_by_account.tracked(), 0);
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
