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
//! Age: the ratchet has no clock (it is sans-IO), so a key is stored undated
//! and the owner dates it with [`SkippedKeys::expire`], which it calls with
//! its own clock after each decryption; the same call drops keys dated at
//! least `max_age` earlier (the client uses the relay's message lifetime: the
//! late message a key waits for is gone by then).
//!
//! Must never: hand out a key twice, grow without bound, let one message
//! force more than `MAX_SKIP` derivations per chain, or keep a dated key
//! past the age it was asked to enforce.

use std::collections::VecDeque;

use super::message_key::MessageKey;
use crate::keys::PublicKey;

/// Most message keys one incoming message may cause to be skipped in a single
/// chain (Signal's MAX_SKIP).
pub const MAX_SKIP: u32 = 1000;

/// Most skipped message keys a session keeps in total; oldest evicted first.
pub const MAX_SKIPPED_KEYS: usize = 2000;

#[derive(Clone)]
struct SkippedEntry {
    ratchet_key: PublicKey,
    key: MessageKey,
    /// When the owner first saw this key stored (its clock, e.g. Unix
    /// seconds); `None` until the next [`SkippedKeys::expire`].
    dated_at: Option<u64>,
}

/// Skipped message keys in insertion order (oldest first).
#[derive(Clone, Default)]
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
    #[cfg_attr(not(feature = "low-level-api"), allow(dead_code))]
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
            self.entries.push_back(SkippedEntry {
                ratchet_key,
                key,
                dated_at: None,
            });
        }
    }

    /// Every stored key in insertion order, with its ratchet key and date
    /// (for the session's pickle).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&PublicKey, &MessageKey, Option<u64>)> {
        self.entries
            .iter()
            .map(|e| (&e.ratchet_key, &e.key, e.dated_at))
    }

    /// Rebuilds a store from pickled entries, oldest first. The caller has
    /// checked the count against [`MAX_SKIPPED_KEYS`].
    pub(crate) fn from_entries(
        entries: impl IntoIterator<Item = (PublicKey, MessageKey, Option<u64>)>,
    ) -> Self {
        SkippedKeys {
            entries: entries
                .into_iter()
                .map(|(ratchet_key, key, dated_at)| SkippedEntry {
                    ratchet_key,
                    key,
                    dated_at,
                })
                .collect(),
        }
    }

    /// Dates every undated key with `now` and drops every key dated at or
    /// before `now - max_age`. Returns how many were dropped. `now` and
    /// `max_age` are in the owner's unit (the client uses Unix seconds).
    pub fn expire(&mut self, now: u64, max_age: u64) -> usize {
        let before = self.entries.len();
        for entry in &mut self.entries {
            entry.dated_at.get_or_insert(now);
        }
        self.entries.retain(|e| {
            e.dated_at
                .is_some_and(|at| now.saturating_sub(at) < max_age)
        });
        before - self.entries.len()
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
    fn keys_expire_by_age_counted_from_when_they_were_dated() {
        let rk = PublicKey::from_bytes([1; 32]);
        let mut store = SkippedKeys::new();
        store.insert_all(rk, vec![key(1), key(2)]);
        assert_eq!(store.expire(100, 30), 0, "dated now, nothing is old yet");
        store.insert_all(rk, vec![key(3)]);
        assert_eq!(store.expire(120, 30), 0, "key 3 is dated 120");
        assert_eq!(store.expire(129, 30), 0);
        assert_eq!(store.expire(130, 30), 2, "keys 1 and 2 reach 30");
        assert!(store.get(&rk, 1).is_none() && store.get(&rk, 2).is_none());
        assert!(store.get(&rk, 3).is_some());
        assert_eq!(store.expire(150, 30), 1);
        assert!(store.is_empty());
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
