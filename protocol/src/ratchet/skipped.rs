//! Message keys kept for messages that have not arrived yet.
//!
//! When a message skips ahead in a chain (or a new ratchet key announces that
//! the previous chain had more messages), the keys of the gap are derived and
//! stored here, keyed by (sender ratchet public key, message number), so the
//! late messages can still be decrypted once, in any order.
//!
//! Bounds: a single message may make the receiver derive at most [`MAX_SKIP`]
//! keys in one chain, and the store holds at most [`MAX_SKIPPED_KEYS`] keys in
//! total; beyond that the oldest stored keys are evicted first (their messages
//! then fail as duplicates or expired).
//!
//! Must never: hand out a key twice, grow without bound, or let one message
//! force more than `MAX_SKIP` derivations per chain.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::message_key::MessageKey;
use crate::keys::PublicKey;

/// Most message keys one incoming message may cause to be skipped in a single
/// chain (Signal's MAX_SKIP).
pub const MAX_SKIP: u32 = 1000;

/// Most skipped message keys a session keeps in total; oldest evicted first.
pub const MAX_SKIPPED_KEYS: usize = 2000;

#[derive(Clone, Serialize, Deserialize)]
struct SkippedEntry {
    ratchet_key: PublicKey,
    key: MessageKey,
}

/// Skipped message keys in insertion order (oldest first).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct SkippedKeys {
    entries: VecDeque<SkippedEntry>,
}

impl SkippedKeys {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, ratchet_key: &PublicKey, message_number: u32) -> Option<usize> {
        // Public keys and counters are not secret, so plain comparison is fine.
        self.entries
            .iter()
            .position(|e| e.key.index() == message_number && &e.ratchet_key == ratchet_key)
    }

    /// The stored key for this message, if any, without removing it.
    pub fn get(&self, ratchet_key: &PublicKey, message_number: u32) -> Option<&MessageKey> {
        let at = self.position(ratchet_key, message_number)?;
        self.entries.get(at).map(|e| &e.key)
    }

    /// Removes and returns the key for this message (after it decrypted).
    pub fn take(&mut self, ratchet_key: &PublicKey, message_number: u32) -> Option<MessageKey> {
        let at = self.position(ratchet_key, message_number)?;
        self.entries.remove(at).map(|e| e.key)
    }

    /// Stores the keys of a chain's gap, evicting the oldest stored keys when
    /// the total would exceed [`MAX_SKIPPED_KEYS`].
    pub fn insert_all(&mut self, ratchet_key: PublicKey, keys: Vec<MessageKey>) {
        for key in keys {
            if self.entries.len() >= MAX_SKIPPED_KEYS {
                self.entries.pop_front();
            }
            self.entries.push_back(SkippedEntry { ratchet_key, key });
        }
    }
}

impl std::fmt::Debug for SkippedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkippedKeys")
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> MessageKey {
        MessageKey::derive(&[n as u8; 32], n)
    }

    #[test]
    fn keys_are_taken_once() {
        let rk = PublicKey::from_bytes([1; 32]);
        let mut store = SkippedKeys::new();
        store.insert_all(rk, vec![key(3), key(4)]);
        assert!(store.get(&rk, 3).is_some());
        assert!(store.take(&rk, 3).is_some());
        assert!(store.take(&rk, 3).is_none());
        assert!(store.get(&PublicKey::from_bytes([2; 32]), 4).is_none());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn oldest_keys_are_evicted_at_the_cap() {
        let rk = PublicKey::from_bytes([1; 32]);
        let mut store = SkippedKeys::new();
        store.insert_all(rk, (0..MAX_SKIPPED_KEYS as u32 + 5).map(key).collect());
        assert_eq!(store.len(), MAX_SKIPPED_KEYS);
        for n in 0..5 {
            assert!(store.get(&rk, n).is_none(), "key {n} should be evicted");
        }
        assert!(store.get(&rk, 5).is_some());
        assert!(store.get(&rk, MAX_SKIPPED_KEYS as u32 + 4).is_some());
    }
}
