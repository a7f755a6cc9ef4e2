//! The Double Ratchet (Signal's published algorithm), one concept per
//! file: root key (KDF_RK), chain key (KDF_CK), message key (AEAD key and
//! nonce), header, wire message, skipped-key store, ephemeral (typing)
//! messages, and the session that ties them together.
//!
//! Must never: derive keys for a message before its bounds are checked, reuse
//! a message key, or change a session when a message fails to decrypt.

pub mod chain_key;
pub mod ephemeral;
pub mod header;
pub mod message;
pub mod message_key;
pub mod root_key;
pub mod session;
pub mod skipped;

pub use ephemeral::{EphemeralMessage, EphemeralMessageError, EPHEMERAL_MESSAGE_VERSION};
pub use header::{Header, HEADER_LEN};
pub use message::{RatchetMessage, RatchetMessageError, RATCHET_MESSAGE_VERSION};
pub use session::{RatchetError, Session};
pub use skipped::{MAX_SKIP, MAX_SKIPPED_KEYS};
