//! The receiving side: blob in, authenticated plaintext out, one chunk of
//! memory at a time (docs/PROTOCOL.md §14.5).
//!
//! The decryptor knows from the pointer how long the blob must be, so it
//! refuses a byte past that length at once (a hostile relay cannot make it
//! read without bound) and tells a short download from a tampered one. It
//! buffers ciphertext until it holds a full sealed chunk, which is never the
//! last, opens it as the next STREAM chunk and only then appends its
//! plaintext to the caller's output. [`AttachmentDecryptor::finish`] checks
//! the length, then the SHA-256 of the whole blob against the pointer's
//! digest, then opens the final chunk with the last-chunk flag set: only
//! when it returns `Ok` is the file complete and genuine.
//!
//! Must never: release plaintext of a chunk before its tag verified, accept
//! anything after a failure, or treat released plaintext as a file before
//! `finish` succeeded (callers write it to a temporary file and move it into
//! place afterwards).

use aead::stream::DecryptorBE32;
use aead::KeyInit;
use chacha20poly1305::ChaCha20Poly1305;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::keys::derive_chunk_keys;
use super::layout::{blob_len, TAG_BYTES};
use super::{AttachmentError, FilePointer};
use crate::consts::ATTACHMENT_CHUNK_BYTES;
use crate::content::FileKey;

const SEALED_CHUNK: usize = ATTACHMENT_CHUNK_BYTES + TAG_BYTES;

/// Checks and decrypts one blob, streaming.
pub struct AttachmentDecryptor {
    /// `None` once a call failed: a refused blob stays refused.
    /// Its cipher wipes its key on drop (chacha20poly1305's own `Drop`).
    stream: Option<DecryptorBE32<ChaCha20Poly1305>>,
    /// Ciphertext until a chunk opens, then that chunk's plaintext until it
    /// is released: wiped after each release or failure and on drop.
    pending: Zeroizing<Vec<u8>>,
    hasher: Sha256,
    digest: [u8; 32],
    expected: u64,
    received: u64,
    next_chunk: u32,
}

impl std::fmt::Debug for AttachmentDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentDecryptor")
            .field("expected", &self.expected)
            .field("received", &self.received)
            .field("next_chunk", &self.next_chunk)
            .finish_non_exhaustive()
    }
}

impl AttachmentDecryptor {
    /// Starts checking the blob of a `size`-byte file sealed under `key`
    /// whose blob hashes to `digest` (all three from its pointer). A size
    /// past the limit is refused before any byte is downloaded.
    pub fn new(key: &FileKey, size: u64, digest: [u8; 32]) -> Result<Self, AttachmentError> {
        let expected = blob_len(size)?;
        let keys = derive_chunk_keys(key);
        let aead = ChaCha20Poly1305::new(&keys.chunk_key.into());
        Ok(Self {
            stream: Some(DecryptorBE32::from_aead(aead, &keys.nonce_prefix.into())),
            pending: Zeroizing::new(Vec::with_capacity(SEALED_CHUNK)),
            hasher: Sha256::new(),
            digest,
            expected,
            received: 0,
            next_chunk: 0,
        })
    }

    /// [`AttachmentDecryptor::new`] with the pointer's key, size and digest.
    pub fn for_pointer(pointer: &FilePointer) -> Result<Self, AttachmentError> {
        Self::new(&pointer.key, pointer.size, pointer.digest)
    }

    /// The blob length the pointer implies, for a progress bar or to check
    /// the relay's `Content-Length` before downloading.
    pub fn expected_blob_len(&self) -> u64 {
        self.expected
    }

    /// Takes the next blob bytes (any amount) and appends the plaintext of
    /// every chunk they complete and that authenticates to `out`.
    pub fn push(
        &mut self,
        mut ciphertext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), AttachmentError> {
        if self.stream.is_none() {
            return Err(AttachmentError::Failed);
        }
        let received = self.received.saturating_add(ciphertext.len() as u64);
        if received > self.expected {
            self.stream = None;
            return Err(AttachmentError::Oversized {
                expected: self.expected,
            });
        }
        self.received = received;
        self.hasher.update(ciphertext);
        while !ciphertext.is_empty() {
            let room = SEALED_CHUNK - self.pending.len();
            let (now, later) = ciphertext.split_at(room.min(ciphertext.len()));
            self.pending.extend_from_slice(now);
            ciphertext = later;
            if self.pending.len() == SEALED_CHUNK {
                // A full sealed chunk is never the last (layout.rs): the
                // final chunk is always shorter, so it waits for `finish`.
                self.open_next()?;
                out.extend_from_slice(&self.pending);
                // Wipes the whole capacity, not just the length.
                self.pending.zeroize();
            }
        }
        Ok(())
    }

    /// Ends the blob: refuses it if it is short, if its digest is not the
    /// pointer's, or if its final chunk does not authenticate as the last;
    /// otherwise appends that chunk's plaintext to `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        let Some(stream) = self.stream.take() else {
            return Err(AttachmentError::Failed);
        };
        if self.received < self.expected {
            return Err(AttachmentError::Truncated {
                received: self.received,
                expected: self.expected,
            });
        }
        let digest: [u8; 32] = self.hasher.finalize().into();
        if !bool::from(digest.ct_eq(&self.digest)) {
            return Err(AttachmentError::DigestMismatch);
        }
        let index = self.next_chunk;
        stream
            .decrypt_last_in_place(&[], &mut *self.pending)
            .map_err(|_| AttachmentError::TamperedChunk { index })?;
        out.extend_from_slice(&self.pending);
        Ok(())
    }

    /// Opens the full chunk in `pending` in place; on failure the
    /// decryptor is spent and `pending` is never released.
    fn open_next(&mut self) -> Result<(), AttachmentError> {
        let index = self.next_chunk;
        let opened = match self.stream.as_mut() {
            Some(stream) => stream
                .decrypt_next_in_place(&[], &mut *self.pending)
                .is_ok(),
            None => false,
        };
        if !opened {
            self.stream = None;
            self.pending.zeroize();
            return Err(AttachmentError::TamperedChunk { index });
        }
        self.next_chunk = index.saturating_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pending buffer holds released plaintext between chunks: it must
    /// be a type that wipes itself on drop (this fails to compile if it
    /// becomes a plain `Vec` again), and a release leaves it empty.
    #[test]
    fn the_pending_plaintext_is_wiped() {
        fn wipes_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        let key = FileKey::from_bytes([7; 32]);
        let plaintext = vec![0x5a; ATTACHMENT_CHUNK_BYTES + 10];
        let (blob, sealed) = super::super::seal(&key, &plaintext).unwrap();
        let mut decryptor = AttachmentDecryptor::new(&key, sealed.size, sealed.digest).unwrap();
        wipes_on_drop(&decryptor.pending);
        let mut out = Vec::new();
        decryptor.push(&blob[..SEALED_CHUNK], &mut out).unwrap();
        assert_eq!(out.len(), ATTACHMENT_CHUNK_BYTES);
        assert!(decryptor.pending.is_empty());
    }
}
