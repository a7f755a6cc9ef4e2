//! Groups against a real relay in this process: three members talking both
//! ways, a removal (the removed member's client still connected and still
//! trying), a member added later, a restart that keeps groups and keys.
//! Concurrent changes and forged ones are in `groups_changes.rs`.

use umbra_client_core::{
    Client, DecryptFailure, Error, Event, GroupFailure, GroupId, GroupRefusal, MemberOutcome,
    PeerRef,
};

mod support;
use support::{receive, register, TestRelay};

/// `(from, body)` of every group message event of `group`, in order.
fn group_messages(events: &[Event], group: &GroupId) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupMessage {
                group: g,
                from,
                body,
                ..
            } if g == group => Some((from.clone(), body.clone())),
            _ => None,
        })
        .collect()
}

fn peers(names: &[&str]) -> Vec<PeerRef> {
    names
        .iter()
        .map(|n| n.parse().expect("valid name"))
        .collect()
}

/// Everyone but the sender reached.
fn all_reached(report: &umbra_client_core::GroupSendReport) {
    assert!(
        report
            .members
            .iter()
            .all(|m| m.outcome == MemberOutcome::Reached),
        "{report:?}"
    );
}

/// A group of alice (admin), bob and carol that all three have joined.
async fn team(relay: &TestRelay) -> (Client, Client, Client, GroupId) {
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;
    let (carol, _) = register(&relay.url(), "carol").await;
    let created = alice
        .create_group("team", &peers(&["bob", "carol"]))
        .await
        .expect("create");
    all_reached(&created);
    let group = created.group;
    for member in [&bob, &carol] {
        let events = receive(member).await;
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::GroupMembershipChanged { group: g, by, .. } if *g == group && by == "alice"
            )),
            "{events:?}"
        );
        let info = member.group(&group).await.expect("joined");
        assert_eq!((info.name.as_str(), info.member_count), ("team", 3));
    }
    (alice, bob, carol, group)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_talk_both_ways() {
    let relay = TestRelay::start().await;
    let (alice, bob, carol, group) = team(&relay).await;

    all_reached(
        &alice
            .send_group_text(&group, "hello team")
            .await
            .expect("send"),
    );
    for member in [&bob, &carol] {
        let events = receive(member).await;
        assert_eq!(
            group_messages(&events, &group),
            vec![("alice".to_owned(), "hello team".to_owned())],
            "{events:?}"
        );
    }
    // Bob has no session with carol yet: his send makes one (first contact).
    all_reached(
        &bob.send_group_text(&group, "hi from bob")
            .await
            .expect("send"),
    );
    let mut seen_by_alice = Vec::new();
    for member in [&alice, &carol] {
        let events = receive(member).await;
        assert_eq!(
            group_messages(&events, &group),
            vec![("bob".to_owned(), "hi from bob".to_owned())],
            "{events:?}"
        );
        if member.whoami().username.as_str() == "alice" {
            seen_by_alice = events;
        }
    }
    // Delivery receipts for alice's message came back pairwise, naming the group.
    let mut events = seen_by_alice;
    events.extend(receive(&alice).await);
    let receipts: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::GroupReceipt { group: g, read: false, .. } if *g == group))
        .collect();
    assert!(!receipts.is_empty(), "{events:?}");
    // Both messages are stored: still listed for an interface that missed
    // the events, until it marks them reported.
    let unreported = carol.unreported_group_messages().await.expect("list");
    let bodies: Vec<_> = unreported.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, vec!["hello team", "hi from bob"]);
    carol.mark_group_reported(&unreported).await.expect("mark");
    assert!(carol
        .unreported_group_messages()
        .await
        .expect("list")
        .is_empty());
    let history = alice.group_history(&group, 10).await.expect("history");
    let lines: Vec<_> = history
        .iter()
        .map(|h| (h.from.as_str(), h.entry.body.as_str()))
        .collect();
    assert_eq!(lines, vec![("alice", "hello team"), ("bob", "hi from bob")]);
    let members = carol.group_members(&group).await.expect("members");
    let admins: Vec<_> = members
        .iter()
        .filter(|m| m.admin)
        .map(|m| m.username.as_str())
        .collect();
    assert_eq!(admins, vec!["alice"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_reads_nothing_new_and_its_sends_are_refused() {
    let relay = TestRelay::start().await;
    let (alice, bob, carol, group) = team(&relay).await;
    alice.send_group_text(&group, "before").await.expect("send");
    bob.send_group_text(&group, "bob before")
        .await
        .expect("send");
    for member in [&alice, &bob, &carol] {
        receive(member).await;
    }

    // Carol's client is offline while she is removed, so it still believes
    // it is a member, and sends.
    carol.shutdown().await;
    all_reached(
        &alice
            .remove_member(&group, &"carol".parse().expect("name"))
            .await
            .expect("remove"),
    );
    let events = receive(&bob).await;
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::GroupMembershipChanged {
                change: umbra_client_core::GroupChangeKind::Removed(_),
                ..
            }
        )),
        "{events:?}"
    );
    // Both remaining members rotate their sender keys and keep talking.
    alice.send_group_text(&group, "after").await.expect("send");
    bob.send_group_text(&group, "bob after")
        .await
        .expect("send");
    let events = receive(&bob).await;
    assert_eq!(
        group_messages(&events, &group),
        vec![("alice".to_owned(), "after".to_owned())]
    );
    let events = receive(&alice).await;
    assert_eq!(
        group_messages(&events, &group),
        vec![("bob".to_owned(), "bob after".to_owned())]
    );

    // Carol sends before she learns she was removed: she reaches the relay,
    // but the members refuse her message.
    let report = carol
        .send_group_text(&group, "still here?")
        .await
        .expect("send");
    assert!(
        report.members.iter().all(|m| m.outcome.is_ok()),
        "{report:?}"
    );
    let events = receive(&carol).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::RemovedFromGroup { group: g, by, .. } if *g == group && by == "alice")),
        "{events:?}"
    );
    assert!(group_messages(&events, &group).is_empty(), "{events:?}");
    assert!(!carol.group(&group).await.expect("listed").active);
    for member in [&alice, &bob] {
        let events = receive(member).await;
        assert!(group_messages(&events, &group).is_empty(), "{events:?}");
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::DecryptionFailed {
                    reason: DecryptFailure::Group(GroupRefusal::NotMember),
                    ..
                }
            )),
            "{events:?}"
        );
    }
    // And from now on her own client refuses.
    let refused = carol.send_group_text(&group, "again").await;
    assert!(
        matches!(refused, Err(Error::Group(GroupFailure::NotAMember))),
        "{refused:?}"
    );
    // Still connected, she receives nothing readable of what follows.
    alice
        .send_group_text(&group, "carol cannot read this")
        .await
        .expect("send");
    let events = receive(&carol).await;
    assert!(group_messages(&events, &group).is_empty(), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_later_reads_only_what_follows() {
    let relay = TestRelay::start().await;
    let (alice, bob, carol, group) = team(&relay).await;
    let (dave, _) = register(&relay.url(), "dave").await;
    alice
        .send_group_text(&group, "before dave")
        .await
        .expect("send");
    receive(&bob).await;
    all_reached(
        &alice
            .add_members(&group, &peers(&["dave"]))
            .await
            .expect("add"),
    );
    let events = receive(&dave).await;
    assert!(group_messages(&events, &group).is_empty(), "{events:?}");
    assert_eq!(dave.group(&group).await.expect("joined").member_count, 4);
    alice
        .send_group_text(&group, "welcome dave")
        .await
        .expect("send");
    // Bob learns of dave (and gets alice's message), then writes.
    receive(&bob).await;
    bob.send_group_text(&group, "hi dave").await.expect("send");
    let events = receive(&dave).await;
    assert_eq!(
        group_messages(&events, &group),
        vec![
            ("alice".to_owned(), "welcome dave".to_owned()),
            ("bob".to_owned(), "hi dave".to_owned()),
        ],
        "{events:?}"
    );
    let events = receive(&carol).await;
    assert_eq!(group_messages(&events, &group).len(), 3, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_groups_and_keys_and_never_reuses_a_message_key() {
    let relay = TestRelay::start().await;
    let (alice, alice_store) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;
    let group = alice
        .create_group("pair", &peers(&["bob"]))
        .await
        .expect("create")
        .group;
    alice.send_group_text(&group, "one").await.expect("send");
    receive(&bob).await;
    alice.shutdown().await;
    drop(alice);

    let alice = Client::open(support::config(&relay.url(), &alice_store), "pw-of-test")
        .await
        .expect("reopen");
    assert_eq!(alice.find_group("pair").await.expect("by name"), group);
    alice.send_group_text(&group, "two").await.expect("send");
    let events = receive(&bob).await;
    // A reused message key would be refused by bob as a replay (or not
    // decrypt); "two" arrives, once.
    assert_eq!(
        group_messages(&events, &group),
        vec![("alice".to_owned(), "two".to_owned())],
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::DecryptionFailed { .. })),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_names_can_be_ambiguous_and_ids_are_not() {
    let relay = TestRelay::start().await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let (_bob, _) = register(&relay.url(), "bob").await;
    let one = alice
        .create_group("same", &peers(&["bob"]))
        .await
        .expect("create")
        .group;
    let two = alice
        .create_group("same", &peers(&["bob"]))
        .await
        .expect("create")
        .group;
    let found = alice.find_group("same").await;
    assert!(
        matches!(
            found,
            Err(Error::Group(GroupFailure::AmbiguousName { count: 2, .. }))
        ),
        "{found:?}"
    );
    assert_eq!(alice.find_group(&one.to_hex()).await.expect("by id"), one);
    alice.rename_group(&two, "other").await.expect("rename");
    assert_eq!(alice.find_group("same").await.expect("unique now"), one);
    assert_eq!(alice.groups().await.expect("list").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_in_a_group_reaches_the_members_online() {
    let relay = TestRelay::start().await;
    let (alice, bob, _carol, group) = team(&relay).await;
    // Alice's messages and bob's answer leave sessions both ways.
    alice.send_group_text(&group, "hi").await.expect("send");
    receive(&bob).await;
    let mut events = bob.events();
    bob.connect().await.expect("online");
    alice.send_group_typing(&group, true).await.expect("typing");
    let typing = tokio::time::timeout(support::WAIT, async {
        while let Some(event) = futures_util::StreamExt::next(&mut events).await {
            if let Event::GroupTyping {
                group: g,
                from,
                started,
            } = event
            {
                return (g, from, started);
            }
        }
        panic!("event stream ended")
    })
    .await
    .expect("the typing notice arrives");
    assert_eq!(typing, (group, "alice".to_owned(), true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_from_someone_no_longer_a_member_names_no_group() {
    let relay = TestRelay::start().await;
    let (alice, bob, carol, group) = team(&relay).await;
    // Carol is offline while alice writes and then removes her: her receipt
    // for the message reaches alice after the removal.
    carol.shutdown().await;
    alice.send_group_text(&group, "bye").await.expect("send");
    alice
        .remove_member(&group, &"carol".parse().expect("name"))
        .await
        .expect("remove");
    receive(&bob).await;
    receive(&carol).await;
    let events = receive(&alice).await;
    let group_receipts: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::GroupReceipt { from, .. } => Some(from.as_str()),
            _ => None,
        })
        .collect();
    // Bob's receipt names the group; carol's is a 1:1 receipt only.
    assert_eq!(group_receipts, vec!["bob"], "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::DeliveryReceipt { from, .. } if from == "carol")),
        "{events:?}"
    );
}
