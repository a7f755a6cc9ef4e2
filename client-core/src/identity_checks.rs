//! When a contact's published identity was last compared with the pinned one.
//!
//! A session outlives the device it was started with: if a contact reinstalls
//! and publishes a new identity, messages over the old session reach a key
//! nobody holds. So before sending over an existing session the client asks
//! the relay (`ResolveUsername`, which claims no prekey) which identity the
//! contact publishes now. This module remembers which contacts were checked,
//! so that happens at most once per contact per connection, and again once a
//! check is older than [`RECHECK_AFTER`] (a long-running client notices a
//! change without reconnecting).
//!
//! Kept in memory only: a new process or connection checks again, which is the
//! point. Must never: report a contact as checked across a reconnect, or for
//! longer than [`RECHECK_AFTER`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// How long a check stays good on one connection.
pub(crate) use crate::consts::IDENTITY_RECHECK_AFTER as RECHECK_AFTER;

/// The last successful check per contact account id, tagged with the
/// connection it happened on.
/// When and on which connection a check was started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckStarted {
    connection: u64,
    at: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct IdentityChecks {
    /// Bumped each time a connection authenticates.
    connection: AtomicU64,
    checked: Mutex<HashMap<[u8; 16], (u64, Instant)>>,
}

impl IdentityChecks {
    /// A new authenticated connection: every earlier check is stale.
    pub(crate) fn new_connection(&self) {
        self.connection.fetch_add(1, Ordering::SeqCst);
        self.lock().clear();
    }

    /// Whether `account`'s identity was checked on this connection less than
    /// [`RECHECK_AFTER`] ago.
    pub(crate) fn is_fresh(&self, account: &[u8; 16], now: Instant) -> bool {
        let connection = self.connection.load(Ordering::SeqCst);
        self.lock().get(account).is_some_and(|(on, at)| {
            *on == connection && now.saturating_duration_since(*at) < RECHECK_AFTER
        })
    }

    /// Taken just before asking the relay: the answer counts for the
    /// connection the question went out on, not one that replaced it while
    /// the answer was awaited.
    pub(crate) fn start(&self, now: Instant) -> CheckStarted {
        CheckStarted {
            connection: self.connection.load(Ordering::SeqCst),
            at: now,
        }
    }

    /// `account`'s published identity, asked for at `started`, matched the
    /// pinned one.
    pub(crate) fn record(&self, account: [u8; 16], started: CheckStarted) {
        self.lock()
            .insert(account, (started.connection, started.at));
    }

    /// Forgets `account` (its key changed: the next send must look again).
    pub(crate) fn forget(&self, account: &[u8; 16]) {
        self.lock().remove(account);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 16], (u64, Instant)>> {
        self.checked.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_check_is_fresh_until_it_ages_or_the_connection_changes() {
        let checks = IdentityChecks::default();
        let (bob, carol) = ([1; 16], [2; 16]);
        let t0 = Instant::now();
        assert!(!checks.is_fresh(&bob, t0), "never checked");
        checks.record(bob, checks.start(t0));
        assert!(checks.is_fresh(&bob, t0 + Duration::from_secs(60)));
        assert!(!checks.is_fresh(&carol, t0), "checks are per contact");
        assert!(
            !checks.is_fresh(&bob, t0 + RECHECK_AFTER),
            "an old check must be repeated"
        );
        checks.new_connection();
        assert!(!checks.is_fresh(&bob, t0), "a new connection checks again");
        checks.record(bob, checks.start(t0));
        checks.forget(&bob);
        assert!(!checks.is_fresh(&bob, t0));
    }

    #[test]
    fn an_answer_that_outlived_its_connection_does_not_count() {
        let checks = IdentityChecks::default();
        let t0 = Instant::now();
        let started = checks.start(t0);
        // A reconnect happens while the answer is awaited.
        checks.new_connection();
        checks.record([3; 16], started);
        assert!(!checks.is_fresh(&[3; 16], t0));
    }
}
