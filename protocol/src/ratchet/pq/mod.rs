//! The post-quantum step of the ratchet (docs/PROTOCOL.md §4.13): two
//! independent ML-KEM-768 "braids", one per direction, whose shared
//! secrets enter KDF_RK beside the X25519 output, so post-compromise
//! security also holds against an attacker who can break X25519.
//!
//! `chunk` is the fixed-size slot every message header carries (a piece of
//! an encapsulation key or of a KEM ciphertext, or nothing); `braid` is the
//! state machine that decides what a slot carries and what a received one
//! does. The session (`ratchet::session`) asks the braids which secret, if
//! any, a DH step mixes.
//!
//! Must never: mix a KEM secret twice, mix one the peer cannot have, let a
//! message's length depend on the braid's phase, or show a secret in
//! `Debug`.

pub(crate) mod braid;
pub(crate) mod chunk;
pub(crate) mod pickle;

#[cfg(test)]
mod tests;

pub use braid::PeerPhase;
pub use chunk::{
    Chunk, ChunkError, ChunkKind, CHUNK_DATA_LEN, CHUNK_SLOT_LEN, CT_CHUNKS, EK_CHUNKS,
};
