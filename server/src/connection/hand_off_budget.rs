//! The node-wide bound on envelope bytes waiting in connections' hand-off
//! channels (`hub::Handed`).
//!
//! Each connection's channel holds at most `HANDOFF_CAPACITY` envelopes of
//! at most `MAX_HANDOFF_ENVELOPE` bytes, 256 KiB; a node with thousands of
//! connections whose readers stalled could so hold gigabytes of committed
//! envelopes that are in the store anyway. Past [`MAX_HANDOFF_BYTES`] in
//! all, a committed envelope is not handed off: its recipient's delivery
//! loop is woken by the queue event as for any message not handed over and
//! reads it from the store (the queue stays the source of truth).
//!
//! Must never: block, or let a charge outlive the envelope it counts (a
//! [`Charge`] gives its bytes back when dropped, wherever that happens).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Envelope bytes all hand-off channels of this node may hold together.
pub const MAX_HANDOFF_BYTES: usize = 16 << 20;

/// The node's hand-off bytes in use (clone-free: one per hub).
#[derive(Debug, Default)]
pub struct HandOffBudget {
    used: Arc<AtomicUsize>,
}

/// `bytes` of the budget, held by one handed envelope until it is dropped.
#[derive(Debug)]
pub struct Charge {
    bytes: usize,
    used: Arc<AtomicUsize>,
}

impl HandOffBudget {
    /// Takes `bytes` if they fit under [`MAX_HANDOFF_BYTES`], else `None`
    /// (the envelope is then left to the store).
    pub fn charge(&self, bytes: usize) -> Option<Charge> {
        self.charge_within(bytes, MAX_HANDOFF_BYTES)
    }

    fn charge_within(&self, bytes: usize, limit: usize) -> Option<Charge> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.checked_add(bytes).filter(|n| *n <= limit)?;
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Some(Charge {
                        bytes,
                        used: Arc::clone(&self.used),
                    })
                }
                Err(now) => used = now,
            }
        }
    }

    /// Bytes held now.
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stop_at_the_limit_and_come_back_when_dropped() {
        let budget = HandOffBudget::default();
        let a = budget.charge_within(600, 1000).expect("fits");
        assert!(budget.charge_within(500, 1000).is_none(), "over the limit");
        let b = budget.charge_within(400, 1000).expect("exactly fits");
        assert_eq!(budget.used(), 1000);
        drop(a);
        assert_eq!(budget.used(), 400);
        assert!(budget.charge_within(600, 1000).is_some());
        drop(b);
        assert_eq!(budget.used(), 0);
        assert!(budget.charge_within(usize::MAX, usize::MAX).is_some());
    }
}

#[cfg(test)]
mod hub_tests {
    use umbra_wire::{AccountId, Address, DeviceId};

    use super::MAX_HANDOFF_BYTES;
    use crate::auth::tokens::TokenHash;
    use crate::hub::{Hub, HANDOFF_CAPACITY, MAX_HANDOFF_ENVELOPE};
    use crate::store::group_commit::HandOff;

    /// Stalled readers (none takes its hand-offs) hold at most the node's
    /// budget; what does not fit is left to the store, and the recipient's
    /// queue event still wakes its loop for it.
    #[tokio::test]
    async fn stalled_readers_hold_at_most_the_node_budget() {
        let hub = Hub::default();
        let per_connection = HANDOFF_CAPACITY * MAX_HANDOFF_ENVELOPE;
        let connections = MAX_HANDOFF_BYTES / per_connection + 4;
        let mut registrations = Vec::new();
        for n in 0..connections {
            let mut account = [0u8; 16];
            account[..8].copy_from_slice(&(n as u64).to_le_bytes());
            let address = Address {
                account: AccountId::from_bytes(account),
                device: DeviceId::PRIMARY,
            };
            let registration = hub.register(address, n as u64 + 1, TokenHash([1; 32]));
            // The registration's own first wake-up (its initial drain).
            registration.wake.notified().await;
            registrations.push((address, registration));
        }
        for (address, _) in &registrations {
            for seq in 1..=HANDOFF_CAPACITY as u64 {
                hub.hand_off(*address, seq, 0, vec![0; MAX_HANDOFF_ENVELOPE]);
            }
        }
        let mut handed = 0;
        let mut left_to_the_store = Vec::new();
        for (address, registration) in &mut registrations {
            let channel = registration.handed.as_mut().expect("a hand-off channel");
            let mut mine = 0;
            while let Ok(message) = channel.try_recv() {
                drop(message);
                mine += 1;
            }
            handed += mine;
            if mine < HANDOFF_CAPACITY {
                left_to_the_store.push(*address);
            }
        }
        assert_eq!(handed * MAX_HANDOFF_ENVELOPE, MAX_HANDOFF_BYTES);
        assert!(!left_to_the_store.is_empty());
        // Taken (and dropped) above, so the budget is whole again: a whole
        // channel's worth is handed to a connection that got none before.
        let (address, registration) = registrations
            .iter_mut()
            .find(|(a, _)| *a == left_to_the_store[left_to_the_store.len() - 1])
            .unwrap();
        for seq in 100..100 + HANDOFF_CAPACITY as u64 {
            hub.hand_off(*address, seq, 0, vec![0; MAX_HANDOFF_ENVELOPE]);
        }
        let channel = registration.handed.as_mut().unwrap();
        let mut again = 0;
        while channel.try_recv().is_ok() {
            again += 1;
        }
        assert_eq!(again, HANDOFF_CAPACITY);
        // A message not handed over wakes its connection to read the store.
        let (address, registration) = registrations
            .iter()
            .find(|(a, _)| *a == left_to_the_store[0])
            .unwrap();
        hub.wake_for(*address, HANDOFF_CAPACITY as u64);
        registration.wake.notified().await;
    }
}
