//! The pairwise session layer: what a client uses to talk to one peer.
//!
//! Composes X3DH, the Double Ratchet, padding and sealed sender. Outbound:
//! `pad → ratchet encrypt → wrap (pre-key or plain) → seal to the peer`.
//! Inbound: `open the seal → decode → decrypt (existing session, or a new one
//! from a pre-key message and our prekey secrets) → check that the sealed
//! sender (identity and address) is the session's peer → unpad`.
//!
//! A session is bound to both devices' relay addresses as well as their
//! identities: X3DH mixes them into the root key and associated data, so a
//! copy of someone's keys published under another account yields sessions
//! that never decrypt at the genuine owner.
//!
//! Pairwise message encoding (the inner bytes of a sealed envelope):
//!
//! ```text
//! plain:     0x02 || ratchet message (ratchet/message.rs)
//! ephemeral: 0x03 || ephemeral message (ratchet/ephemeral.rs): typing
//!            notices and other content the relay does not store
//! group:     0x04 || group message (group/message.rs): no ratchet layer;
//!            decrypted by the sender's `GroupReceiver`, never by a session
//! pre-key: 0x01 || initiator identity (128) || ephemeral key (32)
//!               || signed prekey id (u32be) || extra tag (u8) [|| extra id (u32be)]
//!               || ratchet message
//!          extra tag: 0x00 none, 0x01 one-time (id follows), 0x02 last-resort (id follows)
//! hybrid pre-key (PQXDH, x3dh/pqxdh.rs):
//!          0x05 || the same fields up to the extra prekey
//!               || KEM prekey kind (u8: 0x01 one-time, 0x02 last-resort)
//!               || KEM prekey id (u32be) || KEM ciphertext (1088) || ratchet message
//! ```
//!
//! The codec is in `pairwise/message.rs`.
//!
//! A classical (`0x01`) pre-key message decodes, but [`PairwiseSession::accept`]
//! refuses it ([`PairwiseError::ClassicalPreKeyRefused`]): the classical
//! agreement (`initiate_classical`, `accept_classical`) exists only with the
//! `low-level-api` feature, for the classical vectors and baseline benchmark.
//!
//! Must never: start a session from a classical pre-key message outside
//! `accept_classical`, accept a message whose sealed sender (identity or address)
//! differs from the session's peer, return plaintext that failed authentication or padding checks,
//! change a session on a failed decryption, or print secrets in `Debug`.

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;

use crate::group::GroupMessage;
use crate::identity::{IdentityKeyPair, IdentityPublic};
use crate::kem_prekeys::KemPreKey;
use crate::keys::{PublicKey, SecretKey};
use crate::padding;
use crate::prekeys::{KemPreKeyRef, PreKeyRef, VerifiedPreKeyBundle};
use crate::ratchet::{RatchetMessage, Session};
use crate::sealed;
use crate::wire::Address;
use crate::x3dh::{self, InitialHeader};

mod error;
mod message;
mod pickle;
pub use error::PairwiseError;
pub use message::{PairwiseMessage, PreKeyMessage};
pub use pickle::SessionPickle;

/// Leading byte of a classical pre-key message (X3DH only). Still decoded,
/// so that [`PairwiseSession::accept`] can refuse it by name
/// ([`PairwiseError::ClassicalPreKeyRefused`]).
pub const PREKEY_MESSAGE_TYPE: u8 = 0x01;
/// Leading byte of a hybrid pre-key message (PQXDH: X3DH plus ML-KEM-768).
pub const HYBRID_PREKEY_MESSAGE_TYPE: u8 = 0x05;
/// Leading byte of a plain ratchet message.
pub const PLAIN_MESSAGE_TYPE: u8 = 0x02;
/// Leading byte of an ephemeral message (never stored by the relay).
pub const EPHEMERAL_MESSAGE_TYPE: u8 = 0x03;
/// Leading byte of a group message (sealed directly, no ratchet layer).
pub const GROUP_MESSAGE_TYPE: u8 = 0x04;

/// How old (or how far in the future, by the receiver's clock) an
/// ephemeral message may be. It bounds replays: an ephemeral message
/// changes no state, so a copy is accepted again within this window, and a
/// typing notice replayed within two minutes says nothing new.
pub const EPHEMERAL_MAX_AGE_MS: u64 = 120_000;

/// Where the responder finds the private prekeys a pre-key message names.
/// Lookups only: the caller deletes a used one-time prekey (X25519 or
/// ML-KEM) after [`PairwiseSession::accept`] succeeded.
pub trait PreKeyStore {
    /// The private signed prekey with this id, if still held.
    fn signed_prekey(&self, id: u32) -> Option<SecretKey>;
    /// The private one-time or last-resort prekey, if still held.
    fn extra_prekey(&self, prekey: PreKeyRef) -> Option<SecretKey>;
    /// The private ML-KEM prekey (one-time or last-resort, by kind and id)
    /// a hybrid pre-key message names, if still held. Required: every
    /// session a responder creates is hybrid, so a store without ML-KEM
    /// prekeys could create none.
    fn kem_prekey(&self, prekey: KemPreKeyRef) -> Option<KemPreKey>;
}

/// An opened, decoded sealed envelope whose sender is authenticated by the
/// sealed layer but whose ratchet message is not yet decrypted. The caller
/// uses [`InboundEnvelope::sender`] to find the session.
#[derive(Debug, Clone)]
pub struct InboundEnvelope {
    sender: IdentityPublic,
    sender_address: Address,
    message: PairwiseMessage,
}

impl InboundEnvelope {
    /// Opens a sealed envelope addressed to `ours` and decodes its contents.
    pub fn open(ours: &IdentityKeyPair, envelope: &[u8]) -> Result<Self, PairwiseError> {
        let opened = sealed::open(ours, envelope)?;
        Ok(InboundEnvelope {
            sender: opened.sender,
            sender_address: opened.sender_address,
            message: PairwiseMessage::from_bytes(&opened.inner)?,
        })
    }

    /// The identity that sealed the envelope (authenticated by the seal).
    pub fn sender(&self) -> &IdentityPublic {
        &self.sender
    }

    /// The relay address the sealed layer names for the sender. Bound to
    /// the session by X3DH; only trust it once a decryption succeeded.
    pub fn sender_address(&self) -> &Address {
        &self.sender_address
    }

    /// The decoded pairwise message.
    pub fn message(&self) -> &PairwiseMessage {
        &self.message
    }

    /// True for a pre-key message, classical or hybrid (one that can start
    /// a new session).
    pub fn is_prekey_message(&self) -> bool {
        matches!(self.message, PairwiseMessage::PreKey(_))
    }

    /// The group message it carries (inner type `0x04`), if any. Find the
    /// receiver state by its header's group id and
    /// [`InboundEnvelope::sender_address`], never by header fields alone,
    /// then call [`GroupReceiver::decrypt`](crate::group::GroupReceiver::decrypt)
    /// with this envelope (which checks the sealed identity too).
    pub fn group_message(&self) -> Option<&GroupMessage> {
        match &self.message {
            PairwiseMessage::Group(message) => Some(message),
            _ => None,
        }
    }
}

/// A Double Ratchet session with one peer, plus what the layer around it
/// needs: the peer's identity, and (for an initiator that has not heard back)
/// the X3DH header to repeat in every message. Stored as its
/// [`SessionPickle`].
#[derive(Clone)]
pub struct PairwiseSession {
    ratchet: Session,
    remote: IdentityPublic,
    /// Our device's address, sealed into every outgoing envelope.
    local_address: Address,
    /// The peer device's address, as bound into the X3DH transcript.
    remote_address: Address,
    /// Repeated in every outgoing message until the first reply arrives.
    pending_prekey: Option<InitialHeader>,
    /// For a session created by `accept`: the initiator's X3DH ephemeral
    /// key, which identifies further pre-key messages of the same run.
    base_key: Option<PublicKey>,
}

impl PairwiseSession {
    /// Starts a session with the owner of a verified bundle: always hybrid
    /// (PQXDH, sending `0x05` pre-key messages), exactly
    /// [`PairwiseSession::initiate_hybrid`]. Every bundle from
    /// `PreKeyBundle::verify` has the KEM prekey it needs; one without
    /// fails `X3dh(NoKemPreKey)`, never a classical session.
    /// `their_address` is the device the relay served the bundle for.
    pub fn initiate<R: RngCore + CryptoRng>(
        ours: &IdentityKeyPair,
        our_address: &Address,
        bundle: &VerifiedPreKeyBundle,
        their_address: &Address,
        rng: &mut R,
    ) -> Result<Self, PairwiseError> {
        Self::initiate_hybrid(ours, our_address, bundle, their_address, rng)
    }

    /// Starts a classical X3DH session (sending `0x01` pre-key messages),
    /// ignoring any KEM prekey of the bundle. Only with the `low-level-api`
    /// feature, for the classical vectors and the classical baseline
    /// benchmark: [`PairwiseSession::accept`] refuses what it sends.
    #[cfg(feature = "low-level-api")]
    pub fn initiate_classical<R: RngCore + CryptoRng>(
        ours: &IdentityKeyPair,
        our_address: &Address,
        bundle: &VerifiedPreKeyBundle,
        their_address: &Address,
        rng: &mut R,
    ) -> Result<Self, PairwiseError> {
        let (secret, initial) = x3dh::initiate(ours, our_address, bundle, their_address, rng)?;
        Self::initiated(secret, initial, our_address, bundle, their_address, rng)
    }

    /// Starts a hybrid session (PQXDH initiator); a bundle without a KEM
    /// prekey fails `X3dh(NoKemPreKey)` instead of falling back. Draws the
    /// X3DH ephemeral key, ML-KEM's message and then the first ratchet key
    /// from `rng`.
    pub fn initiate_hybrid<R: RngCore + CryptoRng>(
        ours: &IdentityKeyPair,
        our_address: &Address,
        bundle: &VerifiedPreKeyBundle,
        their_address: &Address,
        rng: &mut R,
    ) -> Result<Self, PairwiseError> {
        let (secret, initial) =
            x3dh::initiate_hybrid(ours, our_address, bundle, their_address, rng)?;
        Self::initiated(secret, initial, our_address, bundle, their_address, rng)
    }

    fn initiated<R: RngCore + CryptoRng>(
        secret: x3dh::SessionSecret,
        initial: InitialHeader,
        our_address: &Address,
        bundle: &VerifiedPreKeyBundle,
        their_address: &Address,
        rng: &mut R,
    ) -> Result<Self, PairwiseError> {
        let ratchet = Session::new_initiator(&secret, bundle.signed_prekey().key, rng)?;
        Ok(PairwiseSession {
            ratchet,
            remote: bundle.identity().clone(),
            local_address: *our_address,
            remote_address: *their_address,
            pending_prekey: Some(initial),
            base_key: None,
        })
    }

    /// Creates a session from a hybrid (`0x05`) pre-key message (PQXDH
    /// responder) and returns it with the first plaintext and the extra
    /// prekey that was used (delete it if it is a one-time prekey, then
    /// store the session). The KEM prekey is [`PreKeyMessage::kem_prekey`]
    /// of the inbound message: delete it too if it is a one-time one. The
    /// peer's address is the one the sealed layer names; a wrong one gives a
    /// root key the initiator does not have, so the first message fails.
    /// A classical (`0x01`) pre-key message is refused first, before any
    /// prekey lookup: [`PairwiseError::ClassicalPreKeyRefused`]. Then looks
    /// up, in order, the signed prekey, the extra prekey and the KEM prekey.
    pub fn accept(
        ours: &IdentityKeyPair,
        our_address: &Address,
        inbound: &InboundEnvelope,
        prekeys: &impl PreKeyStore,
    ) -> Result<(Self, Vec<u8>, Option<PreKeyRef>), PairwiseError> {
        Self::accept_with(ours, our_address, inbound, prekeys, Downgrade::Refused)
    }

    /// [`PairwiseSession::accept`] that also answers a classical (`0x01`)
    /// pre-key message with a classical X3DH session. Only with the
    /// `low-level-api` feature, for the classical vectors and the
    /// classical baseline benchmark; a client never accepts one.
    #[cfg(feature = "low-level-api")]
    pub fn accept_classical(
        ours: &IdentityKeyPair,
        our_address: &Address,
        inbound: &InboundEnvelope,
        prekeys: &impl PreKeyStore,
    ) -> Result<(Self, Vec<u8>, Option<PreKeyRef>), PairwiseError> {
        Self::accept_with(ours, our_address, inbound, prekeys, Downgrade::Allowed)
    }

    fn accept_with(
        ours: &IdentityKeyPair,
        our_address: &Address,
        inbound: &InboundEnvelope,
        prekeys: &impl PreKeyStore,
        downgrade: Downgrade,
    ) -> Result<(Self, Vec<u8>, Option<PreKeyRef>), PairwiseError> {
        let PairwiseMessage::PreKey(prekey_message) = &inbound.message else {
            return Err(PairwiseError::WrongSession);
        };
        let initial = &prekey_message.initial;
        // The downgrade refusal comes first: a classical message gets no
        // store lookup and no key agreement at all.
        if initial.kem.is_none() && downgrade == Downgrade::Refused {
            return Err(PairwiseError::ClassicalPreKeyRefused);
        }
        if !same_identity(&inbound.sender, &initial.initiator_identity) {
            return Err(PairwiseError::SenderMismatch);
        }
        let unknown = || PairwiseError::UnknownPreKey {
            signed_prekey_id: initial.signed_prekey_id,
            extra: initial.extra_prekey,
        };
        let signed = prekeys
            .signed_prekey(initial.signed_prekey_id)
            .ok_or_else(unknown)?;
        let extra = match initial.extra_prekey {
            Some(r) => Some(prekeys.extra_prekey(r).ok_or_else(unknown)?),
            None => None,
        };
        let secret = match &initial.kem {
            Some(kem) => {
                // A store answering with another key than the one named
                // holds no such key as far as this message is concerned.
                let kem_prekey = prekeys
                    .kem_prekey(kem.prekey)
                    .filter(|k| k.kind() == kem.prekey.kind && k.id() == kem.prekey.id)
                    .ok_or(PairwiseError::UnknownKemPreKey(kem.prekey))?;
                x3dh::respond_hybrid(
                    ours,
                    our_address,
                    &inbound.sender_address,
                    &signed,
                    extra.as_ref(),
                    kem_prekey.keypair(),
                    initial,
                )?
            }
            #[cfg(feature = "low-level-api")]
            None => x3dh::respond(
                ours,
                our_address,
                &inbound.sender_address,
                &signed,
                extra.as_ref(),
                initial,
            )?,
            // Unreachable: refused above, and only `accept_classical`
            // (`low-level-api`) passes `Downgrade::Allowed`.
            #[cfg(not(feature = "low-level-api"))]
            None => return Err(PairwiseError::ClassicalPreKeyRefused),
        };
        let mut session = PairwiseSession {
            ratchet: Session::new_responder(&secret, signed),
            remote: initial.initiator_identity.clone(),
            local_address: *our_address,
            remote_address: inbound.sender_address,
            pending_prekey: None,
            base_key: Some(initial.ephemeral),
        };
        let plaintext =
            session.decrypt_ratchet(prekey_message.type_byte(), &prekey_message.message)?;
        Ok((session, plaintext, initial.extra_prekey))
    }

    /// Pads, encrypts and seals one message to the peer; returns the sealed
    /// envelope to hand to the relay. On error the session is unchanged.
    pub fn seal_for<R: RngCore + CryptoRng>(
        &mut self,
        ours: &IdentityKeyPair,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, PairwiseError> {
        let padded = zeroize::Zeroizing::new(padding::pad(plaintext)?);
        let Self {
            ratchet,
            remote,
            local_address,
            pending_prekey,
            ..
        } = self;
        // The ratchet step is committed only once wrapping and sealing
        // succeeded, so a failure never burns a message key. The type byte
        // the message travels under is authenticated with it.
        let ad_type = pending_prekey
            .as_ref()
            .map_or(PLAIN_MESSAGE_TYPE, message::header_type);
        ratchet.encrypt_then(ad_type, &padded, rng, |message, rng| {
            let inner = match pending_prekey {
                Some(initial) => PairwiseMessage::PreKey(Box::new(PreKeyMessage {
                    initial: initial.clone(),
                    message,
                })),
                None => PairwiseMessage::Plain(message),
            };
            Ok(sealed::seal(
                ours,
                local_address,
                remote,
                &inner.to_bytes(),
                rng,
            )?)
        })
    }

    /// Decrypts an envelope from this session's peer. A pre-key message of
    /// another X3DH run gives [`PairwiseError::WrongSession`] (use
    /// [`PairwiseSession::accept`]). On error the session is unchanged.
    pub fn decrypt(&mut self, inbound: &InboundEnvelope) -> Result<Vec<u8>, PairwiseError> {
        if !same_identity(&inbound.sender, &self.remote)
            || inbound.sender_address != self.remote_address
        {
            return Err(PairwiseError::SenderMismatch);
        }
        let (ad_type, message) = match &inbound.message {
            PairwiseMessage::Plain(message) => (PLAIN_MESSAGE_TYPE, message),
            PairwiseMessage::PreKey(prekey_message) => {
                if self.base_key != Some(prekey_message.initial.ephemeral) {
                    return Err(PairwiseError::WrongSession);
                }
                (prekey_message.type_byte(), &prekey_message.message)
            }
            PairwiseMessage::Ephemeral(_) | PairwiseMessage::Group(_) => {
                return Err(PairwiseError::WrongKind)
            }
        };
        self.decrypt_ratchet(ad_type, message)
    }

    /// Pads, encrypts and seals an ephemeral message (a typing notice) for
    /// the relay's `Ephemeral` request. Consumes no message key (see
    /// `ratchet::ephemeral`); may take a due sending DH step. `now_ms` is
    /// the sender's clock, authenticated in the message. On error the
    /// session is unchanged.
    pub fn seal_ephemeral<R: RngCore + CryptoRng>(
        &mut self,
        ours: &IdentityKeyPair,
        plaintext: &[u8],
        now_ms: u64,
        rng: &mut R,
    ) -> Result<Vec<u8>, PairwiseError> {
        let padded = zeroize::Zeroizing::new(padding::pad(plaintext)?);
        // Work on a copy: a DH step taken here is kept only if sealing succeeds.
        let mut ratchet = self.ratchet.clone();
        let message = ratchet.encrypt_ephemeral(EPHEMERAL_MESSAGE_TYPE, &padded, now_ms, rng)?;
        let inner = PairwiseMessage::Ephemeral(message).to_bytes();
        let envelope = sealed::seal(ours, &self.local_address, &self.remote, &inner, rng)?;
        self.ratchet = ratchet;
        Ok(envelope)
    }

    /// Opens an ephemeral message from this session's peer. Takes `&self`:
    /// it never changes the session, whatever it is given. Refuses a sender
    /// other than the peer, a stored (non-ephemeral) message, a message
    /// older or further ahead than [`EPHEMERAL_MAX_AGE_MS`], and an epoch
    /// the session does not know.
    pub fn open_ephemeral(
        &self,
        inbound: &InboundEnvelope,
        now_ms: u64,
    ) -> Result<Vec<u8>, PairwiseError> {
        if !same_identity(&inbound.sender, &self.remote)
            || inbound.sender_address != self.remote_address
        {
            return Err(PairwiseError::SenderMismatch);
        }
        let PairwiseMessage::Ephemeral(message) = &inbound.message else {
            return Err(PairwiseError::WrongKind);
        };
        if now_ms.abs_diff(message.sent_at_ms) > EPHEMERAL_MAX_AGE_MS {
            return Err(PairwiseError::StaleEphemeral {
                sent_at_ms: message.sent_at_ms,
                now_ms,
            });
        }
        let padded = zeroize::Zeroizing::new(
            self.ratchet
                .decrypt_ephemeral(EPHEMERAL_MESSAGE_TYPE, message)?,
        );
        Ok(padding::unpad(&padded)?)
    }

    fn decrypt_ratchet(
        &mut self,
        ad_type: u8,
        message: &RatchetMessage,
    ) -> Result<Vec<u8>, PairwiseError> {
        // Padding is checked before the ratchet commits, so an authenticated
        // but badly padded message does not consume its key either. The
        // padded plaintext is wiped once unpadded.
        let plaintext = self.ratchet.decrypt_then_as(ad_type, message, |padded| {
            let padded = zeroize::Zeroizing::new(padded);
            padding::unpad(&padded).map_err(PairwiseError::from)
        })?;
        self.pending_prekey = None;
        Ok(plaintext)
    }

    /// The peer's identity.
    pub fn remote_identity(&self) -> &IdentityPublic {
        &self.remote
    }

    /// The peer device's relay address (bound into the session's keys).
    pub fn remote_address(&self) -> &Address {
        &self.remote_address
    }

    /// Our own device's address, as this session was agreed.
    pub fn local_address(&self) -> &Address {
        &self.local_address
    }

    /// True while outgoing messages are pre-key messages.
    pub fn awaiting_reply(&self) -> bool {
        self.pending_prekey.is_some()
    }

    /// The underlying ratchet session (read-only).
    pub fn ratchet(&self) -> &Session {
        &self.ratchet
    }

    /// Dates newly skipped message keys with `now` and drops those dated at
    /// least `max_age` earlier (the caller's clock and unit; see
    /// `ratchet::skipped`). Returns how many were dropped.
    pub fn expire_skipped_keys(&mut self, now: u64, max_age: u64) -> usize {
        self.ratchet.expire_skipped_keys(now, max_age)
    }
}

impl std::fmt::Debug for PairwiseSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairwiseSession")
            .field("remote", &self.remote)
            .field("remote_address", &self.remote_address)
            .field("ratchet", &self.ratchet)
            .field("awaiting_reply", &self.pending_prekey.is_some())
            .finish()
    }
}

/// Whether [`PairwiseSession::accept_with`] may answer a classical
/// (`0x01`) pre-key message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Downgrade {
    /// [`PairwiseSession::accept`]'s: every client's.
    Refused,
    /// `accept_classical`'s (`low-level-api` only).
    #[cfg(feature = "low-level-api")]
    Allowed,
}

/// Constant-time comparison of two public identities' encodings.
fn same_identity(a: &IdentityPublic, b: &IdentityPublic) -> bool {
    a.to_bytes().ct_eq(&b.to_bytes()).into()
}
