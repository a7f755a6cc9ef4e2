//! The state lock is never held while a request waits for the relay: a
//! send's network half (resolve, bundle claim, identity check) runs first,
//! and only then is the lock taken and the state re-read.

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
