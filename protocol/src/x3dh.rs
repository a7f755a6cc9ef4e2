//! X3DH-style asynchronous key agreement (Signal's X3DH with two bound
//! identity keys instead of XEdDSA).
//!
//! The initiator combines its identity and a fresh ephemeral key with the
//! responder's identity, signed prekey and (when served) one extra prekey,
//! and derives a 32-byte root key plus associated data naming both full
//! public identities and both relay addresses (account id and device id).
//! The responder repeats the computation from the [`InitialHeader`].
//!
//! The addresses are in the KDF because an identity is not an account: a
//! relay user can publish a copy of someone else's public keys under their
//! own account. Binding the addresses means a message meant for the copying
//! account never decrypts at the genuine owner (no unknown-key-share).
//!
//! Must never: run on an unverified bundle (the type system forbids it),
//! skip the low-order check of any DH (every DH goes through
//! [`SecretKey::diffie_hellman`]), or let the root key outlive its owner
//! unzeroized.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::identity::{IdentityError, IdentityKeyPair, IdentityPublic, IDENTITY_PUBLIC_LEN};
use crate::keys::{KeyError, PublicKey, SecretKey};
use crate::labels;
use crate::prekeys::{PreKeyRef, VerifiedPreKeyBundle};
use crate::wire::{Address, ACCOUNT_ID_LEN};

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

    /// `label || IK_A (128) || addr_A (20) || IK_B (128) || addr_B (20)`.
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
}

impl Transcript<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let mut ad = Vec::with_capacity(ASSOCIATED_DATA_LEN);
        ad.extend_from_slice(labels::X3DH_ASSOCIATED_DATA);
        self.write_parties(&mut ad);
        ad
    }

    /// `IK_A (128) || addr_A (20) || IK_B (128) || addr_B (20)`.
    fn write_parties(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.initiator.to_bytes());
        out.extend_from_slice(&encode_address(self.initiator_address));
        out.extend_from_slice(&self.responder.to_bytes());
        out.extend_from_slice(&encode_address(self.responder_address));
    }

    /// HKDF info: `label || IK_A || addr_A || IK_B || addr_B || EK_A || SPK_B [|| OPK_B]`.
    fn kdf_info(&self) -> Vec<u8> {
        let mut info = Vec::with_capacity(
            labels::X3DH_ROOT_KEY.len() + 2 * (IDENTITY_PUBLIC_LEN + ADDRESS_LEN) + 3 * 32,
        );
        info.extend_from_slice(labels::X3DH_ROOT_KEY);
        self.write_parties(&mut info);
        info.extend_from_slice(self.ephemeral.as_bytes());
        info.extend_from_slice(self.signed_prekey.as_bytes());
        if let Some(extra) = self.extra_prekey {
            info.extend_from_slice(extra.as_bytes());
        }
        info
    }

    /// SK = HKDF(salt = 32 zero bytes, IKM = 32×0xFF || DH1 || DH2 || DH3 [|| DH4], info, 32).
    fn derive(&self, dhs: &[Zeroizing<[u8; 32]>]) -> SessionSecret {
        let mut ikm = Zeroizing::new(Vec::with_capacity(32 * (1 + dhs.len())));
        ikm.extend_from_slice(&[0xFF; 32]);
        for d in dhs {
            ikm.extend_from_slice(d.as_ref());
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
pub fn initiate<R: RngCore + CryptoRng>(
    ours: &IdentityKeyPair,
    our_address: &Address,
    bundle: &VerifiedPreKeyBundle,
    their_address: &Address,
    rng: &mut R,
) -> Result<(SessionSecret, InitialHeader), X3dhError> {
    let ephemeral = SecretKey::generate(rng);
    let ephemeral_public = ephemeral.public_key();
    let our_public = ours.public();
    let spk = &bundle.signed_prekey().key;
    let extra = bundle.extra_prekey();

    // Each DH output wipes itself on drop (Zeroizing elements).
    let mut dhs = Vec::with_capacity(4);
    dhs.push(dh(1, ours.dh_secret(), spk)?);
    dhs.push(dh(2, &ephemeral, bundle.identity().dh_key())?);
    dhs.push(dh(3, &ephemeral, spk)?);
    if let Some((_, key)) = &extra {
        dhs.push(dh(4, &ephemeral, key)?);
    }

    let transcript = Transcript {
        initiator: &our_public,
        initiator_address: our_address,
        responder: bundle.identity(),
        responder_address: their_address,
        ephemeral: &ephemeral_public,
        signed_prekey: spk,
        extra_prekey: extra.as_ref().map(|(_, k)| k),
    };
    let secret = transcript.derive(&dhs);
    let header = InitialHeader {
        initiator_identity: our_public.clone(),
        ephemeral: ephemeral_public,
        signed_prekey_id: bundle.signed_prekey().id,
        extra_prekey: extra.map(|(r, _)| r),
    };
    Ok((secret, header))
}

/// Runs X3DH as the responder. The caller looks up the private signed
/// prekey named by `header.signed_prekey_id` and the extra prekey named by
/// `header.extra_prekey` (and deletes a one-time prekey once the first
/// message decrypted). The initiator's identity binding is verified here.
/// `their_address` is the initiator's address as authenticated by the layer
/// that carried the header (sealed sender); `our_address` is this device's.
pub fn respond(
    ours: &IdentityKeyPair,
    our_address: &Address,
    their_address: &Address,
    signed_prekey: &SecretKey,
    extra_prekey: Option<&SecretKey>,
    header: &InitialHeader,
) -> Result<SessionSecret, X3dhError> {
    header.initiator_identity.verify()?;
    let extra_public = match (header.extra_prekey, extra_prekey) {
        (Some(_), Some(key)) => Some(key.public_key()),
        (None, None) => None,
        (Some(r), None) => return Err(X3dhError::MissingExtraPreKey(r)),
        (None, Some(_)) => return Err(X3dhError::UnexpectedExtraPreKey),
    };
    // Each DH output wipes itself on drop (Zeroizing elements).
    let mut dhs = Vec::with_capacity(4);
    dhs.push(dh(1, signed_prekey, header.initiator_identity.dh_key())?);
    dhs.push(dh(2, ours.dh_secret(), &header.ephemeral)?);
    dhs.push(dh(3, signed_prekey, &header.ephemeral)?);
    if let Some(key) = extra_prekey {
        dhs.push(dh(4, key, &header.ephemeral)?);
    }
    let our_public = ours.public();
    let spk_public = signed_prekey.public_key();
    let transcript = Transcript {
        initiator: &header.initiator_identity,
        initiator_address: their_address,
        responder: &our_public,
        responder_address: our_address,
        ephemeral: &header.ephemeral,
        signed_prekey: &spk_public,
        extra_prekey: extra_public.as_ref(),
    };
    Ok(transcript.derive(&dhs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prekeys::{OneTimePreKey, PreKeyBundle, SignedPreKey};
    use crate::wire::{AccountId, DeviceId};
    use rand::rngs::OsRng;

    fn addr(byte: u8) -> Address {
        Address {
            account: AccountId::from_bytes([byte; 16]),
            device: DeviceId::PRIMARY,
        }
    }

    struct Responder {
        id: IdentityKeyPair,
        spk: SignedPreKey,
        otk: OneTimePreKey,
    }

    fn responder() -> Responder {
        let id = IdentityKeyPair::generate(&mut OsRng);
        let spk = SignedPreKey::generate(&id, 1, 0, &mut OsRng);
        let otk = OneTimePreKey::generate(9, &mut OsRng);
        Responder { id, spk, otk }
    }

    fn bundle(r: &Responder, with_otk: bool) -> VerifiedPreKeyBundle {
        PreKeyBundle {
            identity: r.id.public(),
            signed_prekey: r.spk.public(),
            one_time_prekey: with_otk.then(|| r.otk.public()),
            last_resort: None,
        }
        .verify()
        .unwrap()
    }

    #[test]
    fn both_sides_agree_with_and_without_extra_prekey() {
        let alice = IdentityKeyPair::generate(&mut OsRng);
        let bob = responder();
        for with_otk in [true, false] {
            let (sa, header) = initiate(
                &alice,
                &addr(1),
                &bundle(&bob, with_otk),
                &addr(2),
                &mut OsRng,
            )
            .unwrap();
            let extra = with_otk.then(|| bob.otk.secret());
            let sb = respond(
                &bob.id,
                &addr(2),
                &addr(1),
                bob.spk.secret(),
                extra,
                &header,
            )
            .unwrap();
            assert_eq!(sa.root_key(), sb.root_key());
            assert_eq!(sa.associated_data(), sb.associated_data());
            assert_eq!(sa.associated_data().len(), ASSOCIATED_DATA_LEN);
        }
    }

    #[test]
    fn extra_prekey_mismatch_is_named() {
        let alice = IdentityKeyPair::generate(&mut OsRng);
        let bob = responder();
        let (_, header) =
            initiate(&alice, &addr(1), &bundle(&bob, true), &addr(2), &mut OsRng).unwrap();
        assert_eq!(
            respond(&bob.id, &addr(2), &addr(1), bob.spk.secret(), None, &header).unwrap_err(),
            X3dhError::MissingExtraPreKey(PreKeyRef::OneTime(9))
        );
        let (_, header) =
            initiate(&alice, &addr(1), &bundle(&bob, false), &addr(2), &mut OsRng).unwrap();
        assert_eq!(
            respond(
                &bob.id,
                &addr(2),
                &addr(1),
                bob.spk.secret(),
                Some(bob.otk.secret()),
                &header
            )
            .unwrap_err(),
            X3dhError::UnexpectedExtraPreKey
        );
    }

    #[test]
    fn another_address_for_the_same_keys_does_not_agree() {
        // The unknown-key-share: the initiator thinks the keys belong to
        // account 3, the genuine owner (account 2) answers as itself.
        let alice = IdentityKeyPair::generate(&mut OsRng);
        let bob = responder();
        let (sa, header) =
            initiate(&alice, &addr(1), &bundle(&bob, false), &addr(3), &mut OsRng).unwrap();
        let sb = respond(&bob.id, &addr(2), &addr(1), bob.spk.secret(), None, &header).unwrap();
        assert_ne!(sa.root_key(), sb.root_key());
        assert_ne!(sa.associated_data(), sb.associated_data());
    }

    #[test]
    fn session_secret_debug_is_redacted() {
        let alice = IdentityKeyPair::generate(&mut OsRng);
        let bob = responder();
        let (sa, _) =
            initiate(&alice, &addr(1), &bundle(&bob, true), &addr(2), &mut OsRng).unwrap();
        let shown = format!("{sa:?}");
        assert!(!shown.contains(&hex::encode(sa.root_key())));
        assert!(!shown.contains(&format!("{:?}", sa.root_key())));
    }
}
