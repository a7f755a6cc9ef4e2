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
use crate::{Client, ClientConfig, DecryptFailure, Event, GroupRefusal, KdfParams, PeerRef};

use super::GroupId;

pub(crate) async fn relay(dir: &tempfile::TempDir) -> umbra_relay::app::RunningRelay {
    relay_with(dir, Settings::default()).await
}

pub(crate) async fn relay_with(
    dir: &tempfile::TempDir,
    settings: Settings,
) -> umbra_relay::app::RunningRelay {
    let settings = Settings {
        listen: settings
            .listen
            .or_else(|| Some("127.0.0.1:0".parse().expect("addr"))),
        data_dir: Some(dir.path().to_path_buf()),
        // The production 1.5 s deadline (9.6) is for a relay on a machine of
        // its own; these relays share two cores with parallel tests and
        // builds, where one SQLite commit can take longer, and answered
        // `Internal` "did not confirm" to a register or a send. A test that
        // is about the deadline passes its own.
        request_deadline_ms: settings.request_deadline_ms.or(Some(10_000)),
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

/// Three registered members, alice the admin of a fresh group "team" with
/// bob and carol (the changes not yet received), and the relay they share:
/// the start of most group tests. `dir` and `relay` must live as long as
/// the clients.
pub(crate) struct Team {
    pub dir: tempfile::TempDir,
    pub relay: umbra_relay::app::RunningRelay,
    pub url: String,
    pub alice: Client,
    pub bob: Client,
    pub carol: Client,
    pub group: GroupId,
}

pub(crate) async fn team() -> Team {
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
    Team {
        dir,
        relay,
        url,
        alice,
        bob,
        carol,
        group,
    }
}

pub(crate) async fn register(url: &str, name: &str) -> Client {
    let store: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let config = ClientConfig::with_store(url, store).kdf_params(KdfParams::insecure_for_tests());
    Client::register(config, name, "pw-of-test")
        .await
        .expect("register")
}

pub(super) async fn receive(client: &Client) -> Vec<Event> {
    client
        .receive_until_empty(Duration::from_secs(10))
        .await
        .expect("receive")
}

/// `state` with `member` made an admin, by editing its encoding (what a
/// cheating client could believe; it still parses).
pub(super) fn doctored(state: &GroupState, member: &AccountId) -> GroupState {
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
pub(super) async fn deliver(from: &Client, to: &Client, change: &GroupChange) {
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

pub(super) fn refusals(events: &[Event]) -> Vec<GroupRefusal> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::DecryptionFailed { reason, .. } => match reason.cause() {
                DecryptFailure::Group(refusal) => Some(refusal.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

pub(super) async fn state_of(client: &Client, group: &GroupId) -> GroupState {
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
    let Team {
        dir: _dir,
        relay,
        url: _url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
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
            .any(|r| matches!(r, GroupRefusal::ChangeRefused(_))),
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
            .any(|r| matches!(r, GroupRefusal::ChangeRefused(_))),
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
    let Team {
        dir: _dir,
        relay,
        url: _url,
        alice,
        bob,
        carol,
        group,
    } = team().await;
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
    assert!(
        old.has(&bob_id, umbra_protocol::wire::DeviceId::PRIMARY)
            && old.has(&carol_id, umbra_protocol::wire::DeviceId::PRIMARY)
    );

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
    assert!(
        new.has(&bob_id, umbra_protocol::wire::DeviceId::PRIMARY)
            && !new.has(&carol_id, umbra_protocol::wire::DeviceId::PRIMARY)
    );
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
