//! The fixed-size chunk slot every ratchet message header carries, and the
//! buffer a receiver assembles chunks into (docs/PROTOCOL.md §4.3, §4.13).
//!
//! ```text
//! offset  len  field
//!      0    1  kind    0x00 none, 0x01 encapsulation-key chunk, 0x02 ciphertext chunk
//!      1    4  epoch   u32be, the KEM epoch the chunk belongs to (0 for none)
//!      5    1  index   chunk index within that epoch's key or ciphertext (0 for none)
//!      6  128  data    bytes index*128 .. of the key or ciphertext, zero-padded
//! ```
//!
//! The slot has the same size whatever it carries (or carries nothing), so
//! the length of a message never tells the relay in which phase the braid is.
//!
//! Must never: accept a kind, index or padding outside this layout, or
//! assemble bytes of one epoch into another's buffer.

use crate::kem::{KEM_CIPHERTEXT_LEN, KEM_PUBLIC_KEY_LEN};

/// Payload bytes per chunk.
pub const CHUNK_DATA_LEN: usize = 128;
/// Encoded length of a chunk slot.
pub const CHUNK_SLOT_LEN: usize = 1 + 4 + 1 + CHUNK_DATA_LEN;
/// Chunks of an ML-KEM-768 encapsulation key (1184 bytes: 9 full + 32).
pub const EK_CHUNKS: u8 = KEM_PUBLIC_KEY_LEN.div_ceil(CHUNK_DATA_LEN) as u8;
/// Chunks of an ML-KEM-768 ciphertext (1088 bytes: 8 full + 64).
pub const CT_CHUNKS: u8 = KEM_CIPHERTEXT_LEN.div_ceil(CHUNK_DATA_LEN) as u8;

/// What a chunk slot carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    /// Nothing (all other slot bytes zero).
    None = 0x00,
    /// A chunk of the sender's own encapsulation key for `epoch`.
    EncapsulationKey = 0x01,
    /// A chunk of the ciphertext the sender encapsulated to the receiver's
    /// key of `epoch`.
    Ciphertext = 0x02,
}

/// The slot bytes are not a valid chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Kind byte other than 0x00, 0x01, 0x02.
    #[error("unknown PQ chunk kind {0:#04x}")]
    UnknownKind(u8),
    /// An index past the last chunk of its kind, or epoch 0 on a chunk.
    #[error("PQ chunk index or epoch out of range")]
    OutOfRange,
    /// Bytes that must be zero (an empty slot, a last chunk's padding) are not.
    #[error("PQ chunk padding is not zero")]
    NonZeroPadding,
}

/// One decoded chunk slot (public bytes: an encapsulation key or a KEM
/// ciphertext, never a secret).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// What the slot carries.
    pub kind: ChunkKind,
    /// The KEM epoch (0 for [`ChunkKind::None`]).
    pub epoch: u32,
    /// Index of the chunk within its key or ciphertext.
    pub index: u8,
    /// The chunk's bytes, zero-padded to [`CHUNK_DATA_LEN`].
    pub data: [u8; CHUNK_DATA_LEN],
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("kind", &self.kind)
            .field("epoch", &self.epoch)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// Length of the object chunks of `kind` assemble into (0 for none).
fn object_len(kind: ChunkKind) -> usize {
    match kind {
        ChunkKind::None => 0,
        ChunkKind::EncapsulationKey => KEM_PUBLIC_KEY_LEN,
        ChunkKind::Ciphertext => KEM_CIPHERTEXT_LEN,
    }
}

/// How many bytes of `object` chunk `index` carries.
fn chunk_len(object: usize, index: u8) -> usize {
    let start = usize::from(index) * CHUNK_DATA_LEN;
    object.saturating_sub(start).min(CHUNK_DATA_LEN)
}

impl Chunk {
    /// The empty slot.
    pub const NONE: Chunk = Chunk {
        kind: ChunkKind::None,
        epoch: 0,
        index: 0,
        data: [0; CHUNK_DATA_LEN],
    };

    /// Chunk `index` of `object` (an encapsulation key or ciphertext).
    pub(crate) fn of(kind: ChunkKind, epoch: u32, index: u8, object: &[u8]) -> Chunk {
        let start = usize::from(index) * CHUNK_DATA_LEN;
        let len = chunk_len(object.len(), index);
        let mut data = [0u8; CHUNK_DATA_LEN];
        if let Some(src) = object.get(start..start + len) {
            data[..len].copy_from_slice(src);
        }
        Chunk {
            kind,
            epoch,
            index,
            data,
        }
    }

    /// The fixed [`CHUNK_SLOT_LEN`]-byte encoding.
    pub fn encode(&self) -> [u8; CHUNK_SLOT_LEN] {
        let mut out = [0u8; CHUNK_SLOT_LEN];
        out[0] = self.kind as u8;
        out[1..5].copy_from_slice(&self.epoch.to_be_bytes());
        out[5] = self.index;
        out[6..].copy_from_slice(&self.data);
        out
    }

    /// Parses and checks one slot: known kind, for a chunk a non-zero epoch
    /// and an index below its kind's count, and zero bytes wherever the
    /// layout has nothing to carry.
    pub fn decode(slot: &[u8; CHUNK_SLOT_LEN]) -> Result<Chunk, ChunkError> {
        let kind = match slot[0] {
            0x00 => ChunkKind::None,
            0x01 => ChunkKind::EncapsulationKey,
            0x02 => ChunkKind::Ciphertext,
            other => return Err(ChunkError::UnknownKind(other)),
        };
        let mut epoch = [0u8; 4];
        epoch.copy_from_slice(&slot[1..5]);
        let epoch = u32::from_be_bytes(epoch);
        let index = slot[5];
        let mut data = [0u8; CHUNK_DATA_LEN];
        data.copy_from_slice(&slot[6..]);
        let used = match kind {
            ChunkKind::None => {
                if epoch != 0 || index != 0 {
                    return Err(ChunkError::NonZeroPadding);
                }
                0
            }
            _ => {
                let count = object_len(kind).div_ceil(CHUNK_DATA_LEN);
                if epoch == 0 || usize::from(index) >= count {
                    return Err(ChunkError::OutOfRange);
                }
                chunk_len(object_len(kind), index)
            }
        };
        if data[used..].iter().any(|&b| b != 0) {
            return Err(ChunkError::NonZeroPadding);
        }
        Ok(Chunk {
            kind,
            epoch,
            index,
            data,
        })
    }
}

/// An encapsulation key or ciphertext being assembled from chunks: which
/// indexes arrived, and their bytes. A duplicate chunk overwrites its own
/// bytes with the same authenticated bytes, so duplicates are harmless.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ChunkBuffer<const N: usize> {
    have: u16,
    bytes: Box<[u8; N]>,
}

impl<const N: usize> ChunkBuffer<N> {
    const COUNT: usize = N.div_ceil(CHUNK_DATA_LEN);

    pub(crate) fn new() -> Self {
        ChunkBuffer {
            have: 0,
            bytes: Box::new([0u8; N]),
        }
    }

    /// Rebuilds a stored buffer; `None` if `have` names a chunk past the end.
    pub(crate) fn from_parts(have: u16, bytes: [u8; N]) -> Option<Self> {
        (u32::from(have) >> Self::COUNT == 0).then(|| ChunkBuffer {
            have,
            bytes: Box::new(bytes),
        })
    }

    pub(crate) fn have(&self) -> u16 {
        self.have
    }

    pub(crate) fn bytes(&self) -> &[u8; N] {
        &self.bytes
    }

    /// Stores chunk `index` (the caller has checked kind and epoch).
    pub(crate) fn insert(&mut self, index: u8, data: &[u8; CHUNK_DATA_LEN]) {
        if usize::from(index) >= Self::COUNT {
            return;
        }
        let start = usize::from(index) * CHUNK_DATA_LEN;
        let len = chunk_len(N, index);
        self.bytes[start..start + len].copy_from_slice(&data[..len]);
        self.have |= 1 << index;
    }

    /// How many distinct chunks arrived.
    pub(crate) fn count(&self) -> u32 {
        self.have.count_ones()
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.count() as usize == Self::COUNT
    }
}

impl<const N: usize> zeroize::Zeroize for ChunkBuffer<N> {
    fn zeroize(&mut self) {
        self.have = 0;
        self.bytes.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_slot_size_are_as_specified() {
        assert_eq!((EK_CHUNKS, CT_CHUNKS, CHUNK_SLOT_LEN), (10, 9, 134));
    }

    #[test]
    fn chunks_round_trip_and_reassemble() {
        let ek: Vec<u8> = (0..KEM_PUBLIC_KEY_LEN)
            .map(|i| (i % 251) as u8 + 1)
            .collect();
        let mut buffer = ChunkBuffer::<KEM_PUBLIC_KEY_LEN>::new();
        for index in (0..EK_CHUNKS).rev() {
            let chunk = Chunk::of(ChunkKind::EncapsulationKey, 3, index, &ek);
            let decoded = Chunk::decode(&chunk.encode()).expect("valid chunk");
            assert_eq!(decoded, chunk);
            assert!(!buffer.is_complete());
            buffer.insert(index, &decoded.data);
            buffer.insert(index, &decoded.data);
        }
        assert!(buffer.is_complete());
        assert_eq!(&buffer.bytes()[..], &ek[..]);
    }

    #[test]
    fn malformed_slots_are_refused() {
        let ct = [0xabu8; KEM_CIPHERTEXT_LEN];
        let last = Chunk::of(ChunkKind::Ciphertext, 1, CT_CHUNKS - 1, &ct).encode();
        assert!(Chunk::decode(&last).is_ok());
        let mut padded = last;
        padded[CHUNK_SLOT_LEN - 1] = 1;
        assert_eq!(Chunk::decode(&padded), Err(ChunkError::NonZeroPadding));
        let mut past = last;
        past[5] = CT_CHUNKS;
        assert_eq!(Chunk::decode(&past), Err(ChunkError::OutOfRange));
        let mut epoch0 = last;
        epoch0[1..5].copy_from_slice(&[0; 4]);
        assert_eq!(Chunk::decode(&epoch0), Err(ChunkError::OutOfRange));
        let mut kind = last;
        kind[0] = 3;
        assert_eq!(Chunk::decode(&kind), Err(ChunkError::UnknownKind(3)));
        let mut none = Chunk::NONE.encode();
        assert_eq!(Chunk::decode(&none), Ok(Chunk::NONE));
        none[9] = 1;
        assert_eq!(Chunk::decode(&none), Err(ChunkError::NonZeroPadding));
    }
}
