//! X3DH-style asynchronous key agreement (Signal's X3DH with two bound
//! identity keys instead of XEdDSA).
//!
//! The initiator combines its identity and a fresh ephemeral key with the
//! responder's identity, signed prekey and (when served) one extra prekey,
//! and derives a 32-byte root key plus associated data naming both full
//! public identities and both relay addresses (account id and device id).
//! The responder repeats the computation from the [`InitialHeader`].
//!
//! The hybrid form (PQXDH, docs/PROTOCOL.md 3.10; [`initiate_hybrid`],
//! [`respond_hybrid`], in `x3dh/pqxdh.rs`) adds an ML-KEM-768
//! encapsulation to the responder's signed KEM prekey: its shared secret is
//! one more HKDF input after the DHs (never a replacement for them), and
//! the ciphertext travels in the header and is bound into the associated
//! data. The classical form (`initiate`, `respond`) exists only with
//! the `low-level-api` feature, for the classical test vectors and the
//! classical baseline benchmark: no client may run it (a session a quantum
//! attacker who recorded it could read later).
//!
//! The addresses are in the KDF because an identity is not an account: a
//! relay user can publish a copy of someone else's public keys under their
//! own account. Binding the addresses means a message meant for the copying
//! account never decrypts at the genuine owner (no unknown-key-share).
//!
//! Must never: run on an unverified bundle (the type system forbids it),
//! skip the low-order check of any DH (every DH goes through
//! [`SecretKey::diffie_hellman`]), let a header that names a KEM prekey be
//! answered without it (or the reverse), or let the root key, a DH output
//! or the KEM secret outlive its owner unzeroized.

#[cfg(feature = "low-level-api")] // Only the classical initiator draws here.
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::identity::{IdentityError, IdentityKeyPair, IdentityPublic, IDENTITY_PUBLIC_LEN};
use crate::keys::{KeyError, PublicKey, SecretKey};
use crate::labels;
use crate::prekeys::{KemPreKeyRef, PreKeyRef, VerifiedPreKeyBundle};
use crate::wire::{Address, ACCOUNT_ID_LEN};

mod pqxdh;
pub use pqxdh::{initiate_hybrid, respond_hybrid, KemHeader, PQXDH_ASSOCIATED_DATA_LEN};

/// Encoded length of an [`Address`] in the KDF and AD: account id, u32be device.
pub const ADDRESS_LEN: usize = ACCOUNT_ID_LEN + 4;

/// Length of [`SessionSecret::associated_data`]: label and two
/// (identity, address) pairs.
pub const ASSOCIATED_DATA_LEN: usize =
    labels::X3DH_ASSOCIATED_DATA.len() + 2 * (IDENTITY_PUBLIC_LEN + ADDRESS_LEN);

/// `account id (16) || u32be(device id)`, the fixed encoding of an address
/// inside every umbra KDF input and associated data.
pub fn encode_address(address: &Address) -> [u8; ADDRESS_LEN] {
    let mut out = [0u8; ADDRESS_LEN];
    out[..ACCOUNT_ID_LEN].copy_from_slice(address.account.as_bytes());
    out[ACCOUNT_ID_LEN..].copy_from_slice(&address.device.0.to_be_bytes());
    out
}

/// Why a key agreement failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum X3dhError {
    /// A DH produced a non-contributory result: some peer key (named) is a
    /// low-order point.
    #[error("DH{which} is not contributory: {source}")]
    LowOrderPoint {
        /// Which DH failed, 1 to 4 as in the specification.
        which: u8,
        /// The underlying key error.
        source: KeyError,
    },
    /// The initiator's identity in the header does not verify.
    #[error("initiator identity is invalid: {0}")]
    InitiatorIdentity(#[from] IdentityError),
    /// The header names an extra prekey but the responder passed none.
    #[error("header names extra prekey {0:?} but no private prekey was supplied")]
    MissingExtraPreKey(PreKeyRef),
    /// The responder passed an extra prekey the header does not name.
    #[error("an extra prekey was supplied but the header names none")]
    UnexpectedExtraPreKey,
    /// The header names a KEM prekey (a hybrid header) but the responder
    /// passed none (answered it with the classical `respond`,
    /// `low-level-api` only).
    #[error("header names ML-KEM prekey {0:?} but no private KEM prekey was supplied")]
    MissingKemPreKey(KemPreKeyRef),
    /// The responder passed a KEM prekey for a header that names none (a
    /// classical header given to [`respond_hybrid`]).
    #[error("an ML-KEM prekey was supplied but the header names none")]
    UnexpectedKemPreKey,
    /// [`initiate_hybrid`] was given a bundle without a KEM prekey (one
    /// from `PreKeyBundle::verify_classical`, `low-level-api` only).
    #[error("the bundle has no ML-KEM prekey; a hybrid session cannot be started")]
    NoKemPreKey,
}

/// What both sides hold after X3DH: the root key for the Double Ratchet
/// and the associated data every ratchet message authenticates.
/// Zeroized on drop; `Debug` shows nothing secret.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SessionSecret {
    root_key: [u8; 32],
    associated_data: Vec<u8>,
}

impl SessionSecret {
    /// The 32-byte shared root key.
    pub fn root_key(&self) -> &[u8; 32] {
        &self.root_key
    }

    /// `X3DH_ASSOCIATED_DATA || IK_A (128) || addr_A (20) || IK_B (128) ||
    /// addr_B (20)`; for a hybrid session `PQXDH_ASSOCIATED_DATA || the
    /// same || SHA-256(KEM_PK || KEM_CT)`.
    pub fn associated_data(&self) -> &[u8] {
        &self.associated_data
    }
}

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSecret")
            .field("root_key", &"<redacted>")
            .field("associated_data_len", &self.associated_data.len())
            .finish()
    }
}

/// What the initiator sends (inside its first message) so that the
/// responder can repeat the agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitialHeader {
    /// The initiator's full public identity.
    pub initiator_identity: IdentityPublic,
    /// The initiator's ephemeral X25519 key.
    pub ephemeral: PublicKey,
    /// Which of the responder's signed prekeys was used.
    pub signed_prekey_id: u32,
    /// Which extra prekey was used, if any.
    pub extra_prekey: Option<PreKeyRef>,
    /// For a hybrid (PQXDH) header: which KEM prekey was encapsulated to,
    /// and the ciphertext. `None` for a classical header.
    pub kem: Option<KemHeader>,
}

fn dh(which: u8, secret: &SecretKey, public: &PublicKey) -> Result<Zeroizing<[u8; 32]>, X3dhError> {
    secret
        .diffie_hellman(public)
        .map(|s| Zeroizing::new(*s.as_bytes()))
        .map_err(|source| X3dhError::LowOrderPoint { which, source })
}

/// The public transcript both sides agree on, in the order used by the KDF.
struct Transcript<'a> {
    initiator: &'a IdentityPublic,
    initiator_address: &'a Address,
    responder: &'a IdentityPublic,
    responder_address: &'a Address,
    ephemeral: &'a PublicKey,
    signed_prekey: &'a PublicKey,
    extra_prekey: Option<&'a PublicKey>,
    /// The KEM part of a hybrid run, its shared secret included; `None`
    /// for classical X3DH.
    kem: Option<pqxdh::KemTranscript<'a>>,
}

impl Transcript<'_> {
    fn associated_data(&self) -> Vec<u8> {
        match &self.kem {
            None => {
                let mut ad = Vec::with_capacity(ASSOCIATED_DATA_LEN);
                ad.extend_from_slice(labels::X3DH_ASSOCIATED_DATA);
                self.write_parties(&mut ad);
                ad
            }
            Some(kem) => {
                let mut ad = Vec::with_capacity(PQXDH_ASSOCIATED_DATA_LEN);
                ad.extend_from_slice(labels::PQXDH_ASSOCIATED_DATA);
                self.write_parties(&mut ad);
                ad.extend_from_slice(&kem.digest());
                ad
            }
        }
    }

    /// `IK_A (128) || addr_A (20) || IK_B (128) || addr_B (20)`.
    fn write_parties(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.initiator.to_bytes());
        out.extend_from_slice(&encode_address(self.initiator_address));
        out.extend_from_slice(&self.responder.to_bytes());
        out.extend_from_slice(&encode_address(self.responder_address));
    }

    /// HKDF info: `label || IK_A || addr_A || IK_B || addr_B || EK_A || SPK_B
    /// [|| OPK_B]`, then for a hybrid run `|| kem kind (1) || u32be(kem id)
    /// || KEM_PK (1184) || KEM_CT (1088)` (the label is then PQXDH's).
    fn kdf_info(&self) -> Vec<u8> {
        let label = match self.kem {
            None => labels::X3DH_ROOT_KEY,
            Some(_) => labels::PQXDH_ROOT_KEY,
        };
        let mut info = Vec::with_capacity(
            label.len() + 2 * (IDENTITY_PUBLIC_LEN + ADDRESS_LEN) + 3 * 32 + pqxdh::KEM_INFO_LEN,
        );
        info.extend_from_slice(label);
        self.write_parties(&mut info);
        info.extend_from_slice(self.ephemeral.as_bytes());
        info.extend_from_slice(self.signed_prekey.as_bytes());
        if let Some(extra) = self.extra_prekey {
            info.extend_from_slice(extra.as_bytes());
        }
        if let Some(kem) = &self.kem {
            kem.write_info(&mut info);
        }
        info
    }

    /// SK = HKDF(salt = 32 zero bytes, IKM = 32×0xFF || DH1 || DH2 || DH3
    /// [|| DH4] [|| SS_kem], info, 32). `SS_kem` is the hybrid transcript's
    /// own secret: the KEM public inputs and the secret travel in one
    /// `Option`, so neither can be given without the other.
    fn derive(&self, dhs: &[Zeroizing<[u8; 32]>]) -> SessionSecret {
        let mut ikm = Zeroizing::new(Vec::with_capacity(32 * (2 + dhs.len())));
        ikm.extend_from_slice(&[0xFF; 32]);
        for d in dhs {
            ikm.extend_from_slice(d.as_ref());
        }
        // The KEM secret is one more input after every DH: the root key is
        // as strong as the stronger of the two (PQXDH's construction).
        if let Some(kem) = &self.kem {
            ikm.extend_from_slice(kem.secret.as_bytes());
        }
        // Salt of 32 zero bytes: RFC 5869's absent salt, keyed once per process.
        let hk = crate::kdf::hkdf_zero_salt(&ikm);
        let mut root_key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so this cannot fail.
        if hk.expand(&self.kdf_info(), &mut root_key).is_err() {
            unreachable!("HKDF-SHA256 output of 32 bytes is always valid");
        }
        SessionSecret {
            root_key,
            associated_data: self.associated_data(),
        }
    }
}

/// Runs X3DH as the initiator against a verified bundle. `our_address` is
/// this device's relay address and `their_address` the one the bundle was
/// fetched for (the directory's answer, not anything the bundle claims).
/// Draws the 32-byte ephemeral key from `rng` (and nothing else).
///
/// Classical: ignores the bundle's KEM prekey. Only with the
/// `low-level-api` feature, for the classical vectors
/// (docs/test-vectors/) and the classical baseline benchmark; every
/// session a client starts is [`initiate_hybrid`]'s.
#[cfg(feature = "low-level-api")]
pub fn initiate<R: RngCore + CryptoRng>(
    ours: &IdentityKeyPair,
    our_address: &Address,
    bundle: &VerifiedPreKeyBundle,
    their_address: &Address,
    rng: &mut R,
) -> Result<(SessionSecret, InitialHeader), X3dhError> {
    let ephemeral = SecretKey::generate(rng);
    let dhs = initiator_dhs(ours, bundle, &ephemeral)?;
    let our_public = ours.public();
    let ephemeral_public = ephemeral.public_key();
    let extra = bundle.extra_prekey();
    let transcript = Transcript {
        initiator: &our_public,
        initiator_address: our_address,
        responder: bundle.identity(),
        responder_address: their_address,
        ephemeral: &ephemeral_public,
        signed_prekey: &bundle.signed_prekey().key,
        extra_prekey: extra.as_ref().map(|(_, k)| k),
        kem: None,
    };
    let secret = transcript.derive(&dhs);
    let header = InitialHeader {
        initiator_identity: our_public.clone(),
        ephemeral: ephemeral_public,
        signed_prekey_id: bundle.signed_prekey().id,
        extra_prekey: extra.map(|(r, _)| r),
        kem: None,
    };
    Ok((secret, header))
}

/// The initiator's DH1..DH3 [DH4], in that order, stopping at the first
/// that is not contributory. Each output wipes itself on drop.
fn initiator_dhs(
    ours: &IdentityKeyPair,
    bundle: &VerifiedPreKeyBundle,
    ephemeral: &SecretKey,
) -> Result<Vec<Zeroizing<[u8; 32]>>, X3dhError> {
    let spk = &bundle.signed_prekey().key;
    let mut dhs = Vec::with_capacity(4);
    dhs.push(dh(1, ours.dh_secret(), spk)?);
    dhs.push(dh(2, ephemeral, bundle.identity().dh_key())?);
    dhs.push(dh(3, ephemeral, spk)?);
    if let Some((_, key)) = bundle.extra_prekey() {
        dhs.push(dh(4, ephemeral, &key)?);
    }
    Ok(dhs)
}

/// Runs X3DH as the responder. The caller looks up the private signed
/// prekey named by `header.signed_prekey_id` and the extra prekey named by
/// `header.extra_prekey` (and deletes a one-time prekey once the first
/// message decrypted). The initiator's identity binding is verified here.
/// `their_address` is the initiator's address as authenticated by the layer
/// that carried the header (sealed sender); `our_address` is this device's.
///
/// Classical only: a hybrid header (one naming a KEM prekey) fails
/// [`X3dhError::MissingKemPreKey`]; answer it with [`respond_hybrid`].
/// Only with the `low-level-api` feature (vectors and the classical
/// baseline benchmark), like `initiate`: a client never answers a
/// classical header.
#[cfg(feature = "low-level-api")]
pub fn respond(
    ours: &IdentityKeyPair,
    our_address: &Address,
    their_address: &Address,
    signed_prekey: &SecretKey,
    extra_prekey: Option<&SecretKey>,
    header: &InitialHeader,
) -> Result<SessionSecret, X3dhError> {
    let prepared = ResponderInputs::check(header, extra_prekey)?;
    if let Some(kem) = &header.kem {
        return Err(X3dhError::MissingKemPreKey(kem.prekey));
    }
    let dhs = prepared.dhs(ours, signed_prekey, header)?;
    let our_public = ours.public();
    let spk_public = signed_prekey.public_key();
    let transcript = Transcript {
        initiator: &header.initiator_identity,
        initiator_address: their_address,
        responder: &our_public,
        responder_address: our_address,
        ephemeral: &header.ephemeral,
        signed_prekey: &spk_public,
        extra_prekey: prepared.extra_public.as_ref(),
        kem: None,
    };
    Ok(transcript.derive(&dhs))
}

/// What the responder checks before any DH: the initiator's identity
/// binding and that the extra prekey supplied matches the header.
struct ResponderInputs<'a> {
    extra_prekey: Option<&'a SecretKey>,
    extra_public: Option<PublicKey>,
}

impl<'a> ResponderInputs<'a> {
    fn check(
        header: &InitialHeader,
        extra_prekey: Option<&'a SecretKey>,
    ) -> Result<Self, X3dhError> {
        header.initiator_identity.verify()?;
        let extra_public = match (header.extra_prekey, extra_prekey) {
            (Some(_), Some(key)) => Some(key.public_key()),
            (None, None) => None,
            (Some(r), None) => return Err(X3dhError::MissingExtraPreKey(r)),
            (None, Some(_)) => return Err(X3dhError::UnexpectedExtraPreKey),
        };
        Ok(Self {
            extra_prekey,
            extra_public,
        })
    }

    /// The responder's DH1..DH3 [DH4], in that order (3.7).
    fn dhs(
        &self,
        ours: &IdentityKeyPair,
        signed_prekey: &SecretKey,
        header: &InitialHeader,
    ) -> Result<Vec<Zeroizing<[u8; 32]>>, X3dhError> {
        let mut dhs = Vec::with_capacity(4);
        dhs.push(dh(1, signed_prekey, header.initiator_identity.dh_key())?);
        dhs.push(dh(2, ours.dh_secret(), &header.ephemeral)?);
        dhs.push(dh(3, signed_prekey, &header.ephemeral)?);
        if let Some(key) = self.extra_prekey {
            dhs.push(dh(4, key, &header.ephemeral)?);
        }
        Ok(dhs)
    }
}

#[cfg(test)]
mod tests;
