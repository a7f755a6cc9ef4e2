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
//! parent carol no longer has, and bob's sibling would stand.

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
