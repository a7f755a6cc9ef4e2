//! The state lock is never held while a request waits for the relay: a
//! send's network half (resolve, bundle claim, identity check) runs first,
//! and only then is the lock taken and the state re-read; so does the
//! directory check of a first message from an unknown sender.

use super::*;

#[tokio::test]
async fn a_send_waiting_for_the_relay_leaves_the_state_lock_free() {
    let bob = bob_alone().await;
    let sending = tokio::spawn({
        let bob = bob.clone();
        async move { bob.send_text("carol", "hello").await }
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

#[tokio::test]
async fn a_first_contact_check_waiting_for_the_relay_leaves_the_state_lock_free() {
    let alice = Alice::new();
    let bob = bob_alone().await;
    let bundle = last_resort_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    // Alice is unknown to bob: accepting her needs the directory.
    let first = alice.seal(&mut session, "hello bob");
    // Deliveries only arrive over a connection: start one (it never comes
    // up), so the directory request waits for it as it would for a slow
    // relay.
    bob.ensure_connected().expect("connecting");
    let receiving = tokio::spawn({
        let bob = bob.clone();
        async move { process(&bob, &first, now_ms()).await }
    });
    // Let the delivery run up to its directory request (port 9 never
    // answers; the wait for a connection is 15 s).
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(
        !receiving.is_finished(),
        "the delivery is waiting for the directory"
    );
    assert!(
        bob.op_lock.try_lock().is_ok(),
        "a send or another delivery could not start while this check waits"
    );
    receiving.abort();
    bob.disconnect().await;
}
