//! Stored forms of sender keys: [`GroupSenderPickle`] and
//! [`GroupReceiverPickle`], versioned types of their own (like the
//! ratchet's `SessionPickle`, docs/PROTOCOL.md §4.9), layout in §8.6.
//!
//! A child of `group` so it reads the live types' private fields without
//! them exposing their keys.
//!
//! Must never: load a pickle that breaks a bound the live type keeps (more
//! than `MAX_GROUP_SKIPPED_KEYS` skipped keys, a skipped iteration at or
//! after the chain's), load an identity or signing key that does not parse,
//! or show key bytes in `Debug`.

use std::collections::BTreeMap;

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::chain::{ChainKey, MessageKeySeed};
use super::id::{GroupId, GROUP_ID_LEN};
use super::sender_key::{GroupReceiver, GroupSender};
use crate::consts::MAX_GROUP_SKIPPED_KEYS;
use crate::identity::{IdentityPublic, IDENTITY_PUBLIC_LEN};
use crate::pickle::{self, Bytes, PickleError, PICKLE_VERSION};

/// A [`GroupSender`]'s stored form. Zeroized on drop, never shown in
/// `Debug`; its encoding is as secret as the key (store it encrypted).
///
/// ```
/// # use rand::rngs::OsRng;
/// # use umbra_protocol::group::{GroupId, GroupSender, GroupSenderPickle};
/// let sender = GroupSender::generate(GroupId::random(&mut OsRng), 3, &mut OsRng);
/// let stored = sender.pickle().encode(); // Zeroizing<Vec<u8>>: encrypt, then store
/// let loaded = GroupSender::from_pickle(&GroupSenderPickle::decode(&stored)?)?;
/// assert_eq!(loaded.epoch(), 3);
/// # Ok::<(), umbra_protocol::pickle::PickleError>(())
/// ```
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct GroupSenderPickle {
    group_id: Bytes<GROUP_ID_LEN>,
    epoch: u64,
    chain_id: u32,
    signing_seed: Bytes<32>,
    chain_key: Bytes<32>,
    iteration: u32,
}

/// A [`GroupReceiver`]'s stored form. Zeroized on drop, never shown in
/// `Debug`; its encoding is as secret as the key (store it encrypted).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct GroupReceiverPickle {
    pub(super) group_id: Bytes<GROUP_ID_LEN>,
    pub(super) epoch: u64,
    pub(super) chain_id: u32,
    pub(super) sender_identity: Bytes<IDENTITY_PUBLIC_LEN>,
    pub(super) signing_public: Bytes<32>,
    pub(super) chain_key: Bytes<32>,
    pub(super) iteration: u32,
    /// Skipped message-key seeds, by ascending iteration.
    pub(super) skipped: Vec<SkippedPickle>,
}

#[derive(Clone, Serialize, Deserialize, Zeroize)]
pub(super) struct SkippedPickle {
    pub(super) iteration: u32,
    pub(super) seed: Bytes<32>,
}

macro_rules! pickle_codec {
    ($ty:ident) => {
        impl $ty {
            /// `PICKLE_VERSION || postcard(pickle)`, in a buffer wiped on drop.
            pub fn encode(&self) -> Zeroizing<Vec<u8>> {
                pickle::encode(self)
            }

            /// Reads the bytes of `encode`; an unknown leading version is
            /// [`PickleError::UnknownVersion`].
            pub fn decode(bytes: &[u8]) -> Result<Self, PickleError> {
                pickle::decode(bytes)
            }

            /// The format version `encode` writes.
            pub const VERSION: u8 = PICKLE_VERSION;
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("epoch", &self.epoch)
                    .field("chain_id", &self.chain_id)
                    .field("iteration", &self.iteration)
                    .finish_non_exhaustive()
            }
        }
    };
}

pickle_codec!(GroupSenderPickle);
pickle_codec!(GroupReceiverPickle);

impl GroupSender {
    /// The stored form (a copy of every secret: keep it as secret as the
    /// sender key).
    pub fn pickle(&self) -> GroupSenderPickle {
        GroupSenderPickle {
            group_id: Bytes(self.group_id.0),
            epoch: self.epoch,
            chain_id: self.chain_id,
            signing_seed: Bytes(self.signing.to_bytes()),
            chain_key: Bytes(self.chain.key),
            iteration: self.chain.iteration,
        }
    }

    /// Rebuilds a sender key from its stored form.
    pub fn from_pickle(pickle: &GroupSenderPickle) -> Result<GroupSender, PickleError> {
        Ok(GroupSender {
            group_id: GroupId(pickle.group_id.0),
            epoch: pickle.epoch,
            chain_id: pickle.chain_id,
            signing: SigningKey::from_bytes(&pickle.signing_seed.0),
            chain: ChainKey {
                key: pickle.chain_key.0,
                iteration: pickle.iteration,
            },
        })
    }
}

impl GroupReceiver {
    /// The stored form (a copy of every secret: keep it as secret as the
    /// receiver state).
    pub fn pickle(&self) -> GroupReceiverPickle {
        GroupReceiverPickle {
            group_id: Bytes(self.group_id.0),
            epoch: self.epoch,
            chain_id: self.chain_id,
            sender_identity: Bytes(self.sender.to_bytes()),
            signing_public: Bytes(*self.signing_public.as_bytes()),
            chain_key: Bytes(self.chain.key),
            iteration: self.chain.iteration,
            skipped: self
                .skipped
                .iter()
                .map(|(iteration, seed)| SkippedPickle {
                    iteration: *iteration,
                    seed: Bytes(seed.0),
                })
                .collect(),
        }
    }

    /// Rebuilds a receiver from its stored form, refusing one the live
    /// type never reaches (`PickleError::Invalid`).
    pub fn from_pickle(pickle: &GroupReceiverPickle) -> Result<GroupReceiver, PickleError> {
        if pickle.skipped.len() > MAX_GROUP_SKIPPED_KEYS {
            return Err(PickleError::Invalid("more skipped group keys than allowed"));
        }
        let mut skipped = BTreeMap::new();
        let mut previous = None;
        for entry in &pickle.skipped {
            if previous.is_some_and(|p| p >= entry.iteration) || entry.iteration >= pickle.iteration
            {
                return Err(PickleError::Invalid("skipped group keys out of order"));
            }
            previous = Some(entry.iteration);
            skipped.insert(entry.iteration, MessageKeySeed(entry.seed.0));
        }
        let sender = IdentityPublic::from_bytes(&pickle.sender_identity.0)
            .map_err(|_| PickleError::Invalid("identity key"))?;
        let signing_public = VerifyingKey::from_bytes(&pickle.signing_public.0)
            .map_err(|_| PickleError::Invalid("group signing key"))?;
        Ok(GroupReceiver {
            group_id: GroupId(pickle.group_id.0),
            epoch: pickle.epoch,
            chain_id: pickle.chain_id,
            sender,
            signing_public,
            chain: ChainKey {
                key: pickle.chain_key.0,
                iteration: pickle.iteration,
            },
            skipped,
        })
    }
}
