//! The relay's key-transparency storage and publisher on both backends:
//! every change a directory commits to is proven in the next epoch; an
//! idle round writes nothing; a change made before a crash is published
//! after it; two nodes on one database publish one chain; a restarted
//! node rebuilds the same directory; a deleted account leaves no row
//! holding its id.

use std::path::Path;
use std::sync::Arc;

use umbra_wire::device_list::DeviceList;
use umbra_wire::identity::Signature;
use umbra_wire::kt::{KtLabel, LeafValue, Lookup, SignedEpochHead, VerifiedHead};
use umbra_wire::{AccountId, Address, DeviceId, PreKeyWire, SignedPreKeyWire, Username};

use super::directory::{KtDirectory, Round};
use super::key_file;
use crate::store::test_support::TestDb;
use crate::store::{PasswordFile, SharedStore};

const NOW: u64 = 1_700_000_000;

fn name(text: &str) -> Username {
    Username::parse(text).unwrap()
}

pub(super) async fn directory(store: &SharedStore, dir: &Path) -> KtDirectory {
    let keys = key_file::load_or_create(&dir.join(key_file::DEFAULT_FILE_NAME), &**store)
        .await
        .expect("kt keys");
    KtDirectory::new(keys)
}

pub(super) async fn account(store: &SharedStore, tag: u8, username: &str) -> AccountId {
    let account = AccountId::from_bytes([tag; 16]);
    store
        .create_account(
            account,
            &name(username),
            &PasswordFile::new(vec![tag; 8]),
            NOW,
        )
        .await
        .unwrap();
    account
}

pub(super) async fn publish_identity(store: &SharedStore, account: AccountId, identity: u8) {
    let signed = SignedPreKeyWire {
        id: 1,
        created_at: NOW,
        key: umbra_wire::keys::PublicKey::from_bytes([0x42; 32]),
        signature: [7; 64],
    };
    let last_resort = PreKeyWire {
        id: 9,
        key: umbra_wire::keys::PublicKey::from_bytes([0x43; 32]),
    };
    let device = Address {
        account,
        device: DeviceId(1),
    };
    store
        .put_keys(device, &[identity; 128], &signed, Some(&last_resort))
        .await
        .unwrap();
}

/// The newest head, verified under the directory's own key.
async fn head(dir: &KtDirectory) -> VerifiedHead {
    let bytes = dir.latest_head().await.expect("a head");
    SignedEpochHead::decode(&bytes)
        .unwrap()
        .verify(&dir.keys().public().0)
        .expect("the head verifies")
}

/// What a verified lookup proof of `label` says in the newest epoch.
async fn proven(dir: &KtDirectory, label: &KtLabel) -> Option<(u64, LeafValue)> {
    let head = head(dir).await;
    let (with, proof) = dir.lookup(label).await.unwrap();
    assert_eq!(
        Some(with),
        dir.latest_head().await,
        "proven against the newest head"
    );
    match proof
        .verify(&dir.keys().public().1, label, head.map_root(), head.epoch())
        .expect("the lookup proof verifies")
    {
        Lookup::Present { latest, .. } => Some((latest.epoch, latest.value)),
        Lookup::Absent => None,
    }
}

async fn a_change_is_proven_in_the_next_epoch(db: &TestDb) {
    let store = db.open().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = directory(&store, tmp.path()).await;
    let alice = account(&store, 0xa1, "alice").await;
    publish_identity(&store, alice, 0x11).await;
    assert_eq!(dir.round(&store).await.unwrap(), Round::Published(0));
    let alice_leaf = KtLabel::Account(alice);
    assert_eq!(
        proven(&dir, &alice_leaf).await,
        Some((0, LeafValue::account(Some(&[0x11; 128]), None)))
    );
    assert_eq!(
        proven(&dir, &KtLabel::Username(name("alice"))).await,
        Some((
            0,
            LeafValue::Username {
                account: Some(alice)
            }
        ))
    );
    // Nothing changed: nothing is written.
    assert_eq!(dir.round(&store).await.unwrap(), Round::Idle);
    // Republishing the same identity (a prekey rotation) is no change.
    publish_identity(&store, alice, 0x11).await;
    assert_eq!(dir.round(&store).await.unwrap(), Round::Idle);

    // A device list, then a rename: each in the next epoch; the rename's
    // two leaves in one.
    let list = DeviceList::from_parts(
        alice,
        1,
        vec![DeviceId(1)],
        Signature::from_bytes(&[0x5a; 64]),
    )
    .unwrap();
    store.put_device_list(&list, NOW).await.unwrap();
    assert_eq!(dir.round(&store).await.unwrap(), Round::Published(1));
    assert_eq!(
        proven(&dir, &alice_leaf).await,
        Some((
            1,
            LeafValue::account(Some(&[0x11; 128]), Some(&list.encode()))
        ))
    );
    store
        .rename_account(alice, &name("alicia"), NOW)
        .await
        .unwrap();
    assert_eq!(dir.round(&store).await.unwrap(), Round::Published(2));
    assert_eq!(
        proven(&dir, &KtLabel::Username(name("alice"))).await,
        Some((2, LeafValue::Username { account: None }))
    );
    assert_eq!(
        proven(&dir, &KtLabel::Username(name("alicia"))).await,
        Some((
            2,
            LeafValue::Username {
                account: Some(alice)
            }
        ))
    );

    // Deletion: "none" and "released", and no row holding the account id
    // once the epoch is out.
    store.delete_account(alice, NOW).await.unwrap();
    assert_eq!(dir.round(&store).await.unwrap(), Round::Published(3));
    assert_eq!(
        proven(&dir, &alice_leaf).await,
        Some((3, LeafValue::account(None, None)))
    );
    assert_eq!(
        proven(&dir, &KtLabel::Username(name("alicia"))).await,
        Some((3, LeafValue::Username { account: None }))
    );
    assert_eq!(store.rows_for_account(alice).await.unwrap(), 0);
    // Nor does the deletion's pending mark (0x01 || account) outlive it.
    assert_eq!(store.kt_status().await.unwrap(), (Some(3), false));
    // A label never published is proven absent.
    assert_eq!(proven(&dir, &KtLabel::Username(name("nobody"))).await, None);
    // The history shows every version of alice's leaf.
    let (_, history) = dir.history(&alice_leaf, 1).await.unwrap().unwrap();
    let head = head(&dir).await;
    let versions = history
        .verify(
            &dir.keys().public().1,
            &alice_leaf,
            head.map_root(),
            head.epoch(),
        )
        .unwrap()
        .versions;
    let epochs: Vec<u64> = versions.iter().map(|(r, _)| r.epoch).collect();
    assert_eq!(epochs, [0, 1, 3]);
}

async fn a_change_made_before_a_crash_is_published_after_it(db: &TestDb) {
    let store = db.open().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = directory(&store, tmp.path()).await;
    assert_eq!(dir.round(&store).await.unwrap(), Round::Published(0));
    let bob = account(&store, 0xb0, "bob").await;
    assert_eq!(dir.round(&store).await.unwrap(), Round::Published(1));
    // bob publishes his identity; the node dies before its next round,
    // and a new one (same keys, same database) starts.
    publish_identity(&store, bob, 0x22).await;
    drop(dir);
    drop(store);
    let store = db.open().await;
    let dir = directory(&store, tmp.path()).await;
    assert_eq!(dir.round(&store).await.unwrap(), Round::Published(2));
    assert_eq!(
        proven(&dir, &KtLabel::Account(bob)).await,
        Some((2, LeafValue::account(Some(&[0x22; 128]), None)))
    );
    // And a restarted node rebuilds the same directory from the tables.
    let again = directory(&store, tmp.path()).await;
    assert_eq!(again.round(&store).await.unwrap(), Round::Idle);
    assert_eq!(again.latest_head().await, dir.latest_head().await);
    assert_eq!(
        proven(&again, &KtLabel::Account(bob)).await,
        proven(&dir, &KtLabel::Account(bob)).await
    );
}

async fn two_nodes_on_one_database_publish_one_chain(db: &TestDb) {
    let tmp = tempfile::tempdir().unwrap();
    let first = db.open().await;
    let second = db.open().await;
    let one = Arc::new(directory(&first, tmp.path()).await);
    let two = Arc::new(directory(&second, tmp.path()).await);
    // Both publish at once, each round after a change of its own.
    let mut tasks = Vec::new();
    for (node, store, tag) in [
        (one.clone(), first.clone(), 0x10u8),
        (two.clone(), second.clone(), 0x40),
    ] {
        tasks.push(tokio::spawn(async move {
            for i in 0..8u8 {
                let who = account(&store, tag + i, &format!("user{:02x}", tag + i)).await;
                publish_identity(&store, who, tag + i).await;
                node.round(&store).await.expect("a round");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    one.round(&first).await.unwrap();
    two.round(&second).await.unwrap();
    assert_eq!(
        one.latest_head().await,
        two.latest_head().await,
        "one chain"
    );
    // An epoch one node publishes, the other catches up with, publishing
    // nothing of its own.
    let late = account(&first, 0x77, "late").await;
    publish_identity(&first, late, 0x77).await;
    let Round::Published(epoch) = one.round(&first).await.unwrap() else {
        panic!("nothing published");
    };
    assert_eq!(two.round(&second).await.unwrap(), Round::CaughtUp(epoch));
    assert_eq!(one.latest_head().await, two.latest_head().await);
    // Every epoch's head verifies and extends the one before.
    let (_, epochs) = first.kt_since(None).await.unwrap();
    let key = one.keys().public().0;
    let mut previous: Option<VerifiedHead> = None;
    for (i, row) in epochs.iter().enumerate() {
        assert_eq!(row.epoch, i as u64);
        let head = SignedEpochHead::decode(&row.head)
            .unwrap()
            .verify(&key)
            .unwrap();
        if let Some(p) = &previous {
            let proof = one.head_with_proofs(Some(p.epoch()), None).await.unwrap();
            let latest = proof.head.verify(&key).unwrap();
            p.check_extended_by(&latest, &proof.consistency.unwrap())
                .unwrap();
        }
        previous = Some(head);
    }
    // Every account of both nodes is proven.
    for tag in (0x10..0x18).chain(0x40..0x48) {
        let label = KtLabel::Account(AccountId::from_bytes([tag; 16]));
        assert_eq!(
            proven(&two, &label).await.map(|(_, v)| v),
            Some(LeafValue::account(Some(&[tag; 128]), None))
        );
    }
}

/// A publication whose commit fails (a trigger aborts the epoch's insert
/// after the seal signed it) serves nothing of that epoch: until a round
/// rebuilds from the database, the node answers as if no epoch existed,
/// and the epoch it then publishes is the only one any reader saw.
async fn a_failed_publication_serves_nothing_of_its_epoch(db: &TestDb) {
    let store = db.open().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = directory(&store, tmp.path()).await;
    let alice = account(&store, 0xa1, "alice").await;
    publish_identity(&store, alice, 0x11).await;
    assert_eq!(dir.round(&store).await.unwrap(), Round::Published(0));
    let committed = dir.latest_head().await.expect("epoch 0's head");

    db.execute_raw(
        &["CREATE TRIGGER kt_refuse BEFORE INSERT ON kt_epochs \
           BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
        &[
            "CREATE FUNCTION kt_refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            "CREATE TRIGGER kt_refuse BEFORE INSERT ON kt_epochs \
             FOR EACH ROW EXECUTE FUNCTION kt_refuse()",
        ],
    )
    .await;
    publish_identity(&store, alice, 0x12).await;
    assert!(dir.round(&store).await.is_err(), "the insert was refused");
    // The seal had signed epoch 1 in memory; none of it is served.
    assert_eq!(dir.latest_head().await, None);
    assert_eq!(dir.latest_epoch().await, None);
    assert!(dir.lookup(&KtLabel::Account(alice)).await.is_none());
    assert!(dir.head_with_proofs(Some(0), None).await.is_err());

    db.execute_raw(
        &["DROP TRIGGER kt_refuse"],
        &[
            "DROP TRIGGER kt_refuse ON kt_epochs",
            "DROP FUNCTION kt_refuse()",
        ],
    )
    .await;
    assert_eq!(dir.round(&store).await.unwrap(), Round::Published(1));
    let head = head(&dir).await;
    assert_eq!(head.epoch(), 1);
    assert_eq!(
        proven(&dir, &KtLabel::Account(alice)).await,
        Some((1, LeafValue::account(Some(&[0x12; 128]), None)))
    );
    // Epoch 0's head is still the one first served (the rebuild read it).
    let answer = dir.head_with_proofs(Some(0), Some(0)).await.unwrap();
    let (entry, _) = answer.inclusion.expect("epoch 0's entry");
    assert_eq!(
        SignedEpochHead::decode(&committed).unwrap().entry,
        entry,
        "the rebuilt log holds the committed epoch 0"
    );
}

/// Runs each named test body on SQLite and on PostgreSQL (which must be
/// reachable under CI=true); `tests_audit.rs` uses it too.
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

pub(super) use on_both_backends;

on_both_backends!(
    a_change_is_proven_in_the_next_epoch,
    a_change_made_before_a_crash_is_published_after_it,
    two_nodes_on_one_database_publish_one_chain,
    a_failed_publication_serves_nothing_of_its_epoch,
);
