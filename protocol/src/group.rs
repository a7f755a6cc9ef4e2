//! Sender-key groups (Signal's sender keys): each member encrypts a group
//! message once under its own symmetric chain, and signs it.
//!
//! A sender holds a chain key advanced by HMAC-SHA256 (distinct labels for
//! the message-key seed and the next chain key) and an Ed25519 signing key.
//! It hands both, as a [`SenderKeyDistribution`], to every member over the
//! pairwise (Double Ratchet) channel; members keep a [`GroupReceiver`] per
//! sender. Every message is signed, so a member cannot forge another
//! member's messages although all members know the chain key.
//!
//! Must never: accept a message whose signature does not verify strictly,
//! decrypt the same iteration twice (replay), store more than
//! [`MAX_SKIPPED_KEYS`] skipped keys or jump more than [`MAX_SKIP`] ahead,
//! change receiver state when a message is refused, or print key bytes.

use std::collections::BTreeMap;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::identity::{sign_labelled, verify_labelled, Signature};
use crate::labels;

/// First byte of a group message of this format.
pub const GROUP_MESSAGE_VERSION: u8 = 1;
/// First byte of a sender-key distribution of this format.
pub const DISTRIBUTION_VERSION: u8 = 1;
/// Most iterations one message may skip ahead of the receiver's chain.
pub const MAX_SKIP: u32 = 2000;
/// Most skipped message keys a receiver keeps per sender (oldest evicted).
pub const MAX_SKIPPED_KEYS: usize = 2000;
/// Largest group plaintext (a padded plaintext, section "padding").
pub const MAX_GROUP_PLAINTEXT: usize = crate::padding::MAX_PADDED_LEN;
/// Length of a distribution id.
pub const DISTRIBUTION_ID_LEN: usize = 16;
/// Length of the group-message header (version, distribution id, chain id, iteration).
pub const GROUP_HEADER_LEN: usize = 1 + DISTRIBUTION_ID_LEN + 4 + 4;
/// Length of an encoded [`SenderKeyDistribution`].
pub const DISTRIBUTION_LEN: usize = 1 + DISTRIBUTION_ID_LEN + 4 + 4 + 32 + 32;
const TAG_LEN: usize = 16;
const SIGNATURE_LEN: usize = 64;
/// Shortest group message: header, empty ciphertext's tag, signature.
pub const MIN_GROUP_MESSAGE_LEN: usize = GROUP_HEADER_LEN + TAG_LEN + SIGNATURE_LEN;
/// Longest group message.
pub const MAX_GROUP_MESSAGE_LEN: usize = MIN_GROUP_MESSAGE_LEN + MAX_GROUP_PLAINTEXT;

/// Identifies one sender's chain within one group (chosen by the caller,
/// e.g. random per group and member).
pub type DistributionId = [u8; DISTRIBUTION_ID_LEN];

/// Why a group operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// Plaintext longer than [`MAX_GROUP_PLAINTEXT`].
    #[error("group plaintext of {len} bytes exceeds {MAX_GROUP_PLAINTEXT}")]
    PlaintextTooLong {
        /// Length of the plaintext.
        len: usize,
    },
    /// Message shorter than [`MIN_GROUP_MESSAGE_LEN`] or longer than
    /// [`MAX_GROUP_MESSAGE_LEN`].
    #[error("group message of {len} bytes has an impossible length")]
    BadMessageLength {
        /// Length of the message.
        len: usize,
    },
    /// Distribution of the wrong length.
    #[error("sender-key distribution has {len} bytes, expected {DISTRIBUTION_LEN}")]
    BadDistributionLength {
        /// Length of the distribution.
        len: usize,
    },
    /// Unknown version byte.
    #[error("unsupported group format version {0}")]
    UnsupportedVersion(u8),
    /// The distribution's signing key is not a valid Ed25519 key.
    #[error("sender-key distribution carries an invalid signing key")]
    InvalidSigningKey,
    /// The message belongs to a different distribution id.
    #[error("message is for another distribution id")]
    WrongDistribution,
    /// The message is from a different chain (the sender rotated its key;
    /// a new distribution is needed).
    #[error("message chain id {got} does not match the receiver's chain {expected}")]
    WrongChain {
        /// The receiver's chain id.
        expected: u32,
        /// The message's chain id.
        got: u32,
    },
    /// The signature does not verify under the sender's signing key.
    #[error("group message signature does not verify")]
    BadSignature,
    /// The iteration was already decrypted, or its key was evicted.
    #[error("iteration {0} was already received or is too old (replay)")]
    Replay(u32),
    /// The iteration is more than [`MAX_SKIP`] ahead of the chain.
    #[error("iteration {iteration} is more than {MAX_SKIP} ahead of {current}")]
    TooFarAhead {
        /// The receiver's next expected iteration.
        current: u32,
        /// The message's iteration.
        iteration: u32,
    },
    /// The chain reached its last iteration; the sender must rotate.
    #[error("sender chain exhausted; a new sender key is needed")]
    ChainExhausted,
    /// The ciphertext does not authenticate under the derived key.
    #[error("group ciphertext does not authenticate")]
    Undecryptable,
}

/// A chain key at a given iteration.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct ChainKey {
    #[serde(with = "crate::keys::serde_bytes_array")]
    key: [u8; 32],
    iteration: u32,
}

/// The per-iteration seed a message key is expanded from.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct MessageKeySeed(#[serde(with = "crate::keys::serde_bytes_array")] [u8; 32]);

fn hmac(key: &[u8; 32], input: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts 32-byte keys"),
    };
    mac.update(input);
    mac.finalize().into_bytes().into()
}

impl ChainKey {
    /// seed = HMAC(chain_key, GROUP_MESSAGE_KEY_SEED label).
    fn message_seed(&self) -> MessageKeySeed {
        MessageKeySeed(hmac(&self.key, labels::GROUP_MESSAGE_KEY_SEED))
    }

    /// next = HMAC(chain_key, GROUP_CHAIN_KEY label), iteration + 1.
    fn next(&self) -> Result<ChainKey, GroupError> {
        let iteration = self
            .iteration
            .checked_add(1)
            .ok_or(GroupError::ChainExhausted)?;
        Ok(ChainKey {
            key: hmac(&self.key, labels::GROUP_CHAIN_KEY),
            iteration,
        })
    }
}

/// The fixed-layout header: version || distribution id || u32be chain id ||
/// u32be iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupMessageHeader {
    /// Which distribution (group and sender) the message belongs to.
    pub distribution_id: DistributionId,
    /// The sender's chain id within it.
    pub chain_id: u32,
    /// The chain iteration that encrypted it.
    pub iteration: u32,
}

impl GroupMessageHeader {
    fn to_bytes(self) -> [u8; GROUP_HEADER_LEN] {
        let mut out = [0u8; GROUP_HEADER_LEN];
        out[0] = GROUP_MESSAGE_VERSION;
        out[1..17].copy_from_slice(&self.distribution_id);
        out[17..21].copy_from_slice(&self.chain_id.to_be_bytes());
        out[21..25].copy_from_slice(&self.iteration.to_be_bytes());
        out
    }

    /// Reads the header of a group message so the caller can find the
    /// receiver state; checks version and length, nothing cryptographic.
    pub fn parse(message: &[u8]) -> Result<Self, GroupError> {
        let len = message.len();
        if !(MIN_GROUP_MESSAGE_LEN..=MAX_GROUP_MESSAGE_LEN).contains(&len) {
            return Err(GroupError::BadMessageLength { len });
        }
        let header: &[u8; GROUP_HEADER_LEN] = message
            .get(..GROUP_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(GroupError::BadMessageLength { len })?;
        if header[0] != GROUP_MESSAGE_VERSION {
            return Err(GroupError::UnsupportedVersion(header[0]));
        }
        let mut distribution_id = [0u8; DISTRIBUTION_ID_LEN];
        distribution_id.copy_from_slice(&header[1..17]);
        let mut chain_id = [0u8; 4];
        chain_id.copy_from_slice(&header[17..21]);
        let mut iteration = [0u8; 4];
        iteration.copy_from_slice(&header[21..25]);
        Ok(Self {
            distribution_id,
            chain_id: u32::from_be_bytes(chain_id),
            iteration: u32::from_be_bytes(iteration),
        })
    }
}

/// AEAD key and nonce for one message:
/// HKDF(salt = none, ikm = seed, info = label || header (25), 44) = key || nonce.
fn message_cipher(
    seed: &MessageKeySeed,
    header: &[u8; GROUP_HEADER_LEN],
) -> (ChaCha20Poly1305, [u8; 12]) {
    let hk = Hkdf::<Sha256>::new(None, &seed.0);
    let mut okm = Zeroizing::new([0u8; 44]);
    if hk
        .expand_multi_info(&[labels::GROUP_MESSAGE_KEY, header], okm.as_mut())
        .is_err()
    {
        unreachable!("HKDF-SHA256 output of 44 bytes is always valid");
    }
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&okm[..32]));
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&okm[32..]);
    (cipher, nonce)
}

/// A sender key as handed to group members (over the pairwise channel,
/// never in the clear). Holds a chain key: zeroized on drop, redacted Debug.
#[derive(Clone, Serialize, Deserialize)]
pub struct SenderKeyDistribution {
    distribution_id: DistributionId,
    chain_id: u32,
    chain: ChainKey,
    signing_public: VerifyingKey,
}

impl SenderKeyDistribution {
    /// The distribution id.
    pub fn distribution_id(&self) -> &DistributionId {
        &self.distribution_id
    }

    /// The chain id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The first iteration a receiver built from it can decrypt.
    pub fn iteration(&self) -> u32 {
        self.chain.iteration
    }

    /// `version || distribution id (16) || u32be chain id || u32be iteration
    /// || chain key (32) || Ed25519 public key (32)` (89 bytes). The result
    /// holds a secret; it is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(DISTRIBUTION_LEN));
        out.push(DISTRIBUTION_VERSION);
        out.extend_from_slice(&self.distribution_id);
        out.extend_from_slice(&self.chain_id.to_be_bytes());
        out.extend_from_slice(&self.chain.iteration.to_be_bytes());
        out.extend_from_slice(&self.chain.key);
        out.extend_from_slice(self.signing_public.as_bytes());
        out
    }

    /// Parses [`SenderKeyDistribution::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GroupError> {
        let arr: &[u8; DISTRIBUTION_LEN] = bytes
            .try_into()
            .map_err(|_| GroupError::BadDistributionLength { len: bytes.len() })?;
        if arr[0] != DISTRIBUTION_VERSION {
            return Err(GroupError::UnsupportedVersion(arr[0]));
        }
        let mut distribution_id = [0u8; DISTRIBUTION_ID_LEN];
        distribution_id.copy_from_slice(&arr[1..17]);
        let mut chain_id = [0u8; 4];
        chain_id.copy_from_slice(&arr[17..21]);
        let mut iteration = [0u8; 4];
        iteration.copy_from_slice(&arr[21..25]);
        // A wiped local: the chain key is copied into the result below.
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&arr[25..57]);
        let mut signing = [0u8; 32];
        signing.copy_from_slice(&arr[57..89]);
        let signing_public =
            VerifyingKey::from_bytes(&signing).map_err(|_| GroupError::InvalidSigningKey)?;
        Ok(Self {
            distribution_id,
            chain_id: u32::from_be_bytes(chain_id),
            chain: ChainKey {
                key: *key,
                iteration: u32::from_be_bytes(iteration),
            },
            signing_public,
        })
    }
}

impl std::fmt::Debug for SenderKeyDistribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyDistribution")
            .field("distribution_id", &self.distribution_id)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.chain.iteration)
            .finish_non_exhaustive()
    }
}

/// Our own sender key in one group. Serializable for the local store;
/// zeroized on drop; `Debug` shows no key.
#[derive(Serialize, Deserialize)]
pub struct GroupSender {
    distribution_id: DistributionId,
    chain_id: u32,
    signing: SigningKey,
    chain: ChainKey,
}

impl GroupSender {
    /// A fresh sender key: draws the Ed25519 seed (32 bytes), the chain key
    /// (32 bytes) and the chain id (4 bytes, big-endian) from `rng`, in that
    /// order. Iteration starts at 0.
    pub fn generate<R: RngCore + CryptoRng>(distribution_id: DistributionId, rng: &mut R) -> Self {
        let signing = SigningKey::generate(rng);
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut());
        let mut chain_id = [0u8; 4];
        rng.fill_bytes(&mut chain_id);
        Self {
            distribution_id,
            chain_id: u32::from_be_bytes(chain_id),
            signing,
            chain: ChainKey {
                key: *key,
                iteration: 0,
            },
        }
    }

    /// The distribution to send (pairwise) to every member. Members that get
    /// it later than others can decrypt only from the current iteration on.
    pub fn distribution(&self) -> SenderKeyDistribution {
        SenderKeyDistribution {
            distribution_id: self.distribution_id,
            chain_id: self.chain_id,
            chain: self.chain.clone(),
            signing_public: self.signing.verifying_key(),
        }
    }

    /// The next iteration this sender will use.
    pub fn iteration(&self) -> u32 {
        self.chain.iteration
    }

    /// Encrypts and signs one group message, then advances the chain (the
    /// used message key is gone afterwards: forward secrecy within the chain).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, GroupError> {
        if plaintext.len() > MAX_GROUP_PLAINTEXT {
            return Err(GroupError::PlaintextTooLong {
                len: plaintext.len(),
            });
        }
        // Iteration u32::MAX has no successor, so it is never used; the
        // receiver refuses it for the same reason.
        let next = self.chain.next()?;
        let header = GroupMessageHeader {
            distribution_id: self.distribution_id,
            chain_id: self.chain_id,
            iteration: self.chain.iteration,
        }
        .to_bytes();
        let (cipher, nonce) = message_cipher(&self.chain.message_seed(), &header);
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &header,
                },
            )
            .map_err(|_| GroupError::Undecryptable)?;
        let mut out = Vec::with_capacity(MIN_GROUP_MESSAGE_LEN + plaintext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&ciphertext);
        let signature = sign_labelled(&self.signing, labels::GROUP_MESSAGE_SIGNATURE, &out);
        out.extend_from_slice(&signature.to_bytes());
        self.chain = next;
        Ok(out)
    }
}

impl std::fmt::Debug for GroupSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSender")
            .field("distribution_id", &self.distribution_id)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.chain.iteration)
            .finish_non_exhaustive()
    }
}

/// Another member's sender key, as we track it. Serializable for the local
/// store; zeroized on drop; `Debug` shows no key.
#[derive(Serialize, Deserialize)]
pub struct GroupReceiver {
    distribution_id: DistributionId,
    chain_id: u32,
    signing_public: VerifyingKey,
    chain: ChainKey,
    skipped: BTreeMap<u32, MessageKeySeed>,
}

impl GroupReceiver {
    /// Starts tracking a sender from its distribution.
    pub fn from_distribution(distribution: &SenderKeyDistribution) -> Self {
        Self {
            distribution_id: distribution.distribution_id,
            chain_id: distribution.chain_id,
            signing_public: distribution.signing_public,
            chain: distribution.chain.clone(),
            skipped: BTreeMap::new(),
        }
    }

    /// The next iteration expected in order.
    pub fn iteration(&self) -> u32 {
        self.chain.iteration
    }

    /// Number of message keys held for messages not yet received.
    pub fn skipped_len(&self) -> usize {
        self.skipped.len()
    }

    /// Verifies, decrypts and records one group message. On any error the
    /// receiver is left exactly as it was.
    pub fn decrypt(&mut self, message: &[u8]) -> Result<Vec<u8>, GroupError> {
        let header = GroupMessageHeader::parse(message)?;
        if header.distribution_id != self.distribution_id {
            return Err(GroupError::WrongDistribution);
        }
        if header.chain_id != self.chain_id {
            return Err(GroupError::WrongChain {
                expected: self.chain_id,
                got: header.chain_id,
            });
        }
        let len = message.len();
        let (signed, signature) = message.split_at(len - SIGNATURE_LEN);
        let signature =
            Signature::from_slice(signature).map_err(|_| GroupError::BadMessageLength { len })?;
        if !verify_labelled(
            &self.signing_public,
            labels::GROUP_MESSAGE_SIGNATURE,
            signed,
            &signature,
        ) {
            return Err(GroupError::BadSignature);
        }
        let (header_bytes, ciphertext) = signed.split_at(GROUP_HEADER_LEN);
        let iteration = header.iteration;

        if iteration < self.chain.iteration {
            let seed = self
                .skipped
                .get(&iteration)
                .ok_or(GroupError::Replay(iteration))?;
            let plaintext = open_with(seed, header_bytes, ciphertext)?;
            self.skipped.remove(&iteration);
            return Ok(plaintext);
        }
        if iteration == u32::MAX {
            return Err(GroupError::ChainExhausted);
        }
        if iteration - self.chain.iteration > MAX_SKIP {
            return Err(GroupError::TooFarAhead {
                current: self.chain.iteration,
                iteration,
            });
        }
        // Walk a copy of the chain; commit only once the message decrypted.
        let mut chain = self.chain.clone();
        let mut newly_skipped = Vec::new();
        while chain.iteration < iteration {
            newly_skipped.push((chain.iteration, chain.message_seed()));
            chain = chain.next()?;
        }
        let plaintext = open_with(&chain.message_seed(), header_bytes, ciphertext)?;
        self.chain = chain.next()?;
        self.skipped.extend(newly_skipped);
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            self.skipped.pop_first();
        }
        Ok(plaintext)
    }
}

fn open_with(
    seed: &MessageKeySeed,
    header: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, GroupError> {
    let header: &[u8; GROUP_HEADER_LEN] = header
        .try_into()
        .map_err(|_| GroupError::BadMessageLength { len: header.len() })?;
    let (cipher, nonce) = message_cipher(seed, header);
    cipher
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: ciphertext,
                aad: header,
            },
        )
        .map_err(|_| GroupError::Undecryptable)
}

impl std::fmt::Debug for GroupReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupReceiver")
            .field("distribution_id", &self.distribution_id)
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.chain.iteration)
            .field("skipped", &self.skipped.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn pair() -> (GroupSender, GroupReceiver) {
        let sender = GroupSender::generate([7; 16], &mut OsRng);
        let dist = SenderKeyDistribution::from_bytes(&sender.distribution().to_bytes()).unwrap();
        (sender, GroupReceiver::from_distribution(&dist))
    }

    #[test]
    fn in_order_and_out_of_order_delivery() {
        let (mut s, mut r) = pair();
        let m0 = s.encrypt(b"zero").unwrap();
        let m1 = s.encrypt(b"one").unwrap();
        let m2 = s.encrypt(b"two").unwrap();
        assert_eq!(r.decrypt(&m2).unwrap(), b"two");
        assert_eq!(r.skipped_len(), 2);
        assert_eq!(r.decrypt(&m0).unwrap(), b"zero");
        assert_eq!(r.decrypt(&m1).unwrap(), b"one");
        assert_eq!(r.skipped_len(), 0);
    }

    #[test]
    fn replay_is_rejected_and_state_kept() {
        let (mut s, mut r) = pair();
        let m0 = s.encrypt(b"zero").unwrap();
        r.decrypt(&m0).unwrap();
        assert_eq!(r.decrypt(&m0), Err(GroupError::Replay(0)));
        let m1 = s.encrypt(b"one").unwrap();
        assert_eq!(r.decrypt(&m1).unwrap(), b"one");
    }

    #[test]
    fn tampering_fails_signature_without_state_change() {
        let (mut s, mut r) = pair();
        let m0 = s.encrypt(b"zero").unwrap();
        for i in GROUP_HEADER_LEN..m0.len() {
            let mut bad = m0.clone();
            bad[i] ^= 1;
            assert_eq!(r.decrypt(&bad), Err(GroupError::BadSignature), "byte {i}");
        }
        assert_eq!(r.iteration(), 0);
        assert_eq!(r.decrypt(&m0).unwrap(), b"zero");
    }

    #[test]
    fn too_far_ahead_is_refused() {
        let (mut s, mut r) = pair();
        for _ in 0..=MAX_SKIP {
            s.encrypt(b"x").unwrap();
        }
        let far = s.encrypt(b"far").unwrap();
        assert_eq!(
            r.decrypt(&far),
            Err(GroupError::TooFarAhead {
                current: 0,
                iteration: MAX_SKIP + 1
            })
        );
        assert_eq!(r.iteration(), 0);
    }

    #[test]
    fn skipped_keys_are_bounded_and_oldest_evicted() {
        let (mut s, mut r) = pair();
        let total = 2 * MAX_SKIP as usize + 2;
        let msgs: Vec<_> = (0..total).map(|_| s.encrypt(b"x").unwrap()).collect();
        // Skips iterations 0..MAX_SKIP, then MAX_SKIP+1..2*MAX_SKIP+1.
        r.decrypt(&msgs[MAX_SKIP as usize]).unwrap();
        assert_eq!(r.skipped_len(), MAX_SKIP as usize);
        r.decrypt(&msgs[total - 1]).unwrap();
        assert_eq!(r.skipped_len(), MAX_SKIPPED_KEYS);
        // The oldest keys were evicted; the newest skipped ones remain.
        assert_eq!(r.decrypt(&msgs[0]), Err(GroupError::Replay(0)));
        assert_eq!(r.decrypt(&msgs[total - 2]).unwrap(), b"x");
    }

    #[test]
    fn last_usable_iteration_is_u32_max_minus_one() {
        let (mut s, mut r) = pair();
        s.chain = ChainKey {
            key: [5; 32],
            iteration: u32::MAX - 1,
        };
        r.chain = s.chain.clone();
        let last = s.encrypt(b"last").unwrap();
        assert_eq!(
            GroupMessageHeader::parse(&last).unwrap().iteration,
            u32::MAX - 1
        );
        assert_eq!(s.encrypt(b"one more"), Err(GroupError::ChainExhausted));
        assert_eq!(s.iteration(), u32::MAX);
        assert_eq!(r.decrypt(&last).unwrap(), b"last");
        assert_eq!(r.iteration(), u32::MAX);
        assert_eq!(r.decrypt(&last), Err(GroupError::Replay(u32::MAX - 1)));
    }

    #[test]
    fn iteration_u32_max_is_refused_after_the_signature_check() {
        // Built by hand (the sender never produces it) and signed with the
        // sender's key, so only the iteration check can refuse it.
        let (s, mut r) = pair();
        let header = GroupMessageHeader {
            distribution_id: s.distribution_id,
            chain_id: s.chain_id,
            iteration: u32::MAX,
        }
        .to_bytes();
        let msg = signed_message(&s, &header, &[0u8; TAG_LEN]);
        assert_eq!(r.decrypt(&msg), Err(GroupError::ChainExhausted));
        assert_eq!(r.iteration(), 0);
    }

    /// Signs `header || ciphertext` as the sender would, whatever the key
    /// that made the ciphertext.
    fn signed_message(s: &GroupSender, header: &[u8; GROUP_HEADER_LEN], ct: &[u8]) -> Vec<u8> {
        let mut msg = header.to_vec();
        msg.extend_from_slice(ct);
        let sig = sign_labelled(&s.signing, labels::GROUP_MESSAGE_SIGNATURE, &msg);
        msg.extend_from_slice(&sig.to_bytes());
        msg
    }

    #[test]
    fn a_key_derived_under_any_other_label_does_not_decrypt() {
        // Right seed, right header, valid signature: only the label used to
        // expand the seed differs, so only domain separation can refuse it.
        let (s, mut r) = pair();
        let header = GroupMessageHeader {
            distribution_id: s.distribution_id,
            chain_id: s.chain_id,
            iteration: 0,
        }
        .to_bytes();
        let seed = s.chain.message_seed();
        let genuine = {
            let (cipher, nonce) = message_cipher(&seed, &header);
            let ct = cipher
                .encrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: b"hi",
                        aad: &header,
                    },
                )
                .unwrap();
            signed_message(&s, &header, &ct)
        };
        for label in labels::ALL
            .iter()
            .filter(|l| **l != labels::GROUP_MESSAGE_KEY)
        {
            // Both shapes a context uses: `label || header` and `label` alone.
            for info in [&[*label, &header[..]][..], &[*label][..]] {
                let mut okm = [0u8; 44];
                Hkdf::<Sha256>::new(None, &seed.0)
                    .expand_multi_info(info, &mut okm)
                    .unwrap();
                let ct = ChaCha20Poly1305::new(Key::from_slice(&okm[..32]))
                    .encrypt(
                        Nonce::from_slice(&okm[32..]),
                        Payload {
                            msg: b"hi",
                            aad: &header,
                        },
                    )
                    .unwrap();
                let forged = signed_message(&s, &header, &ct);
                assert_eq!(
                    r.decrypt(&forged),
                    Err(GroupError::Undecryptable),
                    "{}",
                    String::from_utf8_lossy(label)
                );
            }
        }
        assert_eq!(r.iteration(), 0);
        assert_eq!(r.decrypt(&genuine).unwrap(), b"hi");
    }

    #[test]
    fn debug_is_redacted() {
        let (s, r) = pair();
        let d = s.distribution();
        let seed = s.signing.to_bytes();
        for shown in [format!("{s:?}"), format!("{r:?}"), format!("{d:?}")] {
            for secret in [d.chain.key, seed] {
                assert!(!shown.contains(&hex::encode(secret)), "{shown}");
                assert!(!shown.contains(&hex::encode(&secret[..8])), "{shown}");
                assert!(!shown.contains(&format!("{secret:?}")), "{shown}");
            }
        }
    }

    #[test]
    fn state_serialization_roundtrip() {
        let (mut s, r) = pair();
        let stored_s = postcard::to_stdvec(&s).unwrap();
        let stored_r = postcard::to_stdvec(&r).unwrap();
        let m = s.encrypt(b"after").unwrap();
        let mut s2: GroupSender = postcard::from_bytes(&stored_s).unwrap();
        let mut r2: GroupReceiver = postcard::from_bytes(&stored_r).unwrap();
        assert_eq!(s2.encrypt(b"after").unwrap(), m);
        assert_eq!(r2.decrypt(&m).unwrap(), b"after");
    }
}
