//! Deterministic example material for the wire vector suites
//! (`vectors_wire.rs` and the device frames of `device_frames/`): every
//! byte an example needs is drawn in order from a ChaCha20 stream seeded by
//! one byte, so the vectors never change by accident and each family of
//! examples can own a seed.
//!
//! Must never: draw differently for a method once vectors depend on it
//! (every committed vector would change), or use anything but the seed.

// Each test crate that includes this module uses only some of the methods.
#![allow(dead_code)]

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use umbra_protocol::keys::PublicKey;
use umbra_protocol::wire::{AccountId, Address, LinkTicketId, PreKeyWire, SignedPreKeyWire};

/// The material of one seed.
pub struct Material(pub ChaCha20Rng);

impl Material {
    pub fn new(seed: u8) -> Self {
        Self(ChaCha20Rng::from_seed([seed; 32]))
    }
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.0.fill_bytes(&mut out);
        out
    }
    pub fn vec(&mut self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.0.fill_bytes(&mut out);
        out
    }
    /// 16 bytes of the stream, as `AccountId::random` draws them.
    pub fn account(&mut self) -> AccountId {
        AccountId::from_bytes(self.bytes())
    }
    pub fn address(&mut self) -> Address {
        Address::primary(self.account())
    }
    pub fn ticket(&mut self) -> LinkTicketId {
        LinkTicketId::from_bytes(self.bytes())
    }
    pub fn prekey(&mut self, id: u32) -> PreKeyWire {
        PreKeyWire {
            id,
            key: PublicKey::from_bytes(self.bytes()),
        }
    }
    pub fn signed_prekey(&mut self) -> SignedPreKeyWire {
        SignedPreKeyWire {
            id: 1,
            created_at: 1_795_000_000,
            key: PublicKey::from_bytes(self.bytes()),
            signature: self.bytes(),
        }
    }
}
