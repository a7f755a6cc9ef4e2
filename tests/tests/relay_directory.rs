//! The relay as a key directory, on SQLite and PostgreSQL: what it refuses
//! to publish, what a bundle contains, and that a one-time prekey is handed
//! out at most once even to concurrent claimers, with the last-resort key
//! after that.
//!
//! Must never: accept a bundle the protocol crate would not verify, or a
//! relay that hands the same one-time prekey to two claimers.

mod relay_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use relay_support::{on_every_store, Backend};
use umbra_e2e::wire_client::{DeviceKeys, Session, WireClientError};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::prekeys::{PreKeyBundle, SignedPreKey};
use umbra_protocol::wire::{
    AccountId, AccountRef, ErrorCode, PreKeyBundleWire, PreKeyWire, RelayFrame, Request, Response,
    Username,
};

on_every_store!(
    forged_signed_prekeys_are_refused,
    upload_then_claim_serves_a_verifiable_bundle,
    malformed_prekey_uploads_are_refused,
    concurrent_claims_hand_out_each_one_time_key_once,
    exhaustion_falls_back_to_last_resort_and_warns_the_owner,
    a_copied_identity_is_refused_with_identity_in_use,
);

async fn fetch_bundle(
    session: &mut Session,
    target: AccountRef,
) -> anyhow::Result<PreKeyBundleWire> {
    match session
        .client
        .request_ok(Request::FetchBundle { target })
        .await?
    {
        Response::Bundle(bundle) => Ok(*bundle),
        other => bail!("FetchBundle: expected Bundle, got {other:?}"),
    }
}

/// Checks the bundle with the protocol crate: the identity binding and the
/// signed prekey signature. `FetchBundle` is the classical directory request
/// (these accounts publish no ML-KEM prekeys), so the KEM requirement a
/// session initiator adds on top (`verify`, over `FetchHybridBundle`) is
/// left out here; the hybrid directory has its own suite in the relay crate.
fn verify_bundle(bundle: &PreKeyBundleWire) -> anyhow::Result<()> {
    let bundle = PreKeyBundle::try_from(bundle).context("bundle identity")?;
    bundle
        .verify_classical()
        .context("the served bundle does not verify")?;
    Ok(())
}

fn expect_code(
    result: Result<Response, WireClientError>,
    code: ErrorCode,
    what: &str,
) -> anyhow::Result<()> {
    match result {
        Ok(Response::Error { code: got, .. }) if got == code => Ok(()),
        other => bail!("{what}: expected Error {{ {code} }}, got {other:?}"),
    }
}

async fn forged_signed_prekeys_are_refused(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let keys = DeviceKeys::generate(0);

    // One bit of the signature flipped.
    let mut flipped = keys.signed_prekey_wire();
    flipped.signature[0] ^= 0x01;
    let reply = bob
        .client
        .request(Request::PublishKeys {
            identity: keys.identity_bytes(),
            signed_prekey: flipped,
            last_resort: Some(keys.last_resort_wire()),
        })
        .await;
    expect_code(
        reply,
        ErrorCode::BadSignature,
        "PublishKeys with a flipped signature bit",
    )?;

    // A valid signature, but by somebody else's identity.
    let mallory = IdentityKeyPair::generate(&mut rand::rngs::OsRng);
    let foreign = SignedPreKey::generate(
        &mallory,
        1,
        keys.signed_prekey.created_at(),
        &mut rand::rngs::OsRng,
    );
    let public = foreign.public();
    let reply = bob
        .client
        .request(Request::PublishKeys {
            identity: keys.identity_bytes(),
            signed_prekey: public.into(),
            last_resort: None,
        })
        .await;
    expect_code(
        reply,
        ErrorCode::BadSignature,
        "PublishKeys signed by another identity",
    )?;

    // An identity whose bytes are not an identity at all.
    let reply = bob
        .client
        .request(Request::PublishKeys {
            identity: vec![0x5a; keys.identity_bytes().len()],
            signed_prekey: keys.signed_prekey_wire(),
            last_resort: None,
        })
        .await;
    expect_code(
        reply,
        ErrorCode::BadSignature,
        "PublishKeys with a garbage identity",
    )?;

    // Nothing of the refused attempts was published.
    let reply = alice
        .client
        .request(Request::FetchBundle {
            target: AccountRef::Account(bob.account),
        })
        .await;
    expect_code(
        reply,
        ErrorCode::NoPreKeys,
        "FetchBundle after only refused publications",
    )?;

    // The honest publication is accepted and served.
    bob.client.publish_keys(&keys).await?;
    let bundle = fetch_bundle(&mut alice, AccountRef::Account(bob.account)).await?;
    ensure!(
        bundle.identity == keys.identity_bytes(),
        "served identity differs"
    );
    verify_bundle(&bundle)?;
    Ok(())
}

/// The unknown-key-share set-up: Mallory publishes Alice's identity and
/// signed prekey as her own account's keys. Refused, so nobody can fetch a
/// "Mallory" bundle that is really Alice's (docs/PROTOCOL.md §3.6, §11.8).
async fn a_copied_identity_is_refused_with_identity_in_use(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let mut mallory = Session::sign_up(&url, "mallory", "mallory's password").await?;
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let keys = DeviceKeys::generate(0);
    alice.client.publish_keys(&keys).await?;

    let reply = mallory.client.request(keys.publish_request()).await;
    expect_code(
        reply,
        ErrorCode::IdentityInUse,
        "PublishKeys with another account's identity",
    )?;
    let reply = bob
        .client
        .request(Request::FetchBundle {
            target: AccountRef::Account(mallory.account),
        })
        .await;
    expect_code(
        reply,
        ErrorCode::NoPreKeys,
        "FetchBundle of the account whose copy was refused",
    )?;

    // The owner can still republish (signed-prekey rotation), and Mallory
    // can publish keys of her own.
    alice.client.publish_keys(&keys).await?;
    mallory
        .client
        .publish_keys(&DeviceKeys::generate(0))
        .await?;
    let bundle = fetch_bundle(&mut bob, AccountRef::Account(alice.account)).await?;
    ensure!(
        bundle.identity == keys.identity_bytes(),
        "Alice's bundle no longer names her identity"
    );
    let bundle = fetch_bundle(&mut bob, AccountRef::Account(mallory.account)).await?;
    ensure!(
        bundle.identity != keys.identity_bytes(),
        "Mallory's bundle names Alice's identity"
    );
    Ok(())
}

async fn upload_then_claim_serves_a_verifiable_bundle(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let keys = DeviceKeys::generate(5);

    bob.client.publish_keys(&keys).await?;
    let remaining = bob.client.upload_prekeys(&keys).await?;
    ensure!(
        remaining == 5,
        "after uploading 5 one-time prekeys the relay reports {remaining}"
    );
    ensure!(
        bob.client.prekey_count().await? == 5,
        "PreKeyCount disagrees with the upload"
    );

    let published: Vec<PreKeyWire> = keys.one_time_wire();
    let mut seen = HashSet::new();
    let targets = [
        AccountRef::Username(Username::parse("bob")?),
        AccountRef::Account(bob.account),
        AccountRef::Username(Username::parse("BOB")?),
    ];
    for (i, target) in targets.into_iter().enumerate() {
        let bundle = fetch_bundle(&mut alice, target).await?;
        ensure!(
            bundle.account == bob.account,
            "bundle names {} not bob",
            bundle.account
        );
        ensure!(
            bundle.device == bob.address.device,
            "bundle for device {}",
            bundle.device
        );
        ensure!(
            bundle.identity == keys.identity_bytes(),
            "served identity differs from the published one"
        );
        ensure!(
            bundle.signed_prekey == keys.signed_prekey_wire(),
            "served signed prekey differs"
        );
        ensure!(
            bundle.last_resort == Some(keys.last_resort_wire()),
            "served last-resort key differs"
        );
        let one_time = bundle
            .one_time_prekey
            .context("5 keys were uploaded, none served")?;
        ensure!(
            published.contains(&one_time),
            "served one-time key {one_time:?} was never uploaded"
        );
        ensure!(
            seen.insert(one_time.id),
            "one-time key {} served twice",
            one_time.id
        );
        verify_bundle(&bundle)?;
        let left = bob.client.prekey_count().await?;
        ensure!(
            left as usize == 5 - (i + 1),
            "after {} claims the owner has {left} one-time keys left",
            i + 1
        );
    }

    // Unknown targets are named as such.
    let reply = alice
        .client
        .request(Request::FetchBundle {
            target: AccountRef::Username(Username::parse("nobody")?),
        })
        .await;
    expect_code(
        reply,
        ErrorCode::UnknownUsername,
        "FetchBundle for an unknown username",
    )?;
    let reply = alice
        .client
        .request(Request::FetchBundle {
            target: AccountRef::Account(AccountId::from_bytes([9; 16])),
        })
        .await;
    match reply {
        Ok(Response::Error { code: ErrorCode::NoPreKeys | ErrorCode::UnknownRecipient, .. }) => {}
        other => bail!("FetchBundle for an unknown account: expected NoPreKeys or UnknownRecipient, got {other:?}"),
    }
    Ok(())
}

async fn concurrent_claims_hand_out_each_one_time_key_once(backend: Backend) -> anyhow::Result<()> {
    const FETCHERS: usize = 16;
    const ONE_TIME_KEYS: u32 = 10;
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let keys = DeviceKeys::generate(ONE_TIME_KEYS);
    bob.client.publish_keys(&keys).await?;
    ensure!(bob.client.upload_prekeys(&keys).await? == ONE_TIME_KEYS);

    // Every fetcher is its own account on its own connection.
    let mut signing_up = tokio::task::JoinSet::new();
    for i in 0..FETCHERS {
        let url = url.clone();
        signing_up.spawn(async move {
            Session::sign_up(&url, &format!("fetcher{i}"), "fetcher password").await
        });
    }
    let mut fetchers = Vec::with_capacity(FETCHERS);
    while let Some(joined) = signing_up.join_next().await {
        fetchers.push(joined??);
    }

    // Release all claims at once.
    let start = Arc::new(tokio::sync::Barrier::new(FETCHERS));
    let mut claiming = tokio::task::JoinSet::new();
    for mut fetcher in fetchers {
        let start = Arc::clone(&start);
        let target = AccountRef::Account(bob.account);
        claiming.spawn(async move {
            start.wait().await;
            fetch_bundle(&mut fetcher, target).await
        });
    }
    let mut one_time_ids = Vec::new();
    let mut fell_back = 0;
    while let Some(joined) = claiming.join_next().await {
        let bundle = joined??;
        verify_bundle(&bundle)?;
        ensure!(
            bundle.last_resort == Some(keys.last_resort_wire()),
            "last-resort key missing or wrong"
        );
        match bundle.one_time_prekey {
            Some(key) => {
                ensure!(
                    keys.one_time_wire().contains(&key),
                    "served a key never uploaded: {key:?}"
                );
                one_time_ids.push(key.id);
            }
            None => fell_back += 1,
        }
    }
    let distinct: HashSet<u32> = one_time_ids.iter().copied().collect();
    ensure!(
        distinct.len() == one_time_ids.len(),
        "a one-time prekey was handed out twice: {one_time_ids:?}"
    );
    ensure!(
        distinct.len() == ONE_TIME_KEYS as usize,
        "{} of {ONE_TIME_KEYS} one-time keys were handed out to {FETCHERS} claimers",
        distinct.len()
    );
    ensure!(
        fell_back == FETCHERS - ONE_TIME_KEYS as usize,
        "{fell_back} claimers got only the last-resort key"
    );
    ensure!(
        bob.client.prekey_count().await? == 0,
        "keys left after every one was claimed"
    );
    Ok(())
}

async fn exhaustion_falls_back_to_last_resort_and_warns_the_owner(
    backend: Backend,
) -> anyhow::Result<()> {
    let relay = backend.start_relay(&["--prekey-low-water", "2"]).await?;
    let url = relay.ws_url();
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let mut alice = Session::sign_up(&url, "alice", "alice's password").await?;
    let keys = DeviceKeys::generate(3);
    bob.client.publish_keys(&keys).await?;
    bob.client.upload_prekeys(&keys).await?;
    // Bob authenticated with no keys at all: the relay may already have
    // warned him. Forget that; only warnings caused by claims matter here.
    while bob
        .client
        .try_next_push(Duration::from_millis(300))
        .await?
        .is_some()
    {}

    let mut served = Vec::new();
    for _ in 0..3 {
        let bundle = fetch_bundle(&mut alice, AccountRef::Account(bob.account)).await?;
        served.push(
            bundle
                .one_time_prekey
                .context("a key was left but none was served")?
                .id,
        );
    }
    served.sort_unstable();
    ensure!(
        served == vec![1, 2, 3],
        "served one-time keys {served:?}, expected each of 1, 2, 3 once"
    );

    for _ in 0..2 {
        let bundle = fetch_bundle(&mut alice, AccountRef::Account(bob.account)).await?;
        ensure!(
            bundle.one_time_prekey.is_none(),
            "a one-time key was served after exhaustion"
        );
        ensure!(
            bundle.last_resort == Some(keys.last_resort_wire()),
            "exhausted bundle lacks the last-resort key"
        );
        verify_bundle(&bundle)?;
    }
    ensure!(bob.client.prekey_count().await? == 0);

    // Falling below the low-water mark (2) warned the connected owner.
    let mut warnings = Vec::new();
    while let Some(frame) = bob.client.try_next_push(Duration::from_secs(2)).await? {
        match frame {
            RelayFrame::PreKeysLow { remaining } => warnings.push(remaining),
            other => bail!("unexpected push to the key owner: {other:?}"),
        }
    }
    ensure!(
        warnings.contains(&1) && warnings.contains(&0),
        "expected PreKeysLow for 1 and 0 remaining keys, got {warnings:?}"
    );
    ensure!(
        warnings.iter().all(|&r| r < 2),
        "PreKeysLow sent at or above the low-water mark: {warnings:?}"
    );

    // Refilling works after exhaustion.
    let refill: Vec<PreKeyWire> = (100..104)
        .map(|id| {
            umbra_protocol::prekeys::OneTimePreKey::generate(id, &mut rand::rngs::OsRng)
                .public()
                .into()
        })
        .collect();
    match bob
        .client
        .request_ok(Request::UploadPreKeys { prekeys: refill })
        .await?
    {
        Response::PreKeyCount { remaining: 4, .. } => {}
        other => bail!("refill: expected PreKeyCount {{ remaining: 4 }}, got {other:?}"),
    }
    Ok(())
}

async fn malformed_prekey_uploads_are_refused(backend: Backend) -> anyhow::Result<()> {
    let relay = backend.start_relay(&[]).await?;
    let url = relay.ws_url();
    let mut bob = Session::sign_up(&url, "bob", "bob's password").await?;
    let keys = DeviceKeys::generate(3);
    bob.client.publish_keys(&keys).await?;
    ensure!(bob.client.upload_prekeys(&keys).await? == 3);

    // The same id twice in one upload.
    let mut twice = keys.one_time_wire();
    twice.push(twice[0]);
    let fresh: Vec<PreKeyWire> = twice
        .iter()
        .map(|k| PreKeyWire {
            id: k.id + 10,
            key: k.key,
        })
        .collect();
    let reply = bob
        .client
        .request(Request::UploadPreKeys { prekeys: fresh })
        .await;
    expect_code(reply, ErrorCode::BadPreKey, "an upload repeating an id")?;

    // More than ONE_TIME_PREKEYS_PER_UPLOAD_MAX in one upload.
    let key = keys.one_time_wire()[0].key;
    let too_many: Vec<PreKeyWire> =
        (1000..1000 + umbra_protocol::wire::ONE_TIME_PREKEYS_PER_UPLOAD_MAX as u32 + 1)
            .map(|id| PreKeyWire { id, key })
            .collect();
    let reply = bob
        .client
        .request(Request::UploadPreKeys { prekeys: too_many })
        .await;
    expect_code(
        reply,
        ErrorCode::TooManyPreKeys,
        "an upload over the per-upload limit",
    )?;
    ensure!(
        bob.client.prekey_count().await? == 3,
        "a refused upload changed the count"
    );

    // Re-uploading a stored id with the same key is a harmless retry.
    let reply = bob
        .client
        .request(Request::UploadPreKeys {
            prekeys: keys.one_time_wire()[..1].to_vec(),
        })
        .await;
    ensure!(
        matches!(reply, Ok(Response::PreKeyCount { remaining: 3, .. })),
        "a retried upload of a stored key was not accepted as a no-op: {reply:?}"
    );

    // A stored id with a different key (spec 9.6: BadPreKey).
    let mut conflicting = keys.one_time_wire()[..1].to_vec();
    conflicting[0].key = keys.one_time_wire()[1].key;
    let reply = bob
        .client
        .request(Request::UploadPreKeys {
            prekeys: conflicting,
        })
        .await;
    expect_code(
        reply,
        ErrorCode::BadPreKey,
        "re-uploading a stored prekey id with another key",
    )?;
    ensure!(
        bob.client.prekey_count().await? == 3,
        "a refused upload changed the count"
    );
    Ok(())
}
