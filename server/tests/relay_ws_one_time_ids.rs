//! In-process relay tests of one-time prekey ids (docs/PROTOCOL.md 11.8,
//! "UploadPreKeys" and "UploadKemPreKeys"), X25519 and ML-KEM, on SQLite
//! and on two PostgreSQL nodes: an upload retried after a lost answer,
//! after a claim of one of its keys, stores nothing again and answers the
//! stock, so no one-time id is ever served twice; a new identity starts
//! its ids over.
//!
//! Must never: accept a relay that serves a claimed one-time id a second
//! time while the device keeps its identity, fails an honest retry, or
//! refuses a new identity's ids because the old identity used them.

mod common;
#[path = "common/devices.rs"]
#[macro_use]
mod devices;

use std::collections::BTreeMap;

use common::{error_code, signed_in, Client};
use devices::{authenticate, nodes, Backend};
use rand::rngs::OsRng;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::kem_prekeys::KemPreKey;
use umbra_protocol::prekeys::{OneTimePreKey, SignedPreKey};
use umbra_wire::kem_prekeys::KemPreKeyKind;
use umbra_wire::{
    AccountId, Address, DeviceId, ErrorCode, HybridBundleWire, KemPreKeyWire, PreKeyWire, Request,
    Response, SignedPreKeyWire,
};

const NOW: u64 = 1_700_000_000;

/// One upload of each kind, kept to be sent again as a client whose answer
/// was lost does.
struct Batches {
    x25519: Vec<PreKeyWire>,
    kem: Vec<KemPreKeyWire>,
}

fn batches(identity: &IdentityKeyPair, ids: std::ops::RangeInclusive<u32>) -> Batches {
    Batches {
        x25519: ids
            .clone()
            .map(|id| PreKeyWire::from(OneTimePreKey::generate(id, &mut OsRng).public()))
            .collect(),
        kem: ids
            .map(|id| {
                KemPreKey::generate(identity, KemPreKeyKind::OneTime, id, NOW, &mut OsRng)
                    .public()
                    .to_wire()
            })
            .collect(),
    }
}

/// Uploads both batches; returns the two counts answered.
async fn upload(c: &mut Client, batches: &Batches) -> (u32, u32) {
    let x25519 = match c
        .ask(Request::UploadPreKeys {
            prekeys: batches.x25519.clone(),
        })
        .await
    {
        Response::PreKeyCount { remaining, .. } => remaining,
        other => panic!("UploadPreKeys: {other:?}"),
    };
    let kem = match c
        .ask(Request::UploadKemPreKeys {
            last_resort: None,
            one_time: batches.kem.clone(),
        })
        .await
    {
        Response::KemPreKeyCount { remaining, .. } => remaining,
        other => panic!("UploadKemPreKeys: {other:?}"),
    };
    (x25519, kem)
}

/// Publishes `identity` with a signed and a last-resort X25519 prekey.
async fn publish(c: &mut Client, identity: &IdentityKeyPair) {
    let spk = SignedPreKey::generate(identity, 1, NOW, &mut OsRng).public();
    let response = c
        .ask(Request::PublishKeys {
            identity: identity.public().to_bytes().to_vec(),
            signed_prekey: SignedPreKeyWire::from(spk),
            last_resort: Some(PreKeyWire::from(
                OneTimePreKey::generate(0, &mut OsRng).public(),
            )),
        })
        .await;
    assert_eq!(response, Response::Ok);
}

async fn claim(peer: &mut Client, owner: AccountId) -> HybridBundleWire {
    match peer
        .ask(Request::FetchHybridBundle {
            account: owner,
            device: None,
        })
        .await
    {
        Response::HybridBundle(hybrid) => *hybrid,
        other => panic!("expected a hybrid bundle: {other:?}"),
    }
}

/// Every one-time key served, id to how often, of each kind: hybrid
/// fetches until both kinds run out (at most `bound` fetches).
#[derive(Debug, Default, PartialEq, Eq)]
struct Served {
    x25519: BTreeMap<u32, u32>,
    kem: BTreeMap<u32, u32>,
}

impl Served {
    fn add(&mut self, bundle: &HybridBundleWire) {
        if let Some(key) = &bundle.bundle.one_time_prekey {
            *self.x25519.entry(key.id).or_default() += 1;
        }
        if let Some(key) = &bundle.kem_one_time {
            *self.kem.entry(key.id).or_default() += 1;
        }
    }

    async fn drain(&mut self, peer: &mut Client, owner: AccountId, bound: usize) {
        for _ in 0..bound {
            let bundle = claim(peer, owner).await;
            if bundle.bundle.one_time_prekey.is_none() && bundle.kem_one_time.is_none() {
                return;
            }
            self.add(&bundle);
        }
        panic!("still serving one-time keys after {bound} fetches");
    }
}

fn once_each(ids: std::ops::RangeInclusive<u32>) -> BTreeMap<u32, u32> {
    ids.map(|id| (id, 1)).collect()
}

on_both_stores!(a_retried_upload_never_serves_a_claimed_id_again);

/// A batch of each kind, one key of each claimed, the same batches again
/// (on PostgreSQL from the other node, as after a reconnect), then a new
/// batch: every id is served exactly once.
async fn a_retried_upload_never_serves_a_claimed_id_again(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut owner, owner_id, token) = signed_in(&nodes.a, "uma").await;
    let (mut peer, _, _) = signed_in(&nodes.a, "vic").await;
    let identity = IdentityKeyPair::generate(&mut OsRng);
    publish(&mut owner, &identity).await;
    let first = batches(&identity, 1..=5);
    assert_eq!(upload(&mut owner, &first).await, (5, 5));

    // The answer was lost; meanwhile an initiator claims key 1 of each kind.
    let mut served = Served::default();
    served.add(&claim(&mut peer, owner_id).await);
    assert_eq!(served.x25519, once_each(1..=1));
    assert_eq!(served.kem, once_each(1..=1));

    // The client retries the same batches: an honest retry succeeds and
    // answers the stock, which does not include the claimed keys.
    let mut retrying = match &nodes.b {
        Some(b) => {
            let mut c = Client::connect(b).await;
            let me = Address::primary(owner_id);
            authenticate(&mut c, &token, DeviceId::PRIMARY, me).await;
            c
        }
        None => owner,
    };
    assert_eq!(
        upload(&mut retrying, &first).await,
        (4, 4),
        "stock, no error"
    );
    assert_eq!(
        upload(&mut retrying, &first).await,
        (4, 4),
        "and again: idempotent"
    );
    // An id still stored with another key is still a client bug.
    let mut conflicting = batches(&identity, 2..=2);
    conflicting.kem.clear();
    let refused = retrying
        .ask(Request::UploadPreKeys {
            prekeys: conflicting.x25519,
        })
        .await;
    assert_eq!(
        error_code(&refused),
        Some(ErrorCode::BadPreKey),
        "{refused:?}"
    );
    // Fresh ids after the batch are stored as before.
    assert_eq!(
        upload(&mut retrying, &batches(&identity, 6..=7)).await,
        (6, 6)
    );

    served.drain(&mut peer, owner_id, 20).await;
    assert_eq!(served.x25519, once_each(1..=7), "each X25519 id once");
    assert_eq!(served.kem, once_each(1..=7), "each KEM id once");

    // Spent: the first batch once more stores nothing.
    assert_eq!(upload(&mut retrying, &first).await, (0, 0));
    let last = claim(&mut peer, owner_id).await;
    assert_eq!(last.bundle.one_time_prekey, None);
    assert_eq!(last.kem_one_time, None);
}

on_both_stores!(a_new_identity_starts_its_one_time_ids_over);

/// Ids the old identity used and had claimed are refused to it, and stored
/// for the identity that replaces it (its ids start over, PROTOCOL.md
/// 12.6).
async fn a_new_identity_starts_its_one_time_ids_over(backend: Backend, test: &str) {
    let Some(nodes) = nodes(backend, test).await else {
        return;
    };
    let (mut owner, owner_id, _) = signed_in(&nodes.a, "wes").await;
    let (mut peer, _, _) = signed_in(&nodes.a, "xan").await;
    let old = IdentityKeyPair::generate(&mut OsRng);
    publish(&mut owner, &old).await;
    assert_eq!(upload(&mut owner, &batches(&old, 1..=3)).await, (3, 3));
    let mut served = Served::default();
    served.drain(&mut peer, owner_id, 10).await;
    assert_eq!(served.x25519, once_each(1..=3));
    // Even new keys under the spent ids are not stored for this identity.
    assert_eq!(upload(&mut owner, &batches(&old, 1..=3)).await, (0, 0));

    // The reset (the account's only device).
    let new = IdentityKeyPair::generate(&mut OsRng);
    publish(&mut owner, &new).await;
    let fresh = batches(&new, 1..=3);
    assert_eq!(upload(&mut owner, &fresh).await, (3, 3), "the ids again");
    let mut after = Served::default();
    for n in 0..3 {
        let bundle = claim(&mut peer, owner_id).await;
        assert_eq!(bundle.bundle.identity, new.public().to_bytes().to_vec());
        assert_eq!(
            bundle.bundle.one_time_prekey.as_ref(),
            Some(&fresh.x25519[n])
        );
        assert_eq!(bundle.kem_one_time.as_ref(), Some(&fresh.kem[n]));
        after.add(&bundle);
    }
    assert_eq!(after.x25519, once_each(1..=3));
    assert_eq!(after.kem, once_each(1..=3));
}
