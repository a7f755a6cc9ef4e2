//! In-process relay tests of the key-transparency frames (docs/PROTOCOL.md
//! 16.9; requests `KtHead` 33, `KtLookup` 34, `KtHistory` 35), over real
//! WebSockets, on SQLite and on PostgreSQL (two nodes sharing the
//! database and key directory; it must be reachable under CI=true): a
//! published identity is proven in a later epoch, on the node it was
//! published on and on the other one; a head extends the one a client
//! remembers and proves an older entry; a history shows every version;
//! bad requests get clear refusals.
//!
//! Must never: accept a proof without verifying it under the relay's
//! pinned keys as a client would, or wait by sleeping for a fixed time
//! (it polls with a deadline).

mod common;
#[path = "common/devices.rs"]
#[macro_use]
mod devices;

use std::time::Instant;

use common::{error_code, name, signed_in, Client, TestRelay, WAIT};
use devices::{nodes_with, publish_identity, Backend};
use umbra_relay::config::Settings;
use umbra_wire::kt::{
    ConsistencyProof, DirectoryPublicKey, EpochEntry, HistoryProof, InclusionProof, KtLabel,
    LeafValue, Lookup, LookupProof, SignedEpochHead, VerifiedHead, VrfPublicKey,
};
use umbra_wire::{AccountId, AccountRef, ErrorCode, Request, Response};

on_both_stores!(
    a_published_identity_is_proven_on_every_node,
    heads_extend_and_prove_older_entries,
    bad_requests_are_refused_clearly,
    proofs_are_limited_per_requesting_account,
);

fn settings() -> Settings {
    Settings {
        kt_epoch_interval_ms: Some(20),
        // The tests poll for an epoch every 10 ms; the proof budget has a
        // test of its own.
        kt_proofs_per_minute: Some(1_000_000),
        ..Settings::default()
    }
}

/// The keys a client pins for `relay`.
fn pinned(relay: &TestRelay) -> (DirectoryPublicKey, VrfPublicKey) {
    relay.relay.state.kt.keys().public()
}

fn verified(relay: &TestRelay, head: &[u8]) -> VerifiedHead {
    SignedEpochHead::decode(head)
        .expect("head decodes")
        .verify(&pinned(relay).0)
        .expect("head verifies under the pinned key")
}

/// `KtLookup` of `label`, verified: the head and what it proves.
async fn lookup(relay: &TestRelay, c: &mut Client, label: AccountRef) -> (VerifiedHead, Lookup) {
    let kt_label = match &label {
        AccountRef::Account(a) => KtLabel::Account(*a),
        AccountRef::Username(n) => KtLabel::Username(n.clone()),
    };
    match c.ask(Request::KtLookup { label }).await {
        Response::KtLookup { head, proof } => {
            let head = verified(relay, &head);
            let found = LookupProof::decode(&proof)
                .expect("proof decodes")
                .verify(&pinned(relay).1, &kt_label, head.map_root(), head.epoch())
                .expect("lookup proof verifies");
            (head, found)
        }
        other => panic!("KtLookup: {other:?}"),
    }
}

/// Polls `KtLookup` until the account's leaf holds `value` (an epoch is
/// published every 20 ms), within the suites' deadline.
async fn proven_value(
    relay: &TestRelay,
    c: &mut Client,
    account: AccountId,
    value: LeafValue,
) -> VerifiedHead {
    let deadline = Instant::now() + WAIT;
    loop {
        let (head, found) = lookup(relay, c, AccountRef::Account(account)).await;
        if let Lookup::Present { latest, .. } = found {
            if latest.value == value {
                return head;
            }
        }
        assert!(Instant::now() < deadline, "never proven: {found:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn a_published_identity_is_proven_on_every_node(backend: Backend, test: &str) {
    let Some(nodes) = nodes_with(backend, test, settings()).await else {
        return;
    };
    // bob on the other node, his name published before alice does
    // anything: from then on that node has nothing of its own to publish.
    let other = nodes.b.as_ref().unwrap_or(&nodes.a);
    let (mut bob_c, bob, _) = signed_in(other, "bob").await;
    let deadline = Instant::now() + WAIT;
    while lookup(other, &mut bob_c, AccountRef::Username(name("bob")))
        .await
        .1
        == Lookup::Absent
    {
        assert!(Instant::now() < deadline, "bob's name never published");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (mut alice_c, alice, _) = signed_in(&nodes.a, "alice").await;
    assert_ne!(alice, bob);
    let identity = publish_identity(&mut alice_c).await;
    let value = LeafValue::account(Some(&identity.public().to_bytes()), None);
    proven_value(&nodes.a, &mut alice_c, alice, value).await;
    // The other node caught up with the epoch this one published.
    proven_value(other, &mut bob_c, alice, value).await;
    let (_, name_leaf) = lookup(other, &mut bob_c, AccountRef::Username(name("alice"))).await;
    match name_leaf {
        Lookup::Present { latest, .. } => assert_eq!(
            latest.value,
            LeafValue::Username {
                account: Some(alice)
            }
        ),
        Lookup::Absent => panic!("alice's name is not in the directory"),
    }
    // A name nobody holds is proven absent.
    let (_, nobody) = lookup(other, &mut bob_c, AccountRef::Username(name("nobody"))).await;
    assert_eq!(nobody, Lookup::Absent);
    // The history of alice's leaf shows every version, verified.
    match bob_c
        .ask(Request::KtHistory {
            label: AccountRef::Account(alice),
            first: 1,
        })
        .await
    {
        Response::KtHistory { head, proof } => {
            let head = verified(other, &head);
            let history = HistoryProof::decode(&proof)
                .unwrap()
                .verify(
                    &pinned(other).1,
                    &KtLabel::Account(alice),
                    head.map_root(),
                    head.epoch(),
                )
                .expect("history verifies");
            let last = history.versions.last().unwrap().0;
            assert_eq!(last.value, value, "the newest version is the identity");
            assert_eq!(history.versions[0].0.version, 1);
        }
        other => panic!("KtHistory: {other:?}"),
    }
}

async fn heads_extend_and_prove_older_entries(backend: Backend, test: &str) {
    let Some(nodes) = nodes_with(backend, test, settings()).await else {
        return;
    };
    let (mut c, alice, _) = signed_in(&nodes.a, "alice").await;
    // The head a client remembers, before alice's identity.
    let remembered = match c
        .ask(Request::KtHead {
            known: None,
            entry_of: None,
        })
        .await
    {
        Response::KtHead { head, .. } => verified(&nodes.a, &head),
        other => panic!("KtHead: {other:?}"),
    };
    let identity = publish_identity(&mut c).await;
    let value = LeafValue::account(Some(&identity.public().to_bytes()), None);
    let newer = proven_value(&nodes.a, &mut c, alice, value).await;
    assert!(newer.epoch() > remembered.epoch());
    let other = nodes.b.as_ref().unwrap_or(&nodes.a);
    let (mut d, _, _) = signed_in(other, "dora").await;
    let answer = d
        .ask(Request::KtHead {
            known: Some(remembered.epoch()),
            entry_of: Some(remembered.epoch()),
        })
        .await;
    let Response::KtHead {
        head,
        consistency,
        entry,
        inclusion,
    } = answer
    else {
        panic!("KtHead: {answer:?}");
    };
    let latest = verified(other, &head);
    let proof = ConsistencyProof::decode(&consistency.expect("asked for")).unwrap();
    remembered
        .check_extended_by(&latest, &proof)
        .expect("the new head extends the remembered one");
    let entry = EpochEntry::decode(&entry.expect("asked for")).unwrap();
    assert_eq!(&entry, remembered.entry());
    let inclusion = InclusionProof::decode(&inclusion.expect("asked for")).unwrap();
    latest
        .check_includes(&entry, &inclusion)
        .expect("the older entry is in the new log");
    // Naming the newest head itself: an empty proof, the same head.
    let Response::KtHead {
        consistency: Some(same),
        ..
    } = d
        .ask(Request::KtHead {
            known: Some(latest.epoch()),
            entry_of: None,
        })
        .await
    else {
        panic!("no consistency proof");
    };
    let same = ConsistencyProof::decode(&same).unwrap();
    assert_eq!(same.old_size, same.new_size);
}

async fn bad_requests_are_refused_clearly(backend: Backend, test: &str) {
    let Some(nodes) = nodes_with(backend, test, settings()).await else {
        return;
    };
    let (mut c, alice, _) = signed_in(&nodes.a, "alice").await;
    let refused = |r: &Response, code: ErrorCode, words: &str| match r {
        Response::Error {
            code: got, message, ..
        } => {
            assert_eq!(*got, code, "{message}");
            assert!(message.contains(words), "{message}");
        }
        other => panic!("not refused: {other:?}"),
    };
    let r = c
        .ask(Request::KtHead {
            known: Some(1 << 40),
            entry_of: None,
        })
        .await;
    refused(&r, ErrorCode::LimitExceeded, "after the newest epoch");
    let r = c
        .ask(Request::KtHead {
            known: None,
            entry_of: Some(u64::MAX),
        })
        .await;
    refused(&r, ErrorCode::LimitExceeded, "entry_of");
    // A leaf with one version: alice's, once her identity is published.
    let identity = publish_identity(&mut c).await;
    let value = LeafValue::account(Some(&identity.public().to_bytes()), None);
    proven_value(&nodes.a, &mut c, alice, value).await;
    let r = c
        .ask(Request::KtHistory {
            label: AccountRef::Account(alice),
            first: 0,
        })
        .await;
    refused(&r, ErrorCode::LimitExceeded, "first must be from 1");
    let r = c
        .ask(Request::KtHistory {
            label: AccountRef::Account(alice),
            first: 99,
        })
        .await;
    refused(&r, ErrorCode::LimitExceeded, "newest version");
    let r = c
        .ask(Request::KtHistory {
            label: AccountRef::Username(name("nobody")),
            first: 1,
        })
        .await;
    assert_eq!(error_code(&r), Some(ErrorCode::UnknownUsername), "{r:?}");
    let r = c
        .ask(Request::KtHistory {
            label: AccountRef::Account(AccountId::from_bytes([9; 16])),
            first: 1,
        })
        .await;
    assert_eq!(error_code(&r), Some(ErrorCode::UnknownRecipient), "{r:?}");
}

/// `kt_proofs_per_minute`: heads, histories and account lookups share one
/// budget per requesting account (each costs VRF evaluations or log proofs
/// under the node's directory lock); past it the answer is `RateLimited`
/// with a retry time, and another account's budget is its own.
async fn proofs_are_limited_per_requesting_account(backend: Backend, test: &str) {
    let limited = Settings {
        kt_proofs_per_minute: Some(3),
        ..settings()
    };
    let Some(nodes) = nodes_with(backend, test, limited).await else {
        return;
    };
    let (mut c, alice, _) = signed_in(&nodes.a, "alice").await;
    let (mut other, _, _) = signed_in(&nodes.a, "bob").await;
    let head = Request::KtHead {
        known: None,
        entry_of: None,
    };
    let lookup = Request::KtLookup {
        label: AccountRef::Account(alice),
    };
    let history = Request::KtHistory {
        label: AccountRef::Account(alice),
        first: 1,
    };
    for request in [head.clone(), lookup.clone(), history] {
        let response = c.ask(request).await;
        assert!(
            error_code(&response) != Some(ErrorCode::RateLimited),
            "within the budget: {response:?}"
        );
    }
    match c.ask(lookup.clone()).await {
        Response::Error {
            code: ErrorCode::RateLimited,
            retry_after_secs,
            ..
        } => assert!(retry_after_secs.is_some_and(|secs| secs >= 1)),
        other => panic!("a fourth proof in a minute must be rate limited, got {other:?}"),
    }
    let response = other.ask(lookup).await;
    assert!(
        error_code(&response) != Some(ErrorCode::RateLimited),
        "bob's budget is his own: {response:?}"
    );
}
