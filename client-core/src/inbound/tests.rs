//! Replayed pre-key messages, against an engine with no relay: bob's side
//! is a real [`Engine`] over a memory store, alice is the bare protocol.
//!
//! A pre-key message whose extra prekey is the last-resort key (or none) can
//! be accepted again as long as bob holds the signed prekey, so a replay that
//! gets past the seen marker must be refused by the session logic itself.

use std::sync::Arc;

use rand::rngs::OsRng;
use umbra_protocol::content::{self, Content};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::KemPreKeyPublic;
use umbra_protocol::pairwise::{InboundEnvelope, PairwiseSession};
use umbra_protocol::prekeys::{OneTimePreKey, PreKeyBundle, SignedPreKey, VerifiedPreKeyBundle};
use umbra_protocol::wire::{AccountId, Address, DeviceId, Username};

use super::process;
use crate::account::TokenRecord;
use crate::engine::{now_ms, now_secs, Engine};
use crate::payload::Payload;
use crate::prekey_maintenance::PreKeyState;
use crate::records::{self, Prefix};
use crate::store::{ClientStore, KdfParams, MemoryStore, Txn, Vault};
use crate::trust::ContactRecord;
use crate::{ClientConfig, DecryptFailure, Event, MessageId};

/// Alice: an identity, an account and her own sessions with bob.
struct Alice {
    identity: IdentityKeyPair,
    account: AccountId,
}

impl Alice {
    fn new() -> Self {
        Self {
            identity: IdentityKeyPair::generate(&mut OsRng),
            account: AccountId::random(&mut OsRng),
        }
    }

    fn address(&self) -> Address {
        Address::primary(self.account)
    }

    /// Starts a session with bob from one of his bundles.
    fn initiate(&self, bob: &Engine, bundle: &VerifiedPreKeyBundle) -> PairwiseSession {
        PairwiseSession::initiate(
            &self.identity,
            &self.address(),
            bundle,
            &bob.me().address(),
            &mut OsRng,
        )
        .expect("alice initiates")
    }

    fn seal(&self, session: &mut PairwiseSession, text: &str) -> Vec<u8> {
        self.seal_as(session, "alice", text_content(text))
    }

    /// Seals `content` with alice's payload claiming the username `name`.
    fn seal_as(&self, session: &mut PairwiseSession, name: &str, content: Content) -> Vec<u8> {
        let payload = Payload {
            sender: Address {
                account: self.account,
                device: DeviceId::PRIMARY,
            },
            sender_username: Username::parse(name).expect("valid name"),
            content,
        }
        .encode()
        .expect("payload encodes");
        session
            .seal_for(&self.identity, &payload, &mut OsRng)
            .expect("alice seals")
    }

    /// Decrypts an envelope bob queued, with the given session.
    fn open(&self, session: &mut PairwiseSession, envelope: &[u8]) -> Result<Vec<u8>, String> {
        let inbound =
            InboundEnvelope::open(&self.identity, envelope).map_err(|e| format!("open: {e}"))?;
        session.decrypt(&inbound).map_err(|e| e.to_string())
    }
}

/// A text message with a fresh id.
fn text_content(text: &str) -> Content {
    Content::Text {
        id: content::MessageId(MessageId::random(&mut OsRng).0),
        body: text.to_owned(),
        sent_at_ms: now_ms(),
    }
}

/// Bob's engine, offline, with alice already a pinned contact (so nothing
/// needs the relay's directory).
async fn bob_knowing(alice: &Alice) -> Arc<Engine> {
    let engine = bob_alone().await;
    let contact = ContactRecord::first_seen(
        *alice.account.as_bytes(),
        "alice".into(),
        alice.identity.public(),
    );
    let mut txn = Txn::new();
    engine
        .names
        .put_contact(&mut txn, &contact)
        .await
        .expect("contact");
    engine.vault.commit(txn).await.expect("commit");
    engine
}

/// Bob's engine, offline, knowing nobody: a first message would need the
/// directory, which cannot be asked.
async fn bob_alone() -> Arc<Engine> {
    let backend: Arc<dyn ClientStore> = Arc::new(MemoryStore::new());
    let account = AccountId::random(&mut OsRng);
    let vault = Vault::create(
        backend.clone(),
        b"bob's password",
        KdfParams::insecure_for_tests(),
        account,
        &mut OsRng,
    )
    .await
    .expect("vault");
    let identity = IdentityKeyPair::generate(&mut OsRng);
    let token = TokenRecord {
        token: [7; 32],
        expires_at: u64::MAX,
    };
    let name = Username::parse("bob").expect("valid name");
    Engine::initialise_store(&vault, &identity, &name, account, &token)
        .await
        .expect("initialise");
    // Port 9 (discard): nothing in these tests may need the relay.
    let config = ClientConfig::with_store("http://127.0.0.1:9", backend);
    let ws_url = config.websocket_url().expect("url");
    Engine::from_vault(&config, ws_url, vault)
        .await
        .expect("engine")
}

/// Bob's bundle as the relay would serve it once his one-time prekeys are
/// gone: signed prekey plus last-resort key.
async fn last_resort_bundle(bob: &Engine) -> VerifiedPreKeyBundle {
    let (signed, last_resort) = bob.prekeys.published().await.expect("read");
    let last_resort = last_resort.expect("last resort");
    PreKeyBundle {
        identity: bob.identity.public(),
        signed_prekey: signed.public(),
        one_time_prekey: None,
        last_resort: Some(last_resort.public()),
        kem_one_time: None,
        kem_last_resort: Some(kem_last_resort(bob).await),
    }
    .verify_at(now_secs())
    .expect("bundle verifies")
}

/// Bob's current last-resort ML-KEM prekey, as the relay serves it (a new
/// store has one from its setup).
async fn kem_last_resort(bob: &Engine) -> KemPreKeyPublic {
    bob.prekeys
        .kem_current_last_resort()
        .await
        .expect("read")
        .expect("a new store has a last-resort KEM prekey")
        .public()
}

/// The newest envelope in bob's outbox.
async fn newest_outgoing(bob: &Engine) -> Vec<u8> {
    let entries = bob
        .vault
        .load_all(&Prefix::<records::outbox::Outbox>::all())
        .await
        .expect("outbox");
    entries.last().expect("bob queued something").1.envelopes[0]
        .envelope
        .clone()
}

/// Bob queues a message for alice (a typing notice: any content works).
async fn bob_sends(bob: &Arc<Engine>, alice: &Alice) -> Vec<u8> {
    let contact = bob
        .contact_by_account(alice.account.as_bytes())
        .await
        .expect("read")
        .expect("alice is a contact");
    bob.send_control(&contact, Content::Typing { started: true })
        .await
        .expect("bob queues");
    newest_outgoing(bob).await
}

/// Makes bob forget he processed `envelope`: what a replay that the
/// envelope-level marker does not catch looks like to the session logic.
async fn forget_seen(bob: &Engine, envelope: &[u8]) {
    let mut txn = Txn::new();
    let markers = bob.markers.of(envelope);
    bob.markers.forget_seen_for_tests(&mut txn, &markers);
    bob.vault.commit(txn).await.expect("commit");
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

#[tokio::test]
async fn a_message_from_an_unlisted_device_is_kept_while_its_list_cannot_be_fetched() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let bundle = last_resort_bundle(&bob).await;
    let second = Address {
        account: alice.account,
        device: DeviceId(2),
    };
    let mut session = PairwiseSession::initiate(
        &alice.identity,
        &second,
        &bundle,
        &bob.me().address(),
        &mut OsRng,
    )
    .expect("alice initiates from device 2");
    let payload = Payload {
        sender: second,
        sender_username: Username::parse("alice").expect("valid name"),
        content: Content::Text {
            id: content::MessageId(MessageId::random(&mut OsRng).0),
            body: "from my second device".to_owned(),
            sent_at_ms: now_ms(),
        },
    }
    .encode()
    .expect("payload encodes");
    let envelope = session
        .seal_for(&alice.identity, &payload, &mut OsRng)
        .expect("alice seals");
    let processed = process(&bob, &envelope, now_ms()).await.unwrap();
    assert!(
        texts(&processed.events).is_empty(),
        "{:?}",
        processed.events
    );
    // Device 2 is not in alice's held (implicit) list; the list may just
    // be newer, and this engine has no relay to fetch it from: kept, as a
    // directory check that cannot be made (refused once fetched:
    // outbound::tests_devices).
    assert!(!processed.ack, "kept for a retry");
    assert!(
        processed.events.iter().any(|e| matches!(
            e,
            Event::DecryptionFailed {
                reason: DecryptFailure::Kept { cause, .. },
                ..
            } if matches!(**cause, DecryptFailure::DeviceListUnavailable(_))
        )),
        "{:?}",
        processed.events
    );
    for address in [second, alice.address()] {
        let identity = alice.identity.public();
        let stored = bob.sessions.with(&address, &identity).await.expect("read");
        assert!(stored.is_none(), "no session may be stored for {address:?}");
    }
}

#[tokio::test]
async fn a_replayed_last_resort_prekey_message_does_not_replace_the_session() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let bundle = last_resort_bundle(&bob).await;
    let mut session = alice.initiate(&bob, &bundle);
    let first = alice.seal(&mut session, "hello bob");
    let events = process(&bob, &first, now_ms()).await.unwrap().events;
    assert_eq!(texts(&events), vec!["hello bob"]);
    // Bob's delivery receipt reaches alice: she has ratcheted past the start.
    let receipt = newest_outgoing(&bob).await;
    alice
        .open(&mut session, &receipt)
        .expect("alice reads bob's receipt");

    forget_seen(&bob, &first).await;
    let events = process(&bob, &first, now_ms()).await.unwrap().events;
    assert!(events.is_empty(), "a replay must be dropped: {events:?}");

    // Bob still talks on the session alice has.
    let next = bob_sends(&bob, &alice).await;
    alice
        .open(&mut session, &next)
        .expect("alice decrypts bob's message after the replay");
}

#[tokio::test]
async fn a_replayed_prekey_message_of_an_older_run_does_not_revive_it() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let bundle = last_resort_bundle(&bob).await;
    let mut old = alice.initiate(&bob, &bundle);
    let old_first = alice.seal(&mut old, "first run");
    assert_eq!(
        texts(&process(&bob, &old_first, now_ms()).await.unwrap().events),
        vec!["first run"]
    );
    // Alice starts over (a new X3DH run): bob keeps the old run as previous.
    let mut new = alice.initiate(&bob, &bundle);
    let new_first = alice.seal(&mut new, "second run");
    assert_eq!(
        texts(&process(&bob, &new_first, now_ms()).await.unwrap().events),
        vec!["second run"]
    );
    let receipt = newest_outgoing(&bob).await;
    alice
        .open(&mut new, &receipt)
        .expect("receipt on the new run");

    // The current session says WrongSession, the old one Duplicate: that
    // is a replay, not the peer starting over.
    forget_seen(&bob, &old_first).await;
    let events = process(&bob, &old_first, now_ms()).await.unwrap().events;
    assert!(events.is_empty(), "a replay must be dropped: {events:?}");

    let next = bob_sends(&bob, &alice).await;
    alice
        .open(&mut new, &next)
        .expect("bob still sends on the newest run");
}

#[tokio::test]
async fn a_new_run_from_the_peer_still_replaces_the_session() {
    let alice = Alice::new();
    let bob = bob_knowing(&alice).await;
    let bundle = last_resort_bundle(&bob).await;
    let mut old = alice.initiate(&bob, &bundle);
    process(&bob, &alice.seal(&mut old, "one"), now_ms())
        .await
        .unwrap();
    let mut new = alice.initiate(&bob, &bundle);
    let events = process(&bob, &alice.seal(&mut new, "two"), now_ms())
        .await
        .unwrap()
        .events;
    assert_eq!(texts(&events), vec!["two"]);
    let next = bob_sends(&bob, &alice).await;
    alice
        .open(&mut new, &next)
        .expect("bob moved to the new run");
}

mod ack;
mod blocked;
mod locking;
mod pq;
mod retention;
