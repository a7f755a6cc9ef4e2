//! The stored form of a ratchet [`Session`]: [`RatchetPickle`], layout in
//! docs/PROTOCOL.md §4.9 (format version [`PICKLE_VERSION`]).
//!
//! A child of `session` so it reads the session's private fields without
//! the session exposing them. Our ratchet public key is not stored: it is
//! recomputed from the private key on load, so the two can never disagree.
//!
//! Two layouts are read (§4.9): format 1, written before the post-quantum
//! step, begins with the associated data's varint length; format 2 begins
//! with the varint [`FORMAT_2_MARKER`], a value no associated data can have
//! as its length, then the same fields followed by the braids. A format-1
//! pickle loads with fresh braids. Only format 2 is written.
//!
//! Must never: load a pickle beyond the bounds the live session keeps
//! (skipped keys, retired ratchet keys, kept epochs, the braids' states),
//! or show key bytes in `Debug`.

use std::collections::VecDeque;

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{Session, RETIRED_RATCHET_KEYS};
use crate::keys::{PublicKey, SecretKey};
use crate::pickle::{self, Bytes, PickleError, PICKLE_VERSION};
use crate::ratchet::chain_key::ChainKey;
use crate::ratchet::ephemeral::{EpochKey, EPHEMERAL_EPOCHS_KEPT};
use crate::ratchet::message_key::MessageKey;
use crate::ratchet::pq::pickle::BraidsPickle;
use crate::ratchet::root_key::RootKey;
use crate::ratchet::skipped::{SkippedKeys, MAX_SKIPPED_KEYS};

/// The first varint of a format-2 [`RatchetPickle`] (where format 1 has
/// the associated data's length, which is never this large).
pub const FORMAT_2_MARKER: u32 = u32::MAX;

/// The longest associated data a format-1 pickle is read with (X3DH's is
/// 325 bytes); bounds the byte-by-byte read of that format.
const MAX_FORMAT_1_AD_LEN: u32 = 4096;

/// A ratchet session's stored form. Holds every secret of the session:
/// zeroized on drop, never shown in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RatchetPickle {
    associated_data: Vec<u8>,
    core: CorePickle,
    sending_pq_epoch: u32,
    pq: BraidsPickle,
}

/// The fields both formats share after the associated data (the whole of
/// format 1 but its first field), in order.
#[derive(Clone, Serialize, Deserialize, Zeroize)]
struct CorePickle {
    root_key: Bytes<32>,
    our_ratchet_private: Bytes<32>,
    their_ratchet: Option<Bytes<32>>,
    sending: Option<ChainPickle>,
    receiving: Option<ChainPickle>,
    previous_sending_length: u32,
    skipped: Vec<SkippedPickle>,
    retired_their_ratchets: Vec<Bytes<32>>,
    our_epoch: Option<EpochPickle>,
    their_epochs: Vec<EpochPickle>,
}

impl Serialize for RatchetPickle {
    /// Format 2: marker, associated data, the shared fields, the epoch our
    /// sending chain mixed, the braids.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut t = serializer.serialize_tuple(5)?;
        t.serialize_element(&FORMAT_2_MARKER)?;
        t.serialize_element(&self.associated_data)?;
        t.serialize_element(&self.core)?;
        t.serialize_element(&self.sending_pq_epoch)?;
        t.serialize_element(&self.pq)?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for RatchetPickle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PickleVisitor;
        impl<'de> Visitor<'de> for PickleVisitor {
            type Value = RatchetPickle;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a ratchet pickle (format 1 or 2)")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RatchetPickle, A::Error> {
                let missing = || A::Error::custom("ratchet pickle ends early");
                let first: u32 = seq.next_element()?.ok_or_else(missing)?;
                if first == FORMAT_2_MARKER {
                    return Ok(RatchetPickle {
                        associated_data: seq.next_element()?.ok_or_else(missing)?,
                        core: seq.next_element()?.ok_or_else(missing)?,
                        sending_pq_epoch: seq.next_element()?.ok_or_else(missing)?,
                        pq: seq.next_element()?.ok_or_else(missing)?,
                    });
                }
                // Format 1: `first` was the length of the associated data,
                // whose bytes follow one by one.
                if first > MAX_FORMAT_1_AD_LEN {
                    return Err(A::Error::custom("format-1 associated data too long"));
                }
                let mut associated_data = Vec::with_capacity(first as usize);
                for _ in 0..first {
                    associated_data.push(seq.next_element::<u8>()?.ok_or_else(missing)?);
                }
                Ok(RatchetPickle {
                    associated_data,
                    core: seq.next_element()?.ok_or_else(missing)?,
                    sending_pq_epoch: 0,
                    pq: BraidsPickle::fresh(),
                })
            }
        }
        // Long enough for format 1's byte-by-byte associated data; postcard
        // reads only the elements asked for.
        deserializer.deserialize_tuple(MAX_FORMAT_1_AD_LEN as usize + 2, PickleVisitor)
    }
}

#[derive(Clone, Serialize, Deserialize, Zeroize)]
struct ChainPickle {
    key: Bytes<32>,
    index: u32,
}

#[derive(Clone, Serialize, Deserialize, Zeroize)]
struct SkippedPickle {
    ratchet_key: Bytes<32>,
    message_key: Bytes<32>,
    nonce: Bytes<12>,
    index: u32,
    dated_at: Option<u64>,
}

#[derive(Clone, Serialize, Deserialize, Zeroize)]
struct EpochPickle {
    ratchet_key: Bytes<32>,
    key: Bytes<32>,
}

impl ChainPickle {
    fn of(chain: &ChainKey) -> Self {
        ChainPickle {
            key: Bytes(*chain.as_bytes()),
            index: chain.index(),
        }
    }

    fn load(&self) -> ChainKey {
        ChainKey::new(self.key.0, self.index)
    }
}

impl EpochPickle {
    fn of(epoch: &EpochKey) -> Self {
        EpochPickle {
            ratchet_key: Bytes(epoch.ratchet_key.to_bytes()),
            key: Bytes(*epoch.as_bytes()),
        }
    }

    fn load(&self) -> EpochKey {
        EpochKey::from_parts(PublicKey::from_bytes(self.ratchet_key.0), self.key.0)
    }
}

impl RatchetPickle {
    /// `PICKLE_VERSION || postcard(pickle)`, in a buffer wiped on drop.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        pickle::encode(self)
    }

    /// Reads [`RatchetPickle::encode`]'s bytes; an unknown leading version
    /// is [`PickleError::UnknownVersion`].
    pub fn decode(bytes: &[u8]) -> Result<Self, PickleError> {
        pickle::decode(bytes)
    }

    /// The format version [`RatchetPickle::encode`] writes.
    pub const VERSION: u8 = PICKLE_VERSION;
}

impl std::fmt::Debug for RatchetPickle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RatchetPickle")
            .field("skipped_keys", &self.core.skipped.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The session's stored form (a copy of every secret in it: keep it as
    /// secret as the session).
    pub fn pickle(&self) -> RatchetPickle {
        let mut our_private = Zeroizing::new(self.our_ratchet.to_bytes());
        let core = CorePickle {
            root_key: Bytes(*self.root_key.as_bytes()),
            our_ratchet_private: Bytes(std::mem::take(&mut *our_private)),
            their_ratchet: self.their_ratchet.map(|k| Bytes(k.to_bytes())),
            sending: self.sending.as_ref().map(ChainPickle::of),
            receiving: self.receiving.as_ref().map(ChainPickle::of),
            previous_sending_length: self.previous_sending_length,
            skipped: self
                .skipped
                .iter()
                .map(|(ratchet_key, key, dated_at)| SkippedPickle {
                    ratchet_key: Bytes(ratchet_key.to_bytes()),
                    message_key: Bytes(*key.key_bytes()),
                    nonce: Bytes(*key.nonce_bytes()),
                    index: key.index(),
                    dated_at,
                })
                .collect(),
            retired_their_ratchets: self
                .retired_their_ratchets
                .iter()
                .map(|k| Bytes(k.to_bytes()))
                .collect(),
            our_epoch: self.our_epoch.as_ref().map(EpochPickle::of),
            their_epochs: self.their_epochs.iter().map(EpochPickle::of).collect(),
        };
        RatchetPickle {
            associated_data: self.associated_data.clone(),
            core,
            sending_pq_epoch: self.sending_pq_epoch,
            pq: BraidsPickle::of(&self.pq),
        }
    }

    /// Rebuilds a session from its stored form, refusing states the live
    /// session never reaches.
    pub fn from_pickle(whole: &RatchetPickle) -> Result<Session, PickleError> {
        let pickle = &whole.core;
        let pq = whole.pq.load()?;
        if whole.sending_pq_epoch >= pq.own.epoch {
            return Err(PickleError::Invalid(
                "a sending chain that mixed a KEM epoch not yet reached",
            ));
        }
        if pickle.skipped.len() > MAX_SKIPPED_KEYS {
            return Err(PickleError::Invalid(
                "more skipped keys than MAX_SKIPPED_KEYS",
            ));
        }
        if pickle.retired_their_ratchets.len() > RETIRED_RATCHET_KEYS {
            return Err(PickleError::Invalid("more retired ratchet keys than kept"));
        }
        if pickle.their_epochs.len() > EPHEMERAL_EPOCHS_KEPT {
            return Err(PickleError::Invalid("more peer epochs than kept"));
        }
        if pickle.receiving.is_some() && pickle.their_ratchet.is_none() {
            return Err(PickleError::Invalid(
                "a receiving chain without the peer's ratchet key",
            ));
        }
        let our_ratchet = SecretKey::from_bytes(pickle.our_ratchet_private.0);
        Ok(Session {
            associated_data: whole.associated_data.clone(),
            sending_pq_epoch: whole.sending_pq_epoch,
            pq,
            root_key: RootKey::from_bytes(pickle.root_key.0),
            our_ratchet_public: our_ratchet.public_key(),
            our_ratchet,
            their_ratchet: pickle
                .their_ratchet
                .as_ref()
                .map(|k| PublicKey::from_bytes(k.0)),
            sending: pickle.sending.as_ref().map(ChainPickle::load),
            receiving: pickle.receiving.as_ref().map(ChainPickle::load),
            previous_sending_length: pickle.previous_sending_length,
            skipped: SkippedKeys::from_entries(pickle.skipped.iter().map(|s| {
                (
                    PublicKey::from_bytes(s.ratchet_key.0),
                    MessageKey::from_parts(s.message_key.0, s.nonce.0, s.index),
                    s.dated_at,
                )
            })),
            retired_their_ratchets: pickle
                .retired_their_ratchets
                .iter()
                .map(|k| PublicKey::from_bytes(k.0))
                .collect::<VecDeque<_>>(),
            our_epoch: pickle.our_epoch.as_ref().map(EpochPickle::load),
            their_epochs: pickle.their_epochs.iter().map(EpochPickle::load).collect(),
        })
    }
}
