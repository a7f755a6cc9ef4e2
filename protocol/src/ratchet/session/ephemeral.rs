//! The ephemeral-message half of a [`Session`] (docs/PROTOCOL.md §4.12):
//! typing notices under one key per epoch, never a message key.
//!
//! A child of `session` so it reads the session's private fields. Sending
//! may take the sending DH step (hybrid when our KEM secret is ready, as the
//! next `encrypt` would); receiving never changes any state.
//!
//! Must never: advance a chain, derive a message key, or change the session
//! when receiving.

use rand_core::{CryptoRng, RngCore};

use super::{RatchetError, Session};
use crate::keys::SecretKey;
use crate::ratchet::ephemeral::{EphemeralMessage, EpochKey};

impl Session {
    /// Encrypts an ephemeral message (typing notice; see
    /// `ratchet::ephemeral`) under the key of our current sending epoch.
    /// Derives no message key and advances no chain, so any number of
    /// ephemeral messages the relay drops leaves the conversation intact.
    /// If a sending DH step is due it is taken first, exactly as the next
    /// [`Session::encrypt`] would take it, so the notice names our newest
    /// epoch. `ad_type` is the pairwise type byte that precedes the header
    /// in the associated data. On error nothing changes.
    pub fn encrypt_ephemeral<R: RngCore + CryptoRng>(
        &mut self,
        ad_type: u8,
        plaintext: &[u8],
        sent_at_ms: u64,
        rng: &mut R,
    ) -> Result<EphemeralMessage, RatchetError> {
        let ad = self.ephemeral_ad_prefix(ad_type);
        if self.sending.is_some() {
            let epoch = self
                .our_epoch
                .as_ref()
                .ok_or(RatchetError::NotReadyToSend)?;
            return epoch
                .encrypt(&ad, sent_at_ms, plaintext, rng)
                .ok_or(RatchetError::PlaintextTooLong);
        }
        let their = self.their_ratchet.ok_or(RatchetError::NotReadyToSend)?;
        let ours = SecretKey::generate(rng);
        let dh = ours.diffie_hellman(&their)?;
        let mix = self.pq.secret_to_send();
        let (root_key, first) = self.root_key.step_with(&dh, mix.map(|(_, s)| s));
        let pq_epoch = mix.map_or(0, |(epoch, _)| epoch);
        let public = ours.public_key();
        let epoch = EpochKey::derive(public, &first);
        let message = epoch
            .encrypt(&ad, sent_at_ms, plaintext, rng)
            .ok_or(RatchetError::PlaintextTooLong)?;
        self.our_ratchet = ours;
        self.our_ratchet_public = public;
        self.root_key = root_key;
        self.sending = Some(first);
        self.sending_pq_epoch = pq_epoch;
        if pq_epoch != 0 {
            self.pq.advance_own();
        }
        self.our_epoch = Some(epoch);
        Ok(message)
    }

    /// Verifies and decrypts an ephemeral message. Takes `&self`: receiving
    /// one never changes the session. The epoch is looked up among the
    /// peer's last few receiving chains; for a ratchet key the peer has not
    /// sent a message under yet (it took a sending step for the notice), the
    /// epoch key is derived tentatively from the root key and discarded.
    /// An epoch that is neither fails [`RatchetError::UnknownEpoch`].
    pub fn decrypt_ephemeral(
        &self,
        ad_type: u8,
        message: &EphemeralMessage,
    ) -> Result<Vec<u8>, RatchetError> {
        let ad = self.ephemeral_ad_prefix(ad_type);
        let epoch_key = message.ratchet_key;
        if let Some(epoch) = self
            .their_epochs
            .iter()
            .find(|e| e.ratchet_key == epoch_key)
        {
            return epoch
                .decrypt(&ad, message)
                .ok_or(RatchetError::DecryptionFailed);
        }
        if self.their_ratchet == Some(epoch_key) || self.retired_their_ratchets.contains(&epoch_key)
        {
            return Err(RatchetError::UnknownEpoch);
        }
        // The peer's step for the notice was classical, or hybrid with the
        // secret we encapsulated for its current KEM epoch (the notice does
        // not say which): try both, the tag decides.
        let dh = self.our_ratchet.diffie_hellman(&epoch_key)?;
        let (_, first) = self.root_key.step(&dh);
        if let Some(plaintext) = EpochKey::derive(epoch_key, &first).decrypt(&ad, message) {
            return Ok(plaintext);
        }
        let (_, secret) = self
            .pq
            .pending_peer_secret()
            .ok_or(RatchetError::DecryptionFailed)?;
        let (_, first) = self.root_key.step_hybrid(&dh, secret);
        EpochKey::derive(epoch_key, &first)
            .decrypt(&ad, message)
            .ok_or(RatchetError::DecryptionFailed)
    }

    /// `X3DH AD || type byte`; the ephemeral header follows.
    fn ephemeral_ad_prefix(&self, ad_type: u8) -> Vec<u8> {
        let mut ad = Vec::with_capacity(self.associated_data.len() + 1);
        ad.extend_from_slice(&self.associated_data);
        ad.push(ad_type);
        ad
    }
}
