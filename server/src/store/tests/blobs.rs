//! Blobs, on both backends.

use super::*;

// ----- blobs -----------------------------------------------------------------

pub(super) async fn blob_chunks_round_trip(db: &TestDb) {
    let store = db.open().await;
    let owner = new_account(&store, "alice").await;
    let blob = BlobId([0xb1; 32]);
    store.create_blob(blob, owner, 5_000).await.unwrap();
    let again = store.create_blob(blob, owner, 5_000).await;
    assert!(matches!(again, Err(StoreError::BlobExists)), "{again:?}");

    let chunks: Vec<Vec<u8>> = vec![
        vec![1u8; MAX_BLOB_CHUNK_BYTES],
        (0..MAX_BLOB_CHUNK_BYTES).map(|i| (i % 251) as u8).collect(),
        b"tail".to_vec(),
    ];
    store.append_blob_chunk(blob, 0, &chunks[0]).await.unwrap();
    let skipped = store.append_blob_chunk(blob, 2, &chunks[2]).await;
    assert!(
        matches!(
            skipped,
            Err(StoreError::BlobChunkOutOfOrder {
                expected: 1,
                got: 2
            })
        ),
        "{skipped:?}"
    );
    let big = store
        .append_blob_chunk(blob, 1, &vec![0u8; MAX_BLOB_CHUNK_BYTES + 1])
        .await;
    assert!(
        matches!(big, Err(StoreError::BlobChunkSize { .. })),
        "{big:?}"
    );
    let empty = store.append_blob_chunk(blob, 1, &[]).await;
    assert!(
        matches!(empty, Err(StoreError::BlobChunkSize { len: 0 })),
        "{empty:?}"
    );
    store.append_blob_chunk(blob, 1, &chunks[1]).await.unwrap();
    store.append_blob_chunk(blob, 2, &chunks[2]).await.unwrap();

    let in_progress = store.blob_info(blob, 0).await.unwrap().expect("exists");
    assert_eq!(in_progress.size, None);
    let total = chunks.iter().map(Vec::len).sum::<usize>() as u64;
    let wrong = store.finish_blob(blob, total + 1, 8_000).await;
    assert!(
        matches!(wrong, Err(StoreError::BlobSizeMismatch { .. })),
        "{wrong:?}"
    );
    // Finishing gives the blob its full lifetime (8_000), replacing the
    // short expiry it was created with while the upload ran (5_000).
    store.finish_blob(blob, total, 8_000).await.unwrap();
    let late = store.append_blob_chunk(blob, 3, b"more").await;
    assert!(matches!(late, Err(StoreError::BlobNotWritable)), "{late:?}");

    let info = store.blob_info(blob, 0).await.unwrap().expect("exists");
    assert_eq!(info.owner, owner);
    assert_eq!(info.chunk_count, 3);
    assert_eq!(info.size, Some(total));
    assert_eq!(info.expires_at, 8_000);
    for (index, chunk) in chunks.iter().enumerate() {
        let read = store.read_blob_chunk(blob, index as u32).await.unwrap();
        assert_eq!(read.as_ref(), Some(chunk));
    }
    assert_eq!(store.read_blob_chunk(blob, 3).await.unwrap(), None);
    assert_eq!(store.purge_expired_blobs(5_000).await.unwrap(), 0);
    assert!(
        store.blob_info(blob, 5_000).await.unwrap().is_some(),
        "a finished blob outlives its upload's expiry"
    );
    assert!(
        store.blob_info(blob, 8_000).await.unwrap().is_none(),
        "expired"
    );

    assert!(store.delete_blob(blob).await.unwrap());
    assert!(!store.delete_blob(blob).await.unwrap());
    assert_eq!(store.read_blob_chunk(blob, 0).await.unwrap(), None);

    let stale = BlobId([0xb2; 32]);
    store.create_blob(stale, owner, 100).await.unwrap();
    store.append_blob_chunk(stale, 0, b"x").await.unwrap();
    assert_eq!(store.purge_expired_blobs(99).await.unwrap(), 0);
    assert_eq!(store.purge_expired_blobs(100).await.unwrap(), 1);
    assert_eq!(store.read_blob_chunk(stale, 0).await.unwrap(), None);
    let gone = store.append_blob_chunk(stale, 1, b"y").await;
    assert!(matches!(gone, Err(StoreError::BlobNotWritable)), "{gone:?}");
}

pub(super) async fn blob_quotas_bound_count_and_bytes_per_account(db: &TestDb) {
    let store = db
        .open_with(StoreLimits {
            max_blobs_per_account: 2,
            max_blob_bytes_per_account: 10,
            ..StoreLimits::default()
        })
        .await;
    let owner = new_account(&store, "alice").await;
    let other = new_account(&store, "bob").await;
    let (one, two, three) = (BlobId([1; 32]), BlobId([2; 32]), BlobId([3; 32]));
    store.create_blob(one, owner, 5_000).await.unwrap();
    store.create_blob(two, owner, 9_000).await.unwrap();
    let third = store.create_blob(three, owner, 5_000).await;
    assert!(
        matches!(
            third,
            Err(StoreError::BlobQuotaExceeded {
                what: "blobs",
                limit: 2
            })
        ),
        "{third:?}"
    );
    // Bytes count over every blob of the account, uploads in parallel
    // included: 6 + 4 fill the 10 bytes, one more byte anywhere is refused.
    store.append_blob_chunk(one, 0, b"666666").await.unwrap();
    store.append_blob_chunk(two, 0, b"4444").await.unwrap();
    let over = store.append_blob_chunk(two, 1, b"x").await;
    assert!(
        matches!(
            over,
            Err(StoreError::BlobQuotaExceeded {
                what: "bytes",
                limit: 10
            })
        ),
        "{over:?}"
    );
    // The refused chunk was not stored: the blob still finishes at 4 bytes.
    store.finish_blob(two, 4, 9_000).await.unwrap();
    // The quota is per account.
    store.create_blob(three, other, 5_000).await.unwrap();
    store
        .append_blob_chunk(three, 0, b"0123456789")
        .await
        .unwrap();
    // Deleting or expiring a blob gives its room back.
    assert!(store.delete_blob(one).await.unwrap());
    let four = BlobId([4; 32]);
    store.create_blob(four, owner, 5_000).await.unwrap();
    store.append_blob_chunk(four, 0, b"666666").await.unwrap();
    // An unfinished blob (an upload whose relay died) holds the quota only
    // until its short upload expiry: the purge then frees count and bytes.
    let again = store.create_blob(one, owner, 20_000).await;
    assert!(
        matches!(again, Err(StoreError::BlobQuotaExceeded { .. })),
        "{again:?}"
    );
    // (Alice's `four` and Bob's `three`; her finished `two` stays.)
    assert_eq!(store.purge_expired_blobs(5_000).await.unwrap(), 2);
    store.create_blob(one, owner, 20_000).await.unwrap();
    store.append_blob_chunk(one, 0, b"666666").await.unwrap();
}
