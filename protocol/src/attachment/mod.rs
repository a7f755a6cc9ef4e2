//! File attachments: how a file is encrypted into the blob the relay stores
//! (docs/PROTOCOL.md §14), and how a downloaded blob is checked and opened.
//!
//! A file travels in two parts. The blob, uploaded to the relay's
//! `/v1/blobs` (§11.9), is the file encrypted under a fresh random 32-byte
//! [`FileKey`] with the STREAM construction (Hoang, Reyhanitabar, Rogaway
//! and Vizár, "Online Authenticated-Encryption and its Nonce-Reuse
//! Misuse-Resistance", 2015) over ChaCha20-Poly1305, as the `aead` crate's
//! `stream` module implements it: the plaintext is cut into chunks of
//! [`ATTACHMENT_CHUNK_BYTES`], each sealed under a nonce that carries its
//! position and whether it is the last one, so a chunk moved, dropped,
//! duplicated or cut off the end fails to authenticate. The pointer
//! ([`FilePointer`], `Content` tag 5, §10) travels inside an end-to-end
//! encrypted message and holds what the receiver needs: the blob id, the
//! key, the SHA-256 digest of the whole blob, the plaintext size, a name and
//! a media type.
//!
//! Both directions stream with memory bounded by one chunk:
//! [`AttachmentEncryptor`] takes plaintext in pieces of any size and yields
//! ciphertext; [`AttachmentDecryptor`] takes ciphertext in pieces and yields
//! only plaintext whose chunk has authenticated. Its [`finish`] is the
//! verdict on the whole file (length, digest, last chunk): a caller writes
//! the released plaintext to a temporary file and moves it into place only
//! after `finish` succeeds, so nothing partial is ever left where the user
//! asked for the file.
//!
//! ```
//! use umbra_protocol::attachment::{self, AttachmentDecryptor, AttachmentEncryptor};
//! use umbra_protocol::content::FileKey;
//!
//! let key = FileKey::random(&mut rand::rngs::OsRng);
//! let mut encryptor = AttachmentEncryptor::new(&key);
//! let mut blob = Vec::new();
//! encryptor.push(b"hello, ", &mut blob)?;
//! encryptor.push(b"file", &mut blob)?;
//! let sealed = encryptor.finish(&mut blob)?;
//! assert_eq!(sealed.size, 11);
//!
//! let mut decryptor = AttachmentDecryptor::new(&key, sealed.size, sealed.digest)?;
//! let mut plaintext = Vec::new();
//! decryptor.push(&blob, &mut plaintext)?;
//! decryptor.finish(&mut plaintext)?;
//! assert_eq!(plaintext, b"hello, file");
//! # Ok::<(), attachment::AttachmentError>(())
//! ```
//!
//! Must never: reuse a file key for a second file (each file gets its own,
//! which is what makes the derived nonce prefix safe), release plaintext of a
//! chunk that has not authenticated, accept a blob whose digest, length or
//! last chunk is wrong, panic on any input, or hand-roll the AEAD or STREAM
//! primitives.
//!
//! [`finish`]: AttachmentDecryptor::finish

mod decrypt;
mod encrypt;
mod error;
mod keys;
mod layout;
mod name;

pub use crate::consts::{ATTACHMENT_CHUNK_BYTES, MAX_ATTACHMENT_BLOB_BYTES};
pub use crate::content::{FileKey, FilePointer};
pub use decrypt::AttachmentDecryptor;
pub use encrypt::{AttachmentEncryptor, SealedAttachment};
pub use error::AttachmentError;
pub use layout::{blob_len, chunk_count, MAX_ATTACHMENT_PLAINTEXT_BYTES, TAG_BYTES};
pub use name::sanitize_file_name;

#[cfg(feature = "low-level-api")]
pub use keys::{derive_chunk_keys, ChunkKeys, NONCE_PREFIX_BYTES};

/// Encrypts a whole file held in memory (tests, small files): the
/// streaming encryptor fed once.
pub fn seal(
    key: &FileKey,
    plaintext: &[u8],
) -> Result<(Vec<u8>, SealedAttachment), AttachmentError> {
    let mut encryptor = AttachmentEncryptor::new(key);
    let mut blob =
        Vec::with_capacity(usize::try_from(blob_len(plaintext.len() as u64)?).unwrap_or(0));
    encryptor.push(plaintext, &mut blob)?;
    let sealed = encryptor.finish(&mut blob)?;
    Ok((blob, sealed))
}

/// Checks and decrypts a whole blob held in memory against the pointer's
/// size and digest: the streaming decryptor fed once.
pub fn open(
    key: &FileKey,
    size: u64,
    digest: [u8; 32],
    blob: &[u8],
) -> Result<Vec<u8>, AttachmentError> {
    let mut decryptor = AttachmentDecryptor::new(key, size, digest)?;
    let mut plaintext = Vec::new();
    decryptor.push(blob, &mut plaintext)?;
    decryptor.finish(&mut plaintext)?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests;
