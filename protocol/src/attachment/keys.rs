//! The keys one file's chunks are sealed under, derived from its file key
//! (docs/PROTOCOL.md §14.3).
//!
//! `chunk_key = HKDF-SHA256(salt = none, ikm = file_key,
//! info = "umbra/v1/attachment/chunk-key", L = 32)` and
//! `nonce_prefix = HKDF-SHA256(salt = none, ikm = file_key,
//! info = "umbra/v1/attachment/nonce-prefix", L = 7)`. A fixed prefix per
//! key is safe because the file key is fresh for every file; each label
//! separates its output from every other use of the same bytes.
//!
//! Must never: be fed a file key that sealed another file, or show a key in
//! `Debug`.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::content::FileKey;
use crate::labels;

/// ChaCha20-Poly1305's 12-byte nonce less STREAM-BE32's 5 (a 32-bit
/// counter and the last-chunk flag byte).
pub const NONCE_PREFIX_BYTES: usize = 7;

/// What the chunks of one file are sealed under. Secret: wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct ChunkKeys {
    /// The ChaCha20-Poly1305 key.
    pub chunk_key: [u8; 32],
    /// The STREAM nonce prefix.
    pub nonce_prefix: [u8; NONCE_PREFIX_BYTES],
}

impl std::fmt::Debug for ChunkKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkKeys(<redacted>)")
    }
}

/// Derives the chunk key and nonce prefix from a file key.
pub fn derive_chunk_keys(file_key: &FileKey) -> ChunkKeys {
    let hk = Hkdf::<Sha256>::new(None, file_key.expose_secret());
    let mut keys = ChunkKeys {
        chunk_key: [0u8; 32],
        nonce_prefix: [0u8; NONCE_PREFIX_BYTES],
    };
    // Both lengths are far below HKDF-SHA256's 255 × 32-byte limit.
    hk.expand(labels::ATTACHMENT_CHUNK_KEY, &mut keys.chunk_key)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    hk.expand(labels::ATTACHMENT_NONCE_PREFIX, &mut keys.nonce_prefix)
        .expect("7 bytes is a valid HKDF-SHA256 length");
    keys
}
