//! Group behaviour the review of issue 10 found missing, against a real
//! relay in this process (the helpers are `tests.rs`'s): a refusal after a
//! send said "queued" is reported and a refused sender key is resent; a
//! change beyond a full pending queue is kept, not lost; a welcome back into
//! a group we left needs one of its admins; a member's username hint names
//! no contact the directory does not confirm; a removal the fork choice
//! undoes makes us a member again, and says so; a member welcomed on a branch the fork
//! choice drops takes the welcome of the Add made again on the winner.

use std::time::Duration;

use umbra_protocol::content::Content;
use umbra_protocol::group::{GroupChange, GroupState};
use umbra_relay::config::Settings;

use crate::{Client, Event, GroupRefusal, PeerRef, SendFailure};
use umbra_protocol::wire::ErrorCode;

use super::tests::{deliver, receive, refusals, register, relay, relay_with, state_of, team, Team};

/// Sends several changes from `from` to `to`, in order, then flushes once.
async fn deliver_all(from: &Client, to: &Client, changes: &[GroupChange]) {
    let contact = from
        .inner
        .contact_by_account(to.whoami().account_id.as_bytes())
        .await
        .expect("store")
        .expect("a contact");
    for change in changes {
        from.inner
            .send_control(
                &contact,
                Content::GroupControl {
                    change: change.as_bytes().to_vec(),
                },
            )
            .await
            .expect("queued");
    }
    from.flush_outbox(Duration::from_secs(30))
        .await
        .expect("sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_refusal_of_a_queued_item_is_reported_and_the_key_resent() {
    let Team {
        dir,
        relay,
        url: _url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    receive(&bob).await;
    receive(&carol).await;
    let (bob_id, carol_id) = (bob.whoami().account_id, carol.whoami().account_id);
    // Carol's account goes while alice is offline; alice has not heard.
    alice.shutdown().await;
    carol.delete_account().await.expect("delete");
    // With the relay down, alice's first message (and her sender key ahead
    // of it) waits in the fan-out queue: queued for both.
    let addr = relay.local_addr;
    bob.shutdown().await;
    relay.shutdown();
    relay.wait().await;
    let report = alice.send_group_text(&group, "queued").await.expect("send");
    assert!(
        report
            .members
            .iter()
            .all(|m| m.outcome == crate::MemberOutcome::Queued),
        "{report:?}"
    );
    // The relay is back (same address, same data): the outbox pump sends
    // the queue, and the relay refuses carol's items for good. (Alice's
    // reconnection attempts are stopped meanwhile: her flush connects anew
    // instead of waiting out their backoff.)
    alice.shutdown().await;
    let relay = relay_with(
        &dir,
        Settings {
            listen: Some(addr),
            ..Settings::default()
        },
    )
    .await;
    alice
        .flush_outbox(Duration::from_secs(60))
        .await
        .expect("flushed");
    let events = receive(&alice).await;
    let failed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::GroupDeliveryFailed {
                group: g,
                id,
                member,
                reason,
                ..
            } if *g == group => Some((*id, *member, *reason)),
            _ => None,
        })
        .collect();
    // Her sender key and the message: both reported, neither dropped silently.
    assert_eq!(failed.len(), 2, "{events:?}");
    assert!(
        failed.iter().all(|(id, member, reason)| *id == report.id
            && *member == carol_id
            && *reason == SendFailure::Refused(ErrorCode::UnknownRecipient)),
        "{failed:?}"
    );
    // The refused sender key is no longer counted as hers: the next send
    // distributes it again (bob's was accepted and stays).
    let key = alice
        .inner
        .groups
        .own_key(&group)
        .await
        .expect("store")
        .expect("a key");
    assert!(
        key.has(&bob_id, umbra_protocol::wire::DeviceId::PRIMARY),
        "bob has the key"
    );
    assert!(
        !key.has(&carol_id, umbra_protocol::wire::DeviceId::PRIMARY),
        "carol's refused key is to be resent"
    );
    let events = receive(&bob).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::GroupMessage { body, .. } if body == "queued")),
        "{events:?}"
    );
    relay.shutdown();
    relay.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_beyond_a_full_pending_queue_is_kept_not_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob) = (register(&url, "alice").await, register(&url, "bob").await);
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
    receive(&bob).await;
    let alice_id = alice.whoami().account_id;
    // A chain of renames by alice that bob receives first-parent-last:
    // every change but the first waits for its parent, one more than the
    // pending queue holds of one author.
    let max = umbra_protocol::consts::MAX_PENDING_PER_AUTHOR;
    let mut state = state_of(&alice, &group).await;
    let start = state.version();
    let mut chain = Vec::new();
    for n in 0..max + 2 {
        let change = GroupChange::rename(&alice.inner.identity, alice_id, &state, &format!("n{n}"))
            .expect("rename");
        state = state.apply(&change).expect("applies");
        chain.push(change);
    }
    deliver_all(&alice, &bob, &chain[1..]).await;
    let events = receive(&bob).await;
    assert!(
        refusals(&events)
            .iter()
            .any(|r| matches!(r, GroupRefusal::ChangeKept(_))),
        "the change beyond the full queue is kept: {events:?}"
    );
    deliver_all(&alice, &bob, &chain[..1]).await;
    receive(&bob).await;
    // The kept change comes again on the next connection and applies.
    bob.shutdown().await;
    receive(&bob).await;
    let after = state_of(&bob, &group).await;
    assert_eq!(after.version(), start + chain.len() as u64, "nothing lost");
    assert_eq!(after.name(), format!("n{}", max + 1));
    relay.shutdown();
    relay.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcome_back_to_a_group_we_left_needs_one_of_its_admins() {
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
    // Bob writes once so that he has a session with carol.
    bob.send_group_text(&group, "hi").await.expect("send");
    receive(&carol).await;
    carol.leave_group(&group).await.expect("leave");
    receive(&alice).await;
    receive(&bob).await;
    let left = state_of(&carol, &group).await;

    // Bob, never an admin, welcomes carol back into a group of his own
    // under the same id: a snapshot that makes him its admin.
    let (bob_id, carol_id) = (bob.whoami().account_id, carol.whoami().account_id);
    let member = |account, name: &str| umbra_protocol::group::NewMember {
        account,
        username: umbra_protocol::wire::Username::parse(name).expect("name"),
    };
    let create = GroupChange::create(
        &bob.inner.identity,
        bob_id,
        group,
        "bob's team",
        umbra_protocol::group::GroupPolicy {
            members_may_rename: false,
        },
        vec![member(bob_id, "bob")],
    )
    .expect("create");
    let mine = GroupState::from_create(&create).expect("state");
    let add = GroupChange::add(
        &bob.inner.identity,
        bob_id,
        &mine,
        vec![member(carol_id, "carol")],
    )
    .expect("add");
    let snapshot = mine.apply(&add).expect("applies");
    let contact = bob
        .inner
        .contact_by_account(carol_id.as_bytes())
        .await
        .expect("store")
        .expect("a contact");
    bob.inner
        .send_control(
            &contact,
            Content::GroupWelcome {
                state: snapshot.to_bytes(),
                change: add.as_bytes().to_vec(),
            },
        )
        .await
        .expect("queued");
    bob.flush_outbox(Duration::from_secs(10))
        .await
        .expect("sent");
    let events = receive(&carol).await;
    assert!(
        refusals(&events).iter().any(|r| matches!(
            r,
            GroupRefusal::WelcomeFromNonAdmin | GroupRefusal::WelcomeRefused(_)
        )),
        "{events:?}"
    );
    assert!(!carol.group(&group).await.expect("listed").active);
    assert_eq!(
        state_of(&carol, &group).await,
        left,
        "the record is untouched"
    );

    // Alice, its admin, may bring her back.
    alice
        .add_members(&group, &["carol".parse().expect("name")])
        .await
        .expect("add");
    receive(&carol).await;
    assert!(carol.group(&group).await.expect("listed").active);
    relay.shutdown();
    relay.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_username_hint_names_no_contact_unless_the_directory_agrees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, _bob, carol, mallory) = (
        register(&url, "alice").await,
        register(&url, "bob").await,
        register(&url, "carol").await,
        register(&url, "mallory").await,
    );
    let members: Vec<PeerRef> = vec!["carol".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
    receive(&carol).await;
    // The admin adds mallory's account under the hint "bob" (a hostile
    // client may write any hint).
    let mallory_id = mallory.whoami().account_id;
    let hint = umbra_protocol::group::NewMember {
        account: mallory_id,
        username: umbra_protocol::wire::Username::parse("bob").expect("name"),
    };
    alice
        .inner
        .issue(&group, move |_| {
            Ok(umbra_protocol::group::GroupAction::Add {
                members: vec![hint.clone()],
            })
        })
        .await
        .expect("add");
    receive(&carol).await;
    // Carol's first send to the group would make a session with that
    // account: it is not filed as "bob", and not sent to.
    let report = carol.send_group_text(&group, "hi").await.expect("send");
    let line = report
        .members
        .iter()
        .find(|m| m.account_id == mallory_id)
        .expect("listed");
    assert!(
        matches!(&line.outcome, crate::MemberOutcome::NotSent(why) if why.contains("directory")),
        "{report:?}"
    );
    assert!(
        carol
            .inner
            .contact_by_account(mallory_id.as_bytes())
            .await
            .expect("store")
            .is_none(),
        "no contact filed under the hint"
    );
    relay.shutdown();
    relay.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_the_fork_choice_undoes_makes_us_a_member_again() {
    let Team {
        dir: _dir,
        relay,
        url: _url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
    alice
        .promote_member(&group, &"bob".parse().expect("name"))
        .await
        .expect("promote");
    receive(&bob).await;
    receive(&carol).await;
    let parent = state_of(&alice, &group).await;
    // Bob (the junior admin) removes carol; she applies it first.
    bob.remove_member(&group, &"carol".parse().expect("name"))
        .await
        .expect("remove");
    let events = receive(&carol).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::RemovedFromGroup { .. })),
        "{events:?}"
    );
    assert!(!carol.group(&group).await.expect("listed").active);
    // Alice, the senior admin, renamed on the same parent: her change wins
    // the fork choice and bob's Remove is undone, for carol too.
    let alice_id = alice.whoami().account_id;
    let rename =
        GroupChange::rename(&alice.inner.identity, alice_id, &parent, "alice's").expect("rename");
    deliver(&alice, &carol, &rename).await;
    let events = receive(&carol).await;
    // Carol is told she is back, by whose change over whose Remove, before
    // what the winning change did.
    let restored = events
        .iter()
        .position(|e| {
            matches!(e, Event::GroupMembershipRestored { group: g, by, removed_by, .. }
                if *g == group && by == "alice" && removed_by.as_deref() == Some("bob"))
        })
        .unwrap_or_else(|| panic!("no GroupMembershipRestored in {events:?}"));
    let renamed = events
        .iter()
        .position(|e| matches!(e, Event::GroupMembershipChanged { by, .. } if by == "alice"))
        .unwrap_or_else(|| panic!("no rename event in {events:?}"));
    assert!(restored < renamed, "{events:?}");
    let state = state_of(&carol, &group).await;
    assert_eq!(state.name(), "alice's");
    assert!(state.is_member(&carol.whoami().account_id));
    assert!(
        carol.group(&group).await.expect("listed").active,
        "a member again"
    );
    relay.shutdown();
    relay.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_welcomed_on_a_losing_branch_follows_the_welcome_of_the_re_issued_add() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob, carol, dave) = (
        register(&url, "alice").await,
        register(&url, "bob").await,
        register(&url, "carol").await,
        register(&url, "dave").await,
    );
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name"), "carol".parse().expect("name")];
    let group = alice
        .create_group("council", &members)
        .await
        .expect("create")
        .group;
    alice
        .promote_member(&group, &"bob".parse().expect("name"))
        .await
        .expect("promote");
    receive(&bob).await;
    receive(&carol).await;
    // Alice is offline, so her rename builds on the state bob's Add of
    // dave builds on too: two admins' changes with one parent. Dave's log
    // starts from the welcome of bob's Add.
    alice.shutdown().await;
    bob.add_members(&group, &["dave".parse().expect("name")])
        .await
        .expect("add");
    receive(&dave).await;
    assert_eq!(state_of(&dave, &group).await.name(), "council");
    alice.rename_group(&group, "senate").await.expect("rename");
    // Alice, the senior admin, wins the fork choice: bob's Add is undone
    // and made again on her rename, and dave is welcomed again. Her
    // rename never reaches dave (he was no member of its state), so that
    // welcome's Add does not connect to dave's log.
    let everyone = [&alice, &bob, &carol, &dave];
    for _round in 0..4 {
        for member in everyone {
            receive(member).await;
        }
    }
    let head = state_of(&alice, &group).await;
    assert_eq!(head.name(), "senate");
    assert!(head.is_member(&dave.whoami().account_id));
    for member in everyone {
        assert_eq!(
            state_of(member, &group).await,
            head,
            "{}",
            member.whoami().username.as_str()
        );
        assert!(member.group(&group).await.expect("listed").active);
    }
    // Dave reads the group under the state he now holds.
    alice
        .send_group_text(&group, "welcome")
        .await
        .expect("send");
    let events = receive(&dave).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::GroupMessage { body, .. } if body == "welcome")),
        "{events:?}"
    );
    relay.shutdown();
    relay.wait().await;
}
