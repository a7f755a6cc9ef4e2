//! Local history search against a real relay in this process: messages
//! sent and received, 1:1 and in a group, are found by a case-insensitive
//! query, newest first, at most the limit, and a query nothing contains
//! finds nothing.

use umbra_client_core::{Client, Direction, SearchConversation, SearchHit};

mod support;
use support::{name, receive, register, TestRelay};

fn bodies(hits: &[SearchHit]) -> Vec<&str> {
    hits.iter().map(|h| h.entry.body.as_str()).collect()
}

async fn send(from: &Client, to: &str, text: &str) {
    from.send_text(&name(to), text).await.expect("send");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_sent_received_and_group_messages_newest_first() {
    let relay = TestRelay::start().await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;

    send(&alice, "bob", "the Blue whale").await;
    receive(&bob).await;
    send(&bob, "alice", "a BLUE sky over Zürich").await;
    send(&bob, "alice", "nothing to see").await;
    receive(&alice).await;
    let created = alice
        .create_group("crew", &["bob".parse().expect("peer")])
        .await
        .expect("create");
    receive(&bob).await;
    alice
        .send_group_text(&created.group, "blue group note")
        .await
        .expect("group send");
    receive(&bob).await;

    // Case folding, both directions, the group, newest first.
    let hits = alice.search("bLuE", 50).await.expect("search");
    assert_eq!(
        bodies(&hits),
        vec![
            "blue group note",
            "a BLUE sky over Zürich",
            "the Blue whale"
        ]
    );
    assert!(matches!(
        &hits[0].conversation,
        SearchConversation::Group { id, name } if *id == created.group && name == "crew"
    ));
    assert_eq!(hits[0].from, "alice");
    assert!(matches!(
        &hits[1].conversation,
        SearchConversation::Contact { name, .. } if name == "bob"
    ));
    assert_eq!(
        (hits[1].from.as_str(), hits[1].entry.direction),
        ("bob", Direction::Incoming)
    );
    assert_eq!(
        (hits[2].from.as_str(), hits[2].entry.direction),
        ("alice", Direction::Outgoing)
    );

    // Unicode-aware folding: Ü matches ü.
    let hits = alice.search("ZÜRICH", 50).await.expect("search");
    assert_eq!(bodies(&hits), vec!["a BLUE sky over Zürich"]);

    // The limit keeps the newest.
    let hits = alice.search("blue", 2).await.expect("search");
    assert_eq!(
        bodies(&hits),
        vec!["blue group note", "a BLUE sky over Zürich"]
    );

    // Bob's own store finds the same conversation from his side.
    let hits = bob.search("blue", 50).await.expect("search");
    assert_eq!(
        bodies(&hits),
        vec![
            "blue group note",
            "a BLUE sky over Zürich",
            "the Blue whale"
        ]
    );
    assert_eq!(hits[2].from, "alice");

    // No match, and an empty query, find nothing.
    assert!(alice.search("purple", 50).await.expect("search").is_empty());
    assert!(alice.search("  ", 50).await.expect("search").is_empty());
}
