//! Forged and replayed group changes, delivered to a member over a real
//! pairwise session through a real relay in this process: a change by a
//! member who is not an admin (signed by it, built on a doctored state
//! that calls it an admin), a change claiming an admin's authorship but
//! signed by someone else, and a replay of an old change. Each is refused
//! or ignored by the receiving member and its state does not move. These
//! need the engine (to sign and send what an honest client never would),
//! so they live in the crate.

use std::sync::Arc;
use std::time::Duration;

use umbra_protocol::content::Content;
use umbra_protocol::group::{GroupChange, GroupState};
use umbra_protocol::wire::AccountId;
use umbra_relay::config::{RelayConfig, Settings};

use crate::store::{ClientStore, MemoryStore};
use crate::{Client, ClientConfig, Event, KdfParams, PeerRef};

use super::GroupId;

async fn relay(dir: &tempfile::TempDir) -> umbra_relay::app::RunningRelay {
    relay_with(dir, Settings::default()).await
}

async fn relay_with(dir: &tempfile::TempDir, settings: Settings) -> umbra_relay::app::RunningRelay {
    let settings = Settings {
        listen: settings
            .listen
            .or_else(|| Some("127.0.0.1:0".parse().expect("addr"))),
        data_dir: Some(dir.path().to_path_buf()),
        ..settings
    };
    let config = RelayConfig::resolve(settings).expect("relay config");
    let store = umbra_relay::store::open(None, dir.path())
        .await
        .expect("relay store");
    umbra_relay::app::start(&config, store, false)
        .await
        .expect("relay starts")
}

async fn register(url: &str, name: &str) -> Client {
    let store: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let config = ClientConfig::with_store(url, store).kdf_params(KdfParams::insecure_for_tests());
    Client::register(config, name, "pw-of-test")
        .await
        .expect("register")
}

async fn receive(client: &Client) -> Vec<Event> {
    client
        .receive_until_empty(Duration::from_secs(10))
        .await
        .expect("receive")
}

/// `state` with `member` made an admin, by editing its encoding (what a
/// cheating client could believe; it still parses).
fn doctored(state: &GroupState, member: &AccountId) -> GroupState {
    let mut bytes = state.to_bytes();
    let mut needle = vec![16u8];
    needle.extend_from_slice(member.as_bytes());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("member in the encoding");
    let name_len = usize::from(bytes[at + needle.len()]);
    let admin = at + needle.len() + 1 + name_len;
    assert_eq!(bytes[admin], 0, "a plain member");
    // `admin_since: None` becomes `Some(version)`: a seniority no real
    // admin has (a rename made no admin). An older layout had a bool.
    let since = u8::try_from(state.version()).expect("a small test group");
    let mut as_option = bytes.clone();
    as_option.splice(admin..=admin, [1, since]);
    bytes[admin] = 1;
    let doctored = GroupState::from_bytes(&as_option)
        .or_else(|_| GroupState::from_bytes(&bytes))
        .expect("the doctored state parses");
    assert!(doctored.is_admin(member));
    doctored
}

/// Sends a change's bytes from `from` to `to` over their pairwise session.
async fn deliver(from: &Client, to: &Client, change: &GroupChange) {
    let contact = from
        .inner
        .contact_by_account(to.whoami().account_id.as_bytes())
        .await
        .expect("store")
        .expect("a contact");
    from.inner
        .send_control(
            &contact,
            Content::GroupControl {
                change: change.as_bytes().to_vec(),
            },
        )
        .await
        .expect("queued");
    from.flush_outbox(Duration::from_secs(10))
        .await
        .expect("sent");
}

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

fn refusals(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::DecryptionFailed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

async fn state_of(client: &Client, group: &GroupId) -> GroupState {
    client
        .inner
        .groups
        .require(group)
        .await
        .expect("group")
        .state()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_changes_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob, carol) = (
        register(&url, "alice").await,
        register(&url, "bob").await,
        register(&url, "carol").await,
    );
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name"), "carol".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
    let before_renames = {
        receive(&bob).await;
        receive(&carol).await;
        state_of(&alice, &group).await
    };
    alice.rename_group(&group, "v2").await.expect("rename");
    alice.rename_group(&group, "v3").await.expect("rename");
    receive(&carol).await;
    // Bob writes once so that he has a session with carol.
    receive(&bob).await;
    bob.send_group_text(&group, "hi").await.expect("send");
    receive(&carol).await;
    let honest = state_of(&carol, &group).await;
    assert_eq!(honest.name(), "v3");
    let (bob_id, carol_id, alice_id) = (
        bob.whoami().account_id,
        carol.whoami().account_id,
        alice.whoami().account_id,
    );

    // 1. Bob, a plain member, removes carol, on a state he doctored.
    let state = state_of(&bob, &group).await;
    let forged = GroupChange::remove(
        &bob.inner.identity,
        bob_id,
        &doctored(&state, &bob_id),
        vec![carol_id],
    )
    .expect("builds on the doctored state");
    deliver(&bob, &carol, &forged).await;
    let events = receive(&carol).await;
    assert!(
        refusals(&events)
            .iter()
            .any(|r| r.contains("group change refused")),
        "{events:?}"
    );
    // 2. A change naming alice as its author, signed by bob.
    let impostor = GroupChange::rename(&bob.inner.identity, alice_id, &state, "bob's")
        .expect("builds: the state does not check signatures");
    deliver(&bob, &carol, &impostor).await;
    let events = receive(&carol).await;
    assert!(
        refusals(&events)
            .iter()
            .any(|r| r.contains("group change refused")),
        "{events:?}"
    );
    // 3. Alice's first rename again (the same signed bytes), replayed by bob.
    let replay = GroupChange::rename(&alice.inner.identity, alice_id, &before_renames, "v2")
        .expect("the same change");
    deliver(&bob, &carol, &replay).await;
    receive(&carol).await;

    let after = state_of(&carol, &group).await;
    assert_eq!(after, honest, "carol's state did not move");
    assert!(after.is_member(&alice_id) && after.is_member(&carol_id));
    relay.shutdown();
    relay.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_rotates_the_sender_key_before_the_next_send() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob, carol) = (
        register(&url, "alice").await,
        register(&url, "bob").await,
        register(&url, "carol").await,
    );
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name"), "carol".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
    alice.send_group_text(&group, "one").await.expect("send");
    let key = |client: &Client| {
        let engine = client.inner.clone();
        async move {
            engine
                .groups
                .own_key(&group)
                .await
                .expect("store")
                .expect("a key")
        }
    };
    let old = key(&alice).await;
    let (bob_id, carol_id) = (bob.whoami().account_id, carol.whoami().account_id);
    assert_eq!(old.epoch, 0);
    assert!(old.has(&bob_id) && old.has(&carol_id));

    alice
        .remove_member(&group, &"carol".parse().expect("name"))
        .await
        .expect("remove");
    alice.send_group_text(&group, "two").await.expect("send");
    let new = key(&alice).await;
    let rotation_point = state_of(&alice, &group).await.rotation_point();
    assert!(rotation_point > 0);
    // A new key, made after the removal, that only bob has: nothing carol
    // holds opens what follows.
    assert!(new.epoch >= rotation_point, "rotated");
    assert_ne!(
        new.sender().expect("key").chain_id(),
        old.sender().expect("key").chain_id()
    );
    assert!(new.has(&bob_id) && !new.has(&carol_id));
    let events = receive(&bob).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::GroupMessage { body, .. } if body == "two")),
        "{events:?}"
    );
    relay.shutdown();
    relay.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_refusal_of_a_queued_item_is_reported_and_the_key_resent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob, carol) = (
        register(&url, "alice").await,
        register(&url, "bob").await,
        register(&url, "carol").await,
    );
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name"), "carol".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
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
            } if *g == group => Some((*id, *member, reason.clone())),
            _ => None,
        })
        .collect();
    // Her sender key and the message: both reported, neither dropped silently.
    assert_eq!(failed.len(), 2, "{events:?}");
    assert!(
        failed.iter().all(|(id, member, reason)| *id == report.id
            && *member == carol_id
            && reason.contains("UnknownRecipient")),
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
    assert!(key.has(&bob_id), "bob has the key");
    assert!(!key.has(&carol_id), "carol's refused key is to be resent");
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
        refusals(&events).iter().any(|r| r.contains("kept")),
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
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let url = relay.url();
    let (alice, bob, carol) = (
        register(&url, "alice").await,
        register(&url, "bob").await,
        register(&url, "carol").await,
    );
    let members: Vec<PeerRef> = vec!["bob".parse().expect("name"), "carol".parse().expect("name")];
    let group = alice
        .create_group("team", &members)
        .await
        .expect("create")
        .group;
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
        refusals(&events)
            .iter()
            .any(|r| r.contains("group welcome refused")),
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
