//! Properties of the attachment format (docs/PROTOCOL.md §14) over random
//! files: every size round-trips, including 0 and exact multiples of the
//! chunk size, in pieces of any size; and every kind of damage a relay can
//! do to a blob (one flipped bit anywhere, a cut at any chunk boundary, two
//! chunks swapped, one dropped) is refused by `finish` at the latest.
//! Sizes stay within a few chunks: the properties are about chunk
//! boundaries, not bulk.

use proptest::prelude::*;
use umbra_protocol::attachment::{
    self, sanitize_file_name, AttachmentDecryptor, FileKey, ATTACHMENT_CHUNK_BYTES,
};
use umbra_protocol::content::{self, Content, FilePointer, MessageId};

const C: usize = ATTACHMENT_CHUNK_BYTES;
const SEALED: usize = C + 16;

/// Sizes around the interesting points: 0, one byte, chunk multiples and
/// their neighbours, and anything up to three chunks.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        (1usize..=3).prop_map(|k| k * C),
        (1usize..=3, -1i64..=1)
            .prop_map(|(k, d)| (k * C) as i64 + d)
            .prop_map(|n| n as usize),
        0usize..3 * C,
    ]
}

fn file(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn refused(key: &FileKey, size: u64, digest: [u8; 32], blob: &[u8]) -> bool {
    attachment::open(key, size, digest, blob).is_err()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trips_in_any_pieces(len in size(), seed: u8, key: [u8; 32], piece in 1usize..(2 * SEALED)) {
        let key = FileKey::from_bytes(key);
        let plaintext = file(len, seed);
        let (blob, sealed) = attachment::seal(&key, &plaintext).unwrap();
        prop_assert_eq!(sealed.size, len as u64);
        prop_assert_eq!(blob.len() as u64, attachment::blob_len(len as u64).unwrap());
        let mut decryptor = AttachmentDecryptor::new(&key, sealed.size, sealed.digest).unwrap();
        let mut out = Vec::new();
        for part in blob.chunks(piece) {
            decryptor.push(part, &mut out).unwrap();
        }
        decryptor.finish(&mut out).unwrap();
        prop_assert_eq!(out, plaintext);
    }

    #[test]
    fn any_flipped_bit_is_refused(len in size(), key: [u8; 32], at: prop::sample::Index, bit in 0u8..8) {
        let key = FileKey::from_bytes(key);
        let (mut blob, sealed) = attachment::seal(&key, &file(len, 1)).unwrap();
        let i = at.index(blob.len());
        blob[i] ^= 1 << bit;
        prop_assert!(refused(&key, sealed.size, sealed.digest, &blob));
    }

    #[test]
    fn a_cut_at_any_chunk_boundary_is_refused(len in size(), key: [u8; 32], at: prop::sample::Index) {
        let key = FileKey::from_bytes(key);
        let (blob, sealed) = attachment::seal(&key, &file(len, 2)).unwrap();
        let chunks = blob.len().div_ceil(SEALED);
        let cut = at.index(chunks) * SEALED; // 0 .. the start of the last chunk
        prop_assert!(refused(&key, sealed.size, sealed.digest, &blob[..cut]));
    }

    #[test]
    fn swapped_or_dropped_chunks_are_refused(k in 2usize..=3, extra in 0usize..C, key: [u8; 32], a: prop::sample::Index, b: prop::sample::Index) {
        let key = FileKey::from_bytes(key);
        let len = (k - 1) * C + extra; // k chunks
        let (blob, sealed) = attachment::seal(&key, &file(len, 3)).unwrap();
        let chunks: Vec<&[u8]> = blob.chunks(SEALED).collect();
        prop_assert_eq!(chunks.len(), k);
        let (i, j) = (a.index(k), b.index(k));
        if i != j {
            let mut order: Vec<&[u8]> = chunks.clone();
            order.swap(i, j);
            prop_assert!(refused(&key, sealed.size, sealed.digest, &order.concat()));
        }
        let mut dropped = chunks.clone();
        dropped.remove(i);
        prop_assert!(refused(&key, sealed.size, sealed.digest, &dropped.concat()));
        // Even with a pointer that promises the shorter blob's size and
        // digest, a dropped chunk breaks the counter or the last flag.
        let shorter = dropped.concat();
        let size = (shorter.len() - 16 * dropped.len()) as u64;
        let digest = sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), &shorter)).into();
        prop_assert!(refused(&key, size, digest, &shorter));
    }

    #[test]
    fn sanitised_names_are_valid_and_stable(name in ".{0,300}", raw in prop::collection::vec(any::<char>(), 0..300)) {
        for name in [name, raw.into_iter().collect::<String>()] {
            let safe = sanitize_file_name(&name);
            prop_assert_eq!(sanitize_file_name(&safe), safe.clone(), "idempotent");
            prop_assert!(!safe.contains(".."), "{:?}", safe);
            prop_assert!(!safe.starts_with('-'), "{:?}", safe);
            let pointer = FilePointer {
                id: MessageId([0; 16]),
                blob_id: vec![1],
                key: FileKey::from_bytes([0; 32]),
                digest: [0; 32],
                size: 0,
                file_name: safe,
                content_type: "application/octet-stream".to_owned(),
            };
            prop_assert!(content::encode(&Content::FilePointer(pointer)).is_ok());
        }
    }
}
