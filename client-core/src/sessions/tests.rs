//! The session manager on its own, over a memory store: no engine, no relay.

use rand::rngs::OsRng;
use umbra_protocol::consts::MAX_UNACKNOWLEDGED_SESSION_AGE;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::{KemPreKey, KemPreKeyKind};
use umbra_protocol::prekeys::{OneTimePreKey, PreKeyBundle, SignedPreKey};
use umbra_protocol::wire::AccountId;

use super::*;

const NOW: u64 = 1_800_000_000;

async fn manager() -> SessionManager {
    let vault = Vault::for_tests().await;
    SessionManager::new(vault)
}

/// A peer: its identity and the contact record we keep of it.
struct Peer {
    identity: IdentityKeyPair,
    contact: ContactRecord,
}

impl Peer {
    fn new() -> Self {
        let identity = IdentityKeyPair::generate(&mut OsRng);
        let account = *AccountId::random(&mut OsRng).as_bytes();
        let contact = ContactRecord::first_seen(account, "bob".into(), identity.public());
        Self { identity, contact }
    }

    fn address(&self) -> Address {
        Address::primary(AccountId::from_bytes(self.contact.account))
    }

    /// A session we start with the peer from its bundle (awaiting a reply).
    fn initiate(&self) -> PairwiseSession {
        let bundle = PreKeyBundle {
            identity: self.identity.public(),
            signed_prekey: SignedPreKey::generate(&self.identity, 1, NOW, &mut OsRng).public(),
            one_time_prekey: None,
            last_resort: Some(OneTimePreKey::generate(0, &mut OsRng).public()),
            kem_one_time: None,
            kem_last_resort: Some(
                KemPreKey::generate(
                    &self.identity,
                    KemPreKeyKind::LastResort,
                    1,
                    NOW,
                    &mut OsRng,
                )
                .public(),
            ),
        }
        .verify_at(NOW)
        .expect("bundle verifies");
        let ours = IdentityKeyPair::generate(&mut OsRng);
        let our_address = Address::primary(AccountId::random(&mut OsRng));
        PairwiseSession::initiate(&ours, &our_address, &bundle, &self.address(), &mut OsRng)
            .expect("initiate")
    }
}

async fn save(manager: &SessionManager, contact: &ContactRecord, record: &SessionRecord) {
    let mut txn = Txn::new();
    manager
        .save_for_contact(&mut txn, contact, record)
        .expect("save");
    manager.vault.commit(txn).await.expect("commit");
}

#[tokio::test]
async fn a_contacts_record_is_the_one_its_envelopes_name_and_written_only_on_commit() {
    let manager = manager().await;
    let bob = Peer::new();
    let record = SessionRecord::new(bob.initiate(), NOW);
    let mut txn = Txn::new();
    manager
        .save_for_contact(&mut txn, &bob.contact, &record)
        .unwrap();
    assert!(manager.of_contact(&bob.contact).await.unwrap().is_none());
    manager.vault.commit(txn).await.unwrap();
    let by_contact = manager.of_contact(&bob.contact).await.unwrap();
    let by_sender = manager
        .with(&bob.address(), &bob.identity.public())
        .await
        .unwrap();
    let pickle = |r: Option<SessionRecord>| r.expect("stored").to_pickle_bytes().to_vec();
    assert_eq!(pickle(by_contact), record.to_pickle_bytes().to_vec());
    assert_eq!(pickle(by_sender), record.to_pickle_bytes().to_vec());
}

#[tokio::test]
async fn the_same_account_under_another_identity_has_no_session() {
    let manager = manager().await;
    let bob = Peer::new();
    save(
        &manager,
        &bob.contact,
        &SessionRecord::new(bob.initiate(), NOW),
    )
    .await;
    // Copied or new keys under bob's account: never bob's session.
    let other = IdentityKeyPair::generate(&mut OsRng).public();
    assert!(manager
        .with(&bob.address(), &other)
        .await
        .unwrap()
        .is_none());
    let mut repinned = bob.contact.clone();
    repinned.pinned = other;
    assert!(manager.of_contact(&repinned).await.unwrap().is_none());
    // Nor is another device of the account.
    let mut second = bob.address();
    second.device = umbra_protocol::wire::DeviceId(2);
    let identity = bob.identity.public();
    assert!(manager.with(&second, &identity).await.unwrap().is_none());
}

#[tokio::test]
async fn a_new_session_archives_the_stored_one_and_stores_nothing_itself() {
    let manager = manager().await;
    let bob = Peer::new();
    let first = manager
        .begin(&bob.contact, bob.initiate(), NOW)
        .await
        .unwrap();
    assert_eq!(first.archived_count(), 0, "nothing stored: a new record");
    save(&manager, &bob.contact, &first).await;
    let later = NOW + 60;
    let second = manager
        .begin(&bob.contact, bob.initiate(), later)
        .await
        .unwrap();
    assert_eq!(second.archived_count(), 1, "the old run is kept archived");
    assert_eq!(second.current_since(), later);
    // Until saved, the stored record is still the first one.
    let stored = manager.of_contact(&bob.contact).await.unwrap().unwrap();
    assert_eq!(stored.archived_count(), 0);
    assert_eq!(stored.current_since(), NOW);
}

#[tokio::test]
async fn a_session_we_started_and_never_heard_back_on_is_not_usable_after_the_lifetime() {
    let manager = manager().await;
    let bob = Peer::new();
    save(
        &manager,
        &bob.contact,
        &SessionRecord::new(bob.initiate(), NOW),
    )
    .await;
    let lifetime = MAX_UNACKNOWLEDGED_SESSION_AGE.as_secs();
    let usable = manager
        .usable_of_device(
            &bob.contact,
            umbra_protocol::wire::DeviceId::PRIMARY,
            NOW + lifetime - 1,
        )
        .await;
    assert!(usable.unwrap().is_some(), "still young");
    let usable = manager
        .usable_of_device(
            &bob.contact,
            umbra_protocol::wire::DeviceId::PRIMARY,
            NOW + lifetime,
        )
        .await;
    assert!(usable.unwrap().is_none(), "unanswered for the lifetime");
    // The record itself stays (a late reply may still arrive on it).
    assert!(manager.of_contact(&bob.contact).await.unwrap().is_some());
}
