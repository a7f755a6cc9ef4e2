//! Replies, reactions, edits and deletes in a group over a real relay in
//! this process (docs/PROTOCOL.md §10.6): every member's copy of the group
//! history ends the same, and an edit or delete by a member who is not the
//! author of the message (sent past our own rule, as a cheating member
//! could) is refused by every other member.

use std::time::Duration;

use rand::rngs::OsRng;

use crate::groups::tests::team;
use crate::groups::{GroupHistoryEntry, GroupId};
use crate::{ChangeRefusal, Client, Error, Event, MessageChange, MessageId, Reaction};

use super::{Change, Reference};

async fn receive(client: &Client) -> Vec<Event> {
    client
        .receive_until_empty(Duration::from_secs(10))
        .await
        .expect("receive")
}

async fn entry(client: &Client, group: &GroupId, id: &MessageId) -> GroupHistoryEntry {
    client
        .group_history(group, 100)
        .await
        .expect("history")
        .into_iter()
        .find(|e| e.entry.id == *id)
        .expect("the message is in the group's history")
}

fn changed(events: &[Event], group: &GroupId) -> Vec<MessageChange> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageChanged {
                group: Some(g),
                change,
                ..
            } if g == group => Some(change.clone()),
            _ => None,
        })
        .collect()
}

fn refused(events: &[Event], group: &GroupId) -> Vec<ChangeRefusal> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageChangeRefused {
                group: Some(g),
                reason,
                ..
            } if g == group => Some(*reason),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_sees_the_same_replies_reactions_edits_and_deletes() {
    let team = team().await;
    let (alice, bob, carol, group) = (&team.alice, &team.bob, &team.carol, team.group);
    receive(bob).await;
    receive(carol).await;
    let hello = alice
        .send_group_text(&group, "hello team")
        .await
        .expect("send")
        .id;
    receive(bob).await;
    receive(carol).await;

    let reply = bob
        .send_group_reply(&group, &hello, "hi")
        .await
        .expect("reply")
        .id;
    for member in [alice, carol] {
        let events = receive(member).await;
        assert!(
            events.iter().any(|e| matches!(e,
                Event::GroupMessage { id, reply_to: Some(t), .. } if *id == reply && *t == hello)),
            "{events:?}"
        );
    }
    let backlog = alice.unreported_group_messages().await.expect("unreported");
    assert!(backlog
        .iter()
        .any(|m| m.id == reply && m.reply_to == Some(hello)));
    carol
        .react_in_group(&group, &hello, "👍", false)
        .await
        .expect("react");
    let thumbs = vec![Reaction {
        by: carol.whoami().account_id,
        emoji: "👍".into(),
    }];
    for member in [alice, bob] {
        assert_eq!(changed(&receive(member).await, &group).len(), 1);
    }
    for member in [alice, bob, carol] {
        let found = entry(member, &group, &hello).await;
        assert_eq!(found.entry.about.reactions, thumbs);
        assert_eq!(
            entry(member, &group, &reply).await.entry.about.reply_to,
            Some(hello)
        );
    }

    alice
        .edit_in_group(&group, &hello, "hello, team")
        .await
        .expect("edit");
    for member in [bob, carol] {
        assert_eq!(
            changed(&receive(member).await, &group),
            vec![MessageChange::Edited {
                body: "hello, team".into()
            }]
        );
    }
    bob.delete_in_group_for_everyone(&group, &reply)
        .await
        .expect("delete");
    for member in [alice, carol] {
        assert_eq!(
            changed(&receive(member).await, &group),
            vec![MessageChange::Deleted]
        );
    }
    for member in [alice, bob, carol] {
        let edited = entry(member, &group, &hello).await.entry;
        assert_eq!(edited.body, "hello, team");
        assert!(edited.about.edited_at_ms.is_some());
        let deleted = entry(member, &group, &reply).await.entry;
        assert!(
            deleted.body.is_empty() && deleted.about.deleted,
            "{deleted:?}"
        );
    }
    // Our own rule: only the author edits, and a reply quotes a message
    // the group holds.
    assert!(matches!(
        carol.edit_in_group(&group, &hello, "carol's").await,
        Err(Error::ChangeRefused {
            reason: ChangeRefusal::NotTheAuthor,
            ..
        })
    ));
    let unknown = MessageId::random(&mut OsRng);
    assert!(matches!(
        carol.send_group_reply(&group, &unknown, "?").await,
        Err(Error::ChangeRefused {
            reason: ChangeRefusal::UnknownTarget,
            ..
        })
    ));
    team.relay.shutdown();
    team.relay.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_or_delete_by_a_member_who_is_not_the_author_is_refused() {
    let team = team().await;
    let (alice, bob, carol, group) = (&team.alice, &team.bob, &team.carol, team.group);
    receive(bob).await;
    receive(carol).await;
    let hello = alice
        .send_group_text(&group, "hello team")
        .await
        .expect("send")
        .id;
    receive(bob).await;
    receive(carol).await;
    let at = entry(bob, &group, &hello).await.entry.sent_at_ms;
    let forged = |change| Reference {
        id: MessageId::random(&mut OsRng),
        target: hello,
        sent_at_ms: at + 1,
        change,
    };

    let edit = forged(Change::Edit {
        body: "bob was here".into(),
    });
    bob.inner
        .send_group_forged(&group, edit)
        .await
        .expect("sent");
    bob.inner
        .send_group_forged(&group, forged(Change::Delete))
        .await
        .expect("sent");
    for member in [alice, carol] {
        let events = receive(member).await;
        assert_eq!(
            refused(&events, &group),
            vec![ChangeRefusal::NotTheAuthor, ChangeRefusal::NotTheAuthor],
            "{events:?}"
        );
        assert!(!events
            .iter()
            .any(|e| matches!(e, Event::DecryptionFailed { .. })));
        let kept = entry(member, &group, &hello).await.entry;
        assert!(kept.body == "hello team" && !kept.about.deleted, "{kept:?}");
    }
    // A reference to a message the group never had.
    let mut unknown = forged(Change::React {
        emoji: "👀".into(),
        remove: false,
    });
    unknown.target = MessageId::random(&mut OsRng);
    bob.inner
        .send_group_forged(&group, unknown)
        .await
        .expect("sent");
    assert_eq!(
        refused(&receive(carol).await, &group),
        vec![ChangeRefusal::UnknownTarget]
    );
    team.relay.shutdown();
    team.relay.wait().await;
}
