//! What the membership events tell the user, against a real relay in this
//! process (the helpers are `tests.rs`'s): a removed member, or one who
//! left, is named as the last state that listed it named it (not by its
//! account id: no member list has it any more); a rename carries the name
//! before; our own Leave undone by the fork choice says we are back.

use umbra_protocol::group::GroupChange;

use crate::{Event, GroupChangeKind, GroupMemberName};

use super::tests::{deliver, receive, state_of, team, Team};

/// The `GroupMembershipChanged` events in `events`, as (change, about, old name).
fn changes(events: &[Event]) -> Vec<(GroupChangeKind, Vec<String>, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupMembershipChanged {
                change,
                about,
                old_name,
                ..
            } => Some((
                change.clone(),
                about.iter().map(|m| m.username.clone()).collect(),
                old_name.clone(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_name_removed_members_from_the_state_before_and_renames_the_old_name() {
    let Team {
        dir: _dir,
        relay,
        url: _url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    receive(&bob).await;
    receive(&carol).await;
    let carol_id = carol.whoami().account_id;
    alice.rename_group(&group, "crew").await.expect("rename");
    alice
        .remove_member(&group, &"carol".parse().expect("name"))
        .await
        .expect("remove");
    let events = receive(&bob).await;
    assert_eq!(
        changes(&events),
        vec![
            (
                GroupChangeKind::Renamed("crew".to_owned()),
                Vec::new(),
                Some("team".to_owned())
            ),
            (
                GroupChangeKind::Removed(vec![carol_id]),
                vec!["carol".to_owned()],
                None
            ),
        ],
        "{events:?}"
    );
    // Bob never wrote to carol nor she to him in the group: only the state
    // before the Remove knew her name.
    assert!(!state_of(&bob, &group).await.is_member(&carol_id));
    // The remover's own event names her too.
    bob.leave_group(&group).await.expect("leave");
    let events = receive(&alice).await;
    let left = events.iter().find_map(|e| match e {
        Event::GroupMembershipChanged {
            change: GroupChangeKind::Left,
            about,
            ..
        } => Some(about.clone()),
        _ => None,
    });
    assert_eq!(
        left,
        Some(vec![GroupMemberName {
            account_id: bob.whoami().account_id,
            username: "bob".to_owned()
        }]),
        "{events:?}"
    );
    relay.shutdown();
    relay.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_leave_the_fork_choice_undoes_says_we_are_back_and_is_made_again() {
    let Team {
        dir: _dir,
        relay,
        url: _url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    receive(&bob).await;
    receive(&carol).await;
    let parent = state_of(&alice, &group).await;
    // Carol leaves; alice, an admin, renamed the same parent state: her
    // change ranks first and carol's Leave is undone, for carol too.
    carol.leave_group(&group).await.expect("leave");
    assert!(!carol.group(&group).await.expect("listed").active);
    let alice_id = alice.whoami().account_id;
    let rename =
        GroupChange::rename(&alice.inner.identity, alice_id, &parent, "alice's").expect("rename");
    deliver(&alice, &carol, &rename).await;
    let events = receive(&carol).await;
    assert!(
        events.iter().any(|e| matches!(e,
            Event::GroupMembershipRestored { group: g, by, removed_by: None, .. }
                if *g == group && by == "alice")),
        "{events:?}"
    );
    // The Leave is made again on alice's rename: carol is out for good.
    let mut superseded = events
        .iter()
        .any(|e| matches!(e, Event::GroupChangeSuperseded { reissued: true, .. }));
    for _round in 0..3 {
        if superseded {
            break;
        }
        superseded = receive(&carol)
            .await
            .iter()
            .any(|e| matches!(e, Event::GroupChangeSuperseded { reissued: true, .. }));
    }
    assert!(superseded, "the Leave was made again");
    assert!(!carol.group(&group).await.expect("listed").active);
    receive(&alice).await;
    assert!(!state_of(&alice, &group)
        .await
        .is_member(&carol.whoami().account_id));
    relay.shutdown();
    relay.wait().await;
}
