//! The backup manager on its own, over memory stores (no engine, no
//! relay): what a backup built from a store holds, that restoring it into
//! an empty store brings back contacts with their trust, name bindings and
//! groups, and the merge rule of docs/PROTOCOL.md §12.15.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use umbra_protocol::backup::{self as format, BackupContact, BackupTrust, EXPORT_KEY_LEN};
use umbra_protocol::group::{GroupChange, GroupId, GroupLog, GroupPolicy, NewMember};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::wire::{AccountId, Username};

use super::merge::merge;
use super::restore::{ResetLimiter, RESET_INTERVAL};
use super::*;
use crate::store::{ClientStore, KdfParams, MemoryStore};

async fn vault(account: AccountId) -> Arc<Vault> {
    let backend: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    Arc::new(
        Vault::create(
            backend,
            b"password",
            KdfParams::insecure_for_tests(),
            account,
            &mut OsRng,
        )
        .await
        .expect("vault"),
    )
}

fn contact(name: &str, trust: TrustLevel) -> ContactRecord {
    let mut c = ContactRecord::first_seen(
        *AccountId::random(&mut OsRng).as_bytes(),
        name.into(),
        IdentityKeyPair::generate(&mut OsRng).public(),
    );
    if trust == TrustLevel::Changed {
        c.observe(&IdentityKeyPair::generate(&mut OsRng).public());
    } else {
        c.trust = trust;
    }
    c
}

fn group_log(me: &IdentityKeyPair, account: AccountId, name: &str) -> GroupLog {
    let members = vec![NewMember {
        account,
        username: Username::parse("alice").unwrap(),
    }];
    let change = GroupChange::create(
        me,
        account,
        GroupId::random(&mut OsRng),
        name,
        GroupPolicy {
            members_may_rename: false,
        },
        members,
    )
    .unwrap();
    GroupLog::create(change, &me.public()).unwrap()
}

struct Account {
    id: AccountId,
    identity: IdentityKeyPair,
    manager: BackupManager,
    vault: Arc<Vault>,
}

async fn account() -> Account {
    let id = AccountId::random(&mut OsRng);
    let vault = vault(id).await;
    Account {
        id,
        identity: IdentityKeyPair::generate(&mut OsRng),
        manager: BackupManager::new(vault.clone()),
        vault,
    }
}

async fn save_contacts(vault: &Vault, contacts: &[ContactRecord]) {
    let mut txn = Txn::new();
    for c in contacts {
        vault
            .save(&mut txn, records::contact::slot(vault, &c.account), c)
            .unwrap();
    }
    vault.commit(txn).await.unwrap();
}

#[tokio::test]
async fn a_backup_restores_contacts_trust_names_and_groups_into_an_empty_store() {
    let old = account().await;
    let contacts = [
        contact("bob", TrustLevel::Verified),
        contact("carol", TrustLevel::Unverified),
        contact("dave", TrustLevel::Changed),
    ];
    save_contacts(&old.vault, &contacts).await;
    let groups = vec![Group::new(group_log(&old.identity, old.id, "book club"))];
    let built = old
        .manager
        .contents(old.id, &old.identity, &groups, 1_800_000_000)
        .await
        .unwrap();
    assert_eq!(built.contacts.len(), 3);
    assert!(built
        .contacts
        .windows(2)
        .all(|w| w[0].account < w[1].account));

    // Through the real format, as the relay would hold it.
    let key = ExportKey::from_slice(&[7; EXPORT_KEY_LEN])
        .unwrap()
        .backup_key(&old.id);
    let sealed = format::seal(&built, &key, 1, &mut OsRng).unwrap();
    let mut opened = format::open(&key, &sealed, None).unwrap().contents;
    assert_eq!(opened.identity.public(), old.identity.public());
    // A group whose log does not load (another version's, or damaged) is
    // skipped and counted; it does not stop the restore of the rest.
    let mut unreadable = opened.groups[0].clone();
    unreadable.log.truncate(5);
    opened.groups.insert(0, unreadable);

    let fresh = vault(old.id).await;
    let manager = BackupManager::new(fresh.clone());
    let mut txn = Txn::new();
    let names = crate::name_book::NameBook::new(fresh.clone());
    let groups = crate::groups::manager::GroupManager::new(fresh.clone());
    let restored = manager.restore_into(&mut txn, &opened, &old.id, &names, &groups);
    assert_eq!(
        restored.unwrap(),
        super::Restored {
            contacts: 3,
            groups: 1,
            skipped_groups: 1
        }
    );
    fresh.commit(txn).await.unwrap();
    for c in &contacts {
        let back: ContactRecord = fresh
            .load(&records::contact::slot(&fresh, &c.account))
            .await
            .unwrap()
            .expect("restored contact");
        assert_eq!(back.trust, c.trust, "{}", c.username);
        assert_eq!(back.pinned, c.pinned);
        assert_eq!(back.pending, c.pending);
        let binding: NameBinding = fresh
            .load(&records::contact::binding(&fresh, &c.username))
            .await
            .unwrap()
            .expect("restored name");
        assert_eq!(binding.account, c.account);
    }
    let group_manager = crate::groups::manager::GroupManager::new(fresh.clone());
    let restored = group_manager.all().await.unwrap();
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0].name(), "book club");
    assert_eq!(restored[0].membership, Membership::Active);
    // Rebuilt from the restored store, the backup is the same one.
    let mut again = manager
        .contents(old.id, &old.identity, &restored, 1_900_000_000)
        .await
        .unwrap();
    let mut first = built;
    assert_eq!(digest(&mut again).unwrap(), digest(&mut first).unwrap());
}

#[tokio::test]
async fn groups_we_left_are_not_backed_up_and_the_time_is_no_change() {
    let a = account().await;
    let mut left = Group::new(group_log(&a.identity, a.id, "old"));
    left.membership = Membership::Left;
    let active = Group::new(group_log(&a.identity, a.id, "new"));
    let mut c = a
        .manager
        .contents(a.id, &a.identity, &[left, active], 1)
        .await
        .unwrap();
    assert_eq!(c.groups.len(), 1);
    let before = digest(&mut c).unwrap();
    c.written_at = 2;
    assert_eq!(digest(&mut c).unwrap(), before);
    assert_eq!(c.written_at, 2, "digest restores the time");
}

fn backup_contact(identity: &IdentityKeyPair, trust: BackupTrust, account: u8) -> BackupContact {
    BackupContact {
        account: AccountId::from_bytes([account; 16]),
        username: Username::parse("bob").unwrap(),
        identity: identity.public(),
        trust,
    }
}

#[test]
fn merge_keeps_both_sides_and_the_stricter_decision_never_repinning() {
    let me = AccountId::from_bytes([1; 16]);
    let bob = IdentityKeyPair::generate(&mut OsRng);
    let carol = IdentityKeyPair::generate(&mut OsRng);
    let other = IdentityKeyPair::generate(&mut OsRng);
    let mut ours = format::BackupContents::new(me, IdentityKeyPair::generate(&mut OsRng), 5);
    let mut theirs = format::BackupContents::new(me, IdentityKeyPair::generate(&mut OsRng), 9);
    let ours_identity = ours.identity.public();
    // bob: same pin, verified on their side only -> verified.
    ours.contacts
        .push(backup_contact(&bob, BackupTrust::Unverified, 2));
    theirs
        .contacts
        .push(backup_contact(&bob, BackupTrust::Verified, 2));
    // carol: another pin on their side -> ours, unverified, kept.
    ours.contacts
        .push(backup_contact(&carol, BackupTrust::Unverified, 3));
    theirs
        .contacts
        .push(backup_contact(&other, BackupTrust::Verified, 3));
    // dave only on their side, erin only on ours.
    theirs
        .contacts
        .push(backup_contact(&other, BackupTrust::Unverified, 4));
    ours.contacts
        .push(backup_contact(&other, BackupTrust::Verified, 5));
    theirs.contacts.sort_by_key(|c| c.account);
    // Groups: a newer version on their side wins, a group only ours stays.
    let signer = IdentityKeyPair::generate(&mut OsRng);
    let log = group_log(&signer, me, "v0");
    let renamed = GroupChange::rename(&signer, me, log.state(), "v1").unwrap();
    let mut newer = GroupLog::from_pickle(&log.to_pickle()).unwrap();
    newer.apply(renamed, &signer.public()).unwrap();
    let id = *log.state().group();
    ours.groups.push(BackupGroup {
        id,
        log: log.to_pickle().to_vec(),
    });
    theirs.groups.push(BackupGroup {
        id,
        log: newer.to_pickle().to_vec(),
    });
    let mine_only = group_log(&signer, me, "mine");
    ours.groups.push(BackupGroup {
        id: *mine_only.state().group(),
        log: mine_only.to_pickle().to_vec(),
    });
    ours.groups.sort_by_key(|g| g.id);
    theirs
        .settings
        .insert("notify.sound".into(), format::SettingValue::Bool(true));

    let merged = merge(ours, theirs);
    merged.encode().expect("the merge is canonical contents");
    assert_eq!(merged.identity.public(), ours_identity);
    let trust = |n: u8| {
        merged
            .contacts
            .iter()
            .find(|c| c.account == AccountId::from_bytes([n; 16]))
            .map(|c| (c.trust.clone(), c.identity.clone()))
    };
    assert_eq!(trust(2), Some((BackupTrust::Verified, bob.public())));
    assert_eq!(trust(3), Some((BackupTrust::Unverified, carol.public())));
    assert!(trust(4).is_some() && trust(5).is_some());
    assert_eq!(merged.groups.len(), 2);
    let kept = merged.groups.iter().find(|g| g.id == id).unwrap();
    assert_eq!(
        GroupLog::from_pickle(&kept.log).unwrap().state().name(),
        "v1"
    );
    assert_eq!(merged.settings.len(), 1);
}

#[test]
fn resets_are_asked_once_per_contact_and_interval() {
    let limiter = ResetLimiter::default();
    let identity = IdentityKeyPair::generate(&mut OsRng).public();
    let t0 = Instant::now();
    assert!(limiter.request([1; 16], identity.clone(), t0));
    assert!(!limiter.request([1; 16], identity.clone(), t0 + Duration::from_secs(1)));
    assert!(limiter.request([2; 16], identity.clone(), t0));
    assert!(limiter.request([1; 16], identity, t0 + RESET_INTERVAL));
}

#[test]
fn export_keys_and_state_show_nothing() {
    let key = ExportKey::from_slice(&[0xab; EXPORT_KEY_LEN]).unwrap();
    assert!(ExportKey::from_slice(&[1; 32]).is_err());
    let state = BackupState {
        export_key: key.clone(),
        acked_seq: Some(3),
        acked_digest: None,
    };
    for shown in [format!("{key:?}"), format!("{state:?}")] {
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }
    // The stored form round-trips the key.
    let bytes = postcard::to_stdvec(&state).unwrap();
    let back: BackupState = postcard::from_bytes(&bytes).unwrap();
    let account = AccountId::from_bytes([3; 16]);
    assert_eq!(
        back.export_key.backup_key(&account).key_check(),
        key.backup_key(&account).key_check()
    );
}

/// What a relay names about its copy (a `409`'s header, the outside of a
/// copy that says `WrongKey`) is unauthenticated: it may raise the
/// acknowledged seq, never lower it (which would lower the rollback floor
/// and let an older copy be merged), and `2^64 - 1` is refused, since no
/// backup could follow it.
#[test]
fn an_unauthenticated_seq_only_raises_the_floor() {
    use super::sync::raise_floor;
    assert_eq!(raise_floor(Some(7), Some(3)).unwrap(), Some(7));
    assert_eq!(raise_floor(Some(7), None).unwrap(), Some(7));
    assert_eq!(raise_floor(Some(7), Some(9)).unwrap(), Some(9));
    assert_eq!(raise_floor(None, Some(2)).unwrap(), Some(2));
    assert!(matches!(
        raise_floor(Some(7), Some(u64::MAX)),
        Err(crate::Error::Backup(crate::BackupFailure::BadAnswer(_)))
    ));
}
