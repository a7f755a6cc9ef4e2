//! Account backups, on both backends: the compare-and-swap on `seq`, a
//! race between two writers, and deletion with the account.

use super::*;
use crate::store::{BackupPut, StoredBackup};

/// A stand-in sealed backup: a minimal bucket whose header says `seq`
/// (the store does not parse; the HTTP layer does) and whose body is `fill`.
pub(super) fn sealed(seq: u64, fill: u8) -> Vec<u8> {
    let mut bytes = vec![fill; umbra_wire::backup::MIN_BACKUP_BYTES];
    bytes[0] = umbra_wire::backup::BACKUP_VERSION;
    bytes[1..9].copy_from_slice(&seq.to_be_bytes());
    bytes
}

pub(super) async fn backups_replace_only_with_a_greater_seq(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let bob = new_account(&store, "bob").await;
    assert_eq!(store.get_backup(alice).await.unwrap(), None);
    assert_eq!(store.backup_size(alice).await.unwrap(), None);

    let first = sealed(5, 0x11);
    let put = store.put_backup(alice, 5, &first, NOW).await.unwrap();
    assert_eq!(put, BackupPut::Stored);
    // The same bytes again (a retried upload) change nothing.
    let again = store.put_backup(alice, 5, &first, NOW + 1).await.unwrap();
    assert_eq!(again, BackupPut::Repeated);
    // Other bytes under the same seq, or an older seq, are refused.
    let other = store
        .put_backup(alice, 5, &sealed(5, 0x22), NOW)
        .await
        .unwrap();
    assert_eq!(other, BackupPut::Stale { stored_seq: 5 });
    let older = store
        .put_backup(alice, 4, &sealed(4, 0x33), NOW)
        .await
        .unwrap();
    assert_eq!(older, BackupPut::Stale { stored_seq: 5 });
    assert_eq!(
        store.get_backup(alice).await.unwrap(),
        Some(StoredBackup {
            seq: 5,
            bytes: first.clone(),
            updated_at: NOW
        }),
        "refusals leave the stored backup whole"
    );

    let bigger = vec![0x44; 2 * umbra_wire::backup::MIN_BACKUP_BYTES];
    let newer = store.put_backup(alice, 6, &bigger, NOW + 9).await.unwrap();
    assert_eq!(newer, BackupPut::Stored);
    assert_eq!(
        store.backup_size(alice).await.unwrap(),
        Some((6, bigger.len() as u64))
    );
    let stored = store.get_backup(alice).await.unwrap().expect("stored");
    assert_eq!((stored.seq, stored.updated_at), (6, NOW + 9));
    assert!(stored.bytes == bigger);
    assert_eq!(store.get_backup(bob).await.unwrap(), None, "bob has none");

    assert!(store.delete_backup(alice).await.unwrap());
    assert!(!store.delete_backup(alice).await.unwrap());
    assert_eq!(store.get_backup(alice).await.unwrap(), None);
    // After a deletion any seq is accepted again.
    let restart = store
        .put_backup(alice, 1, &sealed(1, 0x55), NOW)
        .await
        .unwrap();
    assert_eq!(restart, BackupPut::Stored);
}

pub(super) async fn racing_backups_keep_the_newest(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    // Two writers each put seqs 1..=20 in opposite orders; whatever the
    // interleaving, the stored backup ends at 20, and no put was stored
    // below a seq already stored.
    let run = |seqs: Vec<u64>| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for seq in seqs {
                let fill = u8::try_from(seq).unwrap_or(0);
                let put = store
                    .put_backup(alice, seq, &sealed(seq, fill), NOW)
                    .await
                    .expect("put");
                outcomes.push((seq, put));
            }
            outcomes
        })
    };
    let up = run((1..=20).collect());
    let down = run((1..=20).rev().collect());
    let (up, down) = (up.await.unwrap(), down.await.unwrap());
    let stored = store.get_backup(alice).await.unwrap().expect("stored");
    assert_eq!(stored.seq, 20);
    assert!(stored.bytes == sealed(20, 20), "the bytes of seq 20");
    for (seq, put) in up.iter().chain(down.iter()) {
        if let BackupPut::Stale { stored_seq } = put {
            assert!(stored_seq >= seq, "{seq} refused by an older {stored_seq}");
        }
    }
    let stored_count = up
        .iter()
        .chain(down.iter())
        .filter(|(seq, put)| *seq == 20 && *put == BackupPut::Stored)
        .count();
    assert_eq!(stored_count, 1, "seq 20 stored exactly once");
}

pub(super) async fn a_backup_needs_its_account_and_goes_with_it(db: &TestDb) {
    let store = db.open().await;
    let nobody = account_id(0x99);
    let put = store.put_backup(nobody, 1, &sealed(1, 1), NOW).await;
    assert!(matches!(put, Err(StoreError::UnknownAccount)), "{put:?}");
    let alice = new_account(&store, "alice").await;
    store
        .put_backup(alice, 3, &sealed(3, 3), NOW)
        .await
        .unwrap();
    assert!(store.delete_account(alice, NOW).await.unwrap());
    assert_eq!(store.get_backup(alice).await.unwrap(), None);
    assert_eq!(store.rows_for_account(alice).await.unwrap(), 0);
}
