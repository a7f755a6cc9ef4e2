//! Downloaded attachment blobs (docs/PROTOCOL.md §14): any bytes, fed to the
//! streaming decryptor in any pieces, are refused with a named error or
//! (only for a genuine blob) opened, never a panic, and no plaintext is
//! released before its chunk authenticated.
//!
//! The first byte picks the layer. 0: the rest is a blob under the vector
//! file key, with the size its length implies and its own digest, so the
//! length and digest checks pass and the chunk AEAD is what refuses it. 1:
//! the rest is a plaintext that is sealed, damaged at one byte (chosen by
//! the input) and must then be refused. The second byte sets the piece
//! size the blob is pushed in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use umbra_protocol::attachment::{self, AttachmentDecryptor, FileKey, ATTACHMENT_CHUNK_BYTES};

/// The vector file key (docs/test-vectors/attachment.json `file_key`), so
/// the seeds' chunks are real ones.
const VECTOR_KEY: [u8; 32] = [
    0x92, 0x41, 0x72, 0xe4, 0xa7, 0xdf, 0x35, 0xcf, 0x6c, 0xc0, 0x62, 0xed, 0x3c, 0xc7, 0x87, 0xc2,
    0x94, 0x30, 0x21, 0xbe, 0xfc, 0xd7, 0xf8, 0x2f, 0x0a, 0xf4, 0x6f, 0x30, 0xc9, 0xd4, 0x43, 0x3c,
];

const SEALED: usize = ATTACHMENT_CHUNK_BYTES + 16;

/// The plaintext size a blob of `len` bytes would hold, if any.
fn implied_size(len: usize) -> u64 {
    if len < 16 {
        return len as u64;
    }
    let full = (len - 16) / SEALED;
    let rest = len - 16 - full * SEALED;
    if rest < ATTACHMENT_CHUNK_BYTES {
        (full * ATTACHMENT_CHUNK_BYTES + rest) as u64
    } else {
        len as u64
    }
}

fn feed(key: &FileKey, size: u64, digest: [u8; 32], blob: &[u8], piece: usize) -> Option<Vec<u8>> {
    let mut decryptor = AttachmentDecryptor::new(key, size, digest).ok()?;
    let mut out = Vec::new();
    for part in blob.chunks(piece) {
        let before = out.len();
        if decryptor.push(part, &mut out).is_err() {
            assert_eq!(out.len(), before, "a refused chunk released plaintext");
            return None;
        }
    }
    decryptor.finish(&mut out).ok()?;
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let [mode, piece, rest @ ..] = data else {
        return;
    };
    let step = usize::from(*piece);
    let piece = step * 521 + 1;
    let key = FileKey::from_bytes(VECTOR_KEY);
    match mode % 2 {
        0 => {
            let digest = Sha256::digest(rest).into();
            let _ = feed(&key, implied_size(rest.len()), digest, rest, piece);
        }
        _ => {
            let (mut blob, sealed) =
                attachment::seal(&key, rest).expect("a fuzz input is under the limit");
            assert_eq!(
                feed(&key, sealed.size, sealed.digest, &blob, piece).as_deref(),
                Some(rest)
            );
            let at = step * 7919 % blob.len();
            blob[at] ^= 1;
            assert!(
                feed(&key, sealed.size, sealed.digest, &blob, piece).is_none(),
                "damaged blob opened"
            );
        }
    }
});
