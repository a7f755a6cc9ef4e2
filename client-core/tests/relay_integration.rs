//! End-to-end behaviour of the client against a real relay running in this
//! process (the `umbra-relay` library on 127.0.0.1:0 with a temporary SQLite
//! store): registration, messages both ways, offline delivery, receipts,
//! trust on first use and key changes, the outbox across a client that goes
//! away without shutting down, and duplicate suppression. "Goes away" here
//! is a drop of an in-process client sharing its store, which loses nothing;
//! a real process killed mid-send is umbra-e2e's client_crash suite.

use std::sync::Arc;
use std::time::Duration;

use umbra_client_core::store::{ClientStore, MemoryStore, RecordKind, WriteOp};
use umbra_client_core::{
    Client, ClientConfig, ConnectionFailure, ConnectionState, DeliveryStatus, Direction, Error,
    Event, KdfParams, PeerRef, StoreError, TrustLevel, UnknownPeer,
};
use umbra_relay::config::Settings;

mod support;
use support::watch::Watch;
use support::{config, messages, name, peer, receive, register, TestRelay, WAIT};

fn tls_fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../server/tests/fixtures/tls")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_exchange_messages_both_ways_one_offline() {
    let relay = TestRelay::start().await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, bob_store) = register(&relay.url(), "bob").await;
    let bob_account = bob.whoami().account_id;
    // Bob goes offline (his process ends).
    bob.shutdown().await;
    drop(bob);

    let first = alice
        .send_text(&name("bob"), "hello bob")
        .await
        .expect("send");
    let second = alice
        .send_text(&name("Bob"), "are you there?")
        .await
        .expect("send, name case-folded");
    alice.flush_outbox(WAIT).await.expect("relay accepted");
    let history = alice.history(&peer("bob"), 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|h| h.direction == Direction::Outgoing));
    assert!(
        history.iter().all(|h| h.status >= DeliveryStatus::Sent),
        "{history:?}"
    );

    // Bob comes back and drains his queue (alice watches for his receipts).
    let mut watch_alice = Watch::on(&alice);
    let bob = Client::open(config(&relay.url(), &bob_store), "pw-of-test")
        .await
        .expect("reopen bob");
    assert_eq!(bob.whoami().account_id, bob_account);
    let events = receive(&bob).await;
    assert_eq!(
        messages(&events),
        vec![
            ("alice".to_string(), "hello bob".to_string()),
            ("alice".to_string(), "are you there?".to_string())
        ]
    );
    assert!(events.iter().any(|e| matches!(e, Event::QueueEmpty)));
    let conversations = bob.conversations().await.unwrap();
    assert_eq!(conversations.len(), 1);
    assert_eq!(conversations[0].peer, "alice");
    assert_eq!(conversations[0].unread, 2);
    assert_eq!(
        conversations[0]
            .last_message
            .as_ref()
            .map(|m| m.body.as_str()),
        Some("are you there?")
    );
    assert_eq!(
        bob.contacts()
            .await
            .unwrap()
            .iter()
            .map(|c| (c.username.as_str(), c.trust))
            .collect::<Vec<_>>(),
        vec![("alice", TrustLevel::Unverified)]
    );

    // Bob reads and replies; alice gets the reply, delivery and read receipts.
    bob.mark_read(&peer("alice")).await.unwrap();
    assert_eq!(bob.conversations().await.unwrap()[0].unread, 0);
    bob.send_text(&name("alice"), "hi alice").await.unwrap();
    bob.flush_outbox(WAIT).await.unwrap();

    let ids = |seen: &[Event], read: bool| -> Vec<umbra_client_core::MessageId> {
        seen.iter()
            .flat_map(|e| match e {
                Event::DeliveryReceipt { from, ids } if !read && from == "bob" => ids.clone(),
                Event::ReadReceipt { from, ids } if read && from == "bob" => ids.clone(),
                _ => Vec::new(),
            })
            .collect()
    };
    let seen = watch_alice
        .until(|seen| {
            messages(seen).len() == 1 && ids(seen, false).len() >= 2 && ids(seen, true).len() >= 2
        })
        .await;
    assert_eq!(
        messages(&seen),
        vec![("bob".to_string(), "hi alice".to_string())]
    );
    let mut delivered = ids(&seen, false);
    let mut read = ids(&seen, true);
    delivered.sort();
    read.sort();
    let mut ours = vec![first, second];
    ours.sort();
    assert_eq!(delivered, ours);
    assert_eq!(read, ours);
    let history = alice.history(&peer("bob"), 10).await.unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[0].status, DeliveryStatus::Read);
    assert_eq!(history[1].status, DeliveryStatus::Read);
    assert_eq!(history[2].direction, Direction::Incoming);

    // Both compute the same safety number.
    assert_eq!(
        alice.safety_number(&peer("bob")).await.unwrap(),
        bob.safety_number(&peer("alice")).await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sealed_offline_is_later_sent_as_the_same_ciphertext() {
    let relay = TestRelay::start().await;
    let (alice, alice_store) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;
    let mut watch_bob = Watch::on(&bob);
    alice.send_text(&name("bob"), "warm up").await.unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    watch_bob.messages(1).await;
    alice.shutdown().await;
    drop(alice);

    // Alice's next run cannot reach the relay: encrypt + persist happens, the send does not.
    let dead = "http://127.0.0.1:9";
    let offline = Client::open(config(dead, &alice_store), "pw-of-test")
        .await
        .unwrap();
    let id = offline
        .send_text(&name("bob"), "typed while offline")
        .await
        .unwrap();
    let pending = offline.pending_outbox().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    // Dropped without shutdown. Not a crash: the shared in-memory store
    // keeps everything a killed process might not have flushed.
    drop(offline);

    let alice = Client::open(config(&relay.url(), &alice_store), "pw-of-test")
        .await
        .unwrap();
    let after = alice.pending_outbox().await.unwrap();
    assert_eq!(
        after, pending,
        "the very same envelope bytes wait in the outbox"
    );
    alice.flush_outbox(WAIT).await.unwrap();
    alice.send_text(&name("bob"), "and one more").await.unwrap();
    alice.flush_outbox(WAIT).await.unwrap();

    // Had the outbox re-encrypted, bob would see a replay or a wrong plaintext.
    let events = watch_bob.messages(2).await;
    assert_eq!(
        messages(&events),
        vec![
            ("alice".into(), "typed while offline".into()),
            ("alice".into(), "and one more".into())
        ]
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::DecryptionFailed { .. })),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_delivery_is_dropped() {
    let relay = TestRelay::start().await;
    let (alice, alice_store) = register(&relay.url(), "alice").await;
    let (bob, bob_store) = register(&relay.url(), "bob").await;
    // A session first (starting one needs the relay), then bob goes offline.
    let mut watch_bob = Watch::on(&bob);
    alice.send_text(&name("bob"), "hello").await.unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    watch_bob.messages(1).await;
    bob.shutdown().await;
    drop(bob);
    alice.shutdown().await;
    drop(alice);

    let dead = "http://127.0.0.1:9";
    let offline = Client::open(config(dead, &alice_store), "pw-of-test")
        .await
        .unwrap();
    offline
        .send_text(&name("bob"), "exactly once")
        .await
        .unwrap();
    drop(offline);
    // Snapshot the outbox row, as a crash between the relay's acceptance and
    // the local deletion would leave it, with the store's generation record
    // of that moment (a lone older row would be refused as rolled back).
    let store: Arc<dyn ClientStore> = alice_store.clone();
    let rows = store.list(RecordKind::Outbox, &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    let generation = store.list(RecordKind::Generation, &[]).await.unwrap();
    assert_eq!(generation.len(), 1);

    let alice = Client::open(config(&relay.url(), &alice_store), "pw-of-test")
        .await
        .unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    alice.shutdown().await;
    drop(alice);
    store
        .apply(
            rows.into_iter()
                .map(|r| (RecordKind::Outbox, r))
                .chain(generation.into_iter().map(|r| (RecordKind::Generation, r)))
                .map(|(kind, r)| WriteOp::Put {
                    kind,
                    slot: r.slot,
                    sealed: r.sealed,
                })
                .collect(),
        )
        .await
        .unwrap();
    let alice = Client::open(config(&relay.url(), &alice_store), "pw-of-test")
        .await
        .unwrap();
    alice.flush_outbox(WAIT).await.unwrap();

    // The relay queued the envelope twice; bob shows it once.
    let bob = Client::open(config(&relay.url(), &bob_store), "pw-of-test")
        .await
        .unwrap();
    let events = receive(&bob).await;
    assert_eq!(
        messages(&events),
        vec![("alice".into(), "exactly once".into())],
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::DecryptionFailed { .. })),
        "{events:?}"
    );
    assert_eq!(bob.history(&peer("alice"), 10).await.unwrap().len(), 2);
    assert_eq!(bob.conversations().await.unwrap()[0].unread, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_and_unknown_users_are_clear_errors() {
    let relay = TestRelay::start().await;
    let (alice, store) = register(&relay.url(), "alice").await;
    alice.shutdown().await;
    let err = Client::open(config(&relay.url(), &store), "not the password")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongPassword), "{err:?}");
    let other = Arc::new(MemoryStore::new());
    let err = Client::login(config(&relay.url(), &other), "alice", "not the password")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthFailed), "{err:?}");
    let err = Client::login(config(&relay.url(), &other), "nobody", "whatever")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AuthFailed),
        "unknown user looks like a wrong password: {err:?}"
    );
    let err = alice
        .send_text(&name("nobody"), "hello?")
        .await
        .unwrap_err();
    // The user's to fix: no account has that name (and the error says so).
    assert!(
        matches!(
            &err,
            Error::UnknownUser {
                peer: PeerRef::Name(who),
                reason: UnknownPeer::NotOnRelay,
            } if who.as_str() == "nobody"
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("nobody"), "{err}");
    let err = Client::register(
        config(&relay.url(), &Arc::new(MemoryStore::new())),
        "alice",
        "pw",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("UsernameTaken"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsendable_message_is_refused_as_invalid_and_nothing_is_queued() {
    let relay = TestRelay::start().await;
    let (alice, store) = register(&relay.url(), "alice").await;
    let (_bob, _) = register(&relay.url(), "bob").await;
    alice.shutdown().await;
    drop(alice);
    // Offline: refusing the text must not need (or start) the network.
    let alice = Client::open(config("http://127.0.0.1:9", &store), "pw-of-test")
        .await
        .unwrap();
    for text in ["clear the screen \x1b[2J", "c1 \u{9b}31m red", "nul \0"] {
        let err = alice.send_text(&name("bob"), text).await.unwrap_err();
        assert!(matches!(err, Error::InvalidMessage(_)), "{text:?}: {err:?}");
        assert!(!err.is_retryable(), "{err:?}");
    }
    assert_eq!(alice.pending_outbox().await.unwrap(), vec![]);
    assert_eq!(alice.conversations().await.unwrap(), vec![]);
    assert_eq!(alice.connection_state(), ConnectionState::Offline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_stored_while_busy_stay_unreported_until_marked() {
    let relay = TestRelay::start().await;
    let (alice, _) = register(&relay.url(), "alice").await;
    let (bob, bob_store) = register(&relay.url(), "bob").await;
    // Bob is connected for some other reason (a `send`, say) when these
    // arrive: they are stored and acknowledged, but nobody shows them.
    let mut watch_bob = Watch::on(&bob);
    alice.send_text(&name("bob"), "one").await.unwrap();
    alice.send_text(&name("bob"), "two").await.unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    watch_bob.messages(2).await;
    bob.shutdown().await;
    drop(bob);

    let offline = "http://127.0.0.1:9";
    let bob = Client::open(config(offline, &bob_store), "pw-of-test")
        .await
        .unwrap();
    let unreported = bob.unreported_messages().await.unwrap();
    let bodies: Vec<(&str, &str)> = unreported
        .iter()
        .map(|m| (m.from.as_str(), m.body.as_str()))
        .collect();
    assert_eq!(bodies, vec![("alice", "one"), ("alice", "two")]);

    bob.mark_reported(&unreported[..1]).await.unwrap();
    drop(bob);
    let bob = Client::open(config(offline, &bob_store), "pw-of-test")
        .await
        .unwrap();
    let left = bob.unreported_messages().await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].body, "two");
    let history = bob.history(&peer("alice"), 10).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.reported).collect::<Vec<_>>(),
        vec![true, false]
    );

    // Reading the conversation on screen reports it too.
    bob.mark_read(&peer("alice")).await.unwrap();
    assert_eq!(bob.unreported_messages().await.unwrap(), vec![]);
    let conversations = bob.conversations().await.unwrap();
    assert!(conversations[0].last_message.as_ref().unwrap().reported);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backed_clients_survive_a_restart() {
    let relay = TestRelay::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = |who: &str| {
        ClientConfig::new(relay.url(), dir.path().join(who))
            .kdf_params(KdfParams::insecure_for_tests())
    };
    let alice = Client::register(cfg("alice"), "alice", "pw-a")
        .await
        .unwrap();
    let bob = Client::register(cfg("bob"), "bob", "pw-b").await.unwrap();
    let mut watch_bob = Watch::on(&bob);
    alice
        .send_text(&name("bob"), "stored on disk")
        .await
        .unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    watch_bob.messages(1).await;
    bob.shutdown().await;
    drop(bob);
    assert!(Client::has_account(&cfg("bob")).await.unwrap());
    assert!(matches!(
        Client::open(cfg("bob"), "pw-a").await,
        Err(Error::WrongPassword)
    ));
    let bob = Client::open(cfg("bob"), "pw-b").await.unwrap();
    let history = bob.history(&peer("alice"), 5).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].body, "stored on disk");
    // While bob's store is open, a second opener of the directory waits
    // for the lock, then gives up instead of sharing the ratchet state.
    let mut locked_out = cfg("bob");
    locked_out.lock_wait = Duration::from_millis(200);
    assert!(matches!(
        Client::open(locked_out, "pw-b").await,
        Err(Error::Store(StoreError::Locked { .. }))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_relays_work_with_the_right_ca_and_are_refused_without_it() {
    let relay = TestRelay::start_with(Settings {
        tls_cert: Some(tls_fixture("cert.pem")),
        tls_key: Some(tls_fixture("key.pem")),
        ..Settings::default()
    })
    .await;
    let url = relay.url();
    assert!(url.starts_with("https://"), "{url}");
    let tls_config =
        |store: &Arc<MemoryStore>| config(&url, store).tls_roots(tls_fixture("ca.pem"));

    // The system roots do not know the test CA: the handshake must fail.
    let untrusted = Client::register(config(&url, &Arc::new(MemoryStore::new())), "mallory", "pw")
        .await
        .unwrap_err();
    assert!(matches!(untrusted, Error::Connection(_)), "{untrusted:?}");

    let alice_store = Arc::new(MemoryStore::new());
    let alice = Client::register(tls_config(&alice_store), "alice", "pw-a")
        .await
        .unwrap();
    let bob = Client::register(tls_config(&Arc::new(MemoryStore::new())), "bob", "pw-b")
        .await
        .unwrap();
    let mut watch_bob = Watch::on(&bob);
    alice.send_text(&name("bob"), "over wss").await.unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    assert_eq!(
        messages(&watch_bob.messages(1).await),
        vec![("alice".into(), "over wss".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_session_and_login_resumes_with_the_same_identity() {
    let relay = TestRelay::start().await;
    let (alice, alice_store) = register(&relay.url(), "alice").await;
    let (bob, _) = register(&relay.url(), "bob").await;
    let mut watch_bob = Watch::on(&bob);
    alice
        .send_text(&name("bob"), "before logout")
        .await
        .unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    watch_bob.messages(1).await;

    alice.logout().await.unwrap();
    assert!(matches!(
        alice.send_text(&name("bob"), "after").await,
        Err(Error::Closed)
    ));
    drop(alice);
    // The store is still there, but the token is gone.
    let reopened = Client::open(config(&relay.url(), &alice_store), "pw-of-test")
        .await
        .unwrap();
    let err = reopened
        .receive_until_empty(Duration::from_secs(5))
        .await
        .unwrap_err();
    // Not a network failure: the user has to log in, not wait.
    assert!(matches!(err, Error::NotLoggedIn { .. }), "{err:?}");
    drop(reopened);

    // Logging in again on the same store keeps the identity: no key change for bob.
    let alice = Client::login(config(&relay.url(), &alice_store), "alice", "pw-of-test")
        .await
        .unwrap();
    alice.send_text(&name("bob"), "back again").await.unwrap();
    alice.flush_outbox(WAIT).await.unwrap();
    let events = watch_bob.messages(1).await;
    assert_eq!(
        messages(&events),
        vec![("alice".into(), "back again".into())]
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::KeyChanged { .. })),
        "{events:?}"
    );
    assert_eq!(
        bob.contacts().await.unwrap()[0].trust,
        TrustLevel::Unverified
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_reaches_contacts_and_used_prekeys_are_replenished() {
    let relay = TestRelay::start().await;
    let (alice, _) = register(&relay.url(), "alice").await;
    assert_eq!(
        alice.replenish_prekeys().await.unwrap(),
        0,
        "a fresh account has a full batch"
    );
    let (bob, _) = register(&relay.url(), "bob").await;
    let (carol, _) = register(&relay.url(), "carol").await;
    let mut watch_alice = Watch::on(&alice);
    // Each first contact claims one of alice's one-time prekeys.
    bob.send_text(&name("alice"), "hi from bob").await.unwrap();
    carol
        .send_text(&name("alice"), "hi from carol")
        .await
        .unwrap();
    bob.flush_outbox(WAIT).await.unwrap();
    carol.flush_outbox(WAIT).await.unwrap();
    watch_alice.messages(2).await;
    assert_eq!(alice.replenish_prekeys().await.unwrap(), 2);
    assert_eq!(alice.replenish_prekeys().await.unwrap(), 0);

    alice.rename("alicia").await.unwrap();
    assert_eq!(alice.whoami().username.as_str(), "alicia");
    alice.flush_outbox(WAIT).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let names: Vec<String> = bob
            .contacts()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.username.to_string())
            .collect();
        if names == vec!["alicia".to_string()] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob still lists {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bob.send_text(&name("alicia"), "nice name").await.unwrap();
    bob.flush_outbox(WAIT).await.unwrap();
    assert_eq!(
        messages(&watch_alice.messages(1).await[..]).last().cloned(),
        Some(("bob".into(), "nice name".into()))
    );

    // The old name is free on the relay: the error says whose it was.
    let err = bob.send_text(&name("alice"), "hello?").await.unwrap_err();
    assert!(
        matches!(
            &err,
            Error::UnknownUser {
                peer: PeerRef::Name(old),
                reason: UnknownPeer::Renamed { now },
            } if old.as_str() == "alice" && now.as_str() == "alicia"
        ),
        "{err:?}"
    );
    // Reading names a contact by name, label or account id, typed; a
    // label whose digits are another account's names nobody.
    let alicia = alice.whoami().account_id;
    let by_account = bob.history(&PeerRef::Account(alicia), 10).await.unwrap();
    assert_eq!(by_account, bob.history(&peer("alicia"), 10).await.unwrap());
    let label = PeerRef::label(name("alicia"), &alicia);
    assert_eq!(bob.history(&label, 10).await.unwrap(), by_account);
    let mut other = *alicia.as_bytes();
    other[0] ^= 0xff;
    let wrong = PeerRef::label(
        name("alicia"),
        &umbra_protocol::wire::AccountId::from_bytes(other),
    );
    for who in [wrong, peer("dave")] {
        let err = bob.history(&who, 10).await.unwrap_err();
        assert!(
            matches!(
                &err,
                Error::UnknownUser { peer, reason: UnknownPeer::NotAContact } if *peer == who
            ),
            "{err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_cannot_be_reached_is_a_typed_connection_error() {
    let relay = TestRelay::start().await;
    let (alice, store) = register(&relay.url(), "alice").await;
    alice.shutdown().await;
    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let offline = Client::open(config(&url, &store), "pw-of-test")
        .await
        .expect("open");
    let err = offline.receive_until_empty(WAIT).await.unwrap_err();
    // The network's fault, with the address tried and the transport's
    // error as the source: not a string naming it.
    match err.failure() {
        Error::Connection(ConnectionFailure::Connect { url, .. }) => {
            assert!(url.contains(&port.to_string()), "{url}")
        }
        other => panic!("expected a typed connect failure, got {other:?}"),
    }
    assert!(err.is_retryable());
    offline.shutdown().await;
}
