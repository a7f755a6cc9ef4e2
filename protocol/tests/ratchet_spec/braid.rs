//! An independent model of the two KEM braids of docs/PROTOCOL.md §4.13,
//! from the `ml-kem` crate (FIPS 203 KeyGen_internal / Encaps_internal /
//! Decaps) and the spec's chunk layout and scheduling rules only.
//!
//! Must never: call into umbra-protocol's ratchet or kem modules.

use ::kem::Decapsulate;
use ml_kem::{EncapsulateDeterministic, EncodedSizeUser, KemCore, MlKem768};

/// §4.13 sizes, copied from the spec.
pub const CHUNK_DATA: usize = 128;
pub const EK_LEN: usize = 1184;
pub const CT_LEN: usize = 1088;
pub const EK_CHUNKS: u8 = 10;
pub const CT_CHUNKS: u8 = 9;
pub const SLOT_LEN: usize = 134;

type Dk = <MlKem768 as KemCore>::DecapsulationKey;

fn keygen(seed: &[u8; 64]) -> (Dk, Vec<u8>) {
    let d = ml_kem::B32::try_from(&seed[..32]).expect("32 bytes");
    let z = ml_kem::B32::try_from(&seed[32..]).expect("32 bytes");
    let (dk, ek) = MlKem768::generate_deterministic(&d, &z);
    (dk, ek.as_bytes().to_vec())
}

/// A chunk slot (§4.3 offset 44): kind, epoch u32be, index, 128 data bytes.
pub fn slot(kind: u8, epoch: u32, index: u8, object: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&epoch.to_be_bytes());
    out.push(index);
    let mut data = [0u8; CHUNK_DATA];
    if kind != 0 {
        let start = usize::from(index) * CHUNK_DATA;
        let end = (start + CHUNK_DATA).min(object.len());
        data[..end - start].copy_from_slice(&object[start..end]);
    }
    out.extend_from_slice(&data);
    out
}

enum Peer {
    Collecting { have: u16, bytes: Vec<u8> },
    Ready(Vec<u8>),
    Encapsulated { ct: Vec<u8>, ss: [u8; 32], next: u8 },
}

/// What a modelled send drew and sent, for the vector file.
#[derive(Default)]
pub struct SendRecord {
    pub new_kem_seed: Option<[u8; 64]>,
    pub encapsulation_m: Option<[u8; 32]>,
    pub encapsulated_secret: Option<[u8; 32]>,
    /// The whole 1088-byte ciphertext of that encapsulation.
    pub encapsulated_ciphertext: Option<Vec<u8>>,
    pub slot: Vec<u8>,
}

pub struct Braids {
    pub own_epoch: u32,
    own_seed: Option<[u8; 64]>,
    own_ct_have: u16,
    own_ct: Vec<u8>,
    pub own_ready: Option<[u8; 32]>,
    own_next: u8,
    pub peer_epoch: u32,
    peer: Peer,
    turn: bool,
}

impl Braids {
    /// §4.13: both braids at epoch 1, nothing drawn.
    pub fn new() -> Self {
        Braids {
            own_epoch: 1,
            own_seed: None,
            own_ct_have: 0,
            own_ct: vec![0; CT_LEN],
            own_ready: None,
            own_next: 0,
            peer_epoch: 1,
            peer: Peer::Collecting {
                have: 0,
                bytes: vec![0; EK_LEN],
            },
            turn: false,
        }
    }

    /// The phases of §4.13 as the vector file names them: ours is
    /// `no_key_pair` (none drawn yet), `awaiting_ciphertext` (key drawn, no
    /// `ss_ready`) or `secret_ready`; the peer's `collecting`,
    /// `key_complete` or `encapsulated`.
    pub fn phases(&self) -> (&'static str, &'static str) {
        let own = match (&self.own_seed, &self.own_ready) {
            (_, Some(_)) => "secret_ready",
            (Some(_), None) => "awaiting_ciphertext",
            (None, None) => "no_key_pair",
        };
        let peer = match &self.peer {
            Peer::Collecting { .. } => "collecting",
            Peer::Ready(_) => "key_complete",
            Peer::Encapsulated { .. } => "encapsulated",
        };
        (own, peer)
    }

    /// The secret (and epoch) our next sending DH step mixes.
    pub fn to_mix_on_send(&self) -> Option<(u32, [u8; 32])> {
        self.own_ready.map(|s| (self.own_epoch, s))
    }

    /// The secret a new receiving chain marked `epoch` (non-zero) mixes.
    pub fn to_mix_on_receive(&self, epoch: u32) -> [u8; 32] {
        match &self.peer {
            Peer::Encapsulated { ss, .. } if epoch == self.peer_epoch => *ss,
            _ => panic!("the spec refuses pq_epoch {epoch} here (PQ-R2)"),
        }
    }

    /// §4.13 sending: after a hybrid step our epoch moves on; then the key
    /// pair if none (64 bytes from `random`), the encapsulation if the
    /// peer's key is complete (32 bytes), then the slot.
    pub fn send(&mut self, mixed: bool, random: &mut impl FnMut(usize) -> Vec<u8>) -> SendRecord {
        let mut record = SendRecord::default();
        if mixed {
            self.own_epoch += 1;
            self.own_seed = None;
            self.own_ready = None;
            self.own_ct_have = 0;
            self.own_ct = vec![0; CT_LEN];
            self.own_next = 0;
        }
        if self.own_seed.is_none() {
            let seed: [u8; 64] = random(64).try_into().expect("64 bytes");
            self.own_seed = Some(seed);
            record.new_kem_seed = Some(seed);
        }
        if let Peer::Ready(ek) = &self.peer {
            let m: [u8; 32] = random(32).try_into().expect("32 bytes");
            let key = ml_kem::kem::EncapsulationKey::<ml_kem::MlKem768Params>::from_bytes(
                ek.as_slice().try_into().expect("1184 bytes"),
            );
            let (ct, ss) = key
                .encapsulate_deterministic(&m.into())
                .expect("infallible");
            let ss: [u8; 32] = ss.into();
            record.encapsulation_m = Some(m);
            record.encapsulated_secret = Some(ss);
            record.encapsulated_ciphertext = Some(ct.to_vec());
            self.peer = Peer::Encapsulated {
                ct: ct.to_vec(),
                ss,
                next: 0,
            };
        }
        let own_wants = self.own_ready.is_none();
        let ct_next = match &self.peer {
            Peer::Encapsulated { ct, next, .. } => Some((ct.clone(), *next)),
            _ => None,
        };
        let (_, ek) = keygen(&self.own_seed.expect("drawn above"));
        record.slot = match (own_wants, ct_next) {
            (true, Some((ct, i))) if self.turn => self.sent_ct(&ct, i),
            (true, _) => {
                let s = slot(1, self.own_epoch, self.own_next, &ek);
                self.own_next = (self.own_next + 1) % EK_CHUNKS;
                s
            }
            (false, Some((ct, i))) => self.sent_ct(&ct, i),
            (false, None) => slot(0, 0, 0, &[]),
        };
        self.turn = !self.turn;
        record
    }

    fn sent_ct(&mut self, ct: &[u8], index: u8) -> Vec<u8> {
        if let Peer::Encapsulated { next, .. } = &mut self.peer {
            *next = (index + 1) % CT_CHUNKS;
        }
        slot(2, self.peer_epoch, index, ct)
    }

    /// A received chain mixed our encapsulated secret: collect anew.
    pub fn peer_mixed(&mut self) {
        self.peer_epoch += 1;
        self.peer = Peer::Collecting {
            have: 0,
            bytes: vec![0; EK_LEN],
        };
    }

    /// §4.13 PQ-R3/R4 for the slot of a message that decrypted. Returns the
    /// secret decapsulated by this chunk, if it completed the ciphertext.
    pub fn receive(&mut self, slot: &[u8]) -> Option<[u8; 32]> {
        assert_eq!(slot.len(), SLOT_LEN);
        let epoch = u32::from_be_bytes(slot[1..5].try_into().expect("4 bytes"));
        let index = slot[5];
        let start = usize::from(index) * CHUNK_DATA;
        match slot[0] {
            1 => {
                if let Peer::Collecting { have, bytes } = &mut self.peer {
                    if epoch == self.peer_epoch {
                        let end = (start + CHUNK_DATA).min(EK_LEN);
                        bytes[start..end].copy_from_slice(&slot[6..6 + end - start]);
                        *have |= 1 << index;
                        if *have == (1 << EK_CHUNKS) - 1 {
                            // (a key failing the modulus check never occurs here)
                            self.peer = Peer::Ready(bytes.clone());
                        }
                    }
                }
                None
            }
            2 => {
                let seed = self.own_seed?;
                if epoch != self.own_epoch || self.own_ready.is_some() {
                    return None;
                }
                let end = (start + CHUNK_DATA).min(CT_LEN);
                self.own_ct[start..end].copy_from_slice(&slot[6..6 + end - start]);
                self.own_ct_have |= 1 << index;
                if self.own_ct_have != (1 << CT_CHUNKS) - 1 {
                    return None;
                }
                let (dk, _) = keygen(&seed);
                let ct: ml_kem::Ciphertext<MlKem768> =
                    self.own_ct.as_slice().try_into().expect("1088 bytes");
                let ss: [u8; 32] = dk.decapsulate(&ct).expect("infallible").into();
                self.own_ready = Some(ss);
                Some(ss)
            }
            _ => None,
        }
    }
}
