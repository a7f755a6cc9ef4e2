//! The two KEM braids of a session (docs/PROTOCOL.md §4.13): in ours we own
//! an ML-KEM-768 key pair per epoch, send its encapsulation key in chunks,
//! collect the peer's ciphertext and decapsulate; in the peer's we collect
//! its encapsulation key, encapsulate, and send the ciphertext back.
//!
//! Sending is staged (`stage_send` computes, `commit_send` applies) like
//! the rest of the session, so a send that fails changes nothing; receiving
//! applies only chunks of messages whose tag verified.
//!
//! Must never: mix a secret twice (ours is consumed by the step that mixes
//! it, the peer's dropped by the receive that mixes it), hand out a secret
//! for an epoch the peer has not committed to, or show a secret in `Debug`.

use rand_core::{CryptoRng, RngCore};
use std::sync::Arc;

use super::chunk::{Chunk, ChunkBuffer, ChunkKind, CT_CHUNKS, EK_CHUNKS};
use crate::kem::{
    encapsulate, KemCiphertext, KemKeyPair, KemPublicKey, KemSharedSecret, KEM_CIPHERTEXT_LEN,
    KEM_PUBLIC_KEY_LEN,
};

/// Our braid: we own the key pair of `epoch`.
#[derive(Clone)]
pub(crate) struct OwnBraid {
    /// The current epoch, from 1.
    pub(crate) epoch: u32,
    /// Drawn at the first send of the epoch (a fresh responder has no RNG).
    /// Shared, so the copies a transactional decrypt makes cost no key
    /// expansion; zeroized when the last copy drops.
    pub(crate) key: Option<Arc<KemKeyPair>>,
    /// The peer's ciphertext to `key`, as it arrives.
    pub(crate) ciphertext: ChunkBuffer<KEM_CIPHERTEXT_LEN>,
    /// Decapsulated, waiting for our next sending DH step to mix it.
    pub(crate) ready: Option<KemSharedSecret>,
    /// Index of the next encapsulation-key chunk to send.
    pub(crate) next_chunk: u8,
}

/// Where the peer's braid stands for its epoch.
#[derive(Clone)]
pub(crate) enum PeerState {
    /// Collecting the peer's encapsulation key.
    Collecting(ChunkBuffer<KEM_PUBLIC_KEY_LEN>),
    /// The whole key arrived and is valid: our next send encapsulates to it.
    Ready(Box<KemPublicKey>),
    /// We encapsulated: the ciphertext goes out in chunks until the peer
    /// starts a chain that mixes `secret`.
    Encapsulated {
        ciphertext: KemCiphertext,
        secret: KemSharedSecret,
        next_chunk: u8,
    },
}

/// Where the peer's braid stands, without its bytes (§4.13's names; public
/// like the epochs: for tests and the vector file, never a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerPhase {
    /// Collecting the peer's encapsulation key.
    Collecting,
    /// The whole key arrived: our next send encapsulates to it.
    KeyComplete,
    /// We encapsulated and send the ciphertext until the peer mixes it.
    Encapsulated,
}

/// The peer's braid: it owns the key pair of `epoch`.
#[derive(Clone)]
pub(crate) struct PeerBraid {
    pub(crate) epoch: u32,
    pub(crate) state: PeerState,
}

/// Both braids, plus which one the next slot favours when both have
/// something to send.
#[derive(Clone)]
pub(crate) struct Braids {
    pub(crate) own: OwnBraid,
    pub(crate) peer: PeerBraid,
    /// When both braids have a chunk to send: false sends ours, true the
    /// peer's ciphertext. Flips on every sent message.
    pub(crate) turn: bool,
}

/// What one send will change, computed before anything is committed.
pub(crate) struct SendStage {
    /// The send's DH step mixed our ready secret: our braid moves on.
    advance_own: bool,
    /// Our key pair for the (possibly new) epoch, drawn by this send.
    new_key: Option<Arc<KemKeyPair>>,
    /// This send encapsulated to the peer's complete key.
    encapsulated: Option<(KemCiphertext, KemSharedSecret)>,
    /// The slot of this message.
    pub(crate) chunk: Chunk,
}

/// What became of a received chunk (for tests and the spec's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkOutcome {
    /// Stored; the object is not complete yet.
    Stored,
    /// The peer's encapsulation key is complete and valid.
    KeyComplete,
    /// The ciphertext is complete and was decapsulated.
    SecretReady,
    /// An empty slot.
    Empty,
    /// Of an epoch other than the one being collected, or nothing is being
    /// collected (rule PQ-R4: ignored).
    Ignored,
    /// The complete encapsulation key failed FIPS 203's check: dropped,
    /// collection starts over.
    InvalidKey,
}

impl Default for Braids {
    fn default() -> Self {
        Braids::new()
    }
}

impl Braids {
    /// Both braids at epoch 1, nothing drawn or received.
    pub(crate) fn new() -> Self {
        Braids {
            own: OwnBraid {
                epoch: 1,
                key: None,
                ciphertext: ChunkBuffer::new(),
                ready: None,
                next_chunk: 0,
            },
            peer: PeerBraid {
                epoch: 1,
                state: PeerState::Collecting(ChunkBuffer::new()),
            },
            turn: false,
        }
    }

    /// Our secret to mix into our next sending DH step, with its epoch.
    pub(crate) fn secret_to_send(&self) -> Option<(u32, &KemSharedSecret)> {
        self.own.ready.as_ref().map(|s| (self.own.epoch, s))
    }

    /// The secret a new receiving chain marked `epoch` mixes: none for 0,
    /// ours encapsulated for the peer's current epoch, otherwise `None` in
    /// the error position (rule PQ-R2: the caller refuses the message).
    pub(crate) fn secret_to_receive(&self, epoch: u32) -> Result<Option<&KemSharedSecret>, ()> {
        if epoch == 0 {
            return Ok(None);
        }
        match &self.peer.state {
            PeerState::Encapsulated { secret, .. } if epoch == self.peer.epoch => Ok(Some(secret)),
            _ => Err(()),
        }
    }

    /// The secret we encapsulated and the peer has not mixed yet (what a
    /// new epoch of the peer's may mix).
    pub(crate) fn pending_peer_secret(&self) -> Option<(u32, &KemSharedSecret)> {
        match &self.peer.state {
            PeerState::Encapsulated { secret, .. } => Some((self.peer.epoch, secret)),
            _ => None,
        }
    }

    /// The phase of the peer's braid.
    pub(crate) fn peer_phase(&self) -> PeerPhase {
        match &self.peer.state {
            PeerState::Collecting(_) => PeerPhase::Collecting,
            PeerState::Ready(_) => PeerPhase::KeyComplete,
            PeerState::Encapsulated { .. } => PeerPhase::Encapsulated,
        }
    }

    /// Computes one send's braid changes and its chunk slot. `advance_own`:
    /// this send's DH step mixed our ready secret. RNG order: our next key
    /// pair (64 bytes) if one is due, then the encapsulation (32 bytes).
    pub(crate) fn stage_send<R: RngCore + CryptoRng>(
        &self,
        advance_own: bool,
        rng: &mut R,
    ) -> SendStage {
        let own_epoch = if advance_own {
            self.own.epoch.saturating_add(1)
        } else {
            self.own.epoch
        };
        let kept_key = if advance_own {
            None
        } else {
            self.own.key.as_ref()
        };
        let new_key = kept_key
            .is_none()
            .then(|| Arc::new(KemKeyPair::generate(rng)));
        let own_key = kept_key.or(new_key.as_ref());
        let own_wants = advance_own || self.own.ready.is_none();
        let own_index = if advance_own { 0 } else { self.own.next_chunk };

        let encapsulated = match &self.peer.state {
            PeerState::Ready(key) => Some(encapsulate(key, rng)),
            _ => None,
        };
        let peer_ct = match (&self.peer.state, &encapsulated) {
            (_, Some((ct, _))) => Some((ct, 0)),
            (
                PeerState::Encapsulated {
                    ciphertext,
                    next_chunk,
                    ..
                },
                None,
            ) => Some((ciphertext, *next_chunk)),
            _ => None,
        };

        let chunk = match (own_key.filter(|_| own_wants), peer_ct) {
            (Some(_), Some((ct, index))) if self.turn => {
                Chunk::of(ChunkKind::Ciphertext, self.peer.epoch, index, ct.as_bytes())
            }
            (Some(key), _) => Chunk::of(
                ChunkKind::EncapsulationKey,
                own_epoch,
                own_index,
                key.public().as_bytes(),
            ),
            (None, Some((ct, index))) => {
                Chunk::of(ChunkKind::Ciphertext, self.peer.epoch, index, ct.as_bytes())
            }
            (None, None) => Chunk::NONE,
        };
        SendStage {
            advance_own,
            new_key,
            encapsulated,
            chunk,
        }
    }

    /// Applies a staged send (only after the message was accepted).
    pub(crate) fn commit_send(&mut self, stage: SendStage) {
        if stage.advance_own {
            self.advance_own();
        }
        if let Some(key) = stage.new_key {
            self.own.key = Some(key);
        }
        if let Some((ciphertext, secret)) = stage.encapsulated {
            self.peer.state = PeerState::Encapsulated {
                ciphertext,
                secret,
                next_chunk: 0,
            };
        }
        match stage.chunk.kind {
            ChunkKind::EncapsulationKey => {
                self.own.next_chunk = (stage.chunk.index + 1) % EK_CHUNKS
            }
            ChunkKind::Ciphertext => {
                if let PeerState::Encapsulated { next_chunk, .. } = &mut self.peer.state {
                    *next_chunk = (stage.chunk.index + 1) % CT_CHUNKS;
                }
            }
            ChunkKind::None => {}
        }
        self.turn = !self.turn;
    }

    /// Our ready secret was mixed (by a send or an ephemeral step): drop it
    /// with its key pair and start the next epoch (its key pair is drawn by
    /// the next send).
    pub(crate) fn advance_own(&mut self) {
        self.own.epoch = self.own.epoch.saturating_add(1);
        self.own.key = None;
        self.own.ready = None;
        self.own.ciphertext = ChunkBuffer::new();
        self.own.next_chunk = 0;
    }

    /// A new receiving chain that mixed our encapsulated secret committed:
    /// drop it and collect the peer's next key.
    pub(crate) fn peer_mixed(&mut self) {
        self.peer.epoch = self.peer.epoch.saturating_add(1);
        self.peer.state = PeerState::Collecting(ChunkBuffer::new());
    }

    /// Applies the chunk of a message whose tag verified (rules PQ-R3, R4).
    pub(crate) fn receive_chunk(&mut self, chunk: &Chunk) -> ChunkOutcome {
        match chunk.kind {
            ChunkKind::None => ChunkOutcome::Empty,
            ChunkKind::EncapsulationKey => {
                let PeerState::Collecting(buffer) = &mut self.peer.state else {
                    return ChunkOutcome::Ignored;
                };
                if chunk.epoch != self.peer.epoch {
                    return ChunkOutcome::Ignored;
                }
                buffer.insert(chunk.index, &chunk.data);
                if !buffer.is_complete() {
                    return ChunkOutcome::Stored;
                }
                match KemPublicKey::from_bytes(buffer.bytes()) {
                    Ok(key) => {
                        self.peer.state = PeerState::Ready(Box::new(key));
                        ChunkOutcome::KeyComplete
                    }
                    Err(_) => {
                        self.peer.state = PeerState::Collecting(ChunkBuffer::new());
                        ChunkOutcome::InvalidKey
                    }
                }
            }
            ChunkKind::Ciphertext => {
                let own = &mut self.own;
                let Some(key) = own.key.as_ref() else {
                    return ChunkOutcome::Ignored;
                };
                if chunk.epoch != own.epoch || own.ready.is_some() {
                    return ChunkOutcome::Ignored;
                }
                own.ciphertext.insert(chunk.index, &chunk.data);
                if !own.ciphertext.is_complete() {
                    return ChunkOutcome::Stored;
                }
                let Ok(ciphertext) = KemCiphertext::from_bytes(own.ciphertext.bytes()) else {
                    return ChunkOutcome::Ignored;
                };
                own.ready = Some(key.decapsulate(&ciphertext));
                ChunkOutcome::SecretReady
            }
        }
    }
}

impl std::fmt::Debug for Braids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let peer_phase = match self.peer_phase() {
            PeerPhase::Collecting => "collecting",
            PeerPhase::KeyComplete => "key complete",
            PeerPhase::Encapsulated => "encapsulated",
        };
        f.debug_struct("Braids")
            .field("own_epoch", &self.own.epoch)
            .field("own_ciphertext_chunks", &self.own.ciphertext.count())
            .field("own_ready", &self.own.ready.is_some())
            .field("peer_epoch", &self.peer.epoch)
            .field("peer_phase", &peer_phase)
            .finish_non_exhaustive()
    }
}
