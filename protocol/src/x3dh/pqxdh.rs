//! The hybrid key agreement (PQXDH's construction, docs/PROTOCOL.md 3.10):
//! X3DH plus one ML-KEM-768 encapsulation to the responder's signed KEM
//! prekey.
//!
//! The KEM shared secret is appended to the DH outputs in the one HKDF
//! (never replacing them), so the root key stays as strong as X3DH against
//! a classical attacker and becomes unreadable to one who can later break
//! X25519 but not ML-KEM. The KEM prekey's reference, key and ciphertext
//! enter the HKDF info, and SHA-256 of key and ciphertext the associated
//! data, so a substituted key or ciphertext yields an unrelated session.
//! The labels are PQXDH's own, so no hybrid transcript can be read as a
//! classical one.
//!
//! Must never: use a KEM prekey that did not verify (only
//! [`VerifiedPreKeyBundle::kem_prekey`] supplies one), fall back to the
//! classical agreement when the bundle or header lacks the KEM part, or
//! keep the KEM secret after the HKDF.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    initiator_dhs, InitialHeader, ResponderInputs, SessionSecret, Transcript, X3dhError,
    ADDRESS_LEN,
};
use crate::identity::{IdentityKeyPair, IDENTITY_PUBLIC_LEN};
use crate::kem::{
    self, KemCiphertext, KemKeyPair, KemPublicKey, KemSharedSecret, KEM_CIPHERTEXT_LEN,
    KEM_PUBLIC_KEY_LEN,
};
use crate::kem_prekeys::KemPreKeyKind;
use crate::keys::SecretKey;
use crate::labels;
use crate::prekeys::{KemPreKeyRef, VerifiedPreKeyBundle};
use crate::wire::Address;

/// Length of a hybrid session's associated data: label, both (identity,
/// address) pairs and the 32-byte SHA-256 of `KEM_PK || KEM_CT`.
pub const PQXDH_ASSOCIATED_DATA_LEN: usize =
    labels::PQXDH_ASSOCIATED_DATA.len() + 2 * (IDENTITY_PUBLIC_LEN + ADDRESS_LEN) + 32;

/// Bytes the KEM part adds to the HKDF info: kind, u32be id, key, ciphertext.
pub(super) const KEM_INFO_LEN: usize = 1 + 4 + KEM_PUBLIC_KEY_LEN + KEM_CIPHERTEXT_LEN;

/// The KEM part of a hybrid [`InitialHeader`]: which of the responder's KEM
/// prekeys the initiator encapsulated to, and the ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "KemHeaderSerde", into = "KemHeaderSerde")]
pub struct KemHeader {
    /// The KEM prekey (kind and id) the responder decapsulates with.
    pub prekey: KemPreKeyRef,
    /// The ML-KEM-768 ciphertext (1088 bytes).
    pub ciphertext: KemCiphertext,
}

/// Serde form of [`KemHeader`] (local storage and vectors only): kind byte,
/// id, ciphertext as a byte string.
#[derive(Serialize, Deserialize)]
struct KemHeaderSerde {
    kind: u8,
    id: u32,
    #[serde(with = "serde_bytes")]
    ciphertext: Vec<u8>,
}

impl From<KemHeader> for KemHeaderSerde {
    fn from(h: KemHeader) -> Self {
        KemHeaderSerde {
            kind: h.prekey.kind.byte(),
            id: h.prekey.id,
            ciphertext: h.ciphertext.as_bytes().to_vec(),
        }
    }
}

impl TryFrom<KemHeaderSerde> for KemHeader {
    type Error = String;

    fn try_from(h: KemHeaderSerde) -> Result<Self, String> {
        let kind = KemPreKeyKind::from_byte(h.kind)
            .ok_or_else(|| format!("unknown KEM prekey kind {:#04x}", h.kind))?;
        Ok(KemHeader {
            prekey: KemPreKeyRef { kind, id: h.id },
            ciphertext: KemCiphertext::from_bytes(&h.ciphertext).map_err(|e| e.to_string())?,
        })
    }
}

/// The KEM inputs of a hybrid transcript: the public ones (which enter the
/// HKDF info and the AD) and the shared secret (which enters the IKM),
/// together, so a transcript cannot be hybrid in its info and AD but
/// classical in its IKM, or the reverse.
pub(super) struct KemTranscript<'a> {
    pub(super) prekey: KemPreKeyRef,
    pub(super) public: &'a KemPublicKey,
    pub(super) ciphertext: &'a KemCiphertext,
    pub(super) secret: &'a KemSharedSecret,
}

impl KemTranscript<'_> {
    /// `kind (1) || u32be(id) || KEM_PK (1184) || KEM_CT (1088)`, the tail
    /// of the HKDF info.
    pub(super) fn write_info(&self, out: &mut Vec<u8>) {
        out.push(self.prekey.kind.byte());
        out.extend_from_slice(&self.prekey.id.to_be_bytes());
        out.extend_from_slice(self.public.as_bytes());
        out.extend_from_slice(self.ciphertext.as_bytes());
    }

    /// `SHA-256(KEM_PK || KEM_CT)`, the tail of the associated data: binds
    /// every ratchet message to the exact encapsulation without carrying
    /// 2272 bytes in each AEAD input.
    pub(super) fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.public.as_bytes());
        h.update(self.ciphertext.as_bytes());
        h.finalize().into()
    }
}

/// Runs PQXDH as the initiator against a verified bundle: X3DH's four (or
/// three) DHs, then an encapsulation to the bundle's KEM prekey (the
/// one-time one if served, else the last-resort one). Draws the 32-byte
/// ephemeral key, then ML-KEM's 32-byte message `m`, from `rng` (and
/// nothing else). A bundle without a KEM prekey (only one from
/// `verify_classical`, `low-level-api` only, can be) fails
/// [`X3dhError::NoKemPreKey`]: never a silent classical session.
pub fn initiate_hybrid<R: RngCore + CryptoRng>(
    ours: &IdentityKeyPair,
    our_address: &Address,
    bundle: &VerifiedPreKeyBundle,
    their_address: &Address,
    rng: &mut R,
) -> Result<(SessionSecret, InitialHeader), X3dhError> {
    let verified_kem = bundle.kem_prekey().ok_or(X3dhError::NoKemPreKey)?;
    let (kem_prekey, kem_public) = (KemPreKeyRef::of(verified_kem), verified_kem.key());
    let ephemeral = SecretKey::generate(rng);
    let dhs = initiator_dhs(ours, bundle, &ephemeral)?;
    // Wiped on drop, right after the HKDF below.
    let (ciphertext, kem_secret) = kem::encapsulate(kem_public, rng);
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
        kem: Some(KemTranscript {
            prekey: kem_prekey,
            public: kem_public,
            ciphertext: &ciphertext,
            secret: &kem_secret,
        }),
    };
    let secret = transcript.derive(&dhs);
    let header = InitialHeader {
        initiator_identity: our_public.clone(),
        ephemeral: ephemeral_public,
        signed_prekey_id: bundle.signed_prekey().id,
        extra_prekey: extra.map(|(r, _)| r),
        kem: Some(KemHeader {
            prekey: kem_prekey,
            ciphertext,
        }),
    };
    Ok((secret, header))
}

/// Runs PQXDH as the responder: X3DH's responder computation (the
/// signed and extra prekeys the header names), plus `kem_prekey`: the
/// private KEM prekey the header's `kem.prekey` names (the caller looks it
/// up, and deletes a one-time one once the first message decrypted).
/// A header without a KEM part fails [`X3dhError::UnexpectedKemPreKey`].
/// Checks, in order: the initiator identity, the extra prekey match, the
/// KEM part's presence, DH1..DH4; then decapsulates (which never fails: a
/// tampered ciphertext gives an unrelated secret, so the first message
/// fails to decrypt).
pub fn respond_hybrid(
    ours: &IdentityKeyPair,
    our_address: &Address,
    their_address: &Address,
    signed_prekey: &SecretKey,
    extra_prekey: Option<&SecretKey>,
    kem_prekey: &KemKeyPair,
    header: &InitialHeader,
) -> Result<SessionSecret, X3dhError> {
    let prepared = ResponderInputs::check(header, extra_prekey)?;
    let kem = header.kem.as_ref().ok_or(X3dhError::UnexpectedKemPreKey)?;
    let dhs = prepared.dhs(ours, signed_prekey, header)?;
    let kem_secret = kem_prekey.decapsulate(&kem.ciphertext);
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
        kem: Some(KemTranscript {
            prekey: kem.prekey,
            public: kem_prekey.public(),
            ciphertext: &kem.ciphertext,
            secret: &kem_secret,
        }),
    };
    Ok(transcript.derive(&dhs))
}
