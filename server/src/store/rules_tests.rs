//! The pure rules, each tested once here (the backend suite in `tests.rs`
//! checks that both backends apply them).

use umbra_wire::{AccountId, Address, DeviceId};

use super::*;
use crate::store::{EnqueueRejection, StoreError, TokenInfo, TokenStatus, MAX_BLOB_CHUNK_BYTES};

fn account(tag: u8) -> AccountId {
    AccountId::from_bytes([tag; 16])
}

#[test]
fn rename_to_own_name_is_a_no_op_and_to_a_held_name_is_refused() {
    assert_eq!(rename(None, account(1)).unwrap(), Rename::Take);
    assert_eq!(
        rename(Some(account(1)), account(1)).unwrap(),
        Rename::Unchanged
    );
    assert!(matches!(
        rename(Some(account(2)), account(1)),
        Err(StoreError::UsernameTaken)
    ));
}

#[test]
fn a_token_is_valid_strictly_before_its_expiry() {
    let owner = Address {
        account: account(1),
        device: DeviceId::PRIMARY,
    };
    let token = TokenInfo {
        owner,
        expires_at: 100,
    };
    assert_eq!(token_status(token, 99), TokenStatus::Valid(owner));
    assert_eq!(token_status(token, 100), TokenStatus::Expired(owner));
    assert_eq!(token_status(token, u64::MAX), TokenStatus::Expired(owner));
}

#[test]
fn only_a_changed_identity_drops_its_prekeys() {
    let first = identity_change(None, b"a", false);
    assert!(!first.replaced && !first.drop_one_time_prekeys && !first.drop_last_resort);
    let rotation = identity_change(Some(b"a"), b"a", false);
    assert!(!rotation.replaced && !rotation.drop_one_time_prekeys && !rotation.drop_last_resort);
    let replaced = identity_change(Some(b"a"), b"b", false);
    assert!(replaced.replaced && replaced.drop_one_time_prekeys && replaced.drop_last_resort);
    // A new last-resort key overwrites the old one instead of a delete.
    let with_new = identity_change(Some(b"a"), b"b", true);
    assert!(with_new.drop_one_time_prekeys && !with_new.drop_last_resort);
    // KEM prekeys go with any change (a publication brings none), only then.
    assert!(replaced.drop_kem_prekeys && with_new.drop_kem_prekeys);
    assert!(!first.drop_kem_prekeys && !rotation.drop_kem_prekeys);
}

#[test]
fn a_device_may_publish_only_the_identity_its_account_s_other_devices_publish() {
    let a = || Some(b"a".to_vec());
    // Alone: any identity, a reset included.
    assert!(account_identity(&[], false, b"new").is_ok());
    assert!(account_identity(&[], true, b"new").is_ok());
    // Beside devices publishing the same one, changed or not.
    assert!(account_identity(&[a(), a()], false, b"a").is_ok());
    assert!(account_identity(&[a(), None], true, b"a").is_ok());
    // Beside devices with no keys yet: the same identity, or a fresh
    // account's first one.
    assert!(account_identity(&[None], false, b"a").is_ok());
    let refused = [
        // Another device publishes another identity.
        (vec![a()], false),
        (vec![Some(b"b".to_vec()), a()], false),
        (vec![a(), None], true),
        // A reset while a linked device has not published yet.
        (vec![None], true),
        (vec![None, None], true),
    ];
    for (others, changed) in refused {
        assert!(
            matches!(
                account_identity(&others, changed, b"b"),
                Err(StoreError::AccountIdentityDiffers)
            ),
            "{others:?} changed {changed}"
        );
    }
}

#[test]
fn a_stored_prekey_id_may_repeat_only_with_the_same_key() {
    assert!(stored_prekey_id(7, b"key", b"key").is_ok());
    assert!(matches!(
        stored_prekey_id(7, b"key", b"other"),
        Err(StoreError::PreKeyIdConflict { id: 7 })
    ));
}

#[test]
fn a_one_time_id_is_stored_only_above_the_mark_which_never_falls() {
    assert!(one_time_id_is_new(0, None));
    assert!(one_time_id_is_new(u32::MAX, None));
    assert!(one_time_id_is_new(8, Some(7)));
    assert!(!one_time_id_is_new(7, Some(7)), "the highest id stored");
    assert!(!one_time_id_is_new(1, Some(7)), "a claimed id below it");
    assert_eq!(raised_mark(None, []), None);
    assert_eq!(raised_mark(None, [3, 9, 4]), Some(9));
    assert_eq!(raised_mark(Some(12), [3, 9]), Some(12), "never lowered");
    assert_eq!(raised_mark(Some(0), [u32::MAX]), Some(u32::MAX));
}

#[test]
fn the_prekey_cap_counts_stored_and_added_keys() {
    assert!(prekey_cap(6, 4, 10).is_ok());
    assert!(matches!(
        prekey_cap(6, 5, 10),
        Err(StoreError::TooManyPreKeys {
            stored: 6,
            offered: 5,
            limit: 10
        })
    ));
    assert!(prekey_cap(u64::MAX, 1, u64::MAX).is_ok());
}

#[test]
fn a_queue_hands_out_increasing_seqs_until_full() {
    let mut queue = QueueState::new(41, 0);
    assert_eq!(queue.admit(2).unwrap(), Ok(42));
    assert_eq!(queue.admit(2).unwrap(), Ok(43));
    assert!(queue.dirty);
    assert_eq!(queue.admit(2).unwrap(), Err(EnqueueRejection::QueueFull));
    assert_eq!((queue.last_seq, queue.depth), (43, 2));
}

#[test]
fn a_refused_message_leaves_the_queue_untouched() {
    let mut queue = QueueState::new(5, 3);
    assert_eq!(queue.admit(3).unwrap(), Err(EnqueueRejection::QueueFull));
    assert_eq!(queue, QueueState::new(5, 3));
}

#[test]
fn an_exhausted_queue_counter_is_corrupt_not_wrapped() {
    let mut queue = QueueState::new(u64::MAX, 0);
    assert!(matches!(queue.admit(10), Err(StoreError::Corrupt(_))));
}

#[test]
fn chunks_are_non_empty_and_bounded() {
    assert!(matches!(
        chunk_size(0),
        Err(StoreError::BlobChunkSize { len: 0 })
    ));
    assert!(chunk_size(1).is_ok());
    assert!(chunk_size(MAX_BLOB_CHUNK_BYTES).is_ok());
    assert!(chunk_size(MAX_BLOB_CHUNK_BYTES + 1).is_err());
}

#[test]
fn chunks_append_in_order_to_an_unfinished_blob() {
    let open = BlobState {
        chunk_count: 2,
        stored_bytes: 10,
        finished: false,
    };
    assert!(append(Some(open), 2).is_ok());
    assert!(matches!(
        append(Some(open), 3),
        Err(StoreError::BlobChunkOutOfOrder {
            expected: 2,
            got: 3
        })
    ));
    assert!(matches!(append(None, 0), Err(StoreError::BlobNotWritable)));
    let done = BlobState {
        finished: true,
        ..open
    };
    assert!(matches!(
        append(Some(done), 2),
        Err(StoreError::BlobNotWritable)
    ));
}

#[test]
fn a_blob_finishes_once_with_its_exact_size() {
    let open = BlobState {
        chunk_count: 1,
        stored_bytes: 10,
        finished: false,
    };
    assert!(finish(Some(open), 10).is_ok());
    assert!(matches!(
        finish(Some(open), 11),
        Err(StoreError::BlobSizeMismatch {
            declared: 11,
            stored: 10
        })
    ));
    let done = BlobState {
        finished: true,
        ..open
    };
    assert!(matches!(
        finish(Some(done), 10),
        Err(StoreError::BlobNotWritable)
    ));
    assert!(matches!(finish(None, 10), Err(StoreError::BlobNotWritable)));
}

fn username(text: &str) -> umbra_wire::Username {
    umbra_wire::Username::parse(text).unwrap()
}

#[test]
fn reserved_names_ignore_case_and_separators_but_not_other_letters() {
    for reserved in [
        "admin",
        "ADMIN",
        "ad_min",
        "support.",
        "post.master",
        "umbra",
    ] {
        assert!(is_reserved_username(&username(reserved)), "{reserved}");
    }
    for ordinary in ["alice", "admin2", "adm1n", "administrative", "umbrella"] {
        assert!(!is_reserved_username(&username(ordinary)), "{ordinary}");
    }
}

#[test]
fn a_released_name_is_quarantined_for_exactly_its_period() {
    assert!(!quarantined(None, 100, 50));
    assert!(quarantined(Some(100), 100, 50));
    assert!(quarantined(Some(100), 149, 50));
    assert!(!quarantined(Some(100), 150, 50));
    // 0 turns the quarantine off; a huge period saturates, never wraps.
    assert!(!quarantined(Some(100), 100, 0));
    assert!(quarantined(Some(100), u64::MAX - 1, u64::MAX));
}

#[test]
fn a_claim_is_refused_as_reserved_before_as_quarantined() {
    assert!(matches!(
        claimable(&username("root"), Some(10), 10, 100),
        Err(StoreError::UsernameReserved)
    ));
    assert!(matches!(
        claimable(&username("alice"), Some(10), 10, 100),
        Err(StoreError::UsernameTaken)
    ));
    assert!(claimable(&username("alice"), Some(10), 110, 100).is_ok());
}

fn limits(max_queue: u64) -> crate::store::StoreLimits {
    crate::store::StoreLimits {
        max_queue_per_recipient: max_queue,
        ..Default::default()
    }
}

#[test]
fn a_message_needs_a_recipient_with_room() {
    let mut queue = QueueState::new(0, 0);
    let l = limits(1);
    assert_eq!(admit_message(Some(&mut queue), &l).unwrap(), Ok(1));
    assert_eq!(
        admit_message(Some(&mut queue), &l).unwrap(),
        Err(EnqueueRejection::QueueFull)
    );
    assert_eq!(
        admit_message(None, &l).unwrap(),
        Err(EnqueueRejection::UnknownRecipient)
    );
}

#[test]
fn blob_quotas_refuse_the_blob_or_byte_past_the_limit() {
    assert!(blob_count_quota(1, 2).is_ok());
    assert!(matches!(
        blob_count_quota(2, 2),
        Err(StoreError::BlobQuotaExceeded {
            what: "blobs",
            limit: 2
        })
    ));
    assert!(blob_bytes_quota(6, 4, 10).is_ok());
    assert!(matches!(
        blob_bytes_quota(6, 5, 10),
        Err(StoreError::BlobQuotaExceeded {
            what: "bytes",
            limit: 10
        })
    ));
    assert!(blob_bytes_quota(u64::MAX, 1, u64::MAX).is_err());
}

#[test]
fn device_ids_follow_the_highest_ever_and_stop_at_the_cap() {
    assert_eq!(next_device(None, 0).unwrap(), DeviceId::PRIMARY);
    // The highest id ever (a tombstone included) decides, not the count.
    assert_eq!(next_device(Some(7), 2).unwrap(), DeviceId(8));
    assert!(matches!(
        next_device(Some(8), 8),
        Err(StoreError::TooManyDevices { limit: 8 })
    ));
    assert!(matches!(
        next_device(Some(u32::MAX), 1),
        Err(StoreError::TooManyDevices { .. })
    ));
}

#[test]
fn last_seen_is_kept_to_the_hour() {
    assert_eq!(last_seen_hour(7_199), 3_600);
    assert_eq!(last_seen_hour(7_200), 7_200);
    assert_eq!(last_seen_hour(0), 0);
}

#[test]
fn a_device_list_replaces_only_a_lower_version() {
    assert!(device_list_replaces(None, 1).is_ok());
    assert!(device_list_replaces(Some(1), 2).is_ok());
    assert!(matches!(
        device_list_replaces(Some(2), 2),
        Err(StoreError::StaleDeviceList { stored_version: 2 })
    ));
    assert!(matches!(
        device_list_replaces(Some(5), 3),
        Err(StoreError::StaleDeviceList { stored_version: 5 })
    ));
}

#[test]
fn link_tickets_and_posts_are_bounded() {
    assert!(link_ticket_room(&[100], 2, 10).is_ok());
    assert!(matches!(
        link_ticket_room(&[300, 100], 2, 10),
        Err(StoreError::TooManyLinkTickets {
            retry_after_secs: 90
        })
    ));
    assert!(link_ticket_live(11, 10));
    assert!(!link_ticket_live(10, 10));
    assert_eq!(next_link_post(0, 4).unwrap(), 1);
    assert_eq!(next_link_post(3, 4).unwrap(), 4);
    assert!(matches!(
        next_link_post(4, 4),
        Err(StoreError::TooManyLinkMessages { limit: 4 })
    ));
}
