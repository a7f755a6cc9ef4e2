//! In-process relay tests of the ML-KEM prekeys (docs/PROTOCOL.md 11.8):
//! uploading signed KEM prekeys (refused whole, nothing stored, when one
//! signature or length is wrong or no identity is published), hybrid
//! bundles that hand each one-time KEM prekey out once (to concurrent
//! fetchers too, on SQLite and on two PostgreSQL nodes) and always carry
//! the last-resort one, under the bundle
//! budget and device rules of FetchBundle and FetchDeviceBundle, a new
//! identity dropping them, and `KemPreKeysLow` sent as `PreKeysLow` is,
//! but only to a device that has uploaded KEM prekeys.
//!
//! Must never: accept a relay that stores a KEM prekey its owner's
//! identity did not sign, hands one out twice, serves one beside an
//! identity that did not sign it, or pushes `KemPreKeysLow` to a client
//! that never uploaded one (it may not know the frame).

mod common;
#[path = "common/devices.rs"]
#[macro_use]
mod devices;

use common::{error_code, login, relay, relay_with, signed_in, Client, TestRelay};
use devices::{nodes, Backend};
use rand::rngs::OsRng;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::KemPreKey;
use umbra_protocol::prekeys::{OneTimePreKey, SignedPreKey};
use umbra_relay::config::Settings;
use umbra_wire::identity::IdentityPublic;
use umbra_wire::kem_prekeys::{KemPreKeyKind, KemPreKeyPublic};
use umbra_wire::{
    AccountId, DeviceId, ErrorCode, HybridBundleWire, KemPreKeyWire, PreKeyWire, RelayFrame,
    Request, Response, SignedPreKeyWire,
};

const NOW: u64 = 1_700_000_000;

/// Publishes a fresh identity with a signed and a last-resort X25519
/// prekey and `one_time` X25519 one-time prekeys; returns the identity.
async fn publish(c: &mut Client, one_time: u32) -> IdentityKeyPair {
    let mut rng = OsRng;
    let identity = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&identity, 1, NOW, &mut rng).public();
    let response = c
        .ask(Request::PublishKeys {
            identity: identity.public().to_bytes().to_vec(),
            signed_prekey: SignedPreKeyWire::from(spk),
            last_resort: Some(PreKeyWire::from(
                OneTimePreKey::generate(999, &mut rng).public(),
            )),
        })
        .await;
    assert_eq!(response, Response::Ok);
    if one_time > 0 {
        let prekeys = (1..=one_time)
            .map(|id| PreKeyWire::from(OneTimePreKey::generate(id, &mut rng).public()))
            .collect();
        let response = c.ask(Request::UploadPreKeys { prekeys }).await;
        assert!(
            matches!(response, Response::PreKeyCount { .. }),
            "{response:?}"
        );
    }
    identity
}

/// A genuine signed ML-KEM-768 prekey, as a client uploads it.
fn kem(identity: &IdentityKeyPair, kind: KemPreKeyKind, id: u32) -> KemPreKeyWire {
    KemPreKey::generate(identity, kind, id, NOW, &mut OsRng)
        .public()
        .to_wire()
}

fn kem_one_time(
    identity: &IdentityKeyPair,
    ids: std::ops::RangeInclusive<u32>,
) -> Vec<KemPreKeyWire> {
    ids.map(|id| kem(identity, KemPreKeyKind::OneTime, id))
        .collect()
}

async fn upload(
    c: &mut Client,
    last_resort: Option<KemPreKeyWire>,
    one_time: Vec<KemPreKeyWire>,
) -> Response {
    c.ask(Request::UploadKemPreKeys {
        last_resort,
        one_time,
    })
    .await
}

fn kem_count(remaining: u32) -> Response {
    Response::KemPreKeyCount {
        remaining,
        low_water: 20,
    }
}

async fn fetch_hybrid(c: &mut Client, account: AccountId, device: Option<DeviceId>) -> Response {
    c.ask(Request::FetchHybridBundle { account, device }).await
}

fn hybrid(response: Response) -> HybridBundleWire {
    match response {
        Response::HybridBundle(hybrid) => *hybrid,
        other => panic!("expected a hybrid bundle: {other:?}"),
    }
}

/// The KEM prekeys of a fetched bundle verify under its identity, each as
/// the kind it was served as.
fn assert_signed(bundle: &HybridBundleWire) {
    let identity = IdentityPublic::from_bytes(&bundle.bundle.identity).expect("identity");
    for (kind, key) in [
        (KemPreKeyKind::OneTime, &bundle.kem_one_time),
        (KemPreKeyKind::LastResort, &bundle.kem_last_resort),
    ] {
        if let Some(key) = key {
            KemPreKeyPublic::from_wire(kind, key)
                .expect("1184 bytes")
                .verify(&identity)
                .expect("served as signed");
        }
    }
}

/// A second connection of `user`'s device 1, with every push the relay
/// sent before answering a `Ping` after `Authenticate` (the connection
/// counts its prekeys before it reads the next request).
async fn reconnect(relay: &TestRelay, user: &str) -> (Client, Vec<RelayFrame>) {
    let mut c = Client::connect(relay).await;
    let (result, _) = login(&mut c, user, b"pw").await;
    let (token, _) = result.expect("logged in");
    let (response, mut pushes) = c
        .call(Request::Authenticate {
            token,
            device: DeviceId::PRIMARY,
        })
        .await;
    assert!(
        matches!(response, Response::Authenticated { .. }),
        "{response:?}"
    );
    let (pong, more) = c.call(Request::Ping).await;
    assert_eq!(pong, Response::Pong);
    pushes.extend(more);
    (c, pushes)
}

fn kem_low(pushes: &[RelayFrame]) -> Vec<u32> {
    pushes
        .iter()
        .filter_map(|frame| match frame {
            RelayFrame::KemPreKeysLow { remaining } => Some(*remaining),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn kem_prekeys_are_checked_stored_and_handed_out_once() {
    let relay = relay().await;
    let (mut owner, owner_id, _) = signed_in(&relay, "kim").await;
    let (mut peer, _, _) = signed_in(&relay, "lee").await;

    // No identity yet: nothing could have signed them.
    let stranger = IdentityKeyPair::generate(&mut OsRng);
    let early = upload(&mut owner, None, kem_one_time(&stranger, 1..=1)).await;
    assert_eq!(error_code(&early), Some(ErrorCode::NoPreKeys), "{early:?}");

    let identity = publish(&mut owner, 0).await;
    let last_resort = kem(&identity, KemPreKeyKind::LastResort, 500);
    let stored = upload(
        &mut owner,
        Some(last_resort.clone()),
        kem_one_time(&identity, 1..=3),
    )
    .await;
    assert_eq!(stored, kem_count(3));

    // One bad signature refuses the whole upload: nothing of it is stored.
    let mut batch = kem_one_time(&identity, 4..=6);
    batch[1] = kem(&stranger, KemPreKeyKind::OneTime, 5);
    let forged = upload(
        &mut owner,
        Some(kem(&identity, KemPreKeyKind::LastResort, 501)),
        batch,
    )
    .await;
    assert_eq!(
        error_code(&forged),
        Some(ErrorCode::BadSignature),
        "{forged:?}"
    );
    // A one-time key offered as the last-resort one is no signature either.
    let swapped = upload(
        &mut owner,
        Some(kem(&identity, KemPreKeyKind::OneTime, 502)),
        vec![],
    )
    .await;
    assert_eq!(error_code(&swapped), Some(ErrorCode::BadSignature));
    // A key of another length.
    let mut short = kem(&identity, KemPreKeyKind::OneTime, 7);
    short.key.truncate(1183);
    let short = upload(&mut owner, None, vec![short]).await;
    assert_eq!(error_code(&short), Some(ErrorCode::BadPreKey), "{short:?}");
    // More than 100 in one upload (the wire limit).
    let mut many = kem_one_time(&identity, 10..=10);
    many.resize(101, many[0].clone());
    let many = upload(&mut owner, None, many).await;
    assert_eq!(
        error_code(&many),
        Some(ErrorCode::TooManyPreKeys),
        "{many:?}"
    );
    assert_eq!(owner.ask(Request::KemPreKeyCount).await, kem_count(3));

    let mut one_time = Vec::new();
    for _ in 0..4 {
        let bundle = hybrid(fetch_hybrid(&mut peer, owner_id, None).await);
        assert_eq!(bundle.bundle.account, owner_id);
        assert_eq!(
            bundle.kem_last_resort.as_ref(),
            Some(&last_resort),
            "the refused uploads replaced nothing; always served"
        );
        assert_signed(&bundle);
        one_time.push(bundle.kem_one_time.map(|k| k.id));
    }
    assert_eq!(
        one_time,
        vec![Some(1), Some(2), Some(3), None],
        "each one-time KEM key once, then the last-resort one only"
    );
    assert_eq!(owner.ask(Request::KemPreKeyCount).await, kem_count(0));
}

on_both_stores!(concurrent_hybrid_fetches_never_share_a_kem_prekey);

/// Six fetchers at once (on PostgreSQL, half on each of two nodes) over
/// three one-time KEM prekeys: each key to exactly one of them.
async fn concurrent_hybrid_fetches_never_share_a_kem_prekey(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut owner, owner_id, _) = signed_in(&nodes.a, "mia").await;
    let identity = publish(&mut owner, 0).await;
    let stored = upload(
        &mut owner,
        Some(kem(&identity, KemPreKeyKind::LastResort, 500)),
        kem_one_time(&identity, 1..=3),
    )
    .await;
    assert_eq!(stored, kem_count(3));

    let mut peers = Vec::new();
    for n in 0..6 {
        let node = match &nodes.b {
            Some(b) if n % 2 == 1 => b,
            _ => &nodes.a,
        };
        peers.push(signed_in(node, &format!("peer{n}")).await.0);
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(peers.len()));
    let fetches: Vec<_> = peers
        .into_iter()
        .map(|mut peer| {
            let start = std::sync::Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                hybrid(fetch_hybrid(&mut peer, owner_id, None).await)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for fetch in fetches {
        let bundle = fetch.await.expect("fetch task");
        assert_eq!(bundle.kem_last_resort.map(|k| k.id), Some(500));
        ids.extend(bundle.kem_one_time.map(|k| k.id));
    }
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2, 3], "each key to exactly one fetcher");
}

#[tokio::test]
async fn a_new_identity_drops_the_kem_prekeys_it_did_not_sign() {
    let relay = relay().await;
    let (mut owner, owner_id, _) = signed_in(&relay, "ned").await;
    let (mut peer, _, _) = signed_in(&relay, "ola").await;
    let old = publish(&mut owner, 0).await;
    let stored = upload(
        &mut owner,
        Some(kem(&old, KemPreKeyKind::LastResort, 500)),
        kem_one_time(&old, 1..=2),
    )
    .await;
    assert_eq!(stored, kem_count(2));

    // The reinstall: a new identity (the account's only device may).
    let new = publish(&mut owner, 0).await;
    assert_eq!(owner.ask(Request::KemPreKeyCount).await, kem_count(0));
    let bundle = hybrid(fetch_hybrid(&mut peer, owner_id, None).await);
    assert_eq!(bundle.bundle.identity, new.public().to_bytes().to_vec());
    assert_eq!(bundle.kem_one_time, None, "nothing the old identity signed");
    assert_eq!(bundle.kem_last_resort, None);
    // Keys signed by the old identity are refused now.
    let stale = upload(&mut owner, None, kem_one_time(&old, 3..=3)).await;
    assert_eq!(error_code(&stale), Some(ErrorCode::BadSignature));
}

#[tokio::test]
async fn hybrid_fetches_follow_the_bundle_budget_and_device_rules() {
    let relay = relay_with(Settings {
        bundle_fetches_per_minute: Some(2),
        ..Settings::default()
    })
    .await;
    let (mut owner, owner_id, _) = signed_in(&relay, "pat").await;
    let (mut peer, _, _) = signed_in(&relay, "quin").await;
    let identity = publish(&mut owner, 0).await;
    upload(
        &mut owner,
        Some(kem(&identity, KemPreKeyKind::LastResort, 500)),
        vec![],
    )
    .await;

    let named = hybrid(fetch_hybrid(&mut peer, owner_id, Some(DeviceId::PRIMARY)).await);
    assert_eq!(named.bundle.device, DeviceId::PRIMARY);
    assert_eq!(named.kem_last_resort.map(|k| k.id), Some(500));
    let unknown = fetch_hybrid(&mut peer, owner_id, Some(DeviceId(2))).await;
    assert_eq!(error_code(&unknown), Some(ErrorCode::UnknownRecipient));
    // The budget is FetchBundle's: the two above spent it.
    let classical = peer
        .ask(Request::FetchBundle {
            target: umbra_wire::AccountRef::Account(owner_id),
        })
        .await;
    assert_eq!(error_code(&classical), Some(ErrorCode::RateLimited));
    let hybrid_too = fetch_hybrid(&mut peer, owner_id, None).await;
    assert_eq!(error_code(&hybrid_too), Some(ErrorCode::RateLimited));
}

#[tokio::test]
async fn kem_prekeys_low_reaches_only_a_device_that_uploaded_them() {
    let relay = relay().await;
    let (mut owner, owner_id, _) = signed_in(&relay, "rae").await;
    let (mut peer, _, _) = signed_in(&relay, "sam").await;
    let identity = publish(&mut owner, 25).await;
    let stored = upload(
        &mut owner,
        Some(kem(&identity, KemPreKeyKind::LastResort, 500)),
        kem_one_time(&identity, 1..=20),
    )
    .await;
    assert_eq!(stored, kem_count(20));

    // A claim that leaves 19 (below the low water) tells the owner.
    hybrid(fetch_hybrid(&mut peer, owner_id, None).await);
    let mut low = None;
    while low.is_none() {
        match owner.next().await.expect("open") {
            RelayFrame::KemPreKeysLow { remaining } => low = Some(remaining),
            RelayFrame::QueueEmpty | RelayFrame::PreKeysLow { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(low, Some(19));

    // So does authenticating while below it.
    drop(owner);
    let (_owner, pushes) = reconnect(&relay, "rae").await;
    assert_eq!(kem_low(&pushes), vec![19], "{pushes:?}");

    // A device that never uploaded a KEM prekey hears nothing of them,
    // though it has none: it may predate the frame.
    let (mut old_client, _, _) = signed_in(&relay, "tia").await;
    publish(&mut old_client, 0).await;
    drop(old_client);
    let (_old_client, pushes) = reconnect(&relay, "tia").await;
    assert!(
        pushes
            .iter()
            .any(|f| matches!(f, RelayFrame::PreKeysLow { remaining: 0 })),
        "the X25519 push still comes: {pushes:?}"
    );
    assert_eq!(kem_low(&pushes), Vec::<u32>::new(), "{pushes:?}");
}
