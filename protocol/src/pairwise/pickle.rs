//! The stored form of a [`PairwiseSession`]: [`SessionPickle`], layout in
//! docs/PROTOCOL.md §4.9 (format version [`PICKLE_VERSION`]).
//!
//! A child of `pairwise` so it reads the session's private fields without
//! the session exposing them.
//!
//! Must never: load an identity or key that does not parse as one, or show
//! key bytes in `Debug`.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::PairwiseSession;
use crate::identity::{IdentityPublic, IDENTITY_PUBLIC_LEN};
use crate::keys::PublicKey;
use crate::pickle::{self, Bytes, PickleError, PICKLE_VERSION};
use crate::prekeys::PreKeyRef;
use crate::ratchet::{RatchetPickle, Session};
use crate::wire::{AccountId, Address, DeviceId};
use crate::x3dh::InitialHeader;

/// A pairwise session's stored form: its ratchet's pickle plus the peer's
/// identity, both addresses and the pending X3DH header. Zeroized on drop,
/// never shown in `Debug`.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SessionPickle {
    ratchet: RatchetPickle,
    remote_identity: Bytes<IDENTITY_PUBLIC_LEN>,
    #[zeroize(skip)]
    local_address: AddressPickle,
    #[zeroize(skip)]
    remote_address: AddressPickle,
    pending_prekey: Option<InitialHeaderPickle>,
    base_key: Option<Bytes<32>>,
}

/// Public: an account id and a device number.
#[derive(Clone, Serialize, Deserialize)]
struct AddressPickle {
    account: Bytes<16>,
    device: u32,
}

#[derive(Clone, Serialize, Deserialize, Zeroize)]
struct InitialHeaderPickle {
    initiator_identity: Bytes<IDENTITY_PUBLIC_LEN>,
    ephemeral: Bytes<32>,
    signed_prekey_id: u32,
    #[zeroize(skip)]
    extra_prekey: Option<ExtraPreKeyPickle>,
}

/// Postcard enum: variant 0 one-time, 1 last-resort, then the id.
#[derive(Clone, Copy, Serialize, Deserialize)]
enum ExtraPreKeyPickle {
    OneTime(u32),
    LastResort(u32),
}

impl AddressPickle {
    fn of(address: &Address) -> Self {
        AddressPickle {
            account: Bytes(*address.account.as_bytes()),
            device: address.device.0,
        }
    }

    fn load(&self) -> Address {
        Address {
            account: AccountId::from_bytes(self.account.0),
            device: DeviceId(self.device),
        }
    }
}

fn identity(bytes: &Bytes<IDENTITY_PUBLIC_LEN>) -> Result<IdentityPublic, PickleError> {
    IdentityPublic::from_bytes(&bytes.0).map_err(|_| PickleError::Invalid("identity key"))
}

impl InitialHeaderPickle {
    fn of(header: &InitialHeader) -> Self {
        InitialHeaderPickle {
            initiator_identity: Bytes(header.initiator_identity.to_bytes()),
            ephemeral: Bytes(header.ephemeral.to_bytes()),
            signed_prekey_id: header.signed_prekey_id,
            extra_prekey: header.extra_prekey.map(|r| match r {
                PreKeyRef::OneTime(id) => ExtraPreKeyPickle::OneTime(id),
                PreKeyRef::LastResort(id) => ExtraPreKeyPickle::LastResort(id),
            }),
        }
    }

    fn load(&self) -> Result<InitialHeader, PickleError> {
        Ok(InitialHeader {
            initiator_identity: identity(&self.initiator_identity)?,
            ephemeral: PublicKey::from_bytes(self.ephemeral.0),
            signed_prekey_id: self.signed_prekey_id,
            extra_prekey: self.extra_prekey.map(|r| match r {
                ExtraPreKeyPickle::OneTime(id) => PreKeyRef::OneTime(id),
                ExtraPreKeyPickle::LastResort(id) => PreKeyRef::LastResort(id),
            }),
        })
    }
}

impl SessionPickle {
    /// `PICKLE_VERSION || postcard(pickle)`, in a buffer wiped on drop.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        pickle::encode(self)
    }

    /// Reads [`SessionPickle::encode`]'s bytes; an unknown leading version
    /// is [`PickleError::UnknownVersion`].
    pub fn decode(bytes: &[u8]) -> Result<Self, PickleError> {
        pickle::decode(bytes)
    }

    /// The format version [`SessionPickle::encode`] writes.
    pub const VERSION: u8 = PICKLE_VERSION;
}

impl std::fmt::Debug for SessionPickle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPickle")
            .field("ratchet", &self.ratchet)
            .finish_non_exhaustive()
    }
}

impl PairwiseSession {
    /// The session's stored form (a copy of every secret in it: keep it as
    /// secret as the session).
    pub fn pickle(&self) -> SessionPickle {
        SessionPickle {
            ratchet: self.ratchet.pickle(),
            remote_identity: Bytes(self.remote.to_bytes()),
            local_address: AddressPickle::of(&self.local_address),
            remote_address: AddressPickle::of(&self.remote_address),
            pending_prekey: self.pending_prekey.as_ref().map(InitialHeaderPickle::of),
            base_key: self.base_key.map(|k| Bytes(k.to_bytes())),
        }
    }

    /// Rebuilds a session from its stored form.
    pub fn from_pickle(pickle: &SessionPickle) -> Result<PairwiseSession, PickleError> {
        Ok(PairwiseSession {
            ratchet: Session::from_pickle(&pickle.ratchet)?,
            remote: identity(&pickle.remote_identity)?,
            local_address: pickle.local_address.load(),
            remote_address: pickle.remote_address.load(),
            pending_prekey: pickle
                .pending_prekey
                .as_ref()
                .map(InitialHeaderPickle::load)
                .transpose()?,
            base_key: pickle.base_key.as_ref().map(|k| PublicKey::from_bytes(k.0)),
        })
    }
}
