//! Replies, reactions, edits and deletes between two clients over a real
//! relay in this process (docs/PROTOCOL.md §10.6): what each side's history
//! shows, the events, and the refusals of what an honest client never
//! sends (an edit of someone else's message, an unknown target, one too
//! late, an older edit, a copy of a reaction), sent here with the engine's
//! `send_control`.

use std::time::Duration;

use rand::rngs::OsRng;
use umbra_protocol::content::Content;

use crate::groups::tests::{register, relay};
use crate::{
    ChangeRefusal, Client, Error, Event, HistoryEntry, MessageChange, MessageId, PeerRef, Reaction,
};

use super::EDIT_WINDOW_MS;

async fn receive(client: &Client) -> Vec<Event> {
    client
        .receive_until_empty(Duration::from_secs(10))
        .await
        .expect("receive")
}

async fn history(client: &Client, peer: &str) -> Vec<HistoryEntry> {
    let peer: PeerRef = peer.parse().expect("peer");
    client.history(&peer, 100).await.expect("history")
}

async fn entry(client: &Client, peer: &str, id: &MessageId) -> HistoryEntry {
    history(client, peer)
        .await
        .into_iter()
        .find(|e| e.id == *id)
        .expect("the message is in history")
}

/// Sends `content` from `from` to `to` as it is, past our own rule (what
/// a cheating client could send), and has `to` receive it.
async fn forge(from: &Client, to: &Client, content: Content) -> Vec<Event> {
    let contact = from
        .inner
        .contact_by_account(to.whoami().account_id.as_bytes())
        .await
        .expect("store")
        .expect("a contact");
    from.inner
        .send_control(&contact, content)
        .await
        .expect("queued");
    from.flush_outbox(Duration::from_secs(10))
        .await
        .expect("sent");
    let events = receive(to).await;
    // A refusal is an event, never a failed delivery.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::DecryptionFailed { .. })),
        "{events:?}"
    );
    events
}

fn refused(events: &[Event]) -> Vec<ChangeRefusal> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageChangeRefused {
                reason,
                group: None,
                ..
            } => Some(*reason),
            _ => None,
        })
        .collect()
}

fn changes(events: &[Event]) -> Vec<MessageChange> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageChanged {
                change,
                group: None,
                ..
            } => Some(change.clone()),
            _ => None,
        })
        .collect()
}

fn new_id() -> MessageId {
    MessageId::random(&mut OsRng)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_reactions_edits_and_deletes_reach_the_peer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let (alice, bob) = (
        register(&relay.url(), "alice").await,
        register(&relay.url(), "bob").await,
    );
    let (to_alice, to_bob) = ("alice".parse().expect("name"), "bob".parse().expect("name"));
    let hello = alice.send_text(&to_bob, "hello bob").await.expect("send");
    alice
        .flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
    receive(&bob).await;

    // A reply: stored and shown with the message it quotes.
    let reply = bob
        .send_reply(&to_alice, &hello, "hi!")
        .await
        .expect("reply");
    bob.flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
    let events = receive(&alice).await;
    assert!(
        events.iter().any(|e| matches!(e,
            Event::Message { id, reply_to: Some(t), body, .. }
                if *id == reply && *t == hello && body == "hi!")),
        "{events:?}"
    );
    assert_eq!(
        entry(&alice, "bob", &reply).await.about.reply_to,
        Some(hello)
    );
    assert_eq!(
        entry(&bob, "alice", &reply).await.about.reply_to,
        Some(hello)
    );
    // Shown later (not marked reported yet), it is still a reply.
    let backlog = alice.unreported_messages().await.expect("unreported");
    assert!(backlog
        .iter()
        .any(|m| m.id == reply && m.reply_to == Some(hello)));
    // A reply must quote a message of the conversation.
    let unknown = new_id();
    assert!(matches!(
        bob.send_reply(&to_alice, &unknown, "?").await,
        Err(Error::ChangeRefused {
            reason: ChangeRefusal::UnknownTarget,
            ..
        })
    ));

    // A reaction, added twice (the second changes nothing), on both sides.
    bob.react(&to_alice, &hello, "👍", false)
        .await
        .expect("react");
    bob.react(&to_alice, &hello, "👍", false)
        .await
        .expect("again");
    bob.flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
    let events = receive(&alice).await;
    let thumbs = MessageChange::Reacted {
        emoji: "👍".into(),
        removed: false,
    };
    assert_eq!(changes(&events), vec![thumbs], "{events:?}");
    let by_bob = vec![Reaction {
        by: bob.whoami().account_id,
        emoji: "👍".into(),
    }];
    assert_eq!(entry(&alice, "bob", &hello).await.about.reactions, by_bob);
    assert_eq!(entry(&bob, "alice", &hello).await.about.reactions, by_bob);
    // Alice reacts to bob's reply, then takes it back.
    alice
        .react(&to_bob, &reply, "🎉", false)
        .await
        .expect("react");
    alice
        .react(&to_bob, &reply, "🎉", true)
        .await
        .expect("unreact");
    alice
        .flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
    assert_eq!(changes(&receive(&bob).await).len(), 2);
    assert!(entry(&bob, "alice", &reply)
        .await
        .about
        .reactions
        .is_empty());

    // An edit by its author.
    alice
        .edit(&to_bob, &hello, "hello, bob")
        .await
        .expect("edit");
    alice
        .flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
    let events = receive(&bob).await;
    assert_eq!(
        changes(&events),
        vec![MessageChange::Edited {
            body: "hello, bob".into()
        }]
    );
    for side in [
        entry(&bob, "alice", &hello).await,
        entry(&alice, "bob", &hello).await,
    ] {
        assert_eq!(side.body, "hello, bob");
        assert!(side.about.edited_at_ms.is_some());
        assert_eq!(side.about.reactions, by_bob, "an edit keeps the reactions");
    }
    // Our own rule refuses to edit someone else's message.
    assert!(matches!(
        alice.edit(&to_bob, &reply, "mine now").await,
        Err(Error::ChangeRefused {
            reason: ChangeRefusal::NotTheAuthor,
            ..
        })
    ));

    // A delete for everyone: erased on both sides, the placeholder stays.
    let secret = bob.send_text(&to_alice, "secret").await.expect("send");
    bob.flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
    receive(&alice).await;
    bob.delete_for_everyone(&to_alice, &secret)
        .await
        .expect("delete");
    bob.flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
    let events = receive(&alice).await;
    assert_eq!(changes(&events), vec![MessageChange::Deleted], "{events:?}");
    for side in [
        entry(&alice, "bob", &secret).await,
        entry(&bob, "alice", &secret).await,
    ] {
        assert_eq!(side.body, "");
        assert!(side.about.deleted);
    }
    for client in [&alice, &bob] {
        let hits = client.search("secret", 10).await.expect("search");
        assert!(hits.is_empty(), "{hits:?}");
        let summaries = client.conversations().await.expect("conversations");
        let last = summaries[0].last_message.as_ref().expect("a last message");
        assert!(last.about.deleted && last.body.is_empty(), "{last:?}");
    }
    // A deleted message takes no reaction.
    assert!(matches!(
        alice.react(&to_bob, &secret, "👍", false).await,
        Err(Error::ChangeRefused {
            reason: ChangeRefusal::TargetDeleted,
            ..
        })
    ));
    relay.shutdown();
    relay.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_not_by_the_author_or_out_of_rule_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let (alice, bob) = (
        register(&relay.url(), "alice").await,
        register(&relay.url(), "bob").await,
    );
    let (to_alice, to_bob) = ("alice".parse().expect("name"), "bob".parse().expect("name"));
    let hello = alice.send_text(&to_bob, "hello").await.expect("send");
    alice
        .flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
    receive(&bob).await;
    let mine = bob.send_text(&to_alice, "mine").await.expect("send");
    bob.flush_outbox(Duration::from_secs(10))
        .await
        .expect("flush");
    receive(&alice).await;
    let at = entry(&alice, "bob", &mine).await.sent_at_ms;
    let edit = |target, sent_at_ms, body: &str| Content::Edit {
        id: new_id(),
        target,
        body: body.to_owned(),
        sent_at_ms,
    };

    // Bob edits and deletes alice's message: refused, her text stays.
    let events = forge(&bob, &alice, edit(hello, at, "bob was here")).await;
    assert_eq!(refused(&events), vec![ChangeRefusal::NotTheAuthor]);
    let delete = Content::DeleteForEveryone {
        id: new_id(),
        target: hello,
        sent_at_ms: at,
    };
    let events = forge(&bob, &alice, delete).await;
    assert_eq!(refused(&events), vec![ChangeRefusal::NotTheAuthor]);
    let kept = entry(&alice, "bob", &hello).await;
    assert!(kept.body == "hello" && !kept.about.deleted, "{kept:?}");

    // Unknown targets, a late edit, an early one, and an older edit.
    let events = forge(&bob, &alice, edit(new_id(), at, "x")).await;
    assert_eq!(refused(&events), vec![ChangeRefusal::UnknownTarget]);
    let late = edit(mine, at + EDIT_WINDOW_MS + 1, "late");
    assert_eq!(
        refused(&forge(&bob, &alice, late).await),
        vec![ChangeRefusal::OutsideEditWindow]
    );
    let early = edit(mine, at - 1, "early");
    assert_eq!(
        refused(&forge(&bob, &alice, early).await),
        vec![ChangeRefusal::OutsideEditWindow]
    );
    assert!(changes(&forge(&bob, &alice, edit(mine, at + 2, "new")).await).len() == 1);
    let older = edit(mine, at + 1, "older");
    assert_eq!(
        refused(&forge(&bob, &alice, older).await),
        vec![ChangeRefusal::Superseded]
    );
    assert_eq!(entry(&alice, "bob", &mine).await.body, "new");

    // A copy of an applied reaction (same id) after its removal is dropped.
    let add = Content::Reaction {
        id: new_id(),
        target: hello,
        emoji: "👍".into(),
        remove: false,
        sent_at_ms: at,
    };
    assert_eq!(changes(&forge(&bob, &alice, add.clone()).await).len(), 1);
    let remove = Content::Reaction {
        id: new_id(),
        target: hello,
        emoji: "👍".into(),
        remove: true,
        sent_at_ms: at,
    };
    assert_eq!(changes(&forge(&bob, &alice, remove).await).len(), 1);
    let events = forge(&bob, &alice, add).await;
    assert!(
        changes(&events).is_empty() && refused(&events).is_empty(),
        "{events:?}"
    );
    assert!(entry(&alice, "bob", &hello)
        .await
        .about
        .reactions
        .is_empty());
    relay.shutdown();
    relay.wait().await;
}
