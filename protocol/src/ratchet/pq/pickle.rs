//! The stored form of the two braids (docs/PROTOCOL.md §4.9, `pq` of a
//! format-2 `RatchetPickle`).
//!
//! Must never: load a state the live braids never reach (an epoch 0, a
//! ready secret without its key pair, a chunk index past the end, a stored
//! encapsulation key that fails FIPS 203's check), or show a secret in
//! `Debug` (it has none).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::braid::{Braids, OwnBraid, PeerBraid, PeerState};
use super::chunk::{ChunkBuffer, CT_CHUNKS, EK_CHUNKS};
use crate::kem::{
    KemCiphertext, KemKeyPair, KemPublicKey, KemSharedSecret, KEM_CIPHERTEXT_LEN,
    KEM_PUBLIC_KEY_LEN, KEM_SEED_LEN,
};
use crate::pickle::{Bytes, PickleError};

/// Both braids as stored. Zeroized by the ratchet pickle that holds it.
#[derive(Clone, Serialize, Deserialize, Zeroize)]
pub(crate) struct BraidsPickle {
    own_epoch: u32,
    own_seed: Option<Bytes<KEM_SEED_LEN>>,
    own_ciphertext: Option<PartialPickle<KEM_CIPHERTEXT_LEN>>,
    own_ready: Option<Bytes<32>>,
    own_next_chunk: u8,
    peer_epoch: u32,
    peer: PeerPickle,
    turn: bool,
}

/// Chunks received so far: a bit per chunk index, and the bytes.
#[derive(Clone, Serialize, Deserialize, Zeroize)]
struct PartialPickle<const N: usize> {
    have: u16,
    bytes: Bytes<N>,
}

#[derive(Clone, Serialize, Deserialize, Zeroize)]
enum PeerPickle {
    Collecting(Option<PartialPickle<KEM_PUBLIC_KEY_LEN>>),
    Ready(Bytes<KEM_PUBLIC_KEY_LEN>),
    Encapsulated {
        ciphertext: Bytes<KEM_CIPHERTEXT_LEN>,
        secret: Bytes<32>,
        next_chunk: u8,
    },
}

fn partial<const N: usize>(buffer: &ChunkBuffer<N>) -> Option<PartialPickle<N>> {
    (buffer.have() != 0).then(|| PartialPickle {
        have: buffer.have(),
        bytes: Bytes(*buffer.bytes()),
    })
}

fn load_partial<const N: usize>(
    stored: &Option<PartialPickle<N>>,
) -> Result<ChunkBuffer<N>, PickleError> {
    match stored {
        None => Ok(ChunkBuffer::new()),
        Some(p) => ChunkBuffer::from_parts(p.have, p.bytes.0)
            .ok_or(PickleError::Invalid("a KEM chunk index past the end")),
    }
}

impl BraidsPickle {
    /// The braids of a session stored before the post-quantum step: both
    /// at epoch 1 with nothing drawn or received.
    pub(crate) fn fresh() -> Self {
        BraidsPickle::of(&Braids::new())
    }

    pub(crate) fn of(braids: &Braids) -> Self {
        let own = &braids.own;
        let peer = match &braids.peer.state {
            PeerState::Collecting(buffer) => PeerPickle::Collecting(partial(buffer)),
            PeerState::Ready(key) => PeerPickle::Ready(Bytes(*key.as_bytes())),
            PeerState::Encapsulated {
                ciphertext,
                secret,
                next_chunk,
            } => PeerPickle::Encapsulated {
                ciphertext: Bytes(*ciphertext.as_bytes()),
                secret: Bytes(*secret.as_bytes()),
                next_chunk: *next_chunk,
            },
        };
        BraidsPickle {
            own_epoch: own.epoch,
            own_seed: own.key.as_ref().map(|k| Bytes(**k.seed())),
            own_ciphertext: partial(&own.ciphertext),
            own_ready: own.ready.as_ref().map(|s| Bytes(*s.as_bytes())),
            own_next_chunk: own.next_chunk,
            peer_epoch: braids.peer.epoch,
            peer,
            turn: braids.turn,
        }
    }

    pub(crate) fn load(&self) -> Result<Braids, PickleError> {
        if self.own_epoch == 0 || self.peer_epoch == 0 {
            return Err(PickleError::Invalid("KEM epoch 0"));
        }
        if self.own_ready.is_some() && self.own_seed.is_none() {
            return Err(PickleError::Invalid("a KEM secret without its key pair"));
        }
        if self.own_next_chunk >= EK_CHUNKS {
            return Err(PickleError::Invalid("a KEM chunk index past the end"));
        }
        let peer = match &self.peer {
            PeerPickle::Collecting(stored) => PeerState::Collecting(load_partial(stored)?),
            PeerPickle::Ready(key) => PeerState::Ready(Box::new(
                KemPublicKey::from_bytes(&key.0)
                    .map_err(|_| PickleError::Invalid("a stored peer KEM key does not parse"))?,
            )),
            PeerPickle::Encapsulated {
                ciphertext,
                secret,
                next_chunk,
            } => {
                if *next_chunk >= CT_CHUNKS {
                    return Err(PickleError::Invalid("a KEM chunk index past the end"));
                }
                PeerState::Encapsulated {
                    ciphertext: KemCiphertext::from_bytes(&ciphertext.0)
                        .map_err(|_| PickleError::Invalid("a stored KEM ciphertext"))?,
                    secret: KemSharedSecret::from_bytes(secret.0),
                    next_chunk: *next_chunk,
                }
            }
        };
        Ok(Braids {
            own: OwnBraid {
                epoch: self.own_epoch,
                key: self
                    .own_seed
                    .as_ref()
                    .map(|seed| Arc::new(KemKeyPair::from_seed(&seed.0))),
                ciphertext: load_partial(&self.own_ciphertext)?,
                ready: self
                    .own_ready
                    .as_ref()
                    .map(|s| KemSharedSecret::from_bytes(s.0)),
                next_chunk: self.own_next_chunk,
            },
            peer: PeerBraid {
                epoch: self.peer_epoch,
                state: peer,
            },
            turn: self.turn,
        })
    }
}
