//! Key changes against a real relay in this process: a contact's new
//! identity raises an event and blocks sending until the user accepts it,
//! also before the contact writes first, and a mistyped safety number is
//! refused.

use std::sync::Arc;

use umbra_client_core::store::MemoryStore;
use umbra_client_core::{Client, Error, Event, SafetyNumber, TrustLevel};
use umbra_protocol::wire::Username;

mod support;
use support::watch::Watch;
use support::{config, messages, name, peer, register, TestRelay, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_key_raises_an_event_and_blocks_sending_until_accepted() {
    let relay = TestRelay::start().await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;
    let mut watch_bob = Watch::on(&bob);
    alice.send_text(&name("bob"), "first").await.unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    watch_bob.messages(1).await;
    bob.shutdown().await;
    drop(bob);

    // Bob reinstalls: an empty store, a login that starts over with a
    // brand-new identity instead of restoring the backup.
    let fresh = Arc::new(MemoryStore::new());
    let bob = Client::login_with_new_identity(config(&relay.url(), &fresh), "bob", "pw-of-test")
        .await
        .expect("login on a new device");
    let mut watch_alice = Watch::on(&alice);
    bob.send_text(&name("alice"), "new phone, same bob")
        .await
        .unwrap();
    bob.flush_outbox(WAIT).await.unwrap();

    let events = watch_alice.messages(1).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::KeyChanged { username, .. } if username.as_str() == "bob")),
        "{events:?}"
    );
    assert_eq!(
        messages(&events),
        vec![("bob".into(), "new phone, same bob".into())]
    );
    let contact = alice.contacts().await.unwrap();
    assert_eq!(contact[0].trust, TrustLevel::Changed);
    assert!(alice.conversations().await.unwrap()[0].key_changed);

    let err = alice.send_text(&name("bob"), "blocked?").await.unwrap_err();
    assert!(
        matches!(err, Error::UntrustedKey { ref username, account }
            if username.as_str() == "bob" && account == bob.whoami().account_id),
        "{err:?}"
    );
    assert!(
        alice.pending_outbox().await.unwrap().is_empty(),
        "nothing was queued"
    );

    // Verifying compares the *new* key.
    let number = alice.safety_number(&peer("bob")).await.unwrap();
    assert_eq!(number, bob.safety_number(&peer("alice")).await.unwrap());
    // The decision is bound to the number compared, checked under the
    // client's state lock: any other number changes nothing.
    let bob_name = Username::parse("bob").unwrap();
    let mistyped = SafetyNumber::parse(&flip_last_digit(number.digits())).unwrap();
    assert!(matches!(
        alice.accept_key_change(&bob_name, &mistyped).await,
        Err(Error::SafetyNumberMismatch { .. })
    ));
    assert!(matches!(
        alice.mark_verified(&bob_name, &mistyped).await,
        Err(Error::SafetyNumberMismatch { .. })
    ));
    assert_eq!(
        alice.contacts().await.unwrap()[0].trust,
        TrustLevel::Changed,
        "a wrong number accepted the key"
    );
    alice.accept_key_change(&bob_name, &number).await.unwrap();
    assert_eq!(
        alice.contacts().await.unwrap()[0].trust,
        TrustLevel::Unverified
    );
    let mut watch_bob = Watch::on(&bob);
    alice.send_text(&name("bob"), "welcome back").await.unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    assert_eq!(
        messages(&watch_bob.messages(1).await),
        vec![("alice".into(), "welcome back".into())]
    );
    alice.mark_verified(&bob_name, &number).await.unwrap();
    assert_eq!(
        alice.contacts().await.unwrap()[0].trust,
        TrustLevel::Verified
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_key_blocks_sending_before_the_contact_writes() {
    let relay = TestRelay::start().await;
    let (alice, alice_store) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;
    let mut watch_bob = Watch::on(&bob);
    alice
        .send_text(&name("bob"), "to the old key")
        .await
        .unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    watch_bob.messages(1).await;
    let old_number = alice.safety_number(&peer("bob")).await.unwrap();
    alice.shutdown().await;
    drop(alice);
    bob.shutdown().await;
    drop(bob);

    // Bob reinstalls with a new identity and says nothing; alice still
    // holds a session with his old identity.
    let fresh = Arc::new(MemoryStore::new());
    let bob = Client::login_with_new_identity(config(&relay.url(), &fresh), "bob", "pw-of-test")
        .await
        .expect("login on a new device");

    // Alice's next run looks before sending over the old session.
    let alice = Client::open(config(&relay.url(), &alice_store), "pw-of-test")
        .await
        .unwrap();
    let mut watch_alice = Watch::on(&alice);
    let err = alice
        .send_text(&name("bob"), "are you there?")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UntrustedKey { ref username, account }
            if username.as_str() == "bob" && account == bob.whoami().account_id),
        "{err:?}"
    );
    watch_alice
        .until(|seen| {
            seen.iter().any(
                |e| matches!(e, Event::KeyChanged { username, .. } if username.as_str() == "bob"),
            )
        })
        .await;
    assert!(
        alice.pending_outbox().await.unwrap().is_empty(),
        "nothing was queued for the old key"
    );
    assert_eq!(
        alice.contacts().await.unwrap()[0].trust,
        TrustLevel::Changed
    );
    let new_number = alice.safety_number(&peer("bob")).await.unwrap();
    assert_ne!(
        new_number, old_number,
        "the number to compare is the new key's"
    );
    let again = alice
        .send_text(&name("bob"), "still blocked?")
        .await
        .unwrap_err();
    assert!(matches!(again, Error::UntrustedKey { .. }), "{again:?}");

    // The number alice saw before the change no longer accepts anything.
    let bob_name = Username::parse("bob").unwrap();
    assert!(matches!(
        alice.accept_key_change(&bob_name, &old_number).await,
        Err(Error::SafetyNumberMismatch { .. })
    ));
    // Accepting pins the new key; the next send starts a session with the
    // new device rather than reusing the old one.
    alice
        .accept_key_change(&bob_name, &new_number)
        .await
        .unwrap();
    let mut watch_bob = Watch::on(&bob);
    alice
        .send_text(&name("bob"), "are you there? (after accepting)")
        .await
        .unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    let events = watch_bob.messages(1).await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::DecryptionFailed { .. })),
        "{events:?}"
    );
    assert_eq!(
        messages(&events),
        vec![("alice".into(), "are you there? (after accepting)".into())]
    );
    assert_eq!(
        alice.contacts().await.unwrap()[0].trust,
        TrustLevel::Unverified
    );
    assert_eq!(
        bob.safety_number(&peer("alice")).await.unwrap(),
        new_number,
        "alice accepted the key bob's new device really holds"
    );
}

/// A safety number's digits with the last one changed.
fn flip_last_digit(digits: &str) -> String {
    let mut out: Vec<char> = digits.chars().collect();
    if let Some(last) = out.last_mut() {
        *last = if *last == '0' { '1' } else { '0' };
    }
    out.into_iter().collect()
}
