//! A removed device stays removed (docs/PROTOCOL.md 15.5, 15.6), on both
//! backends: no login, password change or link enrolment issues a token
//! for a tombstone, a removed device removes or enrols nobody, no batch
//! queues an envelope for it; and a device list version the store would
//! clamp is refused (15.4).
//!
//! Must never: pass with a store that writes a token row for a device that
//! is not current, queues an envelope for one, leaves an account with no
//! current device, or stores a version other than the one published.

use super::*;
use crate::store::group_commit::NoHandOff;
use crate::store::{LinkLimits, LinkTicket};

const LIMITS: LinkLimits = LinkLimits {
    max_tickets_per_account: 4,
    max_posts_per_side: 4,
};

fn at(account: AccountId, device: u32) -> Address {
    Address {
        account,
        device: DeviceId(device),
    }
}

/// After device 2 removed device 1, a password login (which is device
/// 1's) is refused and writes no token; a password change from device 2
/// issues device 2's token, not the tombstone's.
pub(super) async fn a_removed_device_1_gets_no_login_token(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let file = password_file("alice");
    assert!(store
        .insert_login_token(at(alice, 1), &file, &[1; 32], NOW + 100)
        .await
        .unwrap());
    assert_eq!(store.add_device(alice, NOW).await.unwrap(), DeviceId(2));
    store
        .insert_token(&[2; 32], at(alice, 2), NOW + 100)
        .await
        .unwrap();
    store
        .remove_device(at(alice, 2), at(alice, 1), NOW + 1)
        .await
        .unwrap();

    let login = store
        .insert_login_token(at(alice, 1), &file, &[3; 32], NOW + 100)
        .await;
    assert!(
        matches!(login, Err(StoreError::UnknownDevice { device: 1 })),
        "{login:?}"
    );
    assert_eq!(store.token_info(&[3; 32]).await.unwrap(), None);

    let new = password_file("alice-new");
    let changed = store
        .change_password(alice, &file, &new, &[2; 32], NOW + 2, &[4; 32], NOW + 100)
        .await
        .unwrap();
    assert_eq!(changed, Some(1));
    assert_eq!(
        store.lookup_token(&[4; 32], NOW + 3).await.unwrap(),
        Some(at(alice, 2)),
        "the presenting device's token"
    );
}

/// A device removed between its enrolment and the joiner's fetch gets no
/// token: the ticket stays unfinished and nothing is written.
pub(super) async fn a_device_removed_before_its_link_finishes_gets_no_token(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let ticket: LinkTicket = [7; 16];
    store
        .create_link_ticket(at(alice, 1), &ticket, NOW, NOW + 300, LIMITS)
        .await
        .unwrap();
    store.join_link_ticket(&ticket, NOW + 1).await.unwrap();
    let device = store
        .enrol_link_device(at(alice, 1), &ticket, NOW + 2)
        .await
        .unwrap();
    store
        .remove_device(at(alice, 1), at(alice, device.0), NOW + 3)
        .await
        .unwrap();

    let finished = store
        .finish_link(&ticket, &[5; 32], NOW + 100, NOW + 4)
        .await;
    assert!(
        matches!(finished, Err(StoreError::UnknownLinkTicket)),
        "{finished:?}"
    );
    assert_eq!(store.token_info(&[5; 32]).await.unwrap(), None);
}

/// Two devices removing each other: the second removal, by a device the
/// first already removed, is refused naming the remover, so the account
/// keeps one current device.
pub(super) async fn a_removed_device_cannot_remove(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    assert_eq!(store.add_device(alice, NOW).await.unwrap(), DeviceId(2));
    store
        .remove_device(at(alice, 2), at(alice, 1), NOW + 1)
        .await
        .unwrap();
    let back = store
        .remove_device(at(alice, 1), at(alice, 2), NOW + 2)
        .await;
    assert!(
        matches!(back, Err(StoreError::UnknownDevice { device: 1 })),
        "{back:?}"
    );
    assert!(store.is_current_device(at(alice, 2)).await.unwrap());
    // Nor may another account's device remove one.
    let bob = new_account(&store, "bob").await;
    let foreign = store.remove_device(at(bob, 1), at(alice, 2), NOW + 3).await;
    assert!(
        matches!(foreign, Err(StoreError::UnknownDevice { device: 1 })),
        "{foreign:?}"
    );
    assert!(store.is_current_device(at(alice, 2)).await.unwrap());
}

/// A removed creator enrols nothing: its removal deletes the tickets it
/// created (and their posts). (An enrolment racing the removal is refused
/// by enrol_link_device's own check under the account lock, which no
/// sequential test can reach once the ticket is gone.)
pub(super) async fn a_removed_creator_cannot_enrol(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    assert_eq!(store.add_device(alice, NOW).await.unwrap(), DeviceId(2));
    let ticket: LinkTicket = [8; 16];
    store
        .create_link_ticket(at(alice, 2), &ticket, NOW, NOW + 300, LIMITS)
        .await
        .unwrap();
    store.join_link_ticket(&ticket, NOW + 1).await.unwrap();
    store
        .remove_device(at(alice, 1), at(alice, 2), NOW + 2)
        .await
        .unwrap();
    assert_eq!(store.link_ticket(&ticket, NOW + 3).await.unwrap(), None);
    let enrol = store
        .enrol_link_device(at(alice, 2), &ticket, NOW + 3)
        .await;
    assert!(
        matches!(enrol, Err(StoreError::UnknownLinkTicket)),
        "{enrol:?}"
    );
    assert_eq!(
        store
            .list_devices(alice)
            .await
            .unwrap()
            .iter()
            .map(|d| d.device.0)
            .collect::<Vec<_>>(),
        vec![1],
        "no device enrolled"
    );
}

/// Device list versions are stored as BIGINTs: 2^63 − 1 is stored as it
/// is, 2^63 and above are refused (not clamped, which would let an older
/// list above 2^63 replace a newer one).
pub(super) async fn a_device_list_version_above_i64_max_is_refused(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    for version in [1u64 << 63, u64::MAX] {
        let refused = store
            .put_device_list(&device_list(alice, version, &[1]), NOW)
            .await;
        assert!(
            matches!(
                refused,
                Err(StoreError::DeviceListVersionTooHigh { version: v, max })
                    if v == version && max == i64::MAX as u64
            ),
            "{refused:?}"
        );
    }
    assert!(store.device_list(alice).await.unwrap().is_none());
    let top = i64::MAX as u64;
    store
        .put_device_list(&device_list(alice, top, &[1]), NOW)
        .await
        .unwrap();
    assert_eq!(
        store.device_list(alice).await.unwrap().map(|l| l.version),
        Some(top)
    );
}

/// A Send whose handler read its recipients as current before a removal
/// committed (the stale view of 15.5) stores nothing for the removed
/// device: the batch's own transaction reads the device again and refuses
/// it as `UnknownRecipient`, on the pool's path (`enqueue_batch`) and the
/// group committer's (SQLite's dedicated writer; PostgreSQL's workers),
/// while the batch's other envelopes are stored.
pub(super) async fn a_batch_stores_nothing_for_a_device_removed_before_it(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let second = at(alice, store.add_device(alice, NOW).await.unwrap().0);
    let first = at(alice, 1);
    let stale = store.current_devices(&[alice]).await.unwrap();
    assert!(stale.contains(&second), "{stale:?}");
    store.remove_device(first, second, NOW + 1).await.unwrap();

    let pooled = store
        .enqueue_batch(&[message(second, "late"), message(first, "kept")])
        .await
        .unwrap();
    assert_eq!(pooled[0], Err(EnqueueRejection::UnknownRecipient));
    assert_eq!(pooled[1], Ok(1));
    let committer = GroupCommitter::spawn(Arc::clone(&store), 64, 2, Arc::new(NoHandOff));
    let committed = committer
        .submit(vec![
            message(first, "kept too"),
            message(second, "late too"),
        ])
        .await
        .unwrap();
    assert_eq!(
        committed,
        vec![Ok(2), Err(EnqueueRejection::UnknownRecipient)]
    );
    assert_eq!(store.queue_depth(second).await.unwrap(), 0);
    assert_eq!(store.queue_depth(first).await.unwrap(), 2);
    assert_eq!(store.total_queued().await.unwrap(), 2);
}
