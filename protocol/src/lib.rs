//! # umbra-protocol
//!
//! The sans-IO heart of umbra: key types, identities and prekeys, X3DH-style
//! key agreement, the Double Ratchet, sealed sender, sender-key groups,
//! safety numbers, padding, file attachments (chunked STREAM encryption), the
//! password-sealed account backup, the cryptography of linking a device,
//! and (re-exported from umbra-wire) the frames clients and relay exchange.
//!
//! This crate never touches a socket, a file, a clock or a global RNG: callers
//! pass in randomness (`rand::rngs::OsRng` in production) and timestamps, and
//! get back bytes to send or store. `docs/PROTOCOL.md` is its byte-exact
//! specification; `docs/test-vectors/` pins its behaviour.
//!
//! Session state is stored as versioned pickles ([`pickle`],
//! [`session_record::SessionRecordPickle`]), never as serde of the live
//! structs. Raw ratchet secrets (root, chain and message keys) are reachable
//! only with the `low-level-api` feature, for test vectors.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attachment;
pub mod backup;
pub mod consts;
pub mod content;
pub mod device_list;
pub mod fingerprint;
pub mod group;
pub mod hidden_chars;
pub mod identity;
mod kdf;
pub mod kem;
pub mod kem_prekeys;
pub mod keys;
pub mod labels;
pub mod link;
pub mod padding;
pub mod pairwise;
pub mod payload;
pub mod pickle;
pub mod prekeys;
pub mod ratchet;
pub mod sealed;
pub mod session_record;
pub mod x3dh;

/// Client<->relay frames: the umbra-wire crate, which the relay depends on
/// alone. Re-exported whole, so `umbra_protocol::wire::...` names the same
/// items as `umbra_wire::...`.
pub use umbra_wire as wire;
/// The OPAQUE ciphersuite (defined in umbra-wire, shared with the relay).
pub use umbra_wire::opaque_suite;
