//! One Double Ratchet session between two parties (Signal's algorithm).
//!
//! Holds the root key, the sending and receiving chains, both ratchet keys and
//! the skipped-key store, and turns plaintexts into [`RatchetMessage`]s and
//! back. Decryption is transactional: every new key is computed into locals,
//! the AEAD tag is checked, and only then is the session updated, so a forged,
//! replayed, truncated or too-far-ahead message leaves the session exactly as
//! it was.
//!
//! The sending half of a DH ratchet step is taken lazily, at the next
//! `encrypt` (which has an RNG), rather than while decrypting. The root key
//! sees the same sequence of DH outputs as in Signal's description, so the
//! keys are identical; only the moment the fresh ratchet key is drawn moves.
//!
//! It also keeps the per-epoch keys of ephemeral (typing) messages
//! (`ratchet::ephemeral`): ours for the newest sending chain, the peer's for
//! its last few receiving chains.
//!
//! Must never: reuse a message key, derive any key for a message whose number
//! is out of bounds, change state on a failed decryption or on receiving an
//! ephemeral message, spend a message key on an ephemeral message, compute a
//! DH with a low-order point, or show secrets in `Debug`.

use rand_core::{CryptoRng, RngCore};
use std::collections::VecDeque;

use super::chain_key::ChainKey;
use super::ephemeral::{EpochKey, EPHEMERAL_EPOCHS_KEPT};
use super::header::Header;
use super::message::RatchetMessage;
use super::message_key::MessageKey;
use super::pq::braid::Braids;
use super::root_key::RootKey;
use super::skipped::{SkippedKeys, MAX_SKIP};
use crate::keys::{KeyError, PublicKey, SecretKey};
use crate::x3dh::SessionSecret;

mod accessors;
mod ad;
mod ephemeral;
mod pickle;
use ad::MessageAd;
pub use pickle::RatchetPickle;

/// The type byte a bare ratchet message is authenticated under by
/// [`Session::encrypt`] and [`Session::decrypt`]: that of a plain pairwise
/// message (the pairwise layer passes 0x01 for a pre-key message).
pub const PLAIN_AD_TYPE: u8 = 0x02;

/// How many of the peer's past ratchet keys are remembered, so that a late
/// copy of a message from a finished chain is reported as a duplicate instead
/// of being mistaken for a new ratchet step.
pub const RETIRED_RATCHET_KEYS: usize = 16;

/// Why a ratchet operation failed. On every error the session is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RatchetError {
    /// The message's key was already used (a replay) or has been discarded.
    #[error("duplicate message: its key was already used or has expired")]
    DuplicateMessage,
    /// The message is further ahead in its chain than [`MAX_SKIP`] allows.
    #[error("message skips {skipped} keys in one chain, more than the limit of {MAX_SKIP}")]
    TooFarAhead {
        /// How many keys would have had to be skipped.
        skipped: u64,
    },
    /// Message number `u32::MAX` is never valid: no chain key exists after it.
    #[error("message number is out of range")]
    MessageNumberOutOfRange,
    /// The sender's ratchet key is a low-order point.
    #[error("peer ratchet key rejected: {0}")]
    BadRatchetKey(#[from] KeyError),
    /// The AEAD tag did not verify: wrong session, tampered header or ciphertext.
    #[error("message failed authentication")]
    DecryptionFailed,
    /// A responder cannot send before it has received the initiator's first message.
    #[error("no sending chain yet: the peer's first message has not been received")]
    NotReadyToSend,
    /// The sending chain has reached `u32::MAX` messages.
    #[error("sending chain exhausted")]
    SendingChainExhausted,
    /// The AEAD refused to encrypt (plaintext beyond ChaCha20-Poly1305's limit).
    #[error("plaintext too long to encrypt")]
    PlaintextTooLong,
    /// An ephemeral message names an epoch (sender ratchet key) this session
    /// no longer keeps a key for.
    #[error("ephemeral message from an epoch this session does not keep")]
    UnknownEpoch,
    /// A message starting a new peer chain says its DH step mixed a KEM
    /// epoch for which this session holds no encapsulated secret (§4.13
    /// rule PQ-R2).
    #[error("new ratchet chain mixes KEM epoch {epoch}, for which no secret is held")]
    UnknownPqEpoch {
        /// The `pq_epoch` the header named.
        epoch: u32,
    },
}

/// A pairwise Double Ratchet session. Stored as its [`RatchetPickle`]
/// (keep that as secret as the session); secrets are zeroized on drop by
/// their own types; `Debug` shows only public values.
#[derive(Clone)]
pub struct Session {
    associated_data: Vec<u8>,
    root_key: RootKey,
    our_ratchet: SecretKey,
    our_ratchet_public: PublicKey,
    /// The peer's current ratchet key: the next sending step DHs with it.
    their_ratchet: Option<PublicKey>,
    /// `None` when a sending DH step is due (or a responder has not received yet).
    sending: Option<ChainKey>,
    /// Chain of `their_ratchet`, once a message under it was received.
    receiving: Option<ChainKey>,
    previous_sending_length: u32,
    skipped: SkippedKeys,
    retired_their_ratchets: VecDeque<PublicKey>,
    /// Ephemeral-message key of our latest sending chain (kept while a
    /// sending step is due: the peer still knows that epoch).
    our_epoch: Option<EpochKey>,
    /// Ephemeral-message keys of the peer's latest receiving chains, newest
    /// last, at most `EPHEMERAL_EPOCHS_KEPT`.
    their_epochs: VecDeque<EpochKey>,
    /// The KEM epoch our current sending chain's DH step mixed (0: none);
    /// every header of the chain carries it.
    sending_pq_epoch: u32,
    /// The post-quantum braids (§4.13).
    pq: Braids,
}

/// Keys computed while decrypting, applied only after the tag verified.
struct StagedReceive {
    new_chain: Option<NewReceivingChain>,
    gap: Vec<MessageKey>,
    message_key: MessageKey,
    next_receiving: ChainKey,
}

struct NewReceivingChain {
    root_key: RootKey,
    previous_chain_gap: Vec<MessageKey>,
    epoch: EpochKey,
    /// The step mixed the secret we encapsulated for the peer's epoch.
    pq_mixed: bool,
}

impl Session {
    /// Alice's side, right after X3DH: draws her first ratchet key and takes
    /// the first DH step against Bob's signed prekey (his initial ratchet key).
    pub fn new_initiator<R: RngCore + CryptoRng>(
        secret: &SessionSecret,
        their_ratchet_key: PublicKey,
        rng: &mut R,
    ) -> Result<Session, RatchetError> {
        let our_ratchet = SecretKey::generate(rng);
        let dh = our_ratchet.diffie_hellman(&their_ratchet_key)?;
        let (root_key, sending) = RootKey::from_bytes(*secret.root_key()).step(&dh);
        let our_ratchet_public = our_ratchet.public_key();
        Ok(Session {
            associated_data: secret.associated_data().to_vec(),
            root_key,
            our_epoch: Some(EpochKey::derive(our_ratchet_public, &sending)),
            their_epochs: VecDeque::new(),
            our_ratchet_public,
            our_ratchet,
            their_ratchet: Some(their_ratchet_key),
            sending: Some(sending),
            receiving: None,
            previous_sending_length: 0,
            skipped: SkippedKeys::new(),
            retired_their_ratchets: VecDeque::new(),
            sending_pq_epoch: 0,
            pq: Braids::new(),
        })
    }

    /// Bob's side: his signed prekey secret is his first ratchet key. He can
    /// send only after decrypting Alice's first message.
    pub fn new_responder(secret: &SessionSecret, our_ratchet_key: SecretKey) -> Session {
        Session {
            associated_data: secret.associated_data().to_vec(),
            root_key: RootKey::from_bytes(*secret.root_key()),
            our_ratchet_public: our_ratchet_key.public_key(),
            our_ratchet: our_ratchet_key,
            our_epoch: None,
            their_epochs: VecDeque::new(),
            their_ratchet: None,
            sending: None,
            receiving: None,
            previous_sending_length: 0,
            skipped: SkippedKeys::new(),
            retired_their_ratchets: VecDeque::new(),
            sending_pq_epoch: 0,
            pq: Braids::new(),
        }
    }

    /// Encrypts one message, authenticated as a plain pairwise message
    /// ([`PLAIN_AD_TYPE`]). Takes the sending half of a DH ratchet step
    /// first if one is due. On error nothing changes.
    pub fn encrypt<R: RngCore + CryptoRng>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<RatchetMessage, RatchetError> {
        self.encrypt_then(PLAIN_AD_TYPE, plaintext, rng, |message, _| Ok(message))
    }

    /// [`Session::encrypt`], committing the new sending state only if `then`
    /// (e.g. wrapping and sealing the message) succeeds, so a failure further
    /// out never burns a message key the peer will not see. `then` gets the
    /// RNG back for its own use.
    ///
    /// Crate-private on purpose: when `then` fails, the same message key and
    /// nonce will encrypt the next message, so `then` must guarantee that the
    /// message it was given never leaves on failure (the pairwise layer only
    /// returns it inside a successfully sealed envelope). `ad_type` is the
    /// pairwise type byte the message will travel under; it is authenticated.
    pub(crate) fn encrypt_then<R, T, E>(
        &mut self,
        ad_type: u8,
        plaintext: &[u8],
        rng: &mut R,
        then: impl FnOnce(RatchetMessage, &mut R) -> Result<T, E>,
    ) -> Result<T, E>
    where
        R: RngCore + CryptoRng,
        E: From<RatchetError>,
    {
        // Stage a DH step if the peer has shown a new ratchet key since we last sent.
        let stepped = match &self.sending {
            Some(_) => None,
            None => {
                let their = self.their_ratchet.ok_or(RatchetError::NotReadyToSend)?;
                let ours = SecretKey::generate(rng);
                let dh = ours.diffie_hellman(&their).map_err(RatchetError::from)?;
                // Our decapsulated KEM secret, if ready, enters this step.
                let mix = self.pq.secret_to_send();
                let (root_key, chain) = self.root_key.step_with(&dh, mix.map(|(_, s)| s));
                Some((ours, root_key, chain, mix.map_or(0, |(epoch, _)| epoch)))
            }
        };
        let pq_epoch = stepped
            .as_ref()
            .map_or(self.sending_pq_epoch, |(_, _, _, epoch)| *epoch);
        let pq = self.pq.stage_send(
            stepped.as_ref().is_some_and(|(_, _, _, epoch)| *epoch != 0),
            rng,
        );
        let (chain, ratchet_public) = match (&stepped, &self.sending) {
            (Some((ours, _, chain, _)), _) => (chain, ours.public_key()),
            (None, Some(chain)) => (chain, self.our_ratchet_public),
            (None, None) => return Err(RatchetError::NotReadyToSend.into()),
        };
        // A fresh chain's epoch key and first step share one HMAC key schedule.
        let keyed = chain.keyed();
        let epoch = stepped
            .is_some()
            .then(|| EpochKey::derive_keyed(ratchet_public, &keyed));
        let (message_key, next) = keyed.step().ok_or(RatchetError::SendingChainExhausted)?;
        let header = Header {
            ratchet_key: ratchet_public,
            previous_chain_length: self.previous_sending_length,
            message_number: chain.index(),
            pq_epoch,
            chunk: pq.chunk,
        };
        let ad = self.aead_associated_data(ad_type, &header);
        let mut ciphertext = Vec::new();
        message_key
            .encrypt_into(&ad, plaintext, &mut ciphertext)
            .map_err(|_| RatchetError::PlaintextTooLong)?;
        let out = then(RatchetMessage { header, ciphertext }, rng)?;

        if let Some((ours, root_key, _, _)) = stepped {
            self.our_epoch = epoch;
            self.our_ratchet = ours;
            self.our_ratchet_public = ratchet_public;
            self.root_key = root_key;
            self.sending_pq_epoch = pq_epoch;
        }
        self.pq.commit_send(pq);
        self.sending = Some(next);
        Ok(out)
    }

    /// Verifies and decrypts one message. Transactional: on any error the
    /// session is exactly as before, so the genuine message can still arrive.
    pub fn decrypt(&mut self, message: &RatchetMessage) -> Result<Vec<u8>, RatchetError> {
        self.decrypt_then(message, Ok)
    }

    /// [`Session::decrypt`], committing only if `then` also accepts the
    /// plaintext (e.g. its padding is valid), so a message rejected by an
    /// outer layer leaves the session unchanged too.
    pub fn decrypt_then<T, E>(
        &mut self,
        message: &RatchetMessage,
        then: impl FnOnce(Vec<u8>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<RatchetError>,
    {
        self.decrypt_then_as(PLAIN_AD_TYPE, message, then)
    }

    /// [`Session::decrypt_then`] for a message that travelled under the
    /// pairwise type byte `ad_type` (authenticated: a plain message passed
    /// off as a pre-key message, or the reverse, fails).
    pub(crate) fn decrypt_then_as<T, E>(
        &mut self,
        ad_type: u8,
        message: &RatchetMessage,
        then: impl FnOnce(Vec<u8>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<RatchetError>,
    {
        let header = &message.header;
        let ad = self.aead_associated_data(ad_type, header);

        if let Some(key) = self.skipped.get(&header.ratchet_key, header.message_number) {
            let plaintext = key
                .decrypt(&ad, &message.ciphertext)
                .map_err(|_| RatchetError::DecryptionFailed)?;
            let out = then(plaintext)?;
            self.skipped
                .take(&header.ratchet_key, header.message_number);
            self.pq.receive_chunk(&header.chunk);
            return Ok(out);
        }

        let staged = self.stage_receive(header)?;
        let plaintext = staged
            .message_key
            .decrypt(&ad, &message.ciphertext)
            .map_err(|_| RatchetError::DecryptionFailed)?;
        let out = then(plaintext)?;
        self.commit_receive(header.ratchet_key, staged);
        // After the chain commit: a chain that mixed our secret has moved
        // the peer's braid to the epoch this chunk may belong to.
        self.pq.receive_chunk(&header.chunk);
        Ok(out)
    }

    /// Checks every bound, then derives (into locals only) the keys this
    /// message needs.
    fn stage_receive(&self, header: &Header) -> Result<StagedReceive, RatchetError> {
        let n = header.message_number;
        if n == u32::MAX {
            return Err(RatchetError::MessageNumberOutOfRange);
        }
        let current = match (&self.their_ratchet, &self.receiving) {
            (Some(their), Some(chain)) if *their == header.ratchet_key => Some(chain),
            _ => None,
        };
        if let Some(chain) = current {
            if n < chain.index() {
                return Err(RatchetError::DuplicateMessage);
            }
            check_skip(chain.index(), n)?;
            let (gap, at_n) = advance(chain.clone(), n);
            return staged(None, gap, at_n.step());
        }

        if self.retired_their_ratchets.contains(&header.ratchet_key) {
            return Err(RatchetError::DuplicateMessage);
        }
        // A new ratchet key: bound both the tail of the current chain and the
        // head of the new one before deriving anything.
        let pn = header.previous_chain_length;
        if let Some(chain) = &self.receiving {
            if pn > chain.index() {
                check_skip(chain.index(), pn)?;
            }
        }
        check_skip(0, n)?;
        let kem_secret = self.pq.secret_to_receive(header.pq_epoch).map_err(|()| {
            RatchetError::UnknownPqEpoch {
                epoch: header.pq_epoch,
            }
        })?;

        let previous_chain_gap = match &self.receiving {
            Some(chain) if pn > chain.index() => advance(chain.clone(), pn).0,
            _ => Vec::new(),
        };
        let dh = self.our_ratchet.diffie_hellman(&header.ratchet_key)?;
        let (root_key, fresh) = self.root_key.step_with(&dh, kem_secret);
        // The epoch key and, for message 0 (the usual case), its step share
        // one HMAC key schedule under the fresh chain key.
        let keyed = fresh.keyed();
        let epoch = EpochKey::derive_keyed(header.ratchet_key, &keyed);
        let (gap, at_n_step) = if n == 0 {
            (Vec::new(), keyed.step())
        } else {
            let (gap, at_n) = advance(fresh.clone(), n);
            (gap, at_n.step())
        };
        staged(
            Some(NewReceivingChain {
                root_key,
                previous_chain_gap,
                epoch,
                pq_mixed: kem_secret.is_some(),
            }),
            gap,
            at_n_step,
        )
    }

    fn commit_receive(&mut self, ratchet_key: PublicKey, staged: StagedReceive) {
        let StagedReceive {
            new_chain,
            gap,
            message_key: _,
            next_receiving,
        } = staged;
        if let Some(NewReceivingChain {
            root_key,
            previous_chain_gap,
            epoch,
            pq_mixed,
        }) = new_chain
        {
            if pq_mixed {
                self.pq.peer_mixed();
            }
            if self.their_epochs.len() >= EPHEMERAL_EPOCHS_KEPT {
                self.their_epochs.pop_front();
            }
            self.their_epochs.push_back(epoch);
            if let Some(old) = self.their_ratchet {
                self.skipped.insert_all(old, previous_chain_gap);
                if self.retired_their_ratchets.len() >= RETIRED_RATCHET_KEYS {
                    self.retired_their_ratchets.pop_front();
                }
                self.retired_their_ratchets.push_back(old);
            }
            self.root_key = root_key;
            self.their_ratchet = Some(ratchet_key);
            if let Some(sending) = self.sending.take() {
                self.previous_sending_length = sending.index();
            }
        }
        self.skipped.insert_all(ratchet_key, gap);
        self.receiving = Some(next_receiving);
    }

    /// `X3DH AD || pairwise type byte || version byte || header`: the two
    /// bytes in front of the header travel unauthenticated otherwise, so a
    /// relay could relabel a message's type or version without detection.
    fn aead_associated_data(&self, ad_type: u8, header: &Header) -> MessageAd {
        MessageAd::new(&self.associated_data, ad_type, header)
    }
}

/// Packs the keys for message n: `at_n_step` is the step of the chain key
/// at n (its message key and the chain key after it), `None` if exhausted.
fn staged(
    new_chain: Option<NewReceivingChain>,
    gap: Vec<MessageKey>,
    at_n_step: Option<(MessageKey, ChainKey)>,
) -> Result<StagedReceive, RatchetError> {
    let (message_key, next_receiving) = at_n_step.ok_or(RatchetError::MessageNumberOutOfRange)?;
    Ok(StagedReceive {
        new_chain,
        gap,
        message_key,
        next_receiving,
    })
}

fn check_skip(from: u32, to: u32) -> Result<(), RatchetError> {
    let skipped = u64::from(to).saturating_sub(u64::from(from));
    if skipped > u64::from(MAX_SKIP) {
        return Err(RatchetError::TooFarAhead { skipped });
    }
    Ok(())
}

/// Walks `chain` up to index `to`, returning the message keys it passes and
/// the chain key at `to`. Callers bound `to - index` by MAX_SKIP first and
/// keep `to < u32::MAX`, so `step()` always succeeds here.
fn advance(mut chain: ChainKey, to: u32) -> (Vec<MessageKey>, ChainKey) {
    let mut gap = Vec::with_capacity(to.saturating_sub(chain.index()) as usize);
    while chain.index() < to {
        let Some((message_key, next)) = chain.step() else {
            break;
        };
        gap.push(message_key);
        chain = next;
    }
    (gap, chain)
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("our_ratchet_key", &self.our_ratchet_public)
            .field("their_ratchet_key", &self.their_ratchet)
            .field("sending_index", &self.sending.as_ref().map(ChainKey::index))
            .field(
                "receiving_index",
                &self.receiving.as_ref().map(ChainKey::index),
            )
            .field("previous_sending_length", &self.previous_sending_length)
            .field("skipped_keys", &self.skipped.len())
            .field("sending_pq_epoch", &self.sending_pq_epoch)
            .field("pq", &self.pq)
            .finish_non_exhaustive()
    }
}
