//! The arithmetic of a blob's layout: how many chunks a file of a given size
//! has and how long its blob is (docs/PROTOCOL.md §14.2).
//!
//! Every chunk but the last holds exactly `ATTACHMENT_CHUNK_BYTES` of
//! plaintext; the last holds fewer (possibly none), so a full-size chunk is
//! never the last and a file whose size is a multiple of the chunk size ends
//! with an empty final chunk. That is what lets a decryptor tell the last
//! chunk by its length alone, before it authenticates.
//!
//! Must never: overflow (sizes past the limit are an error, not a wrap).

use super::AttachmentError;
use crate::consts::{ATTACHMENT_CHUNK_BYTES, MAX_ATTACHMENT_BLOB_BYTES};

/// The Poly1305 tag each chunk carries.
pub const TAG_BYTES: usize = 16;

const CHUNK: u64 = ATTACHMENT_CHUNK_BYTES as u64;
const SEALED_CHUNK: u64 = CHUNK + TAG_BYTES as u64;

/// Largest plaintext whose blob fits `MAX_ATTACHMENT_BLOB_BYTES`
/// (104 832 000 bytes: 1 599 full chunks and a last one of 39 936).
pub const MAX_ATTACHMENT_PLAINTEXT_BYTES: u64 = {
    let full = (MAX_ATTACHMENT_BLOB_BYTES - TAG_BYTES as u64) / SEALED_CHUNK;
    let rest = MAX_ATTACHMENT_BLOB_BYTES - TAG_BYTES as u64 - full * SEALED_CHUNK;
    let last = if rest < CHUNK { rest } else { CHUNK - 1 };
    full * CHUNK + last
};

/// Chunks in the blob of a `size`-byte file: `size / CHUNK + 1`.
pub fn chunk_count(size: u64) -> Result<u64, AttachmentError> {
    check(size)?;
    Ok(size / CHUNK + 1)
}

/// Length of the blob of a `size`-byte file: `size + 16 × chunk_count`.
pub fn blob_len(size: u64) -> Result<u64, AttachmentError> {
    Ok(size + TAG_BYTES as u64 * chunk_count(size)?)
}

fn check(size: u64) -> Result<(), AttachmentError> {
    if size > MAX_ATTACHMENT_PLAINTEXT_BYTES {
        return Err(AttachmentError::TooLarge {
            size,
            max: MAX_ATTACHMENT_PLAINTEXT_BYTES,
        });
    }
    Ok(())
}
