//! Blocking between two clients over a real relay in this process
//! (crate::blocking): what the blocker is shown, what the blocked sender
//! gets back, the refusal of a send, and that an unblock resumes the same
//! session.

use std::time::Duration;

use super::StoredBlocked;
use crate::groups::tests::{register, relay};
use crate::{Client, Error, Event, PeerRef};

const WAIT: Duration = Duration::from_secs(10);

async fn receive(client: &Client) -> Vec<Event> {
    client.receive_until_empty(WAIT).await.expect("receive")
}

async fn send(from: &Client, to: &str, body: &str) -> crate::MessageId {
    let id = from
        .send_text(&to.parse().expect("name"), body)
        .await
        .expect("send");
    from.flush_outbox(WAIT).await.expect("flush");
    id
}

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { body, .. } => Some(body.clone()),
            _ => None,
        })
        .collect()
}

fn receipt_for(events: &[Event], id: &crate::MessageId) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::DeliveryReceipt { ids, .. } if ids.contains(id)))
}

#[test]
fn the_stored_block_list_is_format_0_then_the_accounts() {
    let stored = StoredBlocked::V1 {
        accounts: vec![([7; 16], "bob".to_owned())],
    };
    let bytes = postcard::to_allocvec(&stored).expect("encode");
    let mut want = vec![0x00, 0x01];
    want.extend([7; 16]);
    want.extend([3, b'b', b'o', b'b']);
    assert_eq!(bytes, want);
    let back: StoredBlocked = postcard::from_bytes(&want).expect("decode");
    assert_eq!(back.accounts(), stored.accounts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_contacts_messages_are_dropped_and_an_unblock_resumes_the_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let (alice, bob) = (
        register(&relay.url(), "alice").await,
        register(&relay.url(), "bob").await,
    );
    send(&alice, "bob", "hello bob").await;
    assert_eq!(texts(&receive(&bob).await), ["hello bob"]);
    receive(&alice).await;

    let bob_ref: PeerRef = "bob".parse().expect("peer");
    let blocked = alice.block(&bob_ref).await.expect("block");
    assert_eq!(blocked.username, "bob");
    assert_eq!(blocked.account, bob.whoami().account_id);
    // Blocking twice changes nothing.
    alice.block(&bob_ref).await.expect("block again");
    let listed = alice.blocked().await.expect("blocked");
    assert_eq!(listed, vec![blocked.clone()]);

    // Nothing bob sends reaches alice, and bob gets no delivery receipt.
    let dropped = send(&bob, "alice", "are you there?").await;
    let before = alice.history(&bob_ref, 100).await.expect("history").len();
    let events = receive(&alice).await;
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(
        alice.history(&bob_ref, 100).await.expect("history").len(),
        before
    );
    assert!(alice
        .unreported_messages()
        .await
        .expect("unreported")
        .is_empty());
    // Acknowledged: it does not come again on the next connection.
    assert!(receive(&alice).await.is_empty());
    assert!(!receipt_for(&receive(&bob).await, &dropped));

    // Alice cannot send to bob, and says why; nothing was queued.
    let refused = alice
        .send_text(&"bob".parse().expect("name"), "hi")
        .await
        .expect_err("a send to a blocked contact");
    assert!(
        matches!(&refused, Error::Blocked { username } if username.as_str() == "bob"),
        "{refused:?}"
    );
    assert!(alice.pending_outbox().await.expect("outbox").is_empty());
    // Marking read sends no read receipt either.
    alice.mark_read(&bob_ref).await.expect("mark read");
    alice.flush_outbox(WAIT).await.expect("flush");
    assert!(alice.pending_outbox().await.expect("outbox").is_empty());

    // Unblocked: bob's next message opens on the same session.
    assert!(alice.unblock(&bob_ref).await.expect("unblock"));
    assert!(!alice.unblock(&bob_ref).await.expect("unblock again"));
    assert!(alice.blocked().await.expect("blocked").is_empty());
    let kept = send(&bob, "alice", "back again").await;
    let events = receive(&alice).await;
    assert_eq!(texts(&events), ["back again"], "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::DecryptionFailed { .. })),
        "{events:?}"
    );
    // The delivery receipt goes again, and alice's reply reaches bob.
    assert!(receipt_for(&receive(&bob).await, &kept));
    send(&alice, "bob", "welcome back").await;
    assert_eq!(texts(&receive(&bob).await), ["welcome back"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_lasts_across_clients_of_the_store_and_names_only_contacts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let (alice, bob) = (
        register(&relay.url(), "alice").await,
        register(&relay.url(), "bob").await,
    );
    // A name that is no contact cannot be blocked.
    let stranger: PeerRef = "carol".parse().expect("peer");
    assert!(matches!(
        alice.block(&stranger).await,
        Err(Error::UnknownUser { .. })
    ));
    send(&alice, "bob", "hello").await;
    receive(&bob).await;
    // By label, as `contacts` shows it.
    let label = PeerRef::label("bob".parse().expect("name"), &bob.whoami().account_id);
    alice.block(&label).await.expect("block by label");
    assert_eq!(alice.blocked().await.expect("blocked").len(), 1);
    assert!(alice
        .inner
        .is_blocked(bob.whoami().account_id.as_bytes())
        .await
        .expect("store"));
    assert!(alice.unblock(&label).await.expect("unblock by label"));
    assert!(!alice
        .inner
        .is_blocked(bob.whoami().account_id.as_bytes())
        .await
        .expect("store"));
}

fn group_texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GroupMessage { body, .. } => Some(body.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_admins_group_texts_are_dropped_but_its_changes_apply() {
    let team = crate::groups::tests::team().await;
    let (alice, bob, carol, group) = (&team.alice, &team.bob, &team.carol, team.group);
    receive(bob).await;
    receive(carol).await;
    let alice_ref: PeerRef = "alice".parse().expect("peer");
    bob.block(&alice_ref).await.expect("block");

    // Alice's group text reaches carol, not bob.
    alice
        .send_group_text(&group, "hi team")
        .await
        .expect("send");
    alice.flush_outbox(WAIT).await.expect("flush");
    let events = receive(bob).await;
    assert!(group_texts(&events).is_empty(), "{events:?}");
    assert_eq!(group_texts(&receive(carol).await), ["hi team"]);
    let shown = bob.group_history(&group, 100).await.expect("history");
    assert!(shown.iter().all(|e| e.entry.body != "hi team"), "{shown:?}");

    // Her change of the group still applies at bob's: its state would
    // otherwise fork from everyone else's.
    let carol_ref: PeerRef = "carol".parse().expect("peer");
    alice
        .remove_member(&group, &carol_ref)
        .await
        .expect("remove");
    alice.flush_outbox(WAIT).await.expect("flush");
    receive(bob).await;
    let members = bob.group_members(&group).await.expect("members");
    assert_eq!(members.len(), 2, "{members:?}");

    // Unblocked: her next group text opens with the same sender key.
    bob.unblock(&alice_ref).await.expect("unblock");
    alice
        .send_group_text(&group, "still here")
        .await
        .expect("send");
    alice.flush_outbox(WAIT).await.expect("flush");
    let events = receive(bob).await;
    assert_eq!(group_texts(&events), ["still here"], "{events:?}");
}

/// The entries in `client`'s outbox (what it would send next).
async fn outbox_len(client: &Client) -> usize {
    let prefix = crate::records::Prefix::<crate::records::outbox::Outbox>::all();
    client
        .inner
        .vault
        .load_all(&prefix)
        .await
        .expect("outbox")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_contact_is_sent_no_session_reset_until_the_unblock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let (alice, bob) = (
        register(&relay.url(), "alice").await,
        register(&relay.url(), "bob").await,
    );
    send(&bob, "alice", "hello alice").await;
    receive(&alice).await;
    receive(&bob).await;
    let bob_ref: PeerRef = "bob".parse().expect("peer");
    alice.block(&bob_ref).await.expect("block");
    assert_eq!(outbox_len(&alice).await, 0);

    // After a restore: every contact is reset, except the blocked one.
    assert_eq!(alice.inner.reset_all_sessions().await.expect("resets"), 0);
    // A message of bob's on a session alice lacks asks for one: not sent.
    let account = *bob.whoami().account_id.as_bytes();
    let identity = bob.inner.identity.public();
    let now = std::time::Instant::now();
    assert!(alice.inner.session_resets.request(account, identity, now));
    alice.inner.send_asked_resets().await;
    assert_eq!(outbox_len(&alice).await, 0, "nothing queued for bob");

    // Unblocked, bob is reset like any contact, and the session works.
    assert!(alice.unblock(&bob_ref).await.expect("unblock"));
    assert_eq!(alice.inner.reset_all_sessions().await.expect("resets"), 1);
    alice.flush_outbox(WAIT).await.expect("flush");
    receive(&bob).await;
    send(&alice, "bob", "on the new session").await;
    assert_eq!(texts(&receive(&bob).await), ["on the new session"]);
}

/// Whether `events` report a failure naming `who`.
fn failure_naming(events: &[Event], who: &str) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::DecryptionFailed { from: Some(f), .. } if f == who))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_group_message_claiming_a_blocked_member_names_it_nowhere() {
    use rand::rngs::OsRng;
    use umbra_protocol::identity::IdentityKeyPair;
    use umbra_protocol::wire::Address;

    let team = crate::groups::tests::team().await;
    let (alice, bob, carol, group) = (&team.alice, &team.bob, &team.carol, team.group);
    receive(bob).await;
    receive(carol).await;
    let bob_ref: PeerRef = "bob".parse().expect("peer");
    alice.block(&bob_ref).await.expect("block");
    // A group message under bob's sender key (what it says is never read).
    bob.send_group_text(&group, "real").await.expect("send");
    let mut key = bob.inner.groups.own_key(&group).await.expect("read");
    let message = key
        .as_mut()
        .expect("bob's key")
        .encrypt(b"x")
        .expect("encrypt");
    // Sealed again under bob's address by an identity that is not his:
    // refused (NotPinnedIdentity), which would name bob.
    let forger = IdentityKeyPair::generate(&mut OsRng);
    let bob_address = Address::primary(bob.whoami().account_id);
    let alice_identity = alice.inner.identity.public();
    let forged = message
        .seal_to(&forger, &bob_address, &alice_identity, &mut OsRng)
        .expect("seal");
    let now = crate::engine::now_ms();
    let processed = crate::inbound::process(&alice.inner, &forged, now)
        .await
        .expect("process");
    assert!(processed.ack, "never believable: acknowledged");
    let events = processed.events;
    assert!(!failure_naming(&events, "bob"), "{events:?}");
    assert!(events.is_empty(), "{events:?}");
}
