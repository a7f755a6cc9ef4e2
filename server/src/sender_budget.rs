//! The per-sender hourly byte budget: envelope bytes one authenticated
//! account may have accepted into queues per clock hour, over all
//! recipients, kept in this node's memory only.
//!
//! Why memory and not the database: a total written in the same transaction
//! as the queued messages would share that transaction's id (PostgreSQL
//! `xmin`, WAL and backups, SQLite's `-wal` file), so anyone reading the
//! database could tie "account S" to "messages N..M for recipient R": the
//! link sealed sender exists to avoid. Here the total never leaves the
//! process. The price, documented in OPERATIONS.md: with several nodes each
//! keeps its own totals (a sender spreading connections over N nodes gets N
//! budgets), and a restart forgets them.
//!
//! Must never: write a total anywhere (database, file, log), hold a
//! recipient or anything about a message besides its length, or keep totals
//! of windows that have ended (they are dropped when the next window starts,
//! so memory is bounded by the accounts that sent in the current hour).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use umbra_wire::AccountId;

use crate::store::UnixSeconds;

/// Length of a budget window: one clock hour, as `sender_bytes_per_hour`
/// says; aligned to the clock so every node agrees when a window starts.
pub const WINDOW_SECS: u64 = 60 * 60;

/// Default budget: about 680 maximal envelopes or ~60,000 typical ones an
/// hour, far past a person's sending, while one account can add at most
/// 64 MiB an hour per node (~46 GiB over a 30-day message TTL) instead of
/// ~1 GB per recipient.
pub const DEFAULT_BYTES_PER_WINDOW: u64 = 64 * 1024 * 1024;

/// A reservation of budget for one envelope, to give back if the store then
/// refuses the envelope (queue full, unknown recipient) or fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    window_start: UnixSeconds,
    bytes: u64,
}

/// The totals of the current window, per sending account.
#[derive(Default)]
struct Window {
    start: UnixSeconds,
    used: HashMap<AccountId, u64>,
}

/// Per-sender byte totals of the current window on this node.
pub struct SenderBudgets {
    /// Bytes per account per window; 0 turns the budget off.
    limit: u64,
    window: Mutex<Window>,
}

impl std::fmt::Debug for SenderBudgets {
    // Totals are keyed by account: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderBudgets")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// The start of the window holding `now`.
fn window_of(now: UnixSeconds) -> UnixSeconds {
    now - now % WINDOW_SECS
}

impl SenderBudgets {
    /// Budgets of `limit` bytes per account per window (0: no budget).
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            window: Mutex::new(Window::default()),
        }
    }

    fn locked(&self, now: UnixSeconds) -> MutexGuard<'_, Window> {
        // Critical sections are single map operations; poisoning cannot
        // leave them half-done.
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let current = window_of(now);
        // A new window drops every total of the old one. A clock stepping
        // back keeps the later window rather than reopening an old one.
        if current > window.start {
            window.start = current;
            window.used = HashMap::new();
        }
        window
    }

    /// Charges `bytes` to `sender` if they fit its budget for the window
    /// holding `now`; `None` (nothing charged) if they do not.
    pub fn charge(&self, sender: AccountId, bytes: u64, now: UnixSeconds) -> Option<Charge> {
        let mut window = self.locked(now);
        let charge = Charge {
            window_start: window.start,
            bytes,
        };
        if self.limit == 0 {
            return Some(charge);
        }
        let used = window.used.entry(sender).or_insert(0);
        match used.checked_add(bytes) {
            Some(total) if total <= self.limit => {
                *used = total;
                Some(charge)
            }
            _ => None,
        }
    }

    /// Gives back a charge for an envelope that was not queued after all.
    /// A charge from a window that has ended is gone with its window.
    pub fn refund(&self, sender: AccountId, charge: Charge, now: UnixSeconds) {
        let mut window = self.locked(now);
        if window.start != charge.window_start {
            return;
        }
        if let Some(used) = window.used.get_mut(&sender) {
            *used = used.saturating_sub(charge.bytes);
            if *used == 0 {
                window.used.remove(&sender);
            }
        }
    }

    /// An empty set of charges to `sender` for one request: each is given
    /// back when the set is dropped unless it was kept
    /// ([`HeldCharges::settle`]). A request that ends any other way (a store
    /// error, or its deadline dropping it while the store was working)
    /// refunds them, so an envelope repeated after an unknown outcome is
    /// charged once, not once per attempt.
    pub fn hold(&self, sender: AccountId) -> HeldCharges<'_> {
        HeldCharges {
            budgets: self,
            sender,
            charges: Vec::new(),
        }
    }

    /// Accounts with a total in the current window (for tests of the bound).
    pub fn tracked(&self) -> usize {
        self.window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .used
            .len()
    }
}

/// Charges of one request not settled yet (see [`SenderBudgets::hold`]).
pub struct HeldCharges<'a> {
    budgets: &'a SenderBudgets,
    sender: AccountId,
    charges: Vec<Charge>,
}

impl HeldCharges<'_> {
    /// Charges `bytes` as [`SenderBudgets::charge`] does and holds the
    /// charge; `false` (nothing charged) if they do not fit.
    pub fn charge(&mut self, bytes: u64, now: UnixSeconds) -> bool {
        match self.budgets.charge(self.sender, bytes, now) {
            Some(charge) => {
                self.charges.push(charge);
                true
            }
            None => false,
        }
    }

    /// Keeps the charges whose envelope was queued (`queued[i]` for the
    /// i-th charge) and gives back the others.
    pub fn settle(mut self, queued: impl IntoIterator<Item = bool>, now: UnixSeconds) {
        let charges = std::mem::take(&mut self.charges);
        for (charge, queued) in charges.into_iter().zip(queued) {
            if !queued {
                self.budgets.refund(self.sender, charge, now);
            }
        }
    }
}

impl Drop for HeldCharges<'_> {
    fn drop(&mut self) {
        let now = crate::auth::tokens::unix_now();
        for charge in self.charges.drain(..) {
            self.budgets.refund(self.sender, charge, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u8) -> AccountId {
        AccountId::from_bytes([n; 16])
    }

    #[test]
    fn a_budget_spans_charges_and_spares_other_senders() {
        let budgets = SenderBudgets::new(10);
        let (sam, olga) = (account(1), account(2));
        assert!(budgets.charge(sam, 4, 3_600).is_some());
        assert!(budgets.charge(sam, 4, 3_601).is_some());
        assert!(budgets.charge(sam, 4, 3_602).is_none());
        assert!(budgets.charge(sam, 2, 3_603).is_some());
        assert!(budgets.charge(olga, 8, 3_700).is_some());
        // Spent for the rest of the window, even one byte.
        assert!(budgets.charge(sam, 1, 7_199).is_none());
        // The next window starts afresh and forgets the old totals.
        assert_eq!(budgets.tracked(), 2);
        assert!(budgets.charge(sam, 4, 7_200).is_some());
        assert_eq!(budgets.tracked(), 1);
    }

    #[test]
    fn a_refund_gives_back_only_within_its_window() {
        let budgets = SenderBudgets::new(10);
        let sam = account(1);
        let charge = budgets.charge(sam, 10, 3_600).unwrap();
        assert!(budgets.charge(sam, 1, 3_601).is_none());
        budgets.refund(sam, charge, 3_602);
        assert_eq!(budgets.tracked(), 0);
        let later = budgets.charge(sam, 10, 3_603).unwrap();
        budgets.refund(sam, later, 7_200);
        assert!(budgets.charge(sam, 10, 7_201).is_some());
        assert!(budgets.charge(sam, 1, 7_202).is_none());
    }

    #[test]
    fn held_charges_are_given_back_unless_settled_as_queued() {
        let budgets = SenderBudgets::new(10);
        let sam = account(1);
        let now = crate::auth::tokens::unix_now();
        // Dropped unsettled (a deadline cancelled the request): refunded.
        let mut held = budgets.hold(sam);
        assert!(held.charge(6, now));
        assert!(!held.charge(6, now));
        drop(held);
        assert_eq!(budgets.tracked(), 0);
        // Settled: the queued one is kept, the refused one given back.
        let mut held = budgets.hold(sam);
        assert!(held.charge(4, now));
        assert!(held.charge(4, now));
        held.settle([true, false], now);
        assert!(budgets.charge(sam, 6, now).is_some());
        assert!(budgets.charge(sam, 1, now).is_none());
    }

    #[test]
    fn zero_turns_the_budget_off_and_overflow_is_refused() {
        let off = SenderBudgets::new(0);
        assert!(off.charge(account(1), u64::MAX, 0).is_some());
        assert!(off.charge(account(1), u64::MAX, 0).is_some());
        let on = SenderBudgets::new(u64::MAX);
        assert!(on.charge(account(1), u64::MAX, 0).is_some());
        assert!(on.charge(account(1), 1, 0).is_none());
    }
}
