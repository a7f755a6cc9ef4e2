//! Devices, device lists and the link rendezvous (docs/PROTOCOL.md 15), on
//! both backends: ids that are never reused, the per-account cap, the
//! version rule of device lists, single-use and expiring tickets, and the
//! migration that gives every existing account its device 1.

use umbra_wire::device_list::DeviceList;
use umbra_wire::identity::Signature;

use super::*;
use crate::store::{LinkLimits, LinkParty, LinkTicket};

const LIMITS: LinkLimits = LinkLimits {
    max_tickets_per_account: 2,
    max_posts_per_side: 2,
};

/// A device list of `account`; the store never checks the signature, so a
/// fixed one stands in.
pub(super) fn device_list(account: AccountId, version: u64, devices: &[u32]) -> DeviceList {
    DeviceList::from_parts(
        account,
        version,
        devices.iter().copied().map(DeviceId).collect(),
        Signature::from_bytes(&[0x5a; 64]),
    )
    .expect("test device list is well formed")
}

fn at(account: AccountId, device: u32) -> Address {
    Address {
        account,
        device: DeviceId(device),
    }
}

async fn current_ids(store: &SharedStore, account: AccountId) -> Vec<u32> {
    store
        .list_devices(account)
        .await
        .expect("list devices")
        .into_iter()
        .map(|d| d.device.0)
        .collect()
}

pub(super) async fn device_ids_increase_and_are_never_reused(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let listed = store.list_devices(alice).await.unwrap();
    assert_eq!(listed.len(), 1, "registration makes device 1");
    assert_eq!(listed[0].device, DeviceId::PRIMARY);
    assert_eq!(listed[0].created_at, NOW);
    assert_eq!(listed[0].last_seen_at, 0, "never authenticated");

    assert_eq!(store.add_device(alice, NOW + 1).await.unwrap(), DeviceId(2));
    assert_eq!(store.add_device(alice, NOW + 2).await.unwrap(), DeviceId(3));
    // Device 3 has keys, a token and a queue; device 1 too.
    for device in [at(alice, 1), at(alice, 3)] {
        publish_device(&store, device).await;
        store
            .add_one_time_prekeys(device, &[one_time(1)])
            .await
            .unwrap();
        store
            .enqueue_batch(&[message(device, "queued")])
            .await
            .unwrap();
    }
    store
        .insert_token(&[3; 32], at(alice, 3), NOW + 100)
        .await
        .unwrap();
    store
        .insert_token(&[1; 32], at(alice, 1), NOW + 100)
        .await
        .unwrap();

    let removed = store
        .remove_device(at(alice, 1), at(alice, 3), NOW + 3)
        .await
        .unwrap();
    assert_eq!((removed.tokens, removed.messages), (1, 1));
    assert!(!store.is_current_device(at(alice, 3)).await.unwrap());
    assert!(store.token_info(&[3; 32]).await.unwrap().is_none());
    assert!(store.claim_bundle(at(alice, 3)).await.unwrap().is_none());
    assert!(bodies(&store, at(alice, 3)).await.is_empty());
    // The other device keeps everything.
    assert!(store.token_info(&[1; 32]).await.unwrap().is_some());
    assert!(store.claim_bundle(at(alice, 1)).await.unwrap().is_some());
    assert_eq!(bodies(&store, at(alice, 1)).await.len(), 1);

    // The tombstone keeps 3 from coming back, even as the highest id.
    assert_eq!(store.add_device(alice, NOW + 4).await.unwrap(), DeviceId(4));
    store
        .remove_device(at(alice, 1), at(alice, 4), NOW + 5)
        .await
        .unwrap();
    assert_eq!(store.add_device(alice, NOW + 6).await.unwrap(), DeviceId(5));
    assert_eq!(current_ids(&store, alice).await, vec![1, 2, 5]);

    // A tombstone or a never-assigned id is not removable.
    for gone in [3, 4, 9] {
        let again = store
            .remove_device(at(alice, 1), at(alice, gone), NOW + 7)
            .await;
        assert!(
            matches!(again, Err(StoreError::UnknownDevice { device }) if device == gone),
            "{again:?}"
        );
    }
    let nobody = store.add_device(account_id(0xee), NOW).await;
    assert!(
        matches!(nobody, Err(StoreError::UnknownAccount)),
        "{nobody:?}"
    );

    // Last seen: the hour, written only when it moves on.
    let hour = NOW - NOW % 3600;
    assert!(store.touch_device(at(alice, 2), NOW + 10).await.unwrap());
    assert!(!store.touch_device(at(alice, 2), NOW + 11).await.unwrap());
    assert!(!store.touch_device(at(alice, 3), NOW + 10).await.unwrap());
    let two = store.list_devices(alice).await.unwrap()[1];
    assert_eq!((two.device, two.last_seen_at), (DeviceId(2), hour));
    assert!(store.touch_device(at(alice, 2), hour + 3600).await.unwrap());
    assert!(
        !store.touch_device(at(alice, 2), NOW).await.unwrap(),
        "an earlier time never moves it back"
    );
    assert_eq!(
        store.list_devices(alice).await.unwrap()[1].last_seen_at,
        hour + 3600
    );
}

pub(super) async fn current_devices_are_read_for_several_accounts(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let bob = new_account(&store, "bob").await;
    assert_eq!(store.add_device(alice, NOW + 1).await.unwrap(), DeviceId(2));
    assert_eq!(store.add_device(alice, NOW + 2).await.unwrap(), DeviceId(3));
    store
        .remove_device(at(alice, 1), at(alice, 2), NOW + 3)
        .await
        .unwrap();
    let nobody = AccountId::from_bytes([0xee; 16]);
    let mut asked = vec![alice, bob, nobody];
    asked.sort_unstable();
    let mut current = store.current_devices(&asked).await.unwrap();
    current.sort_unstable();
    let mut expected = vec![at(alice, 1), at(alice, 3), at(bob, 1)];
    expected.sort_unstable();
    assert_eq!(
        current, expected,
        "the tombstone and the unknown account are absent"
    );
    assert!(store.current_devices(&[]).await.unwrap().is_empty());
}

pub(super) async fn a_ninth_current_device_is_refused(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    for expected in 2..=8 {
        assert_eq!(
            store.add_device(alice, NOW).await.unwrap(),
            DeviceId(expected)
        );
    }
    let ninth = store.add_device(alice, NOW).await;
    assert!(
        matches!(ninth, Err(StoreError::TooManyDevices { limit: 8 })),
        "{ninth:?}"
    );
    assert_eq!(
        current_ids(&store, alice).await,
        (1..=8).collect::<Vec<_>>()
    );
    // A removal makes room; the refused attempt took no id.
    store
        .remove_device(at(alice, 1), at(alice, 5), NOW)
        .await
        .unwrap();
    assert_eq!(store.add_device(alice, NOW).await.unwrap(), DeviceId(9));
    assert!(matches!(
        store.add_device(alice, NOW).await,
        Err(StoreError::TooManyDevices { .. })
    ));
    // Another account is not affected.
    let bob = new_account(&store, "bob").await;
    assert_eq!(store.add_device(bob, NOW).await.unwrap(), DeviceId(2));
}

pub(super) async fn a_device_list_needs_a_higher_version_and_current_devices(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    assert!(store.device_list(alice).await.unwrap().is_none());

    let first = device_list(alice, 1, &[1]);
    store.put_device_list(&first, NOW).await.unwrap();
    let stored = store.device_list(alice).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.updated_at), (1, NOW));
    assert_eq!(stored.bytes, first.encode(), "the exact bytes are kept");

    let same = store
        .put_device_list(&device_list(alice, 1, &[1]), NOW)
        .await;
    assert!(
        matches!(same, Err(StoreError::StaleDeviceList { stored_version: 1 })),
        "{same:?}"
    );
    // Device 2 is not enrolled yet.
    let early = store
        .put_device_list(&device_list(alice, 2, &[1, 2]), NOW)
        .await;
    assert!(
        matches!(early, Err(StoreError::UnknownDevice { device: 2 })),
        "{early:?}"
    );
    store.add_device(alice, NOW).await.unwrap();
    let third = device_list(alice, 3, &[1, 2]);
    store.put_device_list(&third, NOW + 1).await.unwrap();
    let older = store
        .put_device_list(&device_list(alice, 2, &[1]), NOW + 2)
        .await;
    assert!(
        matches!(
            older,
            Err(StoreError::StaleDeviceList { stored_version: 3 })
        ),
        "{older:?}"
    );
    let stored = store.device_list(alice).await.unwrap().unwrap();
    assert_eq!(stored.version, 3);
    assert_eq!(
        stored.bytes,
        third.encode(),
        "a refused list changes nothing"
    );
    assert_eq!(DeviceList::decode(&stored.bytes).unwrap(), third);

    // A removed device may not be listed again.
    store
        .remove_device(at(alice, 1), at(alice, 2), NOW)
        .await
        .unwrap();
    let revived = store
        .put_device_list(&device_list(alice, 4, &[1, 2]), NOW)
        .await;
    assert!(
        matches!(revived, Err(StoreError::UnknownDevice { device: 2 })),
        "{revived:?}"
    );
    let nobody = store
        .put_device_list(&device_list(account_id(0xee), 1, &[1]), NOW)
        .await;
    assert!(
        matches!(nobody, Err(StoreError::UnknownAccount)),
        "{nobody:?}"
    );
}

fn ticket(tag: u8) -> LinkTicket {
    [tag; 16]
}

pub(super) async fn a_link_ticket_is_joined_once_and_expires(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let creator = at(alice, 1);
    let expires = NOW + 300;
    store
        .create_link_ticket(creator, &ticket(1), NOW, expires, LIMITS)
        .await
        .unwrap();
    store
        .create_link_ticket(creator, &ticket(2), NOW + 10, NOW + 310, LIMITS)
        .await
        .unwrap();
    let third = store
        .create_link_ticket(creator, &ticket(3), NOW + 20, NOW + 320, LIMITS)
        .await;
    assert!(
        matches!(
            third,
            Err(StoreError::TooManyLinkTickets {
                retry_after_secs: 280
            })
        ),
        "{third:?}"
    );
    let stranger = store
        .create_link_ticket(at(alice, 7), &ticket(3), NOW, expires, LIMITS)
        .await;
    assert!(
        matches!(stranger, Err(StoreError::UnknownDevice { device: 7 })),
        "{stranger:?}"
    );

    // Nobody posts as the joiner before the ticket is joined.
    let unjoined = store
        .post_link_message(&ticket(1), LinkParty::Joiner, b"early", NOW, LIMITS)
        .await;
    assert!(
        matches!(unjoined, Err(StoreError::UnknownLinkTicket)),
        "{unjoined:?}"
    );
    assert_eq!(
        store.join_link_ticket(&ticket(1), NOW + 1).await.unwrap(),
        creator
    );
    let twice = store.join_link_ticket(&ticket(1), NOW + 2).await;
    assert!(
        matches!(twice, Err(StoreError::UnknownLinkTicket)),
        "{twice:?}"
    );
    let unknown = store.join_link_ticket(&ticket(9), NOW).await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownLinkTicket)),
        "{unknown:?}"
    );

    // Posts: numbered per side, each side reads the other's.
    assert_eq!(
        store
            .post_link_message(&ticket(1), LinkParty::Joiner, b"msg1", NOW + 3, LIMITS)
            .await
            .unwrap(),
        1
    );
    let as_creator = LinkParty::Creator(creator);
    assert_eq!(
        store
            .post_link_message(&ticket(1), as_creator, b"msg2", NOW + 4, LIMITS)
            .await
            .unwrap(),
        1
    );
    let impostor = LinkParty::Creator(at(new_account(&store, "mallory").await, 1));
    let forged = store
        .post_link_message(&ticket(1), impostor, b"forged", NOW + 4, LIMITS)
        .await;
    assert!(
        matches!(forged, Err(StoreError::UnknownLinkTicket)),
        "{forged:?}"
    );
    store
        .post_link_message(&ticket(1), LinkParty::Joiner, b"msg3", NOW + 5, LIMITS)
        .await
        .unwrap();
    let full = store
        .post_link_message(&ticket(1), LinkParty::Joiner, b"msg4", NOW + 5, LIMITS)
        .await;
    assert!(
        matches!(full, Err(StoreError::TooManyLinkMessages { limit: 2 })),
        "{full:?}"
    );
    let to_creator = store
        .link_messages(&ticket(1), as_creator, 0, NOW + 6)
        .await
        .unwrap();
    assert_eq!(to_creator, vec![b"msg1".to_vec(), b"msg3".to_vec()]);
    let later = store
        .link_messages(&ticket(1), as_creator, 1, NOW + 6)
        .await
        .unwrap();
    assert_eq!(later, vec![b"msg3".to_vec()]);
    let to_joiner = store
        .link_messages(&ticket(1), LinkParty::Joiner, 0, NOW + 6)
        .await
        .unwrap();
    assert_eq!(to_joiner, vec![b"msg2".to_vec()]);

    // Enrolment: once, by the creator; the token once, to the joiner.
    let hash = [0x77; 32];
    assert_eq!(
        store
            .finish_link(&ticket(1), &hash, NOW + 1000, NOW + 7)
            .await
            .unwrap(),
        None,
        "nothing to hand over before LinkEnrol"
    );
    let by_impostor = store
        .enrol_link_device(at(alice, 2), &ticket(1), NOW + 7)
        .await;
    assert!(
        matches!(by_impostor, Err(StoreError::UnknownLinkTicket)),
        "{by_impostor:?}"
    );
    let device = store
        .enrol_link_device(creator, &ticket(1), NOW + 7)
        .await
        .unwrap();
    assert_eq!(device, DeviceId(2));
    let again = store.enrol_link_device(creator, &ticket(1), NOW + 8).await;
    assert!(
        matches!(again, Err(StoreError::UnknownLinkTicket)),
        "{again:?}"
    );
    let unjoined = store.enrol_link_device(creator, &ticket(2), NOW + 8).await;
    assert!(
        matches!(unjoined, Err(StoreError::UnknownLinkTicket)),
        "{unjoined:?}"
    );
    let joined = store
        .finish_link(&ticket(1), &hash, NOW + 1000, NOW + 9)
        .await
        .unwrap();
    assert_eq!(joined, Some(at(alice, 2)));
    let info = store
        .token_info(&hash)
        .await
        .unwrap()
        .expect("token stored");
    assert_eq!((info.owner, info.expires_at), (at(alice, 2), NOW + 1000));
    let second = store
        .finish_link(&ticket(1), &[0x78; 32], NOW + 1000, NOW + 10)
        .await;
    assert!(
        matches!(second, Err(StoreError::UnknownLinkTicket)),
        "{second:?}"
    );
    let finished = store
        .post_link_message(&ticket(1), as_creator, b"late", NOW + 10, LIMITS)
        .await;
    assert!(
        matches!(finished, Err(StoreError::UnknownLinkTicket)),
        "{finished:?}"
    );
    assert_eq!(current_ids(&store, alice).await, vec![1, 2]);

    // Expiry: at expires_at a ticket is gone for every use.
    assert!(store
        .link_ticket(&ticket(1), expires - 1)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .link_ticket(&ticket(1), expires)
        .await
        .unwrap()
        .is_none());
    let expired = store.join_link_ticket(&ticket(2), NOW + 310).await;
    assert!(
        matches!(expired, Err(StoreError::UnknownLinkTicket)),
        "{expired:?}"
    );
    let read = store
        .link_messages(&ticket(1), as_creator, 0, expires)
        .await;
    assert!(
        matches!(read, Err(StoreError::UnknownLinkTicket)),
        "{read:?}"
    );
    // An expired ticket no longer counts against the account.
    store
        .create_link_ticket(creator, &ticket(3), expires, expires + 300, LIMITS)
        .await
        .unwrap();
    assert_eq!(
        store.purge_expired_link_tickets(NOW + 310).await.unwrap(),
        2
    );
    let left = store.account_rows_by_table(alice).await.unwrap();
    assert_eq!(
        left.get("link_tickets"),
        Some(&1),
        "ticket 3 stays: {left:?}"
    );
    assert_eq!(
        left.get("link_messages"),
        Some(&0),
        "posts go with their ticket"
    );
}

pub(super) async fn the_devices_migration_gives_every_account_device_1(db: &TestDb) {
    // A database as a relay before migration 0007 left it: an account with
    // a published identity, nothing about devices.
    db.migrate_before(7).await;
    let alice = account_id(b'a');
    let hex: String = alice
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let ident: String = "01".repeat(128);
    let sqlite = [
        format!("INSERT INTO accounts VALUES (x'{hex}', 'alice', x'00')"),
        format!("INSERT INTO identity_keys VALUES (x'{hex}', 1, x'{ident}')"),
    ];
    let postgres = [
        format!("INSERT INTO accounts VALUES ('\\x{hex}', 'alice', '\\x00')"),
        format!("INSERT INTO identity_keys VALUES ('\\x{hex}', 1, '\\x{ident}')"),
    ];
    db.execute_raw(
        &sqlite.iter().map(String::as_str).collect::<Vec<_>>(),
        &postgres.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;

    let store = db.open().await;
    let listed = store.list_devices(alice).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0].device,
            listed[0].created_at,
            listed[0].last_seen_at
        ),
        (DeviceId::PRIMARY, 0, 0)
    );
    assert_eq!(store.add_device(alice, NOW).await.unwrap(), DeviceId(2));
    // The identity stays alice's: another account may not take it, and
    // her new device may publish it.
    let mallory = Address::primary(new_account(&store, "mallory").await);
    let copied = store
        .put_keys(mallory, &identity(1), &signed(1), None)
        .await;
    assert!(
        matches!(copied, Err(StoreError::IdentityInUse)),
        "{copied:?}"
    );
    store
        .put_keys(at(alice, 2), &identity(1), &signed(1), None)
        .await
        .expect("a device of the same account shares the identity");
}

pub(super) async fn an_identity_stays_with_its_account(db: &TestDb) {
    let store = db.open().await;
    let alice = new_account(&store, "alice").await;
    let mallory = Address::primary(new_account(&store, "mallory").await);
    store
        .put_keys(at(alice, 1), &identity(1), &signed(1), None)
        .await
        .unwrap();
    store.add_device(alice, NOW).await.unwrap();
    store
        .put_keys(at(alice, 2), &identity(1), &signed(2), None)
        .await
        .unwrap();
    assert_eq!(
        store.published_identity(at(alice, 2)).await.unwrap(),
        Some(identity(1))
    );
    // Alice moves to a new identity: device 2 goes first (one identity per
    // account, 11.8 step 0), device 1 resets, a new device 3 takes the new
    // identity. The old one stays hers, so nobody else can pose with it to
    // contacts that pinned it.
    store
        .remove_device(at(alice, 1), at(alice, 2), NOW)
        .await
        .unwrap();
    store
        .put_keys(at(alice, 1), &identity(2), &signed(3), None)
        .await
        .unwrap();
    let third = store.add_device(alice, NOW).await.unwrap();
    store
        .put_keys(at(alice, third.0), &identity(2), &signed(3), None)
        .await
        .unwrap();
    let old = store
        .put_keys(mallory, &identity(1), &signed(1), None)
        .await;
    assert!(matches!(old, Err(StoreError::IdentityInUse)), "{old:?}");
    // Removing a device does not free its identity either.
    store
        .remove_device(at(alice, 1), at(alice, third.0), NOW)
        .await
        .unwrap();
    let current = store
        .put_keys(mallory, &identity(2), &signed(1), None)
        .await;
    assert!(
        matches!(current, Err(StoreError::IdentityInUse)),
        "{current:?}"
    );
    // Deleting the account does.
    assert!(store.delete_account(alice, NOW).await.unwrap());
    store
        .put_keys(mallory, &identity(1), &signed(1), None)
        .await
        .unwrap();
}
