//! In-process relay tests of the prekey directory: publishing keys (and
//! refusing a bad signature), claiming one-time prekeys then falling back
//! to the last-resort key, warning the owner when keys run low, resolving
//! usernames under a per-requester rate limit, and a new identity replacing
//! the old one's keys.
//!
//! Must never: accept a relay that hands out a one-time prekey twice, keeps
//! serving an old identity's prekeys after a new identity is published, or
//! lets one requester spend another's resolve budget.

mod common;

use common::{error_code, name, relay, relay_with, signed_in, Client};
use rand::rngs::OsRng;
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::prekeys::{OneTimePreKey, SignedPreKey};
use umbra_relay::config::Settings;
use umbra_wire::{
    AccountRef, ErrorCode, PreKeyWire, RelayFrame, Request, Response, SignedPreKeyWire,
};

async fn publish(c: &mut Client, one_time: u32) {
    let mut rng = OsRng;
    let identity = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&identity, 1, 1_700_000_000, &mut rng).public();
    let signed_prekey = SignedPreKeyWire::from(spk);
    let last_resort = PreKeyWire::from(OneTimePreKey::generate(999, &mut rng).public());
    let response = c
        .ask(Request::PublishKeys {
            identity: identity.public().to_bytes().to_vec(),
            signed_prekey,
            last_resort: Some(last_resort),
        })
        .await;
    assert_eq!(response, Response::Ok);
    let prekeys: Vec<PreKeyWire> = (1..=one_time)
        .map(|id| PreKeyWire::from(OneTimePreKey::generate(id, &mut rng).public()))
        .collect();
    let response = c.ask(Request::UploadPreKeys { prekeys }).await;
    assert!(
        matches!(response, Response::PreKeyCount { remaining, .. } if remaining == one_time),
        "{response:?}"
    );
}

#[tokio::test]
async fn bundles_claim_one_time_keys_then_fall_back_and_warn_owner() {
    let relay = relay().await;
    let (mut owner, owner_id, _) = signed_in(&relay, "hank").await;
    publish(&mut owner, 2).await;
    let (mut peer, _, _) = signed_in(&relay, "ivy").await;

    let mut claimed = Vec::new();
    for _ in 0..3 {
        let response = peer
            .ask(Request::FetchBundle {
                target: AccountRef::Username(name("hank")),
            })
            .await;
        let Response::Bundle(bundle) = response else {
            panic!("{response:?}")
        };
        assert_eq!(bundle.account, owner_id);
        assert_eq!(bundle.last_resort.map(|k| k.id), Some(999));
        claimed.push(bundle.one_time_prekey.map(|k| k.id));
    }
    claimed.sort();
    assert_eq!(
        claimed,
        vec![None, Some(1), Some(2)],
        "each one-time key once, then last-resort only"
    );

    // The owner hears that its keys are low.
    let mut low = None;
    while low.is_none() {
        match owner.next().await.expect("open") {
            RelayFrame::PreKeysLow { remaining } => low = Some(remaining),
            RelayFrame::QueueEmpty | RelayFrame::Deliver { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    let response = peer
        .ask(Request::FetchBundle {
            target: AccountRef::Username(name("nobody")),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::UnknownUsername));
    let response = owner
        .ask(Request::FetchBundle {
            target: AccountRef::Username(name("ivy")),
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::NoPreKeys));
}

#[tokio::test]
async fn publish_keys_rejects_a_bad_signature() {
    let relay = relay().await;
    let (mut c, _, _) = signed_in(&relay, "jack").await;
    let mut rng = OsRng;
    let identity = IdentityKeyPair::generate(&mut rng);
    let other = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&other, 1, 1_700_000_000, &mut rng).public();
    let signed_prekey = SignedPreKeyWire::from(spk);
    let response = c
        .ask(Request::PublishKeys {
            identity: identity.public().to_bytes().to_vec(),
            signed_prekey,
            last_resort: None,
        })
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::BadSignature));
}

#[tokio::test]
async fn resolve_username_is_rate_limited_per_requester() {
    let relay = relay_with(Settings {
        username_resolves_per_minute: Some(2),
        ..Settings::default()
    })
    .await;
    let (mut a, a_id, _) = signed_in(&relay, "olga").await;
    let (mut b, _, _) = signed_in(&relay, "pete").await;
    for target in ["pete", "nobody"] {
        let response = a
            .ask(Request::ResolveUsername {
                username: name(target),
            })
            .await;
        assert!(
            error_code(&response) != Some(ErrorCode::RateLimited),
            "within the budget: {response:?}"
        );
    }
    let response = a
        .ask(Request::ResolveUsername {
            username: name("pete"),
        })
        .await;
    match response {
        Response::Error {
            code: ErrorCode::RateLimited,
            retry_after_secs,
            ..
        } => assert!(retry_after_secs.is_some_and(|secs| secs >= 1)),
        other => panic!("third resolve in a minute must be rate limited, got {other:?}"),
    }
    assert_eq!(
        b.ask(Request::ResolveUsername {
            username: name("olga"),
        })
        .await,
        Response::Resolved {
            username: name("olga"),
            account: a_id,
            identity: None,
        },
        "another requester keeps its own budget"
    );
}

#[tokio::test]
async fn publishing_a_new_identity_drops_the_old_one_time_prekeys() {
    let relay = relay().await;
    let (mut owner, owner_id, _) = signed_in(&relay, "quinn").await;
    publish(&mut owner, 3).await;
    let (mut peer, _, _) = signed_in(&relay, "rosa").await;
    let Response::Resolved {
        identity: old_identity,
        ..
    } = peer
        .ask(Request::ResolveUsername {
            username: name("quinn"),
        })
        .await
    else {
        panic!("resolving a published account")
    };
    assert!(old_identity.is_some(), "the published identity is named");
    assert!(
        matches!(
            owner.ask(Request::PreKeyCount).await,
            Response::PreKeyCount { remaining: 3, .. }
        ),
        "resolving claims no one-time prekey"
    );

    // The owner reinstalls: a new identity, signed prekey, no last-resort key.
    let mut rng = OsRng;
    let identity = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&identity, 2, 1_700_000_100, &mut rng).public();
    let signed_prekey = SignedPreKeyWire::from(spk);
    let response = owner
        .ask(Request::PublishKeys {
            identity: identity.public().to_bytes().to_vec(),
            signed_prekey,
            last_resort: None,
        })
        .await;
    assert_eq!(response, Response::Ok);
    assert!(matches!(
        owner.ask(Request::PreKeyCount).await,
        Response::PreKeyCount { remaining: 0, .. }
    ));

    let resolved = peer
        .ask(Request::ResolveUsername {
            username: name("quinn"),
        })
        .await;
    assert_eq!(
        resolved,
        Response::Resolved {
            username: name("quinn"),
            account: owner_id,
            identity: Some(identity.public().to_bytes().to_vec()),
        },
        "resolving names the new identity"
    );
    assert_ne!(old_identity, Some(identity.public().to_bytes().to_vec()));
    let response = peer
        .ask(Request::FetchBundle {
            target: AccountRef::Account(owner_id),
        })
        .await;
    let Response::Bundle(bundle) = response else {
        panic!("{response:?}")
    };
    assert_eq!(bundle.identity, identity.public().to_bytes().to_vec());
    assert_eq!(bundle.signed_prekey, signed_prekey);
    assert_eq!(bundle.one_time_prekey, None, "old identity's keys are gone");
    assert_eq!(bundle.last_resort, None);
}
