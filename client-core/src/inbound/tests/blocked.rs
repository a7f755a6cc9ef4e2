//! Messages claiming a blocked account (crate::blocking): only its pinned
//! identity's are decrypted and stored; one sealed by any other identity
//! stores no session, uses up no one-time prekey and reports nothing.

use super::*;
use crate::PeerRef;
use umbra_protocol::prekeys::PreKeyRef;

/// Bob's bundle with a fresh one-time prekey (committed), and its id.
async fn one_time_bundle(bob: &Engine) -> (VerifiedPreKeyBundle, u32) {
    let mut txn = Txn::new();
    let keys = bob
        .prekeys
        .add_one_time(&mut txn, 1, &mut OsRng)
        .await
        .expect("one-time prekey");
    bob.vault.commit(txn).await.expect("commit");
    let (signed, _) = bob.prekeys.published().await.expect("read");
    let bundle = PreKeyBundle {
        identity: bob.identity.public(),
        signed_prekey: signed.public(),
        one_time_prekey: Some(keys[0].public()),
        last_resort: None,
        kem_one_time: None,
        kem_last_resort: Some(kem_last_resort(bob).await),
    }
    .verify_at(now_secs())
    .expect("bundle verifies");
    (bundle, keys[0].id())
}

async fn holds_one_time(bob: &Engine, id: u32) -> bool {
    let (signed, _) = bob.prekeys.published().await.expect("read");
    let loaded = bob
        .prekeys
        .for_message(signed.id(), Some(PreKeyRef::OneTime(id)), None)
        .await
        .expect("read");
    loaded.extra.is_some()
}

#[tokio::test]
async fn a_prekey_message_claiming_a_blocked_account_under_another_identity_stores_nothing() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    bob.block(&"alice".parse::<PeerRef>().expect("peer"))
        .await
        .expect("block");

    // Mallory claims alice's account and name with an identity of her own.
    let mallory = Alice {
        identity: IdentityKeyPair::generate(&mut OsRng),
        account: alice.account,
    };
    for round in 0..3 {
        let (bundle, id) = one_time_bundle(&bob).await;
        let mut session = mallory.initiate(&bob, &bundle);
        let envelope = mallory.seal(&mut session, &format!("forged {round}"));
        let processed = process(&bob, &envelope, now_ms()).await.expect("process");
        assert!(processed.ack, "it can never be believed: acknowledged");
        assert!(processed.events.is_empty(), "{:?}", processed.events);
        let identity = mallory.identity.public();
        let stored = bob.sessions.with(&alice.address(), &identity).await;
        assert!(
            stored.expect("read").is_none(),
            "no session slot for the forged identity"
        );
        assert!(
            holds_one_time(&bob, id).await,
            "the one-time prekey is not burnt"
        );
        // Acknowledged for good: it does not come again.
        let again = process(&bob, &envelope, now_ms()).await.expect("process");
        assert!(again.ack && again.events.is_empty());
    }

    // Alice herself, still blocked: decrypted, dropped, her session kept
    // (and her one-time prekey used), so an unblock needs no new session.
    let (bundle, id) = one_time_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let first = alice.seal(&mut session, "while blocked");
    let processed = process(&bob, &first, now_ms()).await.expect("process");
    assert!(processed.ack && processed.events.is_empty());
    let identity = alice.identity.public();
    let stored = bob.sessions.with(&alice.address(), &identity).await;
    assert!(stored.expect("read").is_some(), "alice's session is stored");
    assert!(!holds_one_time(&bob, id).await, "her prekey opened it");
    bob.unblock(&"alice".parse::<PeerRef>().expect("peer"))
        .await
        .expect("unblock");
    let next = alice.seal(&mut session, "after the unblock");
    let processed = process(&bob, &next, now_ms()).await.expect("process");
    assert_eq!(texts(&processed.events), ["after the unblock"]);
}
