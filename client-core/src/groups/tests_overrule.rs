//! A removed admin's back-dated change has no effect (docs/PROTOCOL.md
//! §8.10, "overruled"), against a real relay in this process (the helpers
//! are `tests.rs`'s): bob, an admin, renames the group; alice (senior)
//! later removes him; bob then signs a sibling of his own rename, ground to
//! a lower hash, and sends it to both members. Neither moves: the branch
//! holding his removal overrules his sibling, so his removal stands, the
//! group keeps his first name, nobody is told of a change, and alice has
//! nothing to make again. The delivery orders a relay cannot produce here
//! (the sibling first, the removal last) are
//! `protocol/tests/group_log_overrule.rs`'s.

use umbra_protocol::group::{GroupChange, GroupState};

use crate::{Client, Event};

use super::tests::{deliver, receive, state_of, team, Team};
use super::GroupId;

/// Receives until nothing more comes, for each of `clients`, twice (an
/// answer or a change made again would come in the second round).
async fn settle(clients: &[&Client]) -> Vec<Vec<Event>> {
    let mut all = vec![Vec::new(); clients.len()];
    for _round in 0..2 {
        for (i, client) in clients.iter().enumerate() {
            all[i].extend(receive(client).await);
        }
    }
    all
}

/// Events that say the group changed (a change applied, undone, or ours
/// made again).
fn group_changes(events: &[Event], group: &GroupId) -> usize {
    events
        .iter()
        .filter(|e| match e {
            Event::GroupMembershipChanged { group: g, .. }
            | Event::GroupMembershipRestored { group: g, .. }
            | Event::GroupChangeSuperseded { group: g, .. } => g == group,
            _ => false,
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_admins_ground_sibling_changes_nothing_anywhere() {
    let Team {
        dir: _dir,
        relay: _relay,
        url: _url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    settle(&[&bob, &carol]).await;
    let bob_id = bob.whoami().account_id;
    alice
        .promote_member(&group, &"bob".parse().expect("name"))
        .await
        .expect("promote");
    settle(&[&bob, &carol]).await;
    let parent: GroupState = state_of(&alice, &group).await;
    bob.rename_group(&group, "bob's name")
        .await
        .expect("rename");
    settle(&[&alice, &carol]).await;
    let renamed = state_of(&alice, &group).await;
    assert_eq!(renamed.name(), "bob's name");
    alice
        .remove_member(&group, &"bob".parse().expect("name"))
        .await
        .expect("remove");
    settle(&[&carol, &bob, &alice]).await;
    let removed = state_of(&alice, &group).await;
    assert!(!removed.is_member(&bob_id));
    assert_eq!(state_of(&carol, &group).await, removed);

    // Bob, removed, signs a sibling of his own rename on the state he was
    // an admin of, with a hash below it: between one author's siblings
    // the lower hash ranks first, so only overruling keeps it out.
    let ground = (0u32..)
        .map(|i| {
            GroupChange::rename(
                &bob.inner.identity,
                bob_id,
                &parent,
                &format!("bob again {i}"),
            )
            .expect("a rename")
        })
        .find(|c| c.hash() < renamed.head())
        .expect("a lower hash");
    deliver(&bob, &alice, &ground).await;
    deliver(&bob, &carol, &ground).await;
    let events = settle(&[&alice, &carol]).await;

    for (who, client, events) in [("alice", &alice, &events[0]), ("carol", &carol, &events[1])] {
        let state = state_of(client, &group).await;
        assert_eq!(state, removed, "{who}: the state did not move");
        assert!(!state.is_member(&bob_id), "{who}: bob stays removed");
        assert_eq!(
            state.name(),
            "bob's name",
            "{who}: the sibling had no effect"
        );
        assert_eq!(group_changes(events, &group), 0, "{who}: {events:?}");
    }
}
