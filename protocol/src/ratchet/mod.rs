//! The Double Ratchet (Signal's published algorithm), one concept per
//! file: root key (KDF_RK), chain key (KDF_CK), message key (AEAD key and
//! nonce), header, wire message, skipped-key store, ephemeral (typing)
//! messages, the post-quantum braids (`pq/`), and the session that ties
//! them together.
//!
//! Like vodozemac, the internals stay in private submodules: the crate
//! exports the session, its pickle, messages and errors. The key types
//! (root, chain and message keys) and the getters that hand out raw secrets
//! exist outside the crate only with the `low-level-api` feature, which
//! umbra-protocol's own tests and benches enable (test vectors need them);
//! nothing else in the workspace does.
//!
//! Must never: derive keys for a message before its bounds are checked, reuse
//! a message key, or change a session when a message fails to decrypt.

mod chain_key;
mod ephemeral;
mod header;
mod message;
mod message_key;
mod pq;
mod root_key;
mod session;
mod skipped;

pub use ephemeral::{EphemeralMessage, EphemeralMessageError, EPHEMERAL_MESSAGE_VERSION};
pub use header::{Header, HeaderError, HEADER_LEN};
pub use message::{RatchetMessage, RatchetMessageError, RATCHET_MESSAGE_VERSION};
pub use pq::{
    Chunk, ChunkError, ChunkKind, PeerPhase, CHUNK_DATA_LEN, CHUNK_SLOT_LEN, CT_CHUNKS, EK_CHUNKS,
};
pub use session::{RatchetError, RatchetPickle, Session, PLAIN_AD_TYPE, RETIRED_RATCHET_KEYS};
pub use skipped::{MAX_SKIP, MAX_SKIPPED_KEYS};

#[cfg(feature = "low-level-api")]
pub use chain_key::{ChainKey, MESSAGE_KEY_SEED_INPUT, NEXT_CHAIN_KEY_INPUT};
#[cfg(feature = "low-level-api")]
pub use message_key::{MessageKey, TAG_LEN};
#[cfg(feature = "low-level-api")]
pub use root_key::RootKey;
#[cfg(feature = "low-level-api")]
pub use skipped::SkippedKeys;
