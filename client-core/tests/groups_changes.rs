//! Group changes against a real relay in this process: two admins changing
//! the group at once converge on one state everywhere (the fork choice,
//! and the loser's change made again on the winner), and a member who is
//! not an admin cannot change the group.

use umbra_client_core::{Client, Error, Event, GroupFailure, GroupId, GroupInfo, PeerRef};

mod support;
use support::{receive, register, TestRelay};

fn peers(names: &[&str]) -> Vec<PeerRef> {
    names
        .iter()
        .map(|n| n.parse().expect("valid name"))
        .collect()
}

async fn info(client: &Client, group: &GroupId) -> GroupInfo {
    client.group(group).await.expect("group known")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_changing_at_once_converge() {
    let relay = TestRelay::start().await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;
    let (carol, _) = register(&relay.url(), "carol").await;
    let group = alice
        .create_group("team", &peers(&["bob", "carol"]))
        .await
        .expect("create")
        .group;
    alice
        .promote_member(&group, &"bob".parse().expect("name"))
        .await
        .expect("promote");
    for member in [&bob, &carol] {
        receive(member).await;
    }
    // Bob writes once, so he has a session with every member and his
    // change below needs no relay before it is made.
    bob.send_group_text(&group, "hi").await.expect("send");
    for member in [&alice, &carol] {
        receive(member).await;
    }
    assert!(bob
        .group_members(&group)
        .await
        .expect("members")
        .iter()
        .any(|m| m.is_me && m.admin));

    // Bob is offline when alice renames, so his rename builds on the same
    // state as hers: two valid changes with one parent.
    bob.shutdown().await;
    alice
        .rename_group(&group, "alice's name")
        .await
        .expect("rename");
    bob.rename_group(&group, "bob's name")
        .await
        .expect("rename");
    assert_eq!(
        info(&alice, &group).await.version,
        info(&bob, &group).await.version,
        "both changes have the same parent"
    );

    let mut superseded = Vec::new();
    for _round in 0..4 {
        for member in [&alice, &bob, &carol] {
            for event in receive(member).await {
                if let Event::GroupChangeSuperseded { reissued, .. } = event {
                    superseded.push(reissued);
                }
            }
        }
    }
    let (a, b, c) = (
        info(&alice, &group).await,
        info(&bob, &group).await,
        info(&carol, &group).await,
    );
    assert_eq!(a, b, "alice and bob converge");
    assert_eq!(b, c, "bob and carol converge");
    // The loser was told, made its rename again on the winner, and that
    // is where everyone ended.
    assert_eq!(superseded, vec![true]);
    assert!(a.name == "alice's name" || a.name == "bob's name", "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_is_not_an_admin_cannot_change_the_group() {
    let relay = TestRelay::start().await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;
    let (_carol, _) = register(&relay.url(), "carol").await;
    let group = alice
        .create_group("team", &peers(&["bob", "carol"]))
        .await
        .expect("create")
        .group;
    receive(&bob).await;
    let refused = bob
        .remove_member(&group, &"carol".parse().expect("name"))
        .await;
    assert!(
        matches!(refused, Err(Error::Group(GroupFailure::NotAdmin))),
        "{refused:?}"
    );
    let refused = bob.rename_group(&group, "mine").await;
    assert!(
        matches!(refused, Err(Error::Group(GroupFailure::NotAdmin))),
        "{refused:?}"
    );
    assert_eq!(info(&bob, &group).await.name, "team");
}
