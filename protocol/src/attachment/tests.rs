//! Unit tests of the attachment format: layout arithmetic, errors on each
//! kind of damage, the last-chunk flag, and name sanitising.

use super::*;
use crate::content::{self, Content, MessageId, MAX_FILE_NAME_BYTES};
use aead::stream::EncryptorBE32;
use aead::KeyInit;
use chacha20poly1305::ChaCha20Poly1305;

const C: usize = ATTACHMENT_CHUNK_BYTES;

fn key() -> FileKey {
    FileKey::from_bytes([7u8; 32])
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn layout_matches_the_spec() {
    assert_eq!(chunk_count(0), Ok(1));
    assert_eq!(blob_len(0), Ok(16));
    assert_eq!(chunk_count(C as u64 - 1), Ok(1));
    assert_eq!(
        chunk_count(C as u64),
        Ok(2),
        "an exact multiple ends with an empty chunk"
    );
    assert_eq!(blob_len(2 * C as u64 + 10), Ok(2 * C as u64 + 10 + 48));
    assert_eq!(MAX_ATTACHMENT_PLAINTEXT_BYTES, 104_832_000);
    assert_eq!(
        blob_len(MAX_ATTACHMENT_PLAINTEXT_BYTES),
        Ok(MAX_ATTACHMENT_BLOB_BYTES)
    );
    assert!(blob_len(MAX_ATTACHMENT_PLAINTEXT_BYTES + 1).is_err());
}

#[test]
fn round_trips_in_pieces_of_any_size() {
    let plaintext = data(2 * C + 5);
    let (blob, sealed) = seal(&key(), &plaintext).unwrap();
    assert_eq!(blob.len() as u64, sealed.blob_len);
    assert_eq!(blob_len(sealed.size), Ok(sealed.blob_len));
    for piece in [1, 15, 16, 17, C - 1, C, C + 16, C + 17, blob.len()] {
        let mut decryptor = AttachmentDecryptor::new(&key(), sealed.size, sealed.digest).unwrap();
        let mut out = Vec::new();
        for part in blob.chunks(piece) {
            decryptor.push(part, &mut out).unwrap();
            assert!(out.len() <= plaintext.len());
        }
        decryptor.finish(&mut out).unwrap();
        assert_eq!(out, plaintext, "pieces of {piece}");
    }
}

#[test]
fn each_kind_of_damage_is_named() {
    let plaintext = data(2 * C + 5);
    let (blob, sealed) = seal(&key(), &plaintext).unwrap();
    let open = |b: &[u8]| open(&key(), sealed.size, sealed.digest, b);

    let mut flipped = blob.clone();
    flipped[C + 16 + 3] ^= 1;
    assert_eq!(
        open(&flipped),
        Err(AttachmentError::TamperedChunk { index: 1 })
    );

    let mut swapped = blob[C + 16..2 * (C + 16)].to_vec();
    swapped.extend_from_slice(&blob[..C + 16]);
    swapped.extend_from_slice(&blob[2 * (C + 16)..]);
    assert_eq!(
        open(&swapped),
        Err(AttachmentError::TamperedChunk { index: 0 })
    );

    assert_eq!(
        open(&blob[..2 * (C + 16)]),
        Err(AttachmentError::Truncated {
            received: 2 * (C as u64 + 16),
            expected: blob.len() as u64
        })
    );
    let mut longer = blob.clone();
    longer.push(0);
    assert_eq!(
        open(&longer),
        Err(AttachmentError::Oversized {
            expected: blob.len() as u64
        })
    );

    let mut last = blob.clone();
    *last.last_mut().unwrap() ^= 0x80;
    assert_eq!(
        open(&last),
        Err(AttachmentError::DigestMismatch),
        "the digest is checked first"
    );
    let mut digest = sealed.digest;
    digest[0] ^= 1;
    assert_eq!(
        super::open(&key(), sealed.size, digest, &blob),
        Err(AttachmentError::DigestMismatch)
    );

    assert_eq!(
        super::open(
            &FileKey::from_bytes([8; 32]),
            sealed.size,
            sealed.digest,
            &blob
        ),
        Err(AttachmentError::TamperedChunk { index: 0 })
    );
    assert!(matches!(
        AttachmentDecryptor::new(&key(), u64::MAX, [0; 32]),
        Err(AttachmentError::TooLarge { .. })
    ));
}

#[test]
fn a_refused_blob_stays_refused_and_releases_nothing() {
    let (mut blob, sealed) = seal(&key(), &data(C + 1)).unwrap();
    blob[0] ^= 1;
    let mut decryptor = AttachmentDecryptor::new(&key(), sealed.size, sealed.digest).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        decryptor.push(&blob, &mut out),
        Err(AttachmentError::TamperedChunk { index: 0 })
    );
    assert!(out.is_empty(), "no plaintext of an unauthenticated chunk");
    assert_eq!(decryptor.push(&[], &mut out), Err(AttachmentError::Failed));
    assert_eq!(decryptor.finish(&mut out), Err(AttachmentError::Failed));
}

/// A stream whose final chunk was sealed as a non-final one (a prefix of a
/// longer file, say) is refused even with a digest that matches it: the
/// last-chunk flag is in the nonce.
#[test]
fn the_last_chunk_must_carry_the_last_flag() {
    let keys = keys::derive_chunk_keys(&key());
    let aead = ChaCha20Poly1305::new(&keys.chunk_key.into());
    let mut stream = EncryptorBE32::from_aead(aead, &keys.nonce_prefix.into());
    let mut blob = stream.encrypt_next(&data(C)[..]).unwrap();
    blob.extend(stream.encrypt_next(&b"tail"[..]).unwrap());
    let digest = sha2::Sha256::digest(&blob).into();
    use sha2::Digest;
    assert_eq!(
        open(&key(), C as u64 + 4, digest, &blob),
        Err(AttachmentError::TamperedChunk { index: 1 })
    );
}

#[test]
fn encryptor_refuses_past_the_limit_before_sealing() {
    let mut encryptor = AttachmentEncryptor::new(&key());
    let mut out = Vec::new();
    encryptor.push(b"abc", &mut out).unwrap();
    // Zeroed pages are mapped lazily, and the size is checked before any
    // byte is read, so this costs neither memory nor time.
    let big = vec![0u8; (MAX_ATTACHMENT_PLAINTEXT_BYTES - 2) as usize];
    assert_eq!(
        encryptor.push(&big, &mut out),
        Err(AttachmentError::TooLarge {
            size: MAX_ATTACHMENT_PLAINTEXT_BYTES + 1,
            max: MAX_ATTACHMENT_PLAINTEXT_BYTES
        })
    );
    assert!(out.is_empty());
}

#[test]
fn the_pointer_is_content_tag_5_and_opens_its_blob() {
    let (blob, sealed) = seal(&key(), b"report").unwrap();
    let pointer = FilePointer {
        id: MessageId([1; 16]),
        blob_id: vec![0xbb; 32],
        key: key(),
        digest: sealed.digest,
        size: sealed.size,
        file_name: sanitize_file_name("../report.pdf"),
        content_type: "application/pdf".to_owned(),
    };
    let bytes = content::encode(&Content::FilePointer(pointer.clone())).unwrap();
    assert_eq!(&bytes[..2], &[1, 5]);
    let Content::FilePointer(back) = content::decode(&bytes).unwrap() else {
        panic!("not a file pointer")
    };
    let mut decryptor = AttachmentDecryptor::for_pointer(&back).unwrap();
    let mut out = Vec::new();
    decryptor.push(&blob, &mut out).unwrap();
    decryptor.finish(&mut out).unwrap();
    assert_eq!(out, b"report");
    assert!(!format!("{back:?}").contains("0707"), "the key is redacted");
}

#[test]
fn hostile_names_become_plain_names() {
    let cases = [
        ("../../etc/passwd", "_._etc_passwd"),
        ("..\\..\\x", "_._x"),
        ("\u{202e}txt.exe", "txt.exe"),
        ("a\u{0}b", "ab"),
        ("a\u{2028}b", "ab"),
        ("\u{3164}", "attachment"),
        ("", "attachment"),
        ("..", "attachment"),
        (".", "attachment"),
        ("\u{7}\u{1b}[31m", "[31m"),
        (".bashrc", "bashrc"),
        ("nul.txt", "_nul.txt"),
        ("C:\\Windows", "C__Windows"),
        ("report .pdf. ", "report .pdf"),
        ("photo.jpg", "photo.jpg"),
        ("résumé 2026.pdf", "résumé 2026.pdf"),
    ];
    for (hostile, expected) in cases {
        assert_eq!(sanitize_file_name(hostile), expected, "{hostile:?}");
    }
    let long = format!("{}.tar.gz", "é".repeat(400));
    let short = sanitize_file_name(&long);
    assert!(short.len() <= MAX_FILE_NAME_BYTES, "{}", short.len());
    assert!(short.ends_with(".gz"), "{short}");
    assert_eq!(
        sanitize_file_name(&"x".repeat(10_000)).len(),
        MAX_FILE_NAME_BYTES
    );
}
