//! Linking a device (docs/PROTOCOL.md §15.6, §15.7, §12.17) against a real
//! relay in this process: a second data directory given alice's link code
//! becomes device 2 of her account, with her identity (bob's safety number
//! unchanged), bob as a contact with the trust alice gave him, and her
//! group; the account's device list names both devices and verifies. A
//! code mistyped in its ticket half is unknown to the relay and spends
//! nothing; one mistyped in its secret half makes the creator stop without
//! sending anything, the joiner hear nothing, and the ticket refuse the
//! correct code afterwards (one join per ticket).

use std::sync::Arc;
use std::time::Duration;

use umbra_client_core::store::MemoryStore;
use umbra_client_core::{Client, Error, LinkFailure, TrustLevel};

mod support;
use support::{config, name, peer, receive, register, TestRelay, WAIT};

/// `code` with character `at` (0-based) replaced by another base32 letter.
fn mistype(code: &str, at: usize) -> String {
    code.char_indices()
        .map(|(i, c)| match (i == at, c) {
            (false, c) => c,
            (true, 'a') => 'b',
            (true, _) => 'a',
        })
        .collect()
}

/// alice and bob, bob a verified contact of alice, both in alice's group.
async fn alice_with_bob_and_a_group(relay: &TestRelay) -> (Client, Client) {
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;
    alice.send_text(&name("bob"), "hello bob").await.unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    receive(&bob).await;
    let number = alice.safety_number(&peer("bob")).await.unwrap();
    alice.mark_verified(&name("bob"), &number).await.unwrap();
    alice
        .create_group("climbing", &[peer("bob")])
        .await
        .unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    (alice, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_device_is_the_same_account_with_its_contacts_and_groups() {
    let relay = TestRelay::start().await;
    let (alice, _bob) = alice_with_bob_and_a_group(&relay).await;

    let invite = alice.link_device().await.unwrap();
    let code = invite.code().to_owned();
    assert_eq!(code.len(), 77);

    // A code mistyped in its ticket half names no rendezvous: refused at
    // once, nothing written, and the real code still works afterwards.
    let stray = Arc::new(MemoryStore::new());
    let refused =
        Client::link_accept(config(&relay.url(), &stray), &mistype(&code, 2), "pw-new").await;
    assert!(
        matches!(refused, Err(Error::Link(LinkFailure::UnknownCode))),
        "{refused:?}"
    );
    assert!(!Client::has_account(&config(&relay.url(), &stray))
        .await
        .unwrap());

    let store = Arc::new(MemoryStore::new());
    let joiner = {
        let (config, code) = (config(&relay.url(), &store), code.clone());
        tokio::spawn(async move { Client::link_accept(config, &code, "pw-new-device").await })
    };
    let device = tokio::time::timeout(Duration::from_secs(60), invite.complete())
        .await
        .expect("linked in time")
        .expect("linked");
    assert_eq!(device, 2);
    let linked = tokio::time::timeout(WAIT, joiner)
        .await
        .expect("joined in time")
        .unwrap()
        .expect("joined");

    let (was, now) = (alice.whoami(), linked.whoami());
    assert_eq!(now.account_id, was.account_id);
    assert_eq!(now.username, was.username);
    assert_eq!((was.device_id, now.device_id), (1, 2));
    // The same identity: bob's safety number is the one alice compared.
    assert_eq!(
        linked.safety_number(&peer("bob")).await.unwrap(),
        alice.safety_number(&peer("bob")).await.unwrap()
    );
    let contacts = linked.contacts().await.unwrap();
    assert_eq!(contacts, alice.contacts().await.unwrap());
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].trust, TrustLevel::Verified);
    let groups = linked.groups().await.unwrap();
    assert_eq!(groups, alice.groups().await.unwrap());
    assert_eq!(groups.len(), 1);
    assert!(groups[0].active);

    // The relay lists both devices, and the account's signed list (fetched
    // and verified under the identity by each device) names both.
    for client in [&alice, &linked] {
        let devices = client.devices().await.unwrap();
        let ids: Vec<(u32, bool)> = devices.iter().map(|d| (d.device_id, d.listed)).collect();
        assert_eq!(ids, [(1, true), (2, true)]);
    }
    // The new device's session is its own: it receives as device 2.
    receive(&linked).await;

    // The code is spent.
    let again = Arc::new(MemoryStore::new());
    let reused = Client::link_accept(config(&relay.url(), &again), &code, "pw-new").await;
    assert!(
        matches!(reused, Err(Error::Link(LinkFailure::UnknownCode))),
        "{reused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_mistyped_in_its_secret_fails_on_both_sides_and_sends_nothing() {
    let relay = TestRelay::start().await;
    let (alice, _bob) = alice_with_bob_and_a_group(&relay).await;
    let invite = alice.link_device().await.unwrap();
    let code = invite.code().to_owned();

    let store = Arc::new(MemoryStore::new());
    let joiner_wait = Duration::from_secs(12);
    let joiner = {
        let (config, code) = (config(&relay.url(), &store), mistype(&code, 50));
        tokio::spawn(async move {
            Client::link_accept_within(config, &code, "pw-new", joiner_wait).await
        })
    };
    let creator = tokio::time::timeout(Duration::from_secs(60), invite.complete())
        .await
        .expect("the creator stops in time");
    assert!(
        matches!(creator, Err(Error::Link(LinkFailure::NotProven))),
        "{creator:?}"
    );

    // The ticket was joined by the mistyped code: the right one is refused
    // now (one join per ticket), so a stranger who joins first with the
    // ticket alone blocks the link instead of receiving anything.
    let late = Arc::new(MemoryStore::new());
    let refused = Client::link_accept(config(&relay.url(), &late), &code, "pw-new").await;
    assert!(
        matches!(refused, Err(Error::Link(LinkFailure::UnknownCode))),
        "{refused:?}"
    );

    // The joiner heard nothing (no answer, no enrolment) and wrote nothing.
    let joined = tokio::time::timeout(joiner_wait + WAIT, joiner)
        .await
        .expect("the joiner gives up in time")
        .unwrap();
    assert!(
        matches!(joined, Err(Error::Link(LinkFailure::NoAnswer(_)))),
        "{joined:?}"
    );
    assert!(!Client::has_account(&config(&relay.url(), &store))
        .await
        .unwrap());
    // Nothing was enrolled.
    let devices = alice.devices().await.unwrap();
    assert_eq!(devices.iter().map(|d| d.device_id).collect::<Vec<_>>(), [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_holds_an_account_is_not_linked_and_a_bad_code_is_refused_locally() {
    let relay = TestRelay::start().await;
    let (alice, store) = register(&relay.url(), "alice").await;
    let invite = alice.link_device().await.unwrap();
    let taken =
        Client::link_accept(config(&relay.url(), &store), invite.code(), "pw-of-test").await;
    assert!(
        matches!(
            taken,
            Err(Error::Store(
                umbra_client_core::StoreError::AlreadyInitialized
            ))
        ),
        "{taken:?}"
    );
    let empty = Arc::new(MemoryStore::new());
    let short = Client::link_accept(config(&relay.url(), &empty), "abc", "pw").await;
    assert!(
        matches!(short, Err(Error::Link(LinkFailure::BadCode(_)))),
        "{short:?}"
    );
}
