//! Test vectors for file attachments (docs/PROTOCOL.md §14,
//! `docs/test-vectors/attachment.json`): a fixed file key from a fixed seed,
//! a three-chunk file whose last chunk is short, every sealed chunk with the
//! nonce it was sealed under, the blob's digest and the pointer's bytes.
//!
//! The expected chunks are rebuilt here from the spec with the primitives
//! alone (HKDF-SHA256 with the §14.3 labels, ChaCha20-Poly1305 under the
//! nonce `prefix || counter_be32 || flag`), never by the STREAM code the
//! library uses, and the library must produce exactly them. Run once with
//! UMBRA_REGENERATE_VECTORS=1 after a deliberate change (see common/mod.rs).

mod common;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use common::{check_or_regenerate, hex};
use hkdf::Hkdf;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::json;
use sha2::{Digest, Sha256};
use umbra_protocol::attachment::{
    self, AttachmentError, FileKey, FilePointer, ATTACHMENT_CHUNK_BYTES,
};
use umbra_protocol::content::{self, Content, MessageId};

const C: usize = ATTACHMENT_CHUNK_BYTES;
/// Two full chunks and a last one of 1000 bytes.
const SIZE: usize = 2 * C + 1000;

/// The spec's plaintext: byte i is i mod 251.
fn plaintext() -> Vec<u8> {
    (0..SIZE).map(|i| (i % 251) as u8).collect()
}

fn file_key() -> FileKey {
    FileKey::random(&mut ChaCha20Rng::from_seed([0x41; 32]))
}

/// A chunk's nonce and its sealed bytes.
type SealedChunk = (Vec<u8>, Vec<u8>);

/// §14.3 and §14.4 from primitives: the chunk key, the nonce prefix, and
/// (nonce, sealed chunk) per chunk.
fn chunks_from_spec(key: &FileKey, plaintext: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<SealedChunk>) {
    let hk = Hkdf::<Sha256>::new(None, key.expose_secret());
    let mut chunk_key = [0u8; 32];
    hk.expand(b"umbra/v1/attachment/chunk-key", &mut chunk_key)
        .unwrap();
    let mut prefix = [0u8; 7];
    hk.expand(b"umbra/v1/attachment/nonce-prefix", &mut prefix)
        .unwrap();
    let aead = ChaCha20Poly1305::new(&chunk_key.into());
    let pieces: Vec<&[u8]> = plaintext.chunks(C).collect();
    assert_eq!(pieces.len(), 3, "the vector's file has three chunks");
    let chunks = pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut nonce = prefix.to_vec();
            nonce.extend_from_slice(&(i as u32).to_be_bytes());
            nonce.push(u8::from(i == pieces.len() - 1));
            let sealed = aead.encrypt(Nonce::from_slice(&nonce), *piece).unwrap();
            (nonce, sealed)
        })
        .collect();
    (chunk_key.to_vec(), prefix.to_vec(), chunks)
}

fn pointer(key: FileKey, digest: [u8; 32]) -> FilePointer {
    FilePointer {
        id: MessageId([0x11; 16]),
        blob_id: vec![0xb1; 32],
        key,
        digest,
        size: SIZE as u64,
        file_name: "report.pdf".to_owned(),
        content_type: "application/pdf".to_owned(),
    }
}

#[test]
fn attachment_vectors() {
    let key = file_key();
    let plaintext = plaintext();
    let (chunk_key, prefix, chunks) = chunks_from_spec(&key, &plaintext);
    let spec_blob: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    let digest: [u8; 32] = Sha256::digest(&spec_blob).into();

    // The library, fed in uneven pieces, produces exactly the spec's blob.
    let mut encryptor = attachment::AttachmentEncryptor::new(&key);
    let mut blob = Vec::new();
    for piece in plaintext.chunks(40_000) {
        encryptor.push(piece, &mut blob).unwrap();
    }
    let sealed = encryptor.finish(&mut blob).unwrap();
    assert_eq!(hex(&blob), hex(&spec_blob), "blob differs from §14.4");
    assert_eq!(sealed.digest, digest);
    assert_eq!(sealed.size, SIZE as u64);
    assert_eq!(
        attachment::open(&key, SIZE as u64, digest, &blob).unwrap(),
        plaintext
    );

    let pointer_bytes =
        content::encode(&Content::FilePointer(pointer(key.clone(), digest))).unwrap();
    // §10.3: version 1, tag 5, then the FilePointer's fields in order.
    let mut expected = vec![0x01, 0x05, 0x10];
    expected.extend_from_slice(&[0x11; 16]);
    expected.push(32);
    expected.extend_from_slice(&[0xb1; 32]);
    expected.push(0x20);
    expected.extend_from_slice(key.expose_secret());
    expected.push(0x20);
    expected.extend_from_slice(&digest);
    expected.extend_from_slice(&[0xe8, 0x87, 0x08]); // varint(132 072)
    expected.push(10);
    expected.extend_from_slice(b"report.pdf");
    expected.push(15);
    expected.extend_from_slice(b"application/pdf");
    assert_eq!(
        hex(&pointer_bytes),
        hex(&expected),
        "pointer differs from §10.3"
    );

    // A tampered middle chunk, the blob cut after chunk 1, and chunks 0
    // and 1 swapped: each error the spec names.
    let mut tampered = blob.clone();
    tampered[C + 16] ^= 0x01;
    let cut = &blob[..2 * (C + 16)];
    let mut swapped = blob[C + 16..2 * (C + 16)].to_vec();
    swapped.extend_from_slice(&blob[..C + 16]);
    swapped.extend_from_slice(&blob[2 * (C + 16)..]);
    let refuse = |b: &[u8]| attachment::open(&key, SIZE as u64, digest, b).unwrap_err();
    assert_eq!(
        refuse(&tampered),
        AttachmentError::TamperedChunk { index: 1 }
    );
    assert_eq!(
        refuse(&swapped),
        AttachmentError::TamperedChunk { index: 0 }
    );
    assert!(matches!(refuse(cut), AttachmentError::Truncated { .. }));

    let vectors = json!({
        "description": "docs/PROTOCOL.md §14: file attachments. The plaintext is `size` bytes, byte i = i mod 251. \
            chunk_key and nonce_prefix are HKDF-SHA256(salt none, ikm file_key) with the §14.3 labels; \
            each chunk is ChaCha20-Poly1305(chunk_key, nonce, plaintext[64 KiB × index ..], aad empty); \
            the blob is the chunks in order; digest is SHA-256 of the blob; pointer is Content::FilePointer (§10.3).",
        "seed": "ChaCha20Rng::from_seed([0x41; 32]), 32 bytes drawn as the file key",
        "chunk_bytes": C,
        "size": SIZE,
        "plaintext_sha256": hex(Sha256::digest(&plaintext)),
        "file_key": hex(key.expose_secret()),
        "chunk_key": hex(&chunk_key),
        "nonce_prefix": hex(&prefix),
        "chunks": chunks.iter().enumerate().map(|(i, (nonce, sealed))| json!({
            "index": i,
            "last": i == chunks.len() - 1,
            "plaintext_len": sealed.len() - 16,
            "nonce": hex(nonce),
            "ciphertext": hex(sealed),
        })).collect::<Vec<_>>(),
        "blob_len": blob.len(),
        "digest": hex(digest),
        "pointer": {
            "id": hex([0x11; 16]),
            "blob_id": hex([0xb1; 32]),
            "file_name": "report.pdf",
            "content_type": "application/pdf",
            "bytes": hex(&pointer_bytes),
        },
        "refused": [
            {"case": "bit 0 of byte 0 of chunk 1 flipped", "error": "TamperedChunk { index: 1 }"},
            {"case": "chunks 0 and 1 swapped", "error": "TamperedChunk { index: 0 }"},
            {"case": "blob cut after chunk 1", "error": "Truncated { received: 131104, expected: 132120 }"},
        ],
    });
    check_or_regenerate("attachment.json", &vectors);
}
