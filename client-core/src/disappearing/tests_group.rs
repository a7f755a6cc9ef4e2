//! Disappearing messages in groups over a real relay in this process
//! (docs/PROTOCOL.md §8.9, §12.18): a member who is not an admin sets the
//! group's timer, every member applies it; a text and a file sent under it
//! are gone from every member's store (and the file's record) once the
//! clocks pass their expiry and the sweep runs, while one sent before the
//! timer stays; of two changes the later wins.

use std::time::Duration;

use futures_util::StreamExt;
use umbra_protocol::content::Content;

use crate::groups::tests::team;
use crate::{Client, Event, GroupId, MessageId};

async fn receive(client: &Client) -> Vec<Event> {
    client
        .receive_until_empty(Duration::from_secs(10))
        .await
        .expect("receive")
}

fn timer_events(events: &[Event]) -> Vec<(Option<String>, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupDisappearingTimerChanged { by, seconds, .. } => {
                Some((by.clone(), *seconds))
            }
            _ => None,
        })
        .collect()
}

/// The first event `pick` takes, within a bound.
async fn next_of<T>(
    events: &mut (impl futures_util::Stream<Item = Event> + Unpin),
    pick: impl Fn(Event) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            if let Some(found) = pick(events.next().await.expect("events end")) {
                return found;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("the event within 10 s")
}

async fn bodies(client: &Client, group: &GroupId) -> Vec<String> {
    client
        .group_history(group, 50)
        .await
        .expect("history")
        .into_iter()
        .map(|e| e.entry.body)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_group_timer_deletes_later_messages_from_every_member() {
    let team = team().await;
    let (alice, bob, carol, group) = (&team.alice, &team.bob, &team.carol, team.group);
    for member in [bob, carol] {
        receive(member).await;
    }
    alice.send_group_text(&group, "stays").await.expect("send");
    for member in [bob, carol] {
        receive(member).await;
    }
    // Bob is no admin: any member may set the timer (§8.9).
    let mut bob_events = bob.events();
    let report = bob.set_group_disappearing(&group, 3600).await.expect("set");
    assert_eq!(report.failed().count(), 0, "{report:?}");
    let ours = next_of(&mut bob_events, |e| {
        matches!(e, Event::GroupDisappearingTimerChanged { .. }).then_some(e)
    })
    .await;
    assert_eq!(timer_events(&[ours]), [(None, 3600)]);
    assert_eq!(
        bob.group_disappearing_timer(&group).await.expect("timer"),
        3600
    );
    for member in [alice, carol] {
        let got = receive(member).await;
        assert_eq!(timer_events(&got), [(Some("bob".to_owned()), 3600)]);
        assert_eq!(
            member
                .group_disappearing_timer(&group)
                .await
                .expect("timer"),
            3600
        );
    }
    alice.send_group_text(&group, "gone").await.expect("send");
    let path = team.dir.path().join("plan.txt");
    std::fs::write(&path, b"the plan").expect("write");
    let (_, file) = alice
        .send_group_file(&group, &path, None, &|_| {})
        .await
        .expect("file");
    for member in [bob, carol] {
        receive(member).await;
    }
    let before = ["stays", "gone", "[file] plan.txt (8 bytes)"];
    for member in [alice, bob, carol] {
        assert_eq!(bodies(member, &group).await, before);
        assert_eq!(member.sweep_expired().await.expect("sweep"), 0, "not yet");
    }

    let mut carol_events = carol.events();
    for member in [alice, bob, carol] {
        member.inner.clock.advance(Duration::from_secs(3601));
        assert_eq!(member.sweep_expired().await.expect("sweep"), 2);
        assert_eq!(bodies(member, &group).await, ["stays"]);
    }
    // The file's record went with its message.
    assert!(
        alice.file_info(&file.id).await.is_err(),
        "the sender's record"
    );
    // An open view is told which went.
    let expired = next_of(&mut carol_events, |e| match e {
        Event::GroupMessagesExpired { group: g, ids } if g == group => Some(ids),
        _ => None,
    })
    .await;
    assert_eq!(expired.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_group_timer_changes_the_later_wins_in_either_order() {
    let team = team().await;
    let group = team.group;
    receive(&team.bob).await;
    let vault = &team.bob.inner.vault;
    let change = |seconds, sent_at_ms, id| Content::ExpirationTimer {
        id: MessageId([id; 16]),
        seconds,
        sent_at_ms,
    };
    let (older, newer) = (change(60, 1_000, 9), change(120, 2_000, 1));
    for order in [[&older, &newer], [&newer, &older]] {
        let mut txn = crate::store::Txn::new();
        let slot = crate::records::disappearing::group_timer(vault, &group);
        vault.remove(&mut txn, slot);
        vault.commit(txn).await.expect("reset");
        for content in order {
            let mut txn = crate::store::Txn::new();
            super::group::apply(vault, &mut txn, &group, content)
                .await
                .expect("apply");
            vault.commit(txn).await.expect("commit");
        }
        let held = team
            .bob
            .group_disappearing_timer(&group)
            .await
            .expect("timer");
        assert_eq!(held, 120, "the later change wins");
    }
    // Limits as for 1:1.
    assert!(team
        .bob
        .set_group_disappearing(&group, 5_000_000)
        .await
        .is_err());
}
