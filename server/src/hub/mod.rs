//! The hub: which device is connected to this node right now, and how to
//! reach its connection.
//!
//! Each entry is a wake handle (a [`Notify`](tokio::sync::Notify) the
//! connection's delivery loop waits on) and a small bounded control channel
//! (close with a reason, ephemeral payloads, prekey hints). Nothing queued
//! for delivery lives here: messages are in the store, and a woken
//! connection fetches them itself, so a slow reader never stalls anyone else
//! and an idle connection holds no buffers.
//!
//! The hub is split by concept:
//! - [`registry`]: the per-connection entries (register, replace,
//!   unregister) and the cross-node announcements that decide which of two
//!   connections for one device survives;
//! - [`signals`]: waking a delivery loop and telling a connection things
//!   (close, ephemeral payloads, prekey hints) through its control channel;
//! - [`tokens`]: the token each connection acts under, for the token
//!   re-checks and the password change's switch to a new token;
//! - [`hand_off`]: committed envelopes the group committer offers a
//!   connected recipient, the one exception to "nothing queued lives here".
//!
//! Must never: hold its lock across an await, buffer envelopes beyond the
//! bounded hand-off channels (per connection, and in bytes across the node:
//! `connection::hand_off_budget`), block a sender on a slow recipient
//! (ephemeral payloads are dropped when the recipient's control channel is
//! full), log addresses of both ends of anything, or expose a token hash.

use std::sync::{Mutex, MutexGuard};

use umbra_wire::Address;

use crate::connection::hand_off_budget::HandOffBudget;

pub mod hand_off;
pub mod registry;
pub mod signals;
pub mod tokens;

#[cfg(test)]
mod tests;

pub use hand_off::{Handed, HANDOFF_CAPACITY, MAX_HANDOFF_ENVELOPE};
pub use registry::{Registration, REPLACED_REASON};
pub use signals::{Control, CONTROL_CAPACITY};
pub use tokens::Live;

use registry::Entries;

/// Connected devices on this node.
#[derive(Default)]
pub struct Hub {
    entries: Mutex<Entries>,
    hand_off_budget: HandOffBudget,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connected", &self.connected())
            .finish()
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every critical section is a single insert/remove/lookup), so a
        // poisoned lock is still safe to use.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Devices connected to this node.
    pub fn connected(&self) -> usize {
        self.lock().by_address.len()
    }

    /// Addresses connected to this node.
    pub fn addresses(&self) -> Vec<Address> {
        self.lock().by_address.keys().copied().collect()
    }
}
