//! Key transparency, the sans-IO core (docs/PROTOCOL.md §16, "umbra KT v1"):
//! a VRF-keyed sparse Merkle map of every account's identity and device list
//! and every username's account, each leaf a hash chain of versions; epoch
//! heads signed by the relay's directory key; and an RFC 9162 log over the
//! epoch entries, so a relay cannot serve a key it did not commit to, nor
//! rewrite what it committed to, without a client being able to prove it.
//!
//! Both sides use it: the relay builds the map ([`KtMap`]), holds the VRF
//! and directory keys and signs heads; a client verifies heads and proofs
//! and compares what it was served. This module does no I/O, keeps no
//! clock, and stores nothing; the relay's storage, epoch publisher and
//! frames, and client-core's checks, are built on it.
//!
//! Must never: hand-roll the VRF or any hash construction the spec does not
//! name, accept bytes that are not in their one encoding, or return a value
//! from a proof before every check of §16 passed.

mod error;
mod head;
mod label;
mod leaf;
mod log;
mod map;
mod proof;
mod tree;
mod vrf;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_log;

pub use error::KtError;
pub use head::{
    DirectoryPublicKey, DirectorySigningKey, EpochEntry, SignedEpochHead, VerifiedHead,
    EPOCH_ENTRY_FORMAT, EPOCH_ENTRY_LEN, HEAD_SIGNED_LEN,
};
pub use label::{KtLabel, LABEL_ACCOUNT, LABEL_USERNAME};
pub use leaf::{
    chain_hash, leaf_hash, Hash32, LeafValue, VersionRecord, ACCOUNT_VALUE_LEN, USERNAME_VALUE_LEN,
};
pub use log::{log_leaf_hash, log_node_hash, ConsistencyProof, EpochLog, InclusionProof, LogRoot};
pub use map::KtMap;
pub use proof::{History, HistoryProof, Lookup, LookupProof, MapPath};
pub use tree::{empty_hash, node_hash, MapRoot};
pub use vrf::{LeafIndex, VrfProof, VrfPublicKey, VrfSecretKey, VRF_PROOF_LEN, VRF_PUBLIC_KEY_LEN};
