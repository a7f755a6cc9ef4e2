//! The store test suite: every behaviour written once against `dyn Store`
//! and run on both backends (`sqlite_backend::*`, `postgres_backend::*`).
//!
//! Must never: depend on timing, share a database between tests, or pass a
//! PostgreSQL test that did not run without saying so (the rule lives in
//! umbra-test-support).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use umbra_wire::keys::PublicKey;
use umbra_wire::{AccountId, Address, DeviceId, PreKeyWire, SignedPreKeyWire, Username};

use super::test_support::TestDb;
use super::{
    BlobId, EnqueueRejection, GroupCommitter, NewMessage, PasswordFile, QueueEvent, SharedStore,
    StoreError, StoreLimits, TokenInfo, TokenStatus, MAX_BLOB_CHUNK_BYTES,
};

// ----- fixtures -----------------------------------------------------------

fn account_id(tag: u8) -> AccountId {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes[0] = tag;
    AccountId::from_bytes(bytes)
}

fn name(text: &str) -> Username {
    Username::parse(text).expect("test username is valid")
}

async fn new_account(store: &SharedStore, username: &str) -> AccountId {
    let account = account_id(username.as_bytes()[0]);
    store
        .create_account(account, &name(username), &password_file(username), NOW)
        .await
        .expect("create account");
    account
}

fn password_file(tag: &str) -> PasswordFile {
    PasswordFile::new(format!("opaque-record-of-{tag}").into_bytes())
}

fn key(seed: u32) -> PublicKey {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&seed.to_le_bytes());
    bytes[31] = 0x42;
    PublicKey::from_bytes(bytes)
}

fn one_time(id: u32) -> PreKeyWire {
    PreKeyWire { id, key: key(id) }
}

fn signed(id: u32) -> SignedPreKeyWire {
    SignedPreKeyWire {
        id,
        created_at: 1_700_000_000,
        key: key(10_000 + id),
        signature: [7u8; 64],
    }
}

fn identity(tag: u8) -> Vec<u8> {
    vec![tag; 128]
}

fn last_resort(id: u32) -> PreKeyWire {
    PreKeyWire { id, key: key(id) }
}

/// Publishes identity, signed prekey and last-resort key for `device`.
async fn publish_device(store: &SharedStore, device: Address) {
    store
        .put_keys(
            device,
            &identity(9),
            &signed(1),
            Some(&last_resort(999_999)),
        )
        .await
        .expect("publish keys");
}

/// The instant account changes are made at in these tests.
const NOW: u64 = 1_700_000_000;

fn message(recipient: Address, body: &str) -> NewMessage {
    NewMessage {
        recipient,
        envelope: body.as_bytes().to_vec(),
        received_at_ms: 1_000_123,
        expires_at: 1_000_000,
    }
}

fn ok_seqs(outcomes: &[Result<u64, EnqueueRejection>]) -> Vec<u64> {
    outcomes
        .iter()
        .map(|o| *o.as_ref().expect("message accepted"))
        .collect()
}

async fn bodies(store: &SharedStore, recipient: Address) -> Vec<(u64, String)> {
    store
        .fetch_after(recipient, 0, 10_000, 0)
        .await
        .expect("fetch")
        .into_iter()
        .map(|m| {
            (
                m.seq,
                String::from_utf8(m.envelope).expect("utf-8 test body"),
            )
        })
        .collect()
}

mod account_identity;
mod accounts;
mod backup;
mod blobs;
mod bulk;
mod commit_unknown;
mod device_removal;
mod devices;
mod group_commit;
mod hand_off;
mod kem_keys;
mod keys;
mod lifecycle;
mod names;
mod one_time_marks;
mod queue;
mod removal_race;
mod token_in_tx;
mod write_turn;

use account_identity::*;
use accounts::*;
use backup::*;
use blobs::*;
use bulk::*;
use device_removal::*;
use devices::*;
use kem_keys::*;
use keys::*;
use names::*;
use one_time_marks::*;
use queue::*;

// ----- instantiation for both backends -------------------------------------------

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let db = super::TestDb::sqlite();
                    super::$test(&db).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let test = concat!(module_path!(), "::", stringify!($test));
                    let Some(db) = super::TestDb::postgres(test).await else { return };
                    super::$test(&db).await;
                }
            )*
        }
    };
}

on_both_backends!(
    the_audit_sees_the_same_schema_on_both_backends,
    reserved_names_are_refused_at_registration_and_rename,
    released_names_are_quarantined_then_free,
    no_quarantine_keeps_no_name_history,
    a_release_committed_while_a_registration_waits_still_quarantines,
    blob_quotas_bound_count_and_bytes_per_account,
    accounts_are_unique_case_folded_and_renamable,
    tokens_expire_and_revoke,
    a_password_change_needs_an_unexpired_token_and_replaces_every_token,
    expired_tokens_are_told_apart_until_purged,
    concurrent_claims_never_share_a_one_time_prekey,
    bundles_need_published_keys_and_uploads_are_idempotent,
    an_identity_another_device_publishes_is_refused,
    rotating_the_signed_prekey_keeps_one_time_prekeys,
    a_new_identity_drops_the_old_identitys_prekeys,
    published_identity_is_read_without_claiming_a_prekey,
    a_failed_publish_leaves_the_previous_keys_whole,
    one_time_prekeys_are_capped_per_account,
    kem_prekeys_are_stored_under_the_published_identity_all_or_nothing,
    a_classical_claim_leaves_the_kem_prekeys,
    concurrent_hybrid_claims_never_share_a_kem_prekey,
    a_new_identity_drops_the_kem_prekeys,
    removing_a_device_drops_its_kem_prekeys,
    kem_one_time_prekeys_are_capped_per_account,
    the_marks_migration_starts_at_the_highest_stored_id,
    claims_racing_identity_resets_never_mix_identities,
    enqueue_assigns_ordered_per_recipient_seqs,
    full_queue_refuses_only_its_own_messages,
    two_writers_on_one_database_keep_seqs_distinct,
    fetch_ack_and_expiry,
    the_acceptance_time_keeps_its_milliseconds,
    a_purge_of_many_rows_removes_every_expired_one,
    blob_chunks_round_trip,
    backups_replace_only_with_a_greater_seq,
    racing_backups_keep_the_newest,
    a_backup_needs_its_account_and_goes_with_it,
    delete_account_leaves_no_rows,
    the_key_fingerprint_is_bound_once_and_no_setup_is_stored,
    data_survives_reopen,
    group_commit_serves_concurrent_submitters,
    group_commit_acks_beside_sends,
    subscribers_hear_committed_enqueues,
    device_ids_increase_and_are_never_reused,
    a_ninth_current_device_is_refused,
    a_device_list_needs_a_higher_version_and_current_devices,
    current_devices_are_read_for_several_accounts,
    a_link_ticket_is_joined_once_and_expires,
    the_devices_migration_gives_every_account_device_1,
    an_identity_stays_with_its_account,
    a_removed_device_1_gets_no_login_token,
    a_device_removed_before_its_link_finishes_gets_no_token,
    a_removed_device_cannot_remove,
    a_removed_creator_cannot_enrol,
    a_device_list_version_above_i64_max_is_refused,
    a_batch_stores_nothing_for_a_device_removed_before_it,
    a_linked_device_may_publish_only_the_account_identity,
    two_devices_racing_to_publish_two_identities_leave_one,
    the_identity_is_reset_once_no_other_device_is_current,
    a_fresh_account_publishes_its_first_identity_beside_a_linked_device,
);
