//! Read-only views of a [`Session`]: public values (ratchet keys, indexes,
//! counts, KEM epochs) for everyone, and raw secrets only with the
//! `low-level-api` feature, for test vectors.
//!
//! Must never: hand out a secret without that feature.

#[cfg(feature = "low-level-api")]
use super::RootKey;
use super::{ChainKey, Session};
use crate::keys::PublicKey;
use crate::ratchet::pq::PeerPhase;

impl Session {
    /// Our current ratchet public key (what our next header carries, unless a
    /// DH step is due).
    pub fn our_ratchet_key(&self) -> PublicKey {
        self.our_ratchet_public
    }

    /// The peer's current ratchet key, once known.
    pub fn their_ratchet_key(&self) -> Option<PublicKey> {
        self.their_ratchet
    }

    /// The ephemeral-message key of our current sending epoch. Raw secret:
    /// only with the `low-level-api` feature, for test vectors.
    #[cfg(feature = "low-level-api")]
    pub fn ephemeral_send_key(&self) -> Option<[u8; 32]> {
        self.our_epoch.as_ref().map(|e| *e.as_bytes())
    }

    /// The root key. Raw secret: only with the `low-level-api` feature, for
    /// test vectors.
    #[cfg(feature = "low-level-api")]
    pub fn root_key(&self) -> &RootKey {
        &self.root_key
    }

    /// The sending chain (at the index of the next message), if one exists.
    /// Raw secret: only with the `low-level-api` feature, for test vectors.
    #[cfg(feature = "low-level-api")]
    pub fn sending_chain(&self) -> Option<&ChainKey> {
        self.sending.as_ref()
    }

    /// The receiving chain (at the index of the next expected message).
    /// Raw secret: only with the `low-level-api` feature, for test vectors.
    #[cfg(feature = "low-level-api")]
    pub fn receiving_chain(&self) -> Option<&ChainKey> {
        self.receiving.as_ref()
    }

    /// The index of the next message we send on the current sending chain,
    /// if one exists (public: it travels in the next header).
    pub fn sending_index(&self) -> Option<u32> {
        self.sending.as_ref().map(ChainKey::index)
    }

    /// The index of the next message expected on the current receiving
    /// chain, if one exists (public: headers carry it).
    pub fn receiving_index(&self) -> Option<u32> {
        self.receiving.as_ref().map(ChainKey::index)
    }

    /// How many skipped message keys are stored.
    pub fn skipped_key_count(&self) -> usize {
        self.skipped.len()
    }

    /// Dates newly stored skipped message keys with `now` and drops those
    /// dated at least `max_age` earlier (see [`crate::ratchet::skipped::SkippedKeys::expire`]; the
    /// ratchet has no clock of its own). Returns how many were dropped.
    pub fn expire_skipped_keys(&mut self, now: u64, max_age: u64) -> usize {
        self.skipped.expire(now, max_age)
    }

    /// The KEM epochs of the two braids (public: headers and chunks carry
    /// them): `(ours, the peer's)`. Ours advances each time our sending DH
    /// step mixes a secret, the peer's each time a received chain does.
    pub fn pq_epochs(&self) -> (u32, u32) {
        (self.pq.own.epoch, self.pq.peer.epoch)
    }

    /// Where the peer's braid stands (public, like the epochs): collecting
    /// its key, holding the whole key, or encapsulated to it.
    pub fn pq_peer_phase(&self) -> PeerPhase {
        self.pq.peer_phase()
    }

    /// The KEM epoch our current sending chain's step mixed (0: classical).
    pub fn sending_pq_epoch(&self) -> u32 {
        self.sending_pq_epoch
    }

    /// True once a message from the peer has been decrypted.
    pub fn has_received(&self) -> bool {
        self.receiving.is_some()
    }

    /// Our decapsulated KEM secret waiting for our next sending step, with
    /// its epoch. Raw secret: only with the `low-level-api` feature.
    #[cfg(feature = "low-level-api")]
    pub fn pq_ready_secret(&self) -> Option<(u32, [u8; 32])> {
        self.pq.secret_to_send().map(|(e, s)| (e, *s.as_bytes()))
    }

    /// The KEM secret we encapsulated for the peer's epoch, not yet mixed.
    /// Raw secret: only with the `low-level-api` feature.
    #[cfg(feature = "low-level-api")]
    pub fn pq_pending_secret(&self) -> Option<(u32, [u8; 32])> {
        self.pq
            .pending_peer_secret()
            .map(|(e, s)| (e, *s.as_bytes()))
    }

    /// The 64-byte seed of our KEM key pair for our current epoch, once
    /// drawn. Raw secret: only with the `low-level-api` feature.
    #[cfg(feature = "low-level-api")]
    pub fn pq_own_seed(&self) -> Option<[u8; 64]> {
        self.pq.own.key.as_ref().map(|k| **k.seed())
    }
}
