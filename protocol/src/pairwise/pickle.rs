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
use crate::kem::{KemCiphertext, KEM_CIPHERTEXT_LEN};
use crate::kem_prekeys::KemPreKeyKind;
use crate::keys::PublicKey;
use crate::pickle::{self, Bytes, PickleError, PICKLE_VERSION};
use crate::prekeys::{KemPreKeyRef, PreKeyRef};
use crate::ratchet::{RatchetPickle, Session};
use crate::wire::{AccountId, Address, DeviceId};
use crate::x3dh::{InitialHeader, KemHeader};

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
    pending_prekey: PendingPickle,
    base_key: Option<Bytes<32>>,
}

/// The pending pre-key header. A postcard enum whose variants 0 and 1
/// encode exactly like the `Option<InitialHeaderPickle>` that stood here
/// before hybrid sessions (`00` none, `01 || header`), so every existing
/// pickle still loads; variant 2 adds the KEM part of a hybrid header.
#[derive(Clone, Serialize, Deserialize)]
enum PendingPickle {
    None,
    Classical(InitialHeaderPickle),
    /// Boxed: the ciphertext makes it seven times the classical variant.
    Hybrid(InitialHeaderPickle, Box<KemHeaderPickle>),
}

impl Zeroize for PendingPickle {
    fn zeroize(&mut self) {
        match self {
            PendingPickle::None => {}
            PendingPickle::Classical(h) | PendingPickle::Hybrid(h, _) => h.zeroize(),
        }
    }
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

/// A hybrid header's KEM part: `kind (u8: 0x01 one-time, 0x02
/// last-resort), id (varint u32), ciphertext [1088]`. Public: the
/// ciphertext travels in every pre-key message.
#[derive(Clone, Serialize, Deserialize)]
struct KemHeaderPickle {
    kind: u8,
    id: u32,
    ciphertext: Bytes<KEM_CIPHERTEXT_LEN>,
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

impl PendingPickle {
    fn of(header: Option<&InitialHeader>) -> Self {
        match header {
            None => PendingPickle::None,
            Some(h) => match &h.kem {
                None => PendingPickle::Classical(InitialHeaderPickle::of(h)),
                Some(k) => PendingPickle::Hybrid(
                    InitialHeaderPickle::of(h),
                    Box::new(KemHeaderPickle {
                        kind: k.prekey.kind.byte(),
                        id: k.prekey.id,
                        ciphertext: Bytes(*k.ciphertext.as_bytes()),
                    }),
                ),
            },
        }
    }

    fn load(&self) -> Result<Option<InitialHeader>, PickleError> {
        Ok(match self {
            PendingPickle::None => None,
            PendingPickle::Classical(h) => Some(h.load(None)?),
            PendingPickle::Hybrid(h, k) => Some(h.load(Some(k.load()?))?),
        })
    }
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

    fn load(&self, kem: Option<KemHeader>) -> Result<InitialHeader, PickleError> {
        Ok(InitialHeader {
            initiator_identity: identity(&self.initiator_identity)?,
            ephemeral: PublicKey::from_bytes(self.ephemeral.0),
            signed_prekey_id: self.signed_prekey_id,
            extra_prekey: self.extra_prekey.map(|r| match r {
                ExtraPreKeyPickle::OneTime(id) => PreKeyRef::OneTime(id),
                ExtraPreKeyPickle::LastResort(id) => PreKeyRef::LastResort(id),
            }),
            kem,
        })
    }
}

impl KemHeaderPickle {
    fn load(&self) -> Result<KemHeader, PickleError> {
        let kind =
            KemPreKeyKind::from_byte(self.kind).ok_or(PickleError::Invalid("KEM prekey kind"))?;
        Ok(KemHeader {
            prekey: KemPreKeyRef { kind, id: self.id },
            ciphertext: KemCiphertext::from_bytes(&self.ciphertext.0)
                .map_err(|_| PickleError::Invalid("KEM ciphertext"))?,
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
            pending_prekey: PendingPickle::of(self.pending_prekey.as_ref()),
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
            pending_prekey: pickle.pending_prekey.load()?,
            base_key: pickle.base_key.as_ref().map(|k| PublicKey::from_bytes(k.0)),
        })
    }
}
