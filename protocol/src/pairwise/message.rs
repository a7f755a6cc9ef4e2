//! The pairwise message encoding (docs/PROTOCOL.md 4.11): the inner bytes
//! of a sealed envelope, decoded into [`PairwiseMessage`] and back.
//!
//! A child of `pairwise` so the session code and the codec stay in files of
//! their own. The type byte of a pre-key message follows from its header:
//! `0x05` (hybrid) exactly when the header carries a KEM part, `0x01`
//! (classical) otherwise, so a header can never travel under the other
//! type.
//!
//! Must never: panic on any input, read a field before the one before it
//! was checked, or accept trailing garbage inside a fixed field.

use super::{
    PairwiseError, EPHEMERAL_MESSAGE_TYPE, GROUP_MESSAGE_TYPE, HYBRID_PREKEY_MESSAGE_TYPE,
    PLAIN_MESSAGE_TYPE, PREKEY_MESSAGE_TYPE,
};
use crate::group::GroupMessage;
use crate::identity::{IdentityPublic, IDENTITY_PUBLIC_LEN};
use crate::kem::{KemCiphertext, KEM_CIPHERTEXT_LEN};
use crate::kem_prekeys::KemPreKeyKind;
use crate::keys::PublicKey;
use crate::prekeys::{KemPreKeyRef, PreKeyRef};
use crate::ratchet::{EphemeralMessage, RatchetMessage};
use crate::x3dh::{InitialHeader, KemHeader};

const EXTRA_NONE: u8 = 0x00;
const EXTRA_ONE_TIME: u8 = 0x01;
const EXTRA_LAST_RESORT: u8 = 0x02;

/// The truncation error of a classical pre-key message (its text is fixed
/// by the decode-error vectors).
const TRUNCATED_PREKEY: &str = "truncated pre-key message";
/// The truncation error of a hybrid pre-key message's X3DH fields.
const TRUNCATED_HYBRID: &str = "truncated hybrid pre-key message";
/// Fewer than 1088 bytes where the KEM ciphertext belongs.
const TRUNCATED_KEM_CIPHERTEXT: &str = "truncated KEM ciphertext in hybrid pre-key message";

/// A pre-key message: the X3DH (or PQXDH) header plus the first ratchet
/// message(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeyMessage {
    /// What the responder needs to repeat the key agreement. Its `kem` is
    /// `Some` exactly for a hybrid (`0x05`) message.
    pub initial: InitialHeader,
    /// The ratchet message it carries.
    pub message: RatchetMessage,
}

impl PreKeyMessage {
    /// The type byte it travels under, which its ratchet message also
    /// authenticates: `0x05` hybrid, `0x01` classical.
    pub fn type_byte(&self) -> u8 {
        header_type(&self.initial)
    }

    /// The KEM prekey a hybrid message names (load its private half before
    /// `accept`; delete a one-time one once `accept` succeeded).
    pub fn kem_prekey(&self) -> Option<KemPreKeyRef> {
        self.initial.kem.as_ref().map(|k| k.prekey)
    }
}

/// The type byte a pre-key message with this header travels under.
pub(super) fn header_type(header: &InitialHeader) -> u8 {
    match header.kem {
        Some(_) => HYBRID_PREKEY_MESSAGE_TYPE,
        None => PREKEY_MESSAGE_TYPE,
    }
}

/// The inner bytes of a sealed envelope, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairwiseMessage {
    /// Sent by an initiator until it has received a reply; classical
    /// (`0x01`) or hybrid (`0x05`). Boxed: it is rare and ten times (hybrid:
    /// thirty times) the size of a plain message.
    PreKey(Box<PreKeyMessage>),
    /// Every other stored message.
    Plain(RatchetMessage),
    /// Content the relay does not store (typing notices).
    Ephemeral(EphemeralMessage),
    /// A group message: for the sender's `GroupReceiver` (section 8), found
    /// by the header's group id and the sealed sender, never a session.
    Group(GroupMessage),
}

impl PairwiseMessage {
    /// The encoding given in the module docs of `pairwise`.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            PairwiseMessage::Plain(message) => {
                let mut out = Vec::with_capacity(1 + message.encoded_len());
                out.push(PLAIN_MESSAGE_TYPE);
                message.write_to(&mut out);
                out
            }
            PairwiseMessage::Ephemeral(message) => {
                let mut out = Vec::with_capacity(1 + message.encoded_len());
                out.push(EPHEMERAL_MESSAGE_TYPE);
                message.write_to(&mut out);
                out
            }
            PairwiseMessage::Group(message) => message.sealed_inner().to_vec(),
            PairwiseMessage::PreKey(prekey_message) => {
                let PreKeyMessage { initial, message } = prekey_message.as_ref();
                let kem_len = if initial.kem.is_some() {
                    5 + KEM_CIPHERTEXT_LEN
                } else {
                    0
                };
                let mut out = Vec::with_capacity(
                    1 + IDENTITY_PUBLIC_LEN + 41 + kem_len + message.encoded_len(),
                );
                out.push(header_type(initial));
                out.extend_from_slice(&initial.initiator_identity.to_bytes());
                out.extend_from_slice(initial.ephemeral.as_bytes());
                out.extend_from_slice(&initial.signed_prekey_id.to_be_bytes());
                match initial.extra_prekey {
                    None => out.push(EXTRA_NONE),
                    Some(PreKeyRef::OneTime(id)) => {
                        out.push(EXTRA_ONE_TIME);
                        out.extend_from_slice(&id.to_be_bytes());
                    }
                    Some(PreKeyRef::LastResort(id)) => {
                        out.push(EXTRA_LAST_RESORT);
                        out.extend_from_slice(&id.to_be_bytes());
                    }
                }
                if let Some(kem) = &initial.kem {
                    out.push(kem.prekey.kind.byte());
                    out.extend_from_slice(&kem.prekey.id.to_be_bytes());
                    out.extend_from_slice(kem.ciphertext.as_bytes());
                }
                message.write_to(&mut out);
                out
            }
        }
    }

    /// Decodes the encoding given in the module docs of `pairwise`. Never
    /// panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PairwiseError> {
        let (kind, rest) = bytes
            .split_first()
            .ok_or(PairwiseError::Malformed("empty message"))?;
        match *kind {
            PLAIN_MESSAGE_TYPE => Ok(PairwiseMessage::Plain(RatchetMessage::from_bytes(rest)?)),
            EPHEMERAL_MESSAGE_TYPE => Ok(PairwiseMessage::Ephemeral(EphemeralMessage::from_bytes(
                rest,
            )?)),
            GROUP_MESSAGE_TYPE => Ok(PairwiseMessage::Group(GroupMessage::from_bytes(rest)?)),
            PREKEY_MESSAGE_TYPE => prekey_message(rest, false),
            HYBRID_PREKEY_MESSAGE_TYPE => prekey_message(rest, true),
            _ => Err(PairwiseError::Malformed("unknown message type")),
        }
    }
}

/// Reads a pre-key message after its type byte, field by field in the
/// order of PROTOCOL 4.11's tables; `hybrid` adds the KEM fields after the
/// extra prekey.
fn prekey_message(rest: &[u8], hybrid: bool) -> Result<PairwiseMessage, PairwiseError> {
    let truncated = if hybrid {
        TRUNCATED_HYBRID
    } else {
        TRUNCATED_PREKEY
    };
    let mut reader = Reader { rest, truncated };
    let identity = reader.take(IDENTITY_PUBLIC_LEN)?;
    let initiator_identity = IdentityPublic::from_bytes(identity)
        .map_err(|_| PairwiseError::Malformed("initiator identity"))?;
    let ephemeral = PublicKey::from_slice(reader.take(32)?)
        .map_err(|_| PairwiseError::Malformed("ephemeral key"))?;
    let signed_prekey_id = reader.u32()?;
    let extra_prekey = match reader.take(1)? {
        [EXTRA_NONE] => None,
        [EXTRA_ONE_TIME] => Some(PreKeyRef::OneTime(reader.u32()?)),
        [EXTRA_LAST_RESORT] => Some(PreKeyRef::LastResort(reader.u32()?)),
        _ => return Err(PairwiseError::Malformed("unknown extra prekey tag")),
    };
    let kem = if hybrid {
        let kind = KemPreKeyKind::from_byte(reader.u8()?)
            .ok_or(PairwiseError::Malformed("unknown KEM prekey kind"))?;
        let id = reader.u32()?;
        reader.truncated = TRUNCATED_KEM_CIPHERTEXT;
        let ciphertext = KemCiphertext::from_bytes(reader.take(KEM_CIPHERTEXT_LEN)?)
            .map_err(|_| PairwiseError::Malformed(TRUNCATED_KEM_CIPHERTEXT))?;
        Some(KemHeader {
            prekey: KemPreKeyRef { kind, id },
            ciphertext,
        })
    } else {
        None
    };
    Ok(PairwiseMessage::PreKey(Box::new(PreKeyMessage {
        initial: InitialHeader {
            initiator_identity,
            ephemeral,
            signed_prekey_id,
            extra_prekey,
            kem,
        },
        message: RatchetMessage::from_bytes(reader.rest)?,
    })))
}

/// Reads fixed-length fields; running short is `Malformed(truncated)`.
struct Reader<'a> {
    rest: &'a [u8],
    truncated: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PairwiseError> {
        if self.rest.len() < n {
            return Err(PairwiseError::Malformed(self.truncated));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, PairwiseError> {
        let mut b = [0u8; 1];
        b.copy_from_slice(self.take(1)?);
        Ok(b[0])
    }

    fn u32(&mut self) -> Result<u32, PairwiseError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }
}
