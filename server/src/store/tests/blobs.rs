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
    let wrong = store.finish_blob(blob, total + 1).await;
    assert!(
        matches!(wrong, Err(StoreError::BlobSizeMismatch { .. })),
        "{wrong:?}"
    );
    store.finish_blob(blob, total).await.unwrap();
    let late = store.append_blob_chunk(blob, 3, b"more").await;
    assert!(matches!(late, Err(StoreError::BlobNotWritable)), "{late:?}");

    let info = store.blob_info(blob, 0).await.unwrap().expect("exists");
    assert_eq!(info.owner, owner);
    assert_eq!(info.chunk_count, 3);
    assert_eq!(info.size, Some(total));
    assert_eq!(info.expires_at, 5_000);
    for (index, chunk) in chunks.iter().enumerate() {
        let read = store.read_blob_chunk(blob, index as u32).await.unwrap();
        assert_eq!(read.as_ref(), Some(chunk));
    }
    assert_eq!(store.read_blob_chunk(blob, 3).await.unwrap(), None);
    assert!(
        store.blob_info(blob, 5_000).await.unwrap().is_none(),
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
