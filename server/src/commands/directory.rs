//! The key directory: publishing identity and prekeys (X25519 and signed
//! ML-KEM), counting and claiming them (classical and hybrid bundles),
//! resolving usernames.
//!
//! Must never: store keys whose signatures do not verify (checked in
//! `crate::directory` before the store is touched), publish a new identity
//! beside an old signed prekey, push `KemPreKeysLow` to a device that has
//! never uploaded a KEM prekey (it may not know the frame, 9.4), or log
//! who fetched whose bundle.

use umbra_wire::identity::IdentityPublic;
use umbra_wire::{
    AccountId, AccountRef, Address, DeviceId, ErrorCode, KemPreKeyWire, PreKeyWire, Response,
    SignedPreKeyWire, Username,
};

use super::{Handled, Refusal};
use crate::app::AppState;
use crate::directory::{check_kem_upload, check_prekey_batch, verify_published_keys};
use crate::store::KemPreKeyStock;

fn prekey_count_response(state: &AppState, count: u64) -> Response {
    Response::PreKeyCount {
        remaining: u32::try_from(count).unwrap_or(u32::MAX),
        low_water: state.limits.prekey_low_water,
    }
}

fn kem_prekey_count_response(state: &AppState, stock: KemPreKeyStock) -> Response {
    Response::KemPreKeyCount {
        remaining: u32::try_from(stock.one_time).unwrap_or(u32::MAX),
        low_water: state.limits.prekey_low_water,
    }
}

/// Whether `KemPreKeysLow` is due for a device holding `stock`: fewer
/// one-time KEM prekeys than the low water, and only for a device that has
/// uploaded KEM prekeys (`uploaded`: a claim just took one; else a stored
/// KEM prekey of either kind says so). An older client does not know the
/// frame, and an unknown push is an undecodable frame to it (9.4), after
/// which it would reconnect and be told again.
pub(crate) fn kem_prekeys_low(
    state: &AppState,
    stock: KemPreKeyStock,
    uploaded: bool,
) -> Option<u32> {
    let uploaded = uploaded || stock.last_resort || stock.one_time > 0;
    (uploaded && stock.one_time < u64::from(state.limits.prekey_low_water))
        .then(|| u32::try_from(stock.one_time).unwrap_or(u32::MAX))
}

fn unknown_username() -> Refusal {
    Refusal::new(ErrorCode::UnknownUsername, "no account has this username")
}

pub(super) async fn publish_keys(
    state: &AppState,
    me: Address,
    identity: &[u8],
    signed_prekey: &SignedPreKeyWire,
    last_resort: Option<&PreKeyWire>,
) -> Handled {
    verify_published_keys(identity, signed_prekey)?;
    // One transaction: a failure leaves the previous keys whole, never a new
    // identity next to an old signed prekey.
    let published = state
        .store
        .put_keys(me, identity, signed_prekey, last_resort)
        .await?;
    if published.identity_replaced {
        tracing::info!(
            discarded = published.one_time_prekeys_discarded,
            "identity replaced; the old identity's one-time prekeys were deleted"
        );
    }
    Ok(Response::Ok)
}

pub(super) async fn upload_prekeys(
    state: &AppState,
    me: Address,
    prekeys: &[PreKeyWire],
) -> Handled {
    check_prekey_batch(prekeys)?;
    let count = state.store.add_one_time_prekeys(me, prekeys).await?;
    Ok(prekey_count_response(state, count))
}

pub(super) async fn prekey_count(state: &AppState, me: Address) -> Handled {
    let count = state.store.one_time_prekey_count(me).await?;
    Ok(prekey_count_response(state, count))
}

/// `UploadKemPreKeys`: every signature is checked under the identity the
/// device publishes, and the store writes only if that is still the one.
/// Takes the keys by value: the check runs on the blocking pool and hands
/// them back, so they are not copied.
pub(super) async fn upload_kem_prekeys(
    state: &AppState,
    me: Address,
    last_resort: Option<KemPreKeyWire>,
    one_time: Vec<KemPreKeyWire>,
) -> Handled {
    let identity = state.store.published_identity(me).await?.ok_or_else(|| {
        Refusal::new(
            ErrorCode::NoPreKeys,
            "this device has published no identity: publish keys (PublishKeys) first, \
             then KEM prekeys signed by its identity",
        )
    })?;
    // The stored identity passed `verify_published_keys` when published, so
    // a failure to parse it is the store's fault, not the client's.
    let parsed = IdentityPublic::from_bytes(&identity)
        .map_err(|e| Refusal::internal(format!("stored identity does not parse: {e}")))?;
    // Up to 101 strict Ed25519 verifications (the wire allows 100 one-time
    // keys and a last-resort one): about 7 ms of CPU in a release build
    // (best of 20, on a loaded 2-core machine), so they run on the
    // blocking pool and the worker thread keeps serving its other
    // connections meanwhile. The classical upload's check (distinct ids,
    // about 2 µs) and PublishKeys' two verifications (about 0.1 ms) stay
    // on the worker.
    let (checked, last_resort, one_time) = tokio::task::spawn_blocking(move || {
        let checked = check_kem_upload(&parsed, last_resort.as_ref(), &one_time);
        (checked, last_resort, one_time)
    })
    .await
    .map_err(|e| Refusal::internal(format!("the KEM prekey check did not finish: {e}")))?;
    checked?;
    let stock = state
        .store
        .put_kem_prekeys(me, &identity, last_resort.as_ref(), &one_time)
        .await?;
    Ok(kem_prekey_count_response(state, stock))
}

pub(super) async fn kem_prekey_count(state: &AppState, me: Address) -> Handled {
    let stock = state.store.kem_prekey_stock(me).await?;
    Ok(kem_prekey_count_response(state, stock))
}

pub(super) async fn resolve_username(state: &AppState, me: Address, username: Username) -> Handled {
    state.rate_limits.check_username_resolve(me.account)?;
    let account = state
        .store
        .account_by_username(&username)
        .await?
        .ok_or_else(unknown_username)?
        .account;
    // Lets a client notice a contact's new identity before sending over an
    // old session, without spending a one-time prekey.
    let identity = state
        .store
        .published_identity(first_device(state, account).await?)
        .await?;
    Ok(Response::Resolved {
        username,
        account,
        identity,
    })
}

/// Which bundle a fetch claims: `Bundle` (X25519 prekeys only) or
/// `HybridBundle` (with the ML-KEM prekeys, claimed in the same
/// transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BundleKind {
    /// `FetchBundle`, `FetchDeviceBundle`.
    Classical,
    /// `FetchHybridBundle`.
    Hybrid,
}

/// Every bundle fetch, in one order: the requester's bundle budget, then
/// the target account (a username is resolved), then the device: `None`
/// is the one `FetchBundle` serves (the account's first current device),
/// `Some` must be a current device (`FetchDeviceBundle`); then the claim.
pub(super) async fn fetch(
    state: &AppState,
    me: Address,
    target: AccountRef,
    device: Option<DeviceId>,
    kind: BundleKind,
) -> Handled {
    state.rate_limits.check_bundle_fetch(me.account)?;
    let account = match target {
        AccountRef::Account(id) => id,
        AccountRef::Username(name) => {
            state
                .store
                .account_by_username(&name)
                .await?
                .ok_or_else(unknown_username)?
                .account
        }
    };
    let (device, no_keys) = match device {
        None => (
            first_device(state, account).await?,
            "the account has not published keys",
        ),
        Some(device) => {
            let target = Address { account, device };
            if !state.store.is_current_device(target).await? {
                return Err(super::devices::unknown_device());
            }
            (target, "the device has not published keys")
        }
    };
    claim_bundle(state, device, no_keys, kind).await
}

/// The device `FetchBundle` and `Resolved` speak for (PROTOCOL.md 15.5):
/// the account's lowest-numbered current device, which is device 1 unless
/// it was removed. An unknown account gets device 1, whose missing keys
/// answer as before.
async fn first_device(state: &AppState, account: AccountId) -> Result<Address, Refusal> {
    Ok(state
        .store
        .list_devices(account)
        .await?
        .first()
        .map_or(Address::primary(account), |d| Address {
            account,
            device: d.device,
        }))
}

/// Claims `device`'s bundle (one one-time prekey of each kind the bundle
/// carries, if any is left) and warns the device when the one-time prekeys
/// of a kind it was just given run low; `NoPreKeys` with `no_keys` when it
/// has published none.
async fn claim_bundle(
    state: &AppState,
    device: Address,
    no_keys: &'static str,
    kind: BundleKind,
) -> Handled {
    let no_keys = || Refusal::new(ErrorCode::NoPreKeys, no_keys);
    match kind {
        BundleKind::Classical => {
            let bundle = state
                .store
                .claim_bundle(device)
                .await?
                .ok_or_else(no_keys)?;
            if bundle.one_time_prekey.is_some() {
                warn_if_low(state, device).await;
            }
            Ok(Response::Bundle(Box::new(bundle)))
        }
        BundleKind::Hybrid => {
            let hybrid = state
                .store
                .claim_hybrid_bundle(device)
                .await?
                .ok_or_else(no_keys)?;
            if hybrid.bundle.one_time_prekey.is_some() {
                warn_if_low(state, device).await;
            }
            if hybrid.kem_one_time.is_some() {
                warn_if_kem_low(state, device).await;
            }
            Ok(Response::HybridBundle(Box::new(hybrid)))
        }
    }
}

/// `PreKeysLow` after a claim took one of the device's X25519 one-time
/// prekeys, if fewer than the low water are left.
async fn warn_if_low(state: &AppState, device: Address) {
    match state.store.one_time_prekey_count(device).await {
        Ok(left) if left < u64::from(state.limits.prekey_low_water) => {
            state
                .hub
                .prekeys_low(device, u32::try_from(left).unwrap_or(u32::MAX));
        }
        Ok(_) => {}
        // The claim succeeded; a failed count only delays the warning.
        Err(error) => tracing::warn!(%error, "cannot count prekeys after a claim"),
    }
}

/// `KemPreKeysLow` after a claim took one of the device's one-time KEM
/// prekeys, as [`warn_if_low`].
async fn warn_if_kem_low(state: &AppState, device: Address) {
    match state.store.kem_prekey_stock(device).await {
        Ok(stock) => {
            if let Some(remaining) = kem_prekeys_low(state, stock, true) {
                state.hub.kem_prekeys_low(device, remaining);
            }
        }
        Err(error) => tracing::warn!(%error, "cannot count KEM prekeys after a claim"),
    }
}
