//! Key transparency over a real relay in this process: an honest relay's
//! heads are remembered and extended; a remembered head the relay's log
//! does not extend (a fork) or has not reached (a rollback) is refused with
//! an alarm; an account value the directory does not hold is refused.

use umbra_protocol::wire::kt::{EpochEntry, EpochLog, KtError, MapRoot, SignedEpochHead};

use super::{KtFailure, KtPins, Served, StoredKt};
use crate::groups::tests::{register, relay};
use crate::store::Txn;
use crate::{records, Client, Error, Event};

fn pins(relay: &umbra_relay::app::RunningRelay) -> KtPins {
    let (directory, vrf) = relay.state.kt.keys().public();
    KtPins {
        directory_key: directory.to_bytes(),
        vrf_key: vrf.to_bytes(),
    }
}

/// A registered client pinning `relay`'s keys from its configuration.
async fn pinned(relay: &umbra_relay::app::RunningRelay, name: &str) -> Client {
    let client = register(&relay.url(), name).await;
    // The configuration's pins, as `ClientConfig::kt_pins` would set them.
    let mut txn = Txn::new();
    let record = StoredKt::new(pins(relay));
    client
        .inner
        .vault
        .save(&mut txn, records::kt::slot(), &record)
        .expect("save");
    client.inner.vault.commit(txn).await.expect("commit");
    client
}

/// A head for `epoch`, signed by the relay's own directory key, of a log
/// whose entries are not the relay's: another history.
fn forged_head(relay: &umbra_relay::app::RunningRelay, epoch: u64) -> Vec<u8> {
    let mut log = EpochLog::new();
    let mut last = None;
    for e in 0..=epoch {
        let entry = EpochEntry {
            epoch: e,
            published_at_ms: 1,
            map_root: MapRoot([0x66; 32]),
        };
        log.push(&entry.encode());
        last = Some(entry);
    }
    let head: SignedEpochHead = relay
        .state
        .kt
        .keys()
        .directory()
        .sign_head(&last.expect("an entry"), &log)
        .expect("sign");
    head.encode()
}

async fn remember(client: &Client, relay: &umbra_relay::app::RunningRelay, head: Vec<u8>) {
    let p = pins(relay);
    let mut txn = Txn::new();
    let mut record = client
        .inner
        .kt_state()
        .await
        .unwrap_or_else(|_| StoredKt::new(p));
    let StoredKt::V1 { head: slot, .. } = &mut record;
    *slot = Some(head);
    client
        .inner
        .vault
        .save(&mut txn, records::kt::slot(), &record)
        .expect("save");
    client.inner.vault.commit(txn).await.expect("commit");
}

async fn publish(relay: &umbra_relay::app::RunningRelay) {
    relay
        .state
        .kt
        .round(&relay.state.store)
        .await
        .expect("a publishing round");
}

fn inconsistent(result: Result<crate::DirectoryRoot, Error>) -> KtError {
    match result {
        Err(Error::KeyTransparency(KtFailure::Inconsistent(e))) => e,
        other => panic!("expected an inconsistent directory, got {other:?}"),
    }
}

fn alarmed(events: &[Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::DirectoryInconsistent { .. }))
}

#[tokio::test]
async fn an_honest_relay_s_heads_are_remembered_and_extended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = pinned(&relay, "alice").await;
    publish(&relay).await;
    let first = alice.check_directory().await.expect("the first head");
    let (epoch, _, _) = first.head.expect("a head remembered");
    assert_eq!(first.pins, pins(&relay));
    // Bob's registration is published in a later epoch, which must extend
    // the one alice remembers.
    let _bob = register(&relay.url(), "bob").await;
    publish(&relay).await;
    let second = alice.check_directory().await.expect("the next head");
    let (later, _, _) = second.head.expect("a head");
    assert!(later > epoch, "epoch {later} after {epoch}");
    assert_eq!(alice.directory_root().await.expect("root"), second);
}

#[tokio::test]
async fn a_fork_is_refused_with_an_alarm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = pinned(&relay, "alice").await;
    publish(&relay).await;
    let honest = alice.check_directory().await.expect("a head");
    let (epoch, _, _) = honest.head.expect("a head");
    // Alice was shown another history for the same epoch, signed by the
    // same key; the relay's own head for it now contradicts it.
    let forged = forged_head(&relay, epoch);
    remember(&alice, &relay, forged.clone()).await;
    let e = inconsistent(alice.check_directory().await);
    assert!(
        matches!(e, KtError::Fork { .. } | KtError::BadConsistency),
        "{e:?}"
    );
    assert!(alarmed(
        &alice
            .receive_until_empty(std::time::Duration::from_secs(10))
            .await
            .expect("receive")
    ));
    // The remembered head is kept, not replaced by the relay's.
    let kept = alice.inner.kt_state().await.expect("state");
    assert_eq!(kept.head(), Some(forged.as_slice()));
}

#[tokio::test]
async fn a_rollback_is_refused_with_an_alarm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = pinned(&relay, "alice").await;
    publish(&relay).await;
    let honest = alice.check_directory().await.expect("a head");
    let (epoch, _, _) = honest.head.expect("a head");
    // Alice remembers a later epoch than the relay now shows.
    remember(&alice, &relay, forged_head(&relay, epoch + 5)).await;
    let e = inconsistent(alice.check_directory().await);
    assert!(
        matches!(e, KtError::Rollback { remembered, got } if remembered == epoch + 5 && got >= epoch),
        "{e:?}"
    );
    assert!(alarmed(
        &alice
            .receive_until_empty(std::time::Duration::from_secs(10))
            .await
            .expect("receive")
    ));
}

#[tokio::test]
async fn keys_the_directory_does_not_hold_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = pinned(&relay, "alice").await;
    let bob = register(&relay.url(), "bob").await;
    publish(&relay).await;
    alice.connect().await.expect("connect");
    let bob_account = bob.whoami().account_id;
    // What the relay serves for bob, exactly.
    let served = bob.inner.identity.public().to_bytes();
    alice
        .inner
        .kt_check(
            Served::Account {
                account: bob_account,
                identity: &served,
                device_list: Some(None),
            },
            true,
        )
        .await
        .expect("bob's served identity is the directory's");
    // An identity the relay swapped in (a tampered answer): first a retry
    // after an epoch, then a refusal with an event.
    let tampered = [0x5a; 128];
    let first = alice
        .inner
        .kt_check(
            Served::Account {
                account: bob_account,
                identity: &tampered,
                device_list: Some(None),
            },
            false,
        )
        .await;
    assert!(
        matches!(
            first,
            Err(Error::KeyTransparency(KtFailure::NotYetPublished { .. }))
        ),
        "{first:?}"
    );
    let again = alice
        .inner
        .kt_check(
            Served::Account {
                account: bob_account,
                identity: &tampered,
                device_list: Some(None),
            },
            true,
        )
        .await;
    assert!(
        matches!(
            again,
            Err(Error::KeyTransparency(KtFailure::ValueMismatch { .. }))
        ),
        "{again:?}"
    );
    let events = alice
        .receive_until_empty(std::time::Duration::from_secs(10))
        .await
        .expect("receive");
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::DirectoryRefused { account } if *account == bob_account)));
}

/// The relay swaps `account`'s published identity for one of its own, as a
/// compromised relay would (the store's own path, so the change is marked
/// and published in the next epoch).
async fn swap_identity(
    relay: &umbra_relay::app::RunningRelay,
    account: umbra_protocol::wire::AccountId,
) {
    use umbra_protocol::wire::{Address, DeviceId, PreKeyWire, SignedPreKeyWire};
    let signed = SignedPreKeyWire {
        id: 77,
        created_at: 1,
        key: umbra_protocol::wire::keys::PublicKey::from_bytes([0x42; 32]),
        signature: [7; 64],
    };
    let last_resort = PreKeyWire {
        id: 78,
        key: umbra_protocol::wire::keys::PublicKey::from_bytes([0x43; 32]),
    };
    let device = Address {
        account,
        device: DeviceId(1),
    };
    relay
        .state
        .store
        .put_keys(device, &[0x5a; 128], &signed, Some(&last_resort))
        .await
        .expect("the relay stores its own identity for the account");
}

#[tokio::test]
async fn self_monitoring_passes_on_an_honest_relay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = pinned(&relay, "alice").await;
    publish(&relay).await;
    assert_eq!(alice.check_own_keys().await.expect("monitoring"), 0);
    // The link is remembered: the next check asks only for what is new.
    let StoredKt::V1 {
        account_link,
        username_link,
        ..
    } = alice.inner.kt_state().await.expect("state");
    assert_eq!(account_link.map(|(n, _)| n), Some(1));
    assert_eq!(
        username_link.map(|(name, n, _)| (name, n)),
        Some(("alice".to_string(), 1))
    );
    assert_eq!(alice.check_own_keys().await.expect("monitoring again"), 0);
    let events = alice
        .receive_until_empty(std::time::Duration::from_secs(10))
        .await
        .expect("receive");
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::OwnKeyNotPublishedByMe { .. })));
}

#[tokio::test]
async fn a_key_the_owner_never_published_raises_the_alarm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = pinned(&relay, "alice").await;
    publish(&relay).await;
    assert_eq!(alice.check_own_keys().await.expect("monitoring"), 0);
    swap_identity(&relay, alice.whoami().account_id).await;
    publish(&relay).await;
    assert_eq!(alice.check_own_keys().await.expect("monitoring"), 1);
    let events = alice
        .receive_until_empty(std::time::Duration::from_secs(10))
        .await
        .expect("receive");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::OwnKeyNotPublishedByMe { version: 2, .. })),
        "{events:?}"
    );
    // Not forgotten: the next check raises it again.
    assert_eq!(alice.check_own_keys().await.expect("monitoring"), 1);
}

#[tokio::test]
async fn a_name_the_directory_binds_to_another_account_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = relay(&dir).await;
    let alice = pinned(&relay, "alice").await;
    let bob = register(&relay.url(), "bob").await;
    let carol = register(&relay.url(), "carol").await;
    publish(&relay).await;
    alice.connect().await.expect("connect");
    let name: umbra_protocol::wire::Username = "bob".parse().expect("name");
    let honest = Served::Username {
        username: &name,
        account: bob.whoami().account_id,
    };
    alice
        .inner
        .kt_check(honest, true)
        .await
        .expect("bob is bob");
    // A relay resolving `bob` to carol's account (honestly committed keys
    // of another account) is caught by the name's leaf.
    let lie = Served::Username {
        username: &name,
        account: carol.whoami().account_id,
    };
    let refused = alice.inner.kt_check(lie, true).await;
    assert!(
        matches!(
            refused,
            Err(Error::KeyTransparency(KtFailure::NameMismatch { .. }))
        ),
        "{refused:?}"
    );
}
