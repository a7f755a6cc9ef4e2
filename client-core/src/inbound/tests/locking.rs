//! The state lock is never held while a request waits for the relay: a
//! send's network half (resolve, bundle claim, identity check) runs first,
//! and only then is the lock taken and the state re-read; so do the
//! directory requests of a delivery (the check of a first message from an
//! unknown sender, the lookup of a name a contact claims as its new one).
//! Under the lock, an answer is used only if the state still calls for
//! that same request.

use super::*;
use crate::inbound::locked;
use crate::inbound::precheck::Checked;

#[tokio::test]
async fn a_send_waiting_for_the_relay_leaves_the_state_lock_free() {
    let bob = bob_alone().await;
    let sending = tokio::spawn({
        let bob = bob.clone();
        async move {
            let carol = Username::parse("carol").expect("valid name");
            bob.send_text(&carol, "hello").await
        }
    });
    // Let the send run up to its wait for the relay (port 9 never answers;
    // the wait for a connection is 15 s, far longer than these yields).
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(!sending.is_finished(), "the send is waiting for the relay");
    assert!(
        bob.op_lock.try_lock().is_ok(),
        "a receive or another send could not start while this one waits"
    );
    sending.abort();
    bob.disconnect().await;
}

/// Processes `envelope` while bob's connection never comes up, so every
/// directory request waits as it would for a slow relay, and checks that
/// the state lock stays free while it waits.
async fn lock_free_while_the_directory_is_asked(bob: &Arc<Engine>, envelope: Vec<u8>) {
    // Deliveries only arrive over a connection: start one (it never comes
    // up; port 9 never answers and the wait for a connection is 15 s).
    bob.ensure_connected().expect("connecting");
    let receiving = tokio::spawn({
        let bob = bob.clone();
        async move { process(&bob, &envelope, now_ms()).await }
    });
    // Let the delivery run up to its directory request.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(
        !receiving.is_finished(),
        "the delivery is waiting for the directory"
    );
    assert!(
        bob.op_lock.try_lock().is_ok(),
        "a send or another delivery could not start while this request waits"
    );
    receiving.abort();
    bob.disconnect().await;
}

#[tokio::test]
async fn a_first_contact_check_waiting_for_the_relay_leaves_the_state_lock_free() {
    let alice = Alice::new();
    let bob = bob_alone().await;
    let bundle = last_resort_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    // Alice is unknown to bob: accepting her needs the directory.
    let first = alice.seal(&mut session, "hello bob");
    lock_free_while_the_directory_is_asked(&bob, first).await;
}

#[tokio::test]
async fn a_rename_lookup_waiting_for_the_relay_leaves_the_state_lock_free() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let bundle = last_resort_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    // Bob knows her as alice; her message claims a new name.
    let renamed = alice.seal_as(&mut session, "alice2", text_content("new name"));
    lock_free_while_the_directory_is_asked(&bob, renamed).await;
}

#[tokio::test]
async fn a_profile_change_lookup_waiting_for_the_relay_leaves_the_state_lock_free() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let bundle = last_resort_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let change = Content::ProfileChange {
        new_username: Username::parse("alice2").expect("valid name"),
    };
    let announced = alice.seal_as(&mut session, "alice", change);
    lock_free_while_the_directory_is_asked(&bob, announced).await;
}

async fn name_of(bob: &Engine, alice: &Alice) -> String {
    bob.contact_by_account(alice.account.as_bytes())
        .await
        .expect("read")
        .expect("alice is a contact")
        .username
}

async fn seen(bob: &Engine, envelope: &[u8]) -> bool {
    let markers = bob.markers.of(envelope);
    bob.markers.is_seen(&markers).await.expect("read")
}

#[tokio::test]
async fn a_claimed_rename_is_believed_only_from_a_lookup_of_that_name_for_the_sender() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let bundle = last_resort_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let first = alice.seal_as(&mut session, "alice2", text_content("one"));

    // The lookup made without the lock was for another name: the state
    // changed since; nothing is committed and the caller plans again.
    let other_name = Checked::with_holders(&[("alice3", Some(alice.account))], false);
    let outcome = locked(&bob, &first, now_ms(), &other_name).await.unwrap();
    assert!(outcome.is_none(), "{outcome:?}");
    assert!(!seen(&bob, &first).await, "nothing may be committed");
    assert_eq!(name_of(&bob, &alice).await, "alice");

    // The directory says another account holds the name: the message is
    // accepted, the rename is not.
    let stranger = AccountId::random(&mut OsRng);
    let held_elsewhere = Checked::with_holders(&[("alice2", Some(stranger))], false);
    let processed = locked(&bob, &first, now_ms(), &held_elsewhere)
        .await
        .unwrap()
        .expect("decided");
    assert_eq!(texts(&processed.events), vec!["one"]);
    assert_eq!(name_of(&bob, &alice).await, "alice");

    // Once the attempts are used up, an unasked lookup means "not believed".
    let second = alice.seal_as(&mut session, "alice2", text_content("two"));
    let last = Checked::with_holders(&[], true);
    let processed = locked(&bob, &second, now_ms(), &last)
        .await
        .unwrap()
        .expect("decided");
    assert_eq!(texts(&processed.events), vec!["two"]);
    assert_eq!(name_of(&bob, &alice).await, "alice");

    // The directory says alice's account holds it: renamed.
    let third = alice.seal_as(&mut session, "alice2", text_content("three"));
    let held_by_alice = Checked::with_holders(&[("alice2", Some(alice.account))], false);
    locked(&bob, &third, now_ms(), &held_by_alice)
        .await
        .unwrap()
        .expect("decided");
    assert_eq!(name_of(&bob, &alice).await, "alice2");
}

#[tokio::test]
async fn a_profile_change_is_believed_only_from_a_lookup_of_its_name_for_the_sender() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let bundle = last_resort_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let change = || Content::ProfileChange {
        new_username: Username::parse("alice2").expect("valid name"),
    };
    let first = alice.seal_as(&mut session, "alice", change());
    let not_asked = Checked::with_holders(&[], false);
    assert!(locked(&bob, &first, now_ms(), &not_asked)
        .await
        .unwrap()
        .is_none());
    assert!(!seen(&bob, &first).await, "nothing may be committed");

    let stranger = AccountId::random(&mut OsRng);
    let held_elsewhere = Checked::with_holders(&[("alice2", Some(stranger))], false);
    locked(&bob, &first, now_ms(), &held_elsewhere)
        .await
        .unwrap()
        .expect("decided");
    assert_eq!(name_of(&bob, &alice).await, "alice");

    let second = alice.seal_as(&mut session, "alice", change());
    let held_by_alice = Checked::with_holders(&[("alice2", Some(alice.account))], false);
    locked(&bob, &second, now_ms(), &held_by_alice)
        .await
        .unwrap()
        .expect("decided");
    assert_eq!(name_of(&bob, &alice).await, "alice2");
}
