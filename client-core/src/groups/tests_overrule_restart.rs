//! The side branches the overrule rule needs (docs/PROTOCOL.md §8.10,
//! §8.13) survive a restart of the member that keeps them, against a real
//! relay in this process: bob, an admin, renames the group; he then signs
//! a sibling of his rename, ground to a lower hash, and sends it to carol
//! alone, whose log takes it (between one author's siblings the lower
//! hash wins) and keeps the rename as a side branch. Carol's client
//! restarts. Alice, senior, removes bob on top of his first rename and
//! goes offline: on its arrival alone (no sync asked) carol's log must
//! find the side branch it builds on, whose Remove overrules bob's
//! sibling, and land on alice's state, as a client that never restarted
//! would. Had the side branch been lost, the Remove would wait for a
//! parent carol no longer has, and bob's sibling would stand. And a side
//! change that fell below the window stays known as a loser across the
//! restart, so a change built on it is decided at once.

use std::sync::Arc;

use umbra_protocol::group::{GroupChange, GroupState};

use crate::store::{ClientStore, MemoryStore};
use crate::{Client, ClientConfig, KdfParams, PeerRef};

use super::tests::{deliver, receive, register, relay, state_of};

fn config(url: &str, store: &Arc<MemoryStore>) -> ClientConfig {
    let store: Arc<dyn ClientStore> = store.clone();
    ClientConfig::with_store(url, store).kdf_params(KdfParams::insecure_for_tests())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_remove_overrules_as_before_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob) = (register(&url, "alice").await, register(&url, "bob").await);
    let carol_store = Arc::new(MemoryStore::new());
    let carol = Client::register(config(&url, &carol_store), "carol", "pw-of-test")
        .await
        .expect("register");
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name"), "carol".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
    receive(&bob).await;
    receive(&carol).await;
    alice
        .promote_member(&group, &"bob".parse().expect("name"))
        .await
        .expect("promote");
    receive(&bob).await;
    receive(&carol).await;
    let parent: GroupState = state_of(&alice, &group).await;
    bob.rename_group(&group, "bob's name")
        .await
        .expect("rename");
    receive(&alice).await;
    receive(&carol).await;
    let renamed = state_of(&alice, &group).await;
    assert_eq!(state_of(&carol, &group).await, renamed);

    // Bob's ground sibling reaches carol only: it becomes her head.
    let bob_id = bob.whoami().account_id;
    let ground = (0u32..)
        .map(|i| {
            GroupChange::rename(&bob.inner.identity, bob_id, &parent, &format!("ground {i}"))
                .expect("a rename")
        })
        .find(|c| c.hash() < renamed.head())
        .expect("a lower hash");
    deliver(&bob, &carol, &ground).await;
    receive(&carol).await;
    assert_eq!(state_of(&carol, &group).await.head(), ground.hash());
    let kept = carol.inner.groups.require(&group).await.expect("group");
    assert!(
        kept.log.state_after(renamed.head()).is_some(),
        "the rename is kept as a side branch"
    );

    // Carol restarts.
    carol.shutdown().await;
    drop(carol);
    let carol = Client::open(config(&url, &carol_store), "pw-of-test")
        .await
        .expect("reopen");

    // Alice removes bob, on his first rename, and goes offline (her
    // fan-out is at the relay): no sync request of carol's could be
    // answered, so the Remove alone decides.
    alice
        .remove_member(&group, &"bob".parse().expect("name"))
        .await
        .expect("remove");
    let removed = state_of(&alice, &group).await;
    assert!(!removed.is_member(&bob_id));
    alice.shutdown().await;
    for _round in 0..3 {
        if state_of(&carol, &group).await == removed {
            break;
        }
        receive(&carol).await;
    }
    let state = state_of(&carol, &group).await;
    assert_eq!(
        (state.head(), state.name()),
        (removed.head(), "bob's name"),
        "the Remove overruled bob's sibling after the restart"
    );
    assert_eq!(state, removed);
    // Nor did carol need to ask: the Remove's parent was in her log.
    let now = carol.inner.clock.now_ms();
    let alice_id = alice.whoami().account_id;
    assert!(
        carol.inner.groups.sync.may_ask(&group, &alice_id, now),
        "carol asked alice for changes she should have kept"
    );
    relay.shutdown();
    relay.wait().await;
}

/// A side change dropped with the window is still known as a loser after
/// a restart (§8.13): bob's rename loses to alice's concurrent one at
/// carol, alice then makes 32 more changes so that it falls below carol's
/// window, and carol restarts. Bob's next change, built on his lost one,
/// is decided at once (`Superseded`: it can never apply), not held
/// pending, and carol asks him for nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_a_dropped_loser_is_superseded_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob) = (register(&url, "alice").await, register(&url, "bob").await);
    let carol_store = Arc::new(MemoryStore::new());
    let carol = Client::register(config(&url, &carol_store), "carol", "pw-of-test")
        .await
        .expect("register");
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name"), "carol".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
    receive(&bob).await;
    receive(&carol).await;
    alice
        .promote_member(&group, &"bob".parse().expect("name"))
        .await
        .expect("promote");
    receive(&bob).await;
    receive(&carol).await;
    // Bob writes once, so that he has a session with carol.
    bob.send_group_text(&group, "hi").await.expect("send");
    receive(&carol).await;
    let parent: GroupState = state_of(&alice, &group).await;
    let bob_id = bob.whoami().account_id;
    // Bob's rename and alice's, on one state: alice, senior, wins.
    let lost = GroupChange::rename(&bob.inner.identity, bob_id, &parent, "bob's").expect("rename");
    let on_lost = {
        let after = parent.apply(&lost).expect("applies");
        GroupChange::rename(&bob.inner.identity, bob_id, &after, "bob's again").expect("rename")
    };
    alice.rename_group(&group, "alice's").await.expect("rename");
    receive(&carol).await;
    deliver(&bob, &carol, &lost).await;
    receive(&carol).await;
    // 32 more: the window (32) moves past the branch point.
    for i in 0..32 {
        alice
            .rename_group(&group, &format!("name {i}"))
            .await
            .expect("rename");
    }
    let latest = state_of(&alice, &group).await;
    for _round in 0..10 {
        if state_of(&carol, &group).await == latest {
            break;
        }
        receive(&carol).await;
    }
    assert_eq!(state_of(&carol, &group).await, latest);
    let log = carol.inner.groups.require(&group).await.expect("group").log;
    assert!(
        log.state_after(lost.hash()).is_none(),
        "dropped with the window"
    );
    assert!(log.knows_head(lost.hash()), "remembered as a loser");

    // Carol restarts; bob's change on his lost one reaches her.
    carol.shutdown().await;
    drop(carol);
    let carol = Client::open(config(&url, &carol_store), "pw-of-test")
        .await
        .expect("reopen");
    deliver(&bob, &carol, &on_lost).await;
    receive(&carol).await;
    let log = carol.inner.groups.require(&group).await.expect("group").log;
    assert_eq!(log.pending_len(), 0, "decided, not held pending");
    assert!(log.knows_head(on_lost.hash()), "a loser too");
    assert_eq!(state_of(&carol, &group).await, latest);
    let now = carol.inner.clock.now_ms();
    assert!(
        carol.inner.groups.sync.may_ask(&group, &bob_id, now),
        "carol asked bob about a change that can never apply"
    );
    relay.shutdown();
    relay.wait().await;
}
