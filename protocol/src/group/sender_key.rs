//! Sender keys in use: our own [`GroupSender`] (encrypts and signs) and the
//! [`GroupReceiver`] we keep per other member (verifies and decrypts, with a
//! bounded store of skipped message keys).
//!
//! Must never: accept a message whose signature does not verify strictly,
//! decrypt the same iteration twice, keep more than [`MAX_SKIPPED_KEYS`]
//! skipped keys, or change receiver state when a message is refused.

use std::collections::BTreeMap;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::Nonce;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::chain::{message_cipher, open_with, ChainKey, MessageKeySeed};
use super::distribution::{DistributionId, SenderKeyDistribution};
use super::error::GroupError;
use super::message::{
    GroupMessageHeader, GROUP_HEADER_LEN, MAX_GROUP_PLAINTEXT, MIN_GROUP_MESSAGE_LEN, SIGNATURE_LEN,
};
use crate::identity::{sign_labelled, verify_labelled, Signature};
use crate::labels;

/// Most iterations one message may skip ahead of the receiver's chain.
pub const MAX_SKIP: u32 = 2000;
/// Most skipped message keys a receiver keeps per sender (oldest evicted).
pub const MAX_SKIPPED_KEYS: usize = 2000;

/// Our own sender key in one group. Serializable for the local store;
/// zeroized on drop; `Debug` shows no key.
#[derive(Serialize, Deserialize)]
pub struct GroupSender {
    pub(super) distribution_id: DistributionId,
    pub(super) chain_id: u32,
    pub(super) signing: SigningKey,
    pub(super) chain: ChainKey,
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
    pub(super) distribution_id: DistributionId,
    pub(super) chain_id: u32,
    pub(super) signing_public: VerifyingKey,
    pub(super) chain: ChainKey,
    pub(super) skipped: BTreeMap<u32, MessageKeySeed>,
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
