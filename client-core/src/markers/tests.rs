//! The delivery markers on their own, over a memory store: no engine, no relay.
use super::*;

async fn markers() -> DeliveryMarkers {
    let vault = Vault::for_tests().await;
    DeliveryMarkers::new(vault)
}

async fn commit(markers: &DeliveryMarkers, txn: Txn) {
    markers.vault.commit(txn).await.expect("commit");
}

#[tokio::test]
async fn an_envelope_is_seen_only_once_its_marker_is_committed_and_only_that_one() {
    let book = markers().await;
    let (one, other) = (book.of(b"envelope one"), book.of(b"envelope two"));
    let mut txn = Txn::new();
    book.mark_seen(&mut txn, &one, 1_000).unwrap();
    assert!(!book.is_seen(&one).await.unwrap(), "not before the commit");
    commit(&book, txn).await;
    assert!(book.is_seen(&one).await.unwrap());
    assert!(
        !book.is_seen(&other).await.unwrap(),
        "named by its own digest"
    );
    // The same bytes name the same markers.
    assert!(book.is_seen(&book.of(b"envelope one")).await.unwrap());
    assert_eq!(book.kept(&one).await.unwrap(), None, "seen is not kept");
}

#[tokio::test]
async fn a_kept_record_is_kept_until_forgotten() {
    let book = markers().await;
    let envelope = book.of(b"kept envelope");
    let record = KeptRecord {
        attempts: 2,
        first_failed_at_ms: 5_000,
    };
    let mut txn = Txn::new();
    book.keep(&mut txn, &envelope, &record).unwrap();
    commit(&book, txn).await;
    assert_eq!(book.kept(&envelope).await.unwrap(), Some(record));
    assert!(!book.is_seen(&envelope).await.unwrap(), "kept is not seen");
    let mut txn = Txn::new();
    book.forget_kept(&mut txn, &envelope);
    commit(&book, txn).await;
    assert_eq!(book.kept(&envelope).await.unwrap(), None);
}

#[tokio::test]
async fn pruning_drops_only_what_is_older_than_the_cutoff() {
    let book = markers().await;
    let (old, new) = (book.of(b"old"), book.of(b"new"));
    let (old_kept, new_kept) = (book.of(b"old kept"), book.of(b"new kept"));
    let kept_at = |ms| KeptRecord {
        attempts: 1,
        first_failed_at_ms: ms,
    };
    let mut txn = Txn::new();
    book.mark_seen(&mut txn, &old, 999).unwrap();
    book.mark_seen(&mut txn, &new, 1_000).unwrap();
    book.keep(&mut txn, &old_kept, &kept_at(10)).unwrap();
    book.keep(&mut txn, &new_kept, &kept_at(2_000)).unwrap();
    commit(&book, txn).await;

    let mut txn = Txn::new();
    assert_eq!(book.prune(&mut txn, 1_000).await.unwrap(), 2);
    commit(&book, txn).await;
    assert!(!book.is_seen(&old).await.unwrap());
    assert!(book.is_seen(&new).await.unwrap(), "at the cutoff: kept");
    assert_eq!(book.kept(&old_kept).await.unwrap(), None);
    assert_eq!(book.kept(&new_kept).await.unwrap(), Some(kept_at(2_000)));
    let mut txn = Txn::new();
    assert_eq!(
        book.prune(&mut txn, 1_000).await.unwrap(),
        0,
        "nothing left"
    );
}
