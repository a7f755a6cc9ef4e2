//! Why a pairwise operation failed, and whose fault it was: the peer's
//! (a malformed or mismatched message, a downgrade), ours (a prekey we no
//! longer hold), or nobody's (a message for another session). Kept apart
//! from the session so the whole failure vocabulary reads in one place.
//! A variant must never carry key material or plaintext.

use crate::group::GroupError;
use crate::padding::PaddingError;
use crate::prekeys::{KemPreKeyRef, PreKeyRef};
use crate::ratchet::{EphemeralMessageError, RatchetError, RatchetMessageError};
use crate::sealed::SealedError;
use crate::x3dh::X3dhError;

#[cfg(doc)]
use super::{PairwiseSession, EPHEMERAL_MAX_AGE_MS};

/// Why a pairwise operation failed. A failed decryption leaves the session
/// unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairwiseError {
    /// The sealed-sender layer failed.
    #[error("sealed envelope: {0}")]
    Sealed(#[from] SealedError),
    /// The inner bytes are not a pairwise message.
    #[error("malformed pairwise message: {0}")]
    Malformed(&'static str),
    /// The embedded ratchet message does not parse.
    #[error("malformed ratchet message: {0}")]
    RatchetEncoding(#[from] RatchetMessageError),
    /// The embedded ephemeral message does not parse.
    #[error("malformed ephemeral message: {0}")]
    EphemeralEncoding(#[from] EphemeralMessageError),
    /// The embedded group message does not parse (length, version).
    #[error("malformed group message: {0}")]
    GroupEncoding(#[from] GroupError),
    /// An ephemeral message where a stored one was expected, or the reverse;
    /// or a group message given to a pairwise session.
    #[error("wrong kind of message for this path (ephemeral, stored or group)")]
    WrongKind,
    /// An ephemeral message older (or further ahead) than
    /// [`EPHEMERAL_MAX_AGE_MS`] by the receiver's clock.
    #[error("ephemeral message is stale: sent at {sent_at_ms} ms, now {now_ms} ms")]
    StaleEphemeral {
        /// The authenticated sending time.
        sent_at_ms: u64,
        /// The receiver's clock.
        now_ms: u64,
    },
    /// The Double Ratchet refused the message.
    #[error("ratchet: {0}")]
    Ratchet(#[from] RatchetError),
    /// Key agreement failed.
    #[error("key agreement: {0}")]
    X3dh(#[from] X3dhError),
    /// The decrypted plaintext is not validly padded (or, sending, too long).
    #[error("padding: {0}")]
    Padding(#[from] PaddingError),
    /// The identity that sealed the envelope is not this session's peer (or
    /// not the identity named in the pre-key message), or it claims another
    /// address than the session's peer.
    #[error("sealed sender does not match the session's peer identity and address")]
    SenderMismatch,
    /// A pre-key message names a prekey we do not (or no longer) hold.
    #[error("unknown prekey: signed {signed_prekey_id}, extra {extra:?}")]
    UnknownPreKey {
        /// The signed prekey id the message names.
        signed_prekey_id: u32,
        /// The extra prekey it names, if any.
        extra: Option<PreKeyRef>,
    },
    /// A hybrid pre-key message names an ML-KEM prekey we do not (or no
    /// longer) hold: a one-time one already used, or a last-resort one
    /// replaced longer ago than we keep it.
    #[error("unknown ML-KEM prekey {0:?}")]
    UnknownKemPreKey(KemPreKeyRef),
    /// A plain message arrived for which there is no session; or a pre-key
    /// message belongs to a different X3DH run than this session (the peer
    /// started over): create a new session with [`PairwiseSession::accept`].
    #[error("message does not belong to this session")]
    WrongSession,
    /// A classical pre-key message (type `0x01`, X3DH without an ML-KEM
    /// secret) asked for a new session. Refused, never answered with a
    /// classical session: that is the downgrade to a key agreement a
    /// quantum attacker who recorded it could read later. The sender's
    /// fault (an out-of-date client); nothing here can be retried.
    #[error(
        "classical pre-key message (type 0x01, no ML-KEM secret) refused: no downgrade to a \
         session without post-quantum protection; the sender's client is out of date"
    )]
    ClassicalPreKeyRefused,
}
