//! The sending side: plaintext in, blob out, one chunk of memory at a time
//! (docs/PROTOCOL.md §14.4).
//!
//! The encryptor buffers plaintext until it holds a full chunk, seals it as
//! a non-final STREAM chunk and appends it to the caller's output, and
//! hashes every byte it emits; [`AttachmentEncryptor::finish`] seals what is
//! left (0 to `ATTACHMENT_CHUNK_BYTES - 1` bytes) as the final chunk and
//! returns the blob's digest and the plaintext size for the pointer.
//!
//! Must never: hold more than one chunk of plaintext, emit a full-size final
//! chunk (a decryptor tells the last chunk by its shorter length), or accept
//! a file past `MAX_ATTACHMENT_PLAINTEXT_BYTES`.

use aead::stream::EncryptorBE32;
use aead::KeyInit;
use chacha20poly1305::ChaCha20Poly1305;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::keys::derive_chunk_keys;
use super::layout::{MAX_ATTACHMENT_PLAINTEXT_BYTES, TAG_BYTES};
use super::AttachmentError;
use crate::consts::ATTACHMENT_CHUNK_BYTES;
use crate::content::FileKey;

/// What the pointer needs from a finished encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedAttachment {
    /// SHA-256 of the whole blob.
    pub digest: [u8; 32],
    /// Plaintext bytes.
    pub size: u64,
    /// Blob bytes (`blob_len(size)`).
    pub blob_len: u64,
}

/// Encrypts one file into its blob, streaming.
pub struct AttachmentEncryptor {
    stream: EncryptorBE32<ChaCha20Poly1305>,
    /// Plaintext not yet sealed (then, briefly, the sealed chunk in place);
    /// wiped on drop.
    pending: Zeroizing<Vec<u8>>,
    hasher: Sha256,
    size: u64,
    blob_len: u64,
}

impl std::fmt::Debug for AttachmentEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentEncryptor")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl AttachmentEncryptor {
    /// Starts the blob of a file sealed under `key`, which must be fresh
    /// (`FileKey::random` with `OsRng`) and used for this file only.
    pub fn new(key: &FileKey) -> Self {
        let keys = derive_chunk_keys(key);
        let aead = ChaCha20Poly1305::new(&keys.chunk_key.into());
        Self {
            stream: EncryptorBE32::from_aead(aead, &keys.nonce_prefix.into()),
            pending: Zeroizing::new(Vec::with_capacity(ATTACHMENT_CHUNK_BYTES + TAG_BYTES)),
            hasher: Sha256::new(),
            size: 0,
            blob_len: 0,
        }
    }

    /// Takes the next plaintext bytes (any amount) and appends every chunk
    /// they complete, sealed, to `out`.
    pub fn push(&mut self, mut plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        let size = self.size.saturating_add(plaintext.len() as u64);
        if size > MAX_ATTACHMENT_PLAINTEXT_BYTES {
            return Err(AttachmentError::TooLarge {
                size,
                max: MAX_ATTACHMENT_PLAINTEXT_BYTES,
            });
        }
        self.size = size;
        while !plaintext.is_empty() {
            let room = ATTACHMENT_CHUNK_BYTES - self.pending.len();
            let (now, later) = plaintext.split_at(room.min(plaintext.len()));
            self.pending.extend_from_slice(now);
            plaintext = later;
            if self.pending.len() == ATTACHMENT_CHUNK_BYTES {
                // A full chunk is never the last one (layout.rs), so it
                // can go out as soon as it fills.
                self.stream
                    .encrypt_next_in_place(&[], &mut *self.pending)
                    .map_err(|_| AttachmentError::TooLarge {
                        size,
                        max: MAX_ATTACHMENT_PLAINTEXT_BYTES,
                    })?;
                self.emit(out);
            }
        }
        Ok(())
    }

    /// Seals the last chunk, appends it to `out`, and returns what the
    /// pointer carries.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<SealedAttachment, AttachmentError> {
        let Self {
            stream,
            mut pending,
            mut hasher,
            size,
            blob_len,
        } = self;
        stream
            .encrypt_last_in_place(&[], &mut *pending)
            .map_err(|_| AttachmentError::TooLarge {
                size,
                max: MAX_ATTACHMENT_PLAINTEXT_BYTES,
            })?;
        hasher.update(&*pending);
        out.extend_from_slice(&pending);
        Ok(SealedAttachment {
            digest: hasher.finalize().into(),
            size,
            blob_len: blob_len + pending.len() as u64,
        })
    }

    fn emit(&mut self, out: &mut Vec<u8>) {
        self.hasher.update(&*self.pending);
        out.extend_from_slice(&self.pending);
        self.blob_len += self.pending.len() as u64;
        self.pending.clear();
    }
}
