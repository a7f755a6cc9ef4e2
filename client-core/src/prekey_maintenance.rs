//! Keeping our prekeys published: one-time prekeys topped up, the signed
//! prekey rotated.
//!
//! One-time prekeys are generated in batches of up to
//! `ONE_TIME_PREKEY_BATCH_MAX` (100) and their secrets are stored *before*
//! the upload, so a key the relay hands out always has its secret here. When
//! the relay reports `PreKeysLow`, the client tops up to a full batch. The
//! signed prekey is rotated every `SIGNED_PREKEY_ROTATION_SECS` (2 days);
//! replaced signed prekeys are kept until `SIGNED_PREKEY_MAX_AGE_SECS`
//! (14 days) after their creation so pre-key messages already in flight
//! still open, then deleted (forward secrecy). A last-resort prekey is
//! published once and never deleted, so a session can always be started.
//!
//! Must never: upload a prekey whose secret is not yet stored, reuse a
//! prekey id, or keep a signed prekey past its maximum age.

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::prekeys::{
    OneTimePreKey, SignedPreKey, SIGNED_PREKEY_MAX_AGE_SECS, SIGNED_PREKEY_ROTATION_SECS,
};
use umbra_protocol::wire::{PreKeyWire, SignedPreKeyWire};

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
    /// Ids and creation times of signed prekeys still held.
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
                held_signed: vec![(1, now)],
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

    /// A new signed prekey, made current. Returns it and the ids of held
    /// signed prekeys that are now past their maximum age (to delete).
    pub(crate) fn rotate<R: RngCore + CryptoRng>(
        &mut self,
        identity: &IdentityKeyPair,
        now: u64,
        rng: &mut R,
    ) -> (SignedPreKey, Vec<u32>) {
        let id = self.next_signed_id;
        self.next_signed_id = self.next_signed_id.wrapping_add(1).max(1);
        let signed = SignedPreKey::generate(identity, id, now, rng);
        self.current_signed_id = id;
        self.current_signed_created_at = now;
        self.held_signed.push((id, now));
        let (keep, expired): (Vec<_>, Vec<_>) =
            self.held_signed.iter().copied().partition(|(_, created)| {
                now.saturating_sub(*created) < SIGNED_PREKEY_MAX_AGE_SECS
            });
        self.held_signed = keep;
        (signed, expired.into_iter().map(|(id, _)| id).collect())
    }
}

pub(crate) fn signed_wire(signed: &SignedPreKey) -> SignedPreKeyWire {
    let public = signed.public();
    SignedPreKeyWire {
        id: public.id,
        created_at: public.created_at,
        key: public.key,
        signature: public.signature.to_bytes(),
    }
}

pub(crate) fn one_time_wire(key: &OneTimePreKey) -> PreKeyWire {
    let public = key.public();
    PreKeyWire {
        id: public.id,
        key: public.key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rotation_is_due_after_two_days_and_old_keys_expire_after_fourteen() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let identity = IdentityKeyPair::generate(&mut rng);
        let t0 = 1_700_000_000;
        let mut keys = InitialKeys::generate(&identity, t0, &mut rng);
        let day = 24 * 60 * 60;
        assert!(!keys.state.rotation_due(t0 + day));
        assert!(keys.state.rotation_due(t0 + 2 * day));
        let (new, expired) = keys.state.rotate(&identity, t0 + 2 * day, &mut rng);
        assert_eq!(new.id(), 2);
        assert!(expired.is_empty(), "the first key is only 2 days old");
        assert_eq!(keys.state.held_signed.len(), 2);
        let (_, expired) = keys.state.rotate(&identity, t0 + 14 * day, &mut rng);
        assert_eq!(expired, vec![1]);
        assert!(keys.state.held_signed.iter().all(|(id, _)| *id != 1));
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
