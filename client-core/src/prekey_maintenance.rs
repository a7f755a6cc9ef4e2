//! Our prekeys' bookkeeping: which ids are next, which signed prekey is
//! published, and which replaced ones are still held (the engine side, that
//! stores and publishes them, is in `maintenance.rs`).
//!
//! One-time prekeys are generated in batches of up to
//! `ONE_TIME_PREKEY_BATCH_MAX` (100) and their secrets are stored *before*
//! the upload, so a key the relay hands out always has its secret here. The
//! signed prekey is rotated every `SIGNED_PREKEY_ROTATION_SECS` (2 days). A
//! replaced signed prekey is kept for
//! [`REPLACED_SIGNED_PREKEY_RETENTION`] (30 days, the relay's message
//! lifetime) counted from its *replacement*, so a pre-key message made for
//! it just before the rotation still opens when it is delivered at the end
//! of its time in the relay's queue; then it is deleted (forward secrecy).
//! Counting from its creation instead would delete, at the first rotation
//! after a long absence, the key that the messages queued meanwhile need.
//! A last-resort prekey is published once and never deleted, so a session
//! can always be started.
//!
//! Must never: upload a prekey whose secret is not yet stored, reuse a
//! prekey id, delete the current signed prekey, or keep a replaced one
//! longer than the retention after its replacement.

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::prekeys::{OneTimePreKey, SignedPreKey, SIGNED_PREKEY_ROTATION_SECS};
use umbra_protocol::wire::{PreKeyWire, SignedPreKeyWire};

use crate::consts::REPLACED_SIGNED_PREKEY_RETENTION;

/// Prekey bookkeeping (kind `PreKeyState`, singleton).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PreKeyState {
    /// Next one-time prekey id (ids are never reused).
    pub(crate) next_one_time_id: u32,
    /// Next signed prekey id.
    pub(crate) next_signed_id: u32,
    /// The published signed prekey's id and creation time.
    pub(crate) current_signed_id: u32,
    pub(crate) current_signed_created_at: u64,
    /// Replaced signed prekeys still held: id and when it was *replaced*
    /// (Unix seconds). Never lists the current one. (Stores written before
    /// this rule listed creation times here, the current key included; read
    /// as replacement times those err towards deleting early, never late,
    /// and the current key is skipped by id.)
    pub(crate) held_signed: Vec<(u32, u64)>,
    /// The last-resort prekey's id.
    pub(crate) last_resort_id: u32,
}

/// Id of the (single) last-resort prekey.
pub(crate) const LAST_RESORT_ID: u32 = 0;

/// Everything generated for a first publication.
pub(crate) struct InitialKeys {
    pub(crate) state: PreKeyState,
    pub(crate) signed: SignedPreKey,
    pub(crate) last_resort: OneTimePreKey,
}

impl InitialKeys {
    pub(crate) fn generate<R: RngCore + CryptoRng>(
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
    ) -> Self {
        let signed = SignedPreKey::generate(identity, 1, now, rng);
        let last_resort = OneTimePreKey::generate(LAST_RESORT_ID, rng);
        Self {
            state: PreKeyState {
                next_one_time_id: 1,
                next_signed_id: 2,
                current_signed_id: 1,
                current_signed_created_at: now,
                held_signed: Vec::new(),
                last_resort_id: LAST_RESORT_ID,
            },
            signed,
            last_resort,
        }
    }
}

impl PreKeyState {
    /// `count` fresh one-time prekeys with new ids.
    pub(crate) fn generate_one_time<R: RngCore + CryptoRng>(
        &mut self,
        count: usize,
        rng: &mut R,
    ) -> Vec<OneTimePreKey> {
        (0..count)
            .map(|_| {
                let id = self.next_one_time_id;
                // Ids wrap only after 4 billion keys; skip the last-resort id.
                self.next_one_time_id = self.next_one_time_id.wrapping_add(1).max(1);
                OneTimePreKey::generate(id, rng)
            })
            .collect()
    }

    /// Whether the published signed prekey is due for rotation at `now`.
    pub(crate) fn rotation_due(&self, now: u64) -> bool {
        now.saturating_sub(self.current_signed_created_at) >= SIGNED_PREKEY_ROTATION_SECS
    }

    /// A new signed prekey, made current; the old one is held as replaced
    /// at `now`. Returns the new key.
    pub(crate) fn rotate<R: RngCore + CryptoRng>(
        &mut self,
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
    ) -> SignedPreKey {
        let id = self.next_signed_id;
        self.next_signed_id = self.next_signed_id.wrapping_add(1).max(1);
        let signed = SignedPreKey::generate(identity, id, now, rng);
        let replaced = self.current_signed_id;
        self.held_signed.retain(|(held, _)| *held != replaced);
        self.held_signed.push((replaced, now));
        self.current_signed_id = id;
        self.current_signed_created_at = now;
        signed
    }

    /// Forgets the replaced signed prekeys whose retention has run out at
    /// `now` and returns their ids (their secrets are to be deleted).
    pub(crate) fn take_expired(&mut self, now: u64) -> Vec<u32> {
        let retention = REPLACED_SIGNED_PREKEY_RETENTION.as_secs();
        let current = self.current_signed_id;
        // The current key is never "replaced" (an old store may list it).
        self.held_signed.retain(|(id, _)| *id != current);
        let (keep, expired): (Vec<_>, Vec<_>) = self
            .held_signed
            .iter()
            .copied()
            .partition(|(_, replaced_at)| now.saturating_sub(*replaced_at) < retention);
        self.held_signed = keep;
        expired.into_iter().map(|(id, _)| id).collect()
    }
}

pub(crate) fn signed_wire(signed: &SignedPreKey) -> SignedPreKeyWire {
    signed.public().into()
}

pub(crate) fn one_time_wire(key: &OneTimePreKey) -> PreKeyWire {
    key.public().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const DAY: u64 = 24 * 60 * 60;

    #[test]
    fn rotation_is_due_after_two_days() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let identity = IdentityKeyPair::generate(&mut rng);
        let t0 = 1_700_000_000;
        let mut keys = InitialKeys::generate(&identity, t0, &mut rng);
        assert!(!keys.state.rotation_due(t0 + DAY));
        assert!(keys.state.rotation_due(t0 + 2 * DAY));
        let new = keys.state.rotate(&identity, t0 + 2 * DAY, &mut rng);
        assert_eq!(new.id(), 2);
        assert_eq!(keys.state.current_signed_id, 2);
        assert_eq!(keys.state.held_signed, vec![(1, t0 + 2 * DAY)]);
        assert!(!keys.state.rotation_due(t0 + 3 * DAY));
    }

    #[test]
    fn a_replaced_key_is_kept_for_the_message_lifetime_after_its_replacement() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let identity = IdentityKeyPair::generate(&mut rng);
        let t0 = 1_700_000_000;
        let mut keys = InitialKeys::generate(&identity, t0, &mut rng);
        // Offline for 20 days, then the first rotation: key 1 was created
        // 20 days ago but replaced only now.
        let back = t0 + 20 * DAY;
        keys.state.rotate(&identity, back, &mut rng);
        assert!(
            keys.state.take_expired(back).is_empty(),
            "a key just replaced is kept, however old"
        );
        let retention = REPLACED_SIGNED_PREKEY_RETENTION.as_secs();
        assert!(keys.state.take_expired(back + retention - 1).is_empty());
        assert_eq!(keys.state.take_expired(back + retention), vec![1]);
        assert!(keys.state.held_signed.is_empty());
    }

    #[test]
    fn the_current_key_is_never_expired_even_from_an_old_store() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let identity = IdentityKeyPair::generate(&mut rng);
        let mut keys = InitialKeys::generate(&identity, 0, &mut rng);
        // The old format listed the current key with its creation time.
        keys.state.held_signed = vec![(1, 0)];
        assert!(keys.state.take_expired(365 * DAY).is_empty());
        assert_eq!(keys.state.current_signed_id, 1);
    }

    #[test]
    fn one_time_ids_are_fresh_and_never_the_last_resort_id() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(6);
        let identity = IdentityKeyPair::generate(&mut rng);
        let mut keys = InitialKeys::generate(&identity, 0, &mut rng);
        keys.state.next_one_time_id = u32::MAX;
        let ids: Vec<u32> = keys
            .state
            .generate_one_time(3, &mut rng)
            .iter()
            .map(|k| k.id())
            .collect();
        assert_eq!(ids, vec![u32::MAX, 1, 2]);
    }
}
